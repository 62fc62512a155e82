// Trace files (read_trace): frame, interface version, header, memory map and the zlib blobs.
// Each input is parsed as it is and with its frame repaired (fuzz_util.hpp).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "sat/error.hpp"
#include "sat/trace.hpp"

namespace {
constexpr char kMagic[8] = {'S', 'A', 'T', 'T', 'R', 'A', 'C', 'E'};

void parse(const std::string& path) {
  try {
    sat::read_trace(path);
  } catch (const sat::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sat_fuzz::ScratchFile file("trace.sattrace");
  std::string bytes(reinterpret_cast<const char*>(data), size);
  parse(file.write(bytes));
  const std::string before = bytes;
  if (sat_fuzz::repair_frame(bytes, kMagic) && bytes != before) parse(file.write(bytes));
  return 0;
}
