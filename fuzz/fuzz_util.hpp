#pragma once
// What the fuzz targets share: a scratch file for the parsers that take a path, the budgets that
// keep a fuzzed model small, and the repair of the checkpoint/trace frame.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "sat/io.hpp"

namespace sat_fuzz {

// A file in $TMPDIR (scripts/fuzz.sh points it at a scratch directory) rewritten for every input;
// the pid keeps parallel jobs (-jobs, -workers) apart.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& stem)
      : path_((std::filesystem::temp_directory_path() /
               ("sat-fuzz-" + std::to_string(::getpid()) + "-" + stem)).string()) {}
  ~ScratchFile() { std::remove(path_.c_str()); }
  const std::string& write(const void* data, size_t size) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) std::abort();   // a harness problem, not a finding: stop loudly
    return path_;
  }
  const std::string& write(const std::string& bytes) { return write(bytes.data(), bytes.size()); }

 private:
  std::string path_;
};

// The model budgets (sat/layer.hpp) are the designed guard against a model file describing a huge
// network; the defaults allow gigabytes, which would hide real findings behind -rss_limit_mb. The
// fuzz targets lower them (unless the environment sets them) and test that they hold.
inline void small_budgets() {
  setenv("SAT_MAX_PARAMETERS", "1048576", 0);
  setenv("SAT_MAX_ACTIVATION", "1048576", 0);
}

// The frame of checkpoints and traces (docs/formats.md): [0, 8) magic | u32 version | u32 word |
// u64 header length H | u64 data length D | JSON header | zero padding to 64 | data | u32 CRC-32.
// Mutated files almost never keep H, D and the checksum consistent, so the targets parse each
// input twice: as it is (the frame checks) and repaired (the header and data parsers behind them).
// The repair takes the header to run up to the first NUL after the prefix (the padding is zeros)
// and the data to fill the rest up to the trailer. Returns false when the input has no such frame.
inline bool repair_frame(std::string& b, const char (&magic)[8]) {
  constexpr size_t kPrefix = 32, kAlign = 64, kTrailer = 4;
  if (b.size() < kPrefix + kTrailer || std::memcmp(b.data(), magic, 8) != 0) return false;
  const size_t end = b.find('\0', kPrefix);
  const uint64_t header = (end == std::string::npos ? b.size() : end) - kPrefix;
  const size_t data_at = (kPrefix + header + kAlign - 1) / kAlign * kAlign;
  if (data_at + kTrailer > b.size()) return false;
  const uint64_t data = b.size() - kTrailer - data_at;
  std::memcpy(b.data() + 16, &header, 8);
  std::memcpy(b.data() + 24, &data, 8);
  const uint32_t crc = sat::checksum_crc32(b.data(), b.size() - kTrailer);
  std::memcpy(b.data() + b.size() - kTrailer, &crc, 4);
  return true;
}

}  // namespace sat_fuzz
