// IDX image and label files (load_idx). One input holds both files: a little-endian u32 n, then
// the images file (its first n bytes, clamped to what is there), then the labels file. Either may
// be gzip-compressed, as the reader detects compression by content.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_util.hpp"
#include "sat/data.hpp"
#include "sat/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sat_fuzz::ScratchFile images("images-idx3-ubyte"), labels("labels-idx1-ubyte");
  if (size < 4) return 0;
  uint32_t n = 0;
  std::memcpy(&n, data, 4);
  data += 4, size -= 4;
  const size_t split = n < size ? n : size;
  try {
    sat::load_idx(images.write(data, split), labels.write(data + split, size - split), 10);
  } catch (const sat::Error&) {
  }
  return 0;
}
