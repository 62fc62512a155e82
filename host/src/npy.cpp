#include "sat/npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>

#include "sat/error.hpp"
#include "sat/io.hpp"

namespace sat {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False,
// 'shape': (3, 4), }. This parses the subset numpy writes: string keys; string, True/False and
// tuple-of-int values.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  struct Header {
    std::string descr;
    bool fortran = false;
    Shape shape;
  };

  Header parse() {
    Header h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        h.descr = string_literal();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran = boolean();
        have_fortran = true;
      } else if (key == "shape") {
        h.shape = int_tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after '}'");
    if (!have_descr) fail("missing key 'descr'");
    if (!have_fortran) fail("missing key 'fortran_order'");
    if (!have_shape) fail("missing key 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(file_ + ": header parse error: " + what + " at offset " + std::to_string(pos_) +
                " of \"" + printable() + "\"");
  }

  std::string printable() const {
    std::string out;
    for (char c : s_) {
      if (c == '\n') out += "\\n";
      else if (std::isprint(static_cast<unsigned char>(c))) out += c;
      else out += '?';
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }

  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  std::string string_literal() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const size_t end = s_.find(q, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }

  bool boolean() {
    skip_ws();
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }

  Shape int_tuple() {
    expect('(');
    Shape shape;
    while (true) {
      skip_ws();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension size");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[pos_] - '0', &v)) {
          fail("dimension size too large");
        }
        ++pos_;
      }
      if (peek() == 'L') ++pos_;            // Python 2 era files write long literals as 3L
      shape.push_back(v);
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in shape");
    }
    ++pos_;
    return shape;
  }

  const std::string& s_;
  const std::string& file_;
  size_t pos_ = 0;
};

uint32_t read_le(const unsigned char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

template <typename T>
void convert(const unsigned char* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

static_assert(std::endian::native == std::endian::little,
              "npy.cpp reads and writes little-endian data by memcpy");

std::string shape_tuple(const Shape& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) out += ",";
  return out + ")";
}

}  // namespace

NpyArray npy_read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw Error(path + ": read error");
  return npy_parse(bytes.data(), bytes.size(), path);
}

NpyArray npy_parse(const void* data, size_t size, const std::string& path) {
  const std::string_view bytes(static_cast<const char*>(data), size);
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());

  if (bytes.size() < kMagicLen + 2 || bytes.compare(0, kMagicLen, kMagic) != 0) {
    throw Error(path + ": not a .npy file (bad magic: expected \\x93NUMPY)");
  }
  const int major = u[6], minor = u[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    throw Error(path + ": unsupported .npy format version " + std::to_string(major) + "." +
                std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  const int len_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicLen + 2 + len_bytes;
  if (bytes.size() < prefix) throw Error(path + ": header parse error: file ends in the header length");
  const size_t header_len = read_le(u + kMagicLen + 2, len_bytes);
  if (bytes.size() < prefix + header_len) {
    throw Error(path + ": header parse error: header length " + std::to_string(header_len) +
                " runs past the end of the file (" + std::to_string(bytes.size()) + " bytes)");
  }
  const std::string text(bytes.substr(prefix, header_len));
  const HeaderParser::Header h = HeaderParser(text, path).parse();

  size_t item = 0;
  if (h.descr == "<f4" || h.descr == "<i4") item = 4;
  else if (h.descr == "<f8" || h.descr == "<i8") item = 8;
  else {
    throw Error(path + ": unsupported dtype '" + h.descr +
                "' (supported: '<f4'; '<f8', '<i4', '<i8' are converted to float32)");
  }
  if (h.fortran) {
    throw Error(path + ": fortran_order True is not supported (save a C-order array, e.g. "
                "np.ascontiguousarray(a))");
  }

  size_t count = 1, need = 0;
  for (int64_t d : h.shape) {
    if (__builtin_mul_overflow(count, static_cast<size_t>(d), &count)) {
      throw Error(path + ": shape " + shape_str(h.shape) + " is too large");
    }
  }
  if (__builtin_mul_overflow(count, item, &need)) {
    throw Error(path + ": shape " + shape_str(h.shape) + " is too large");
  }
  const size_t have = bytes.size() - prefix - header_len;
  if (have < need) {
    throw Error(path + ": truncated: header says shape " + shape_str(h.shape) + " (" +
                std::to_string(need) + " bytes), file has " + std::to_string(have));
  }

  NpyArray a;
  a.shape = h.shape;
  a.dtype = h.descr;
  a.data.resize(count);
  const unsigned char* src = u + prefix + header_len;
  if (h.descr == "<f4") convert<float>(src, a.data.data(), count);
  else if (h.descr == "<f8") convert<double>(src, a.data.data(), count);
  else if (h.descr == "<i4") convert<int32_t>(src, a.data.data(), count);
  else convert<int64_t>(src, a.data.data(), count);
  return a;
}

void npy_write(const std::string& path, const Shape& shape, const float* data) {
  for (int64_t d : shape) {
    if (d < 0) throw Error(path + ": cannot write shape " + shape_str(shape) + " (negative size)");
  }
  const size_t count = static_cast<size_t>(numel(shape));

  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  // numpy pads so that the data starts on a 64-byte boundary (aligned loads, memory mapping).
  const size_t unpadded = kMagicLen + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 0xffff) throw Error(path + ": shape " + shape_str(shape) + " is too long for .npy 1.0");

  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(data), count * sizeof(float));

  // The one atomic writer of the library: it refuses to replace anything but a regular file
  // (`sat op prune --out /dev/full` once replaced the device node).
  atomic_write_file(path, out);
}

void npy_write(const std::string& path, const Shape& shape, const std::vector<float>& data) {
  if (static_cast<int64_t>(data.size()) != numel(shape)) {
    throw Error(path + ": shape " + shape_str(shape) + " needs " + std::to_string(numel(shape)) +
                " values, got " + std::to_string(data.size()));
  }
  npy_write(path, shape, data.data());
}

}  // namespace sat
