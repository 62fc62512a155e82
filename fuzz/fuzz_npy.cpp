// .npy reader (npy_parse, the body of npy_read): any input ends in an array or a sat::Error.
#include <cstddef>
#include <cstdint>

#include "sat/error.hpp"
#include "sat/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    sat::npy_parse(data, size, "fuzz.npy");
  } catch (const sat::Error&) {
  }
  return 0;
}
