// Model descriptions (Model::from_json_text): parse, layer factories, shape inference and
// parameter initialisation; any input ends in a model or a sat::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sat_fuzz::small_budgets();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    sat::Model m = sat::Model::from_json_text(text, "fuzz.json");
    m.describe(sat::Method::bdwp);
  } catch (const sat::Error&) {
  }
  return 0;
}
