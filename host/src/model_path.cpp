#include "sat/model.hpp"

#include <cstdlib>
#include <filesystem>

#include "sat/error.hpp"

namespace sat {

std::string resolve_model_path(const std::string& s) {
  if (s.find('/') != std::string::npos || s.ends_with(".json")) return s;
  const char* env = std::getenv("SAT_MODELS_DIR");
  const std::string dir = env && *env ? env : SAT_SOURCE_DIR "/models";
  const std::string path = dir + "/" + s + ".json";
  if (!std::filesystem::exists(path)) {
    std::string known;
    if (std::filesystem::is_directory(dir)) {
      for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().extension() == ".json") known += " " + e.path().stem().string();
      }
    }
    throw Error("no model named '" + s + "' in " + dir + " (models:" + known + ")");
  }
  return path;
}

}  // namespace sat
