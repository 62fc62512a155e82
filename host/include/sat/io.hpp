#pragma once
// File primitives shared by checkpoints, metrics and data loading.
//
// Every file the library writes goes through atomic_write_file, so a crash, a full disk or a
// kill mid-write leaves either the old file or the new one at the target, never a torn one.
// The one checksum of the project's file formats is CRC-32 (ISO-HDLC: the polynomial of zlib,
// gzip and PNG; Python's zlib.crc32 computes the same value), see docs/formats.md.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sat {

// Writes `bytes` to a temporary file in the target's directory, fsyncs it, renames it over `path`
// and fsyncs the directory. On any failure the temporary file is removed and sat::Error names the
// path, the step that failed and the errno text; the previous content of `path`, if any, survives.
void atomic_write_file(const std::string& path, std::string_view bytes);

// The whole file. Throws sat::Error naming the path and the errno text (e.g. a missing file).
std::string read_file(const std::string& path);

// CRC-32 (ISO-HDLC) of data[0, n), continuing from `crc` (0 starts a new checksum), so
// checksum_crc32(b, nb, checksum_crc32(a, na)) is the checksum of a followed by b.
uint32_t checksum_crc32(const void* data, size_t n, uint32_t crc = 0);

// A gzip stream (RFC 1952) holding `bytes`, for writing .gz data files (tests, tools).
std::string gzip_compress(std::string_view bytes, int level = 6);

// Reads a file that may be gzip-compressed (detected by content, not name) and returns the
// uncompressed bytes; stops after `max_bytes` (the caller detects over-long files by asking for
// one byte more than it expects). Throws sat::Error naming the path on open or decompression
// errors, including a gzip stream that ends early.
std::string read_maybe_gzip(const std::string& path, size_t max_bytes = SIZE_MAX);

}  // namespace sat
