#pragma once
// The byte-level helpers of the project's binary file formats (checkpoints, traces;
// docs/formats.md): little-endian fields copied in and out of a byte string, section alignment,
// and the hex spelling of checksums and version words in messages.
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

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

}  // namespace sat::file_layout
