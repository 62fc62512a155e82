#pragma once
// The byte-level helpers of the project's binary file formats (checkpoints, traces;
// docs/formats.md): little-endian fields copied in and out of a byte string, section alignment,
// the hex spelling of checksums and version words in messages, and the frame both formats share:
//   [0, 8) magic | [8, 12) u32 format version | [12, 16) u32 format word | [16, 24) u64 header
//   length H | [24, 32) u64 data length D | JSON header | zero padding to 64 | data | u32 CRC-32
//   of everything before it.
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "sat/error.hpp"
#include "sat/io.hpp"

namespace sat::file_layout {

// Fields are stored by copying memory; a big-endian port would need byte swaps here.
static_assert(std::endian::native == std::endian::little, "the file formats assume a little-endian host");

inline size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

template <typename T>
void put(std::string& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}
template <typename T>
T get(const std::string& in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  return v;
}

inline std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

inline constexpr size_t kPrefixBytes = 32;
inline constexpr size_t kDataAlign = 64;   // data starts on a 64-byte boundary (aligned mmap reads)
inline constexpr size_t kTrailerBytes = 4;

// A file of `header` and `data_bytes` zero bytes of data, framed; fill the data at data_offset(),
// then seal() it.
class FrameWriter {
 public:
  FrameWriter(const char (&magic)[8], uint32_t version, uint32_t word, const std::string& header, size_t data_bytes)
      : data_offset_(align_up(kPrefixBytes + header.size(), kDataAlign)),
        bytes_(data_offset_ + data_bytes + kTrailerBytes, '\0') {
    std::memcpy(bytes_.data(), magic, 8);
    put<uint32_t>(bytes_, 8, version);
    put<uint32_t>(bytes_, 12, word);
    put<uint64_t>(bytes_, 16, header.size());
    put<uint64_t>(bytes_, 24, data_bytes);
    std::memcpy(bytes_.data() + kPrefixBytes, header.data(), header.size());
  }
  size_t data_offset() const { return data_offset_; }
  char* data() { return bytes_.data() + data_offset_; }
  // The whole file, its CRC-32 written.
  const std::string& seal() {
    const size_t body = bytes_.size() - kTrailerBytes;
    put<uint32_t>(bytes_, body, checksum_crc32(bytes_.data(), body));
    return bytes_;
  }

 private:
  size_t data_offset_;
  std::string bytes_;
};

// A frame whose magic, version, lengths and checksum are verified.
struct Frame {
  uint32_t word = 0;
  size_t header_offset = kPrefixBytes, header_bytes = 0, data_offset = 0, data_bytes = 0;
};

// Verifies `b`, the contents of `path`, as a frame of `magic` and `version`; `kind` names the
// format in messages ("checkpoint", "trace"). Throws sat::Error naming the file: not this format,
// truncated or corrupt (lengths against the size, the checksum), another format version.
inline Frame verify_frame(const std::string& b, const std::string& path, const char* kind, const char (&magic)[8],
                          uint32_t version) {
  const std::string who = std::string(kind) + " " + path;
  if (b.size() < 8 || std::memcmp(b.data(), magic, 8) != 0) {
    throw Error("'" + path + "' is not a SAT " + kind + " (it does not start with \"" + std::string(magic, 8) + "\")");
  }
  if (b.size() < kPrefixBytes) {
    throw Error(who + " is truncated or corrupt: " + std::to_string(b.size()) + " bytes, shorter than the " +
                std::to_string(kPrefixBytes) + "-byte prefix");
  }
  const auto v = get<uint32_t>(b, 8);
  if (v != version) {
    throw Error(who + " has format version " + std::to_string(v) + "; this build reads version " + std::to_string(version));
  }
  Frame f;
  f.word = get<uint32_t>(b, 12);
  f.header_bytes = get<uint64_t>(b, 16);
  f.data_bytes = get<uint64_t>(b, 24);
  // Lengths are bounded by the file size before any arithmetic so a damaged prefix cannot overflow.
  if (f.header_bytes > b.size() || f.data_bytes > b.size()) {
    throw Error(who + " is truncated or corrupt: its prefix declares " + std::to_string(f.header_bytes) +
                " header bytes and " + std::to_string(f.data_bytes) + " data bytes, but the file has " +
                std::to_string(b.size()) + " bytes");
  }
  f.data_offset = align_up(kPrefixBytes + f.header_bytes, kDataAlign);
  const size_t expected = f.data_offset + f.data_bytes + kTrailerBytes;
  if (b.size() != expected) {
    throw Error(who + " is truncated or corrupt: expected " + std::to_string(expected) + " bytes, got " +
                std::to_string(b.size()));
  }
  const uint32_t stored = get<uint32_t>(b, expected - kTrailerBytes);
  const uint32_t computed = checksum_crc32(b.data(), expected - kTrailerBytes);
  if (stored != computed) {
    throw Error(who + " is corrupt: checksum mismatch (stored " + hex32(stored) + ", computed " + hex32(computed) + ")");
  }
  return f;
}

}  // namespace sat::file_layout
