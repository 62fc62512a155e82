#pragma once
#include <string>

namespace sat::cli {

// "lenet5" -> "<models dir>/lenet5.json"; a path (with '/' or ending in .json) is used as given.
// The models dir is $SAT_MODELS_DIR, else the source tree's models/.
std::string resolve_model_path(const std::string& name_or_path);

}  // namespace sat::cli
