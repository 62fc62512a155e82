// .npy reader and writer: round trips, the format versions and dtypes numpy writes, and a clear
// error for every malformed file.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sat/error.hpp"
#include "sat/npy.hpp"

namespace sat {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  // One directory per test: ctest runs the tests of this file in parallel processes.
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : test) if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
  const fs::path d = fs::path(SAT_BINARY_DIR) / "test-tmp" / "npy" / test;
  fs::create_directories(d);
  return d;
}

std::string file(const std::string& name) { return (temp_dir() / name).string(); }

// A .npy file byte by byte: magic, version, little-endian header length, header text, data.
std::string npy_bytes(int major, int minor, const std::string& header, const std::string& data) {
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += static_cast<char>(minor);
  const int len_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < len_bytes; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string write_raw(const std::string& name, const std::string& bytes) {
  const std::string path = file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string read_error(const std::string& path) {
  try {
    npy_read(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "npy_read(" << path << ") did not throw";
  return "";
}

const std::string kHeader34 = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }\n";

TEST(Npy, RoundTrip) {
  const std::vector<float> v = {1.5f, -2.0f, 0.0f, 3.25e-7f, 1e30f, -0.0f};
  for (const Shape& shape : {Shape{6}, Shape{2, 3}, Shape{1, 2, 3}, Shape{3, 2, 1, 1}}) {
    const std::string p = file("rt.npy");
    npy_write(p, shape, v);
    const NpyArray a = npy_read(p);
    EXPECT_EQ(a.shape, shape);
    EXPECT_EQ(a.dtype, "<f4");
    ASSERT_EQ(a.data.size(), v.size());
    EXPECT_EQ(std::memcmp(a.data.data(), v.data(), v.size() * sizeof(float)), 0);
  }
}

TEST(Npy, WritesVersion1AlignedHeader) {
  const std::string p = file("aligned.npy");
  npy_write(p, {3, 4}, std::vector<float>(12, 1.0f));
  std::ifstream in(p, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
  EXPECT_NE(bytes.find("'shape': (3, 4)"), std::string::npos);
  EXPECT_EQ(bytes.size(), 10 + header_len + 48);
}

TEST(Npy, ScalarAndEmpty) {
  npy_write(file("scalar.npy"), {}, std::vector<float>{42.0f});
  NpyArray a = npy_read(file("scalar.npy"));
  EXPECT_TRUE(a.shape.empty());
  ASSERT_EQ(a.data.size(), 1u);
  EXPECT_EQ(a.data[0], 42.0f);

  npy_write(file("empty.npy"), {0, 5}, std::vector<float>{});
  a = npy_read(file("empty.npy"));
  EXPECT_EQ(a.shape, (Shape{0, 5}));
  EXPECT_TRUE(a.data.empty());
}

TEST(Npy, WriteIsAtomicAndLeavesNoTemporary) {
  const fs::path d = temp_dir() / "atomic";
  fs::remove_all(d);
  fs::create_directories(d);
  const std::string p = (d / "w.npy").string();
  npy_write(p, {2}, std::vector<float>{1, 2});
  npy_write(p, {3}, std::vector<float>{1, 2, 3});    // replaces
  EXPECT_EQ(npy_read(p).shape, (Shape{3}));
  int files = 0;
  for (const auto& e : fs::directory_iterator(d)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Npy, WriteErrors) {
  try {
    npy_write(file("bad.npy"), {2, 3}, std::vector<float>(5));
    FAIL() << "no error for 5 values of shape [2, 3]";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3] needs 6 values, got 5"), std::string::npos) << e.what();
  }
  try {
    npy_write((temp_dir() / "no-such-dir" / "x.npy").string(), {1}, std::vector<float>{1});
    FAIL() << "no error for a missing directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write"), std::string::npos) << e.what();
  }
}

TEST(Npy, ReadsVersions2And3) {
  const std::vector<float> v = {1, 2, 3, 4, 5, 6};
  const std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  for (int major : {2, 3}) {
    std::string name = "v";
    name += std::to_string(major) + ".npy";
    const std::string p = write_raw(name, npy_bytes(major, 0, h, raw(v)));
    const NpyArray a = npy_read(p);
    EXPECT_EQ(a.shape, (Shape{2, 3}));
    EXPECT_EQ(a.data, v);
  }
}

TEST(Npy, ConvertsOtherDtypes) {
  const std::string p8 = write_raw(
      "f8.npy", npy_bytes(1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n",
                          raw(std::vector<double>{0.5, -1.25, 1e-3})));
  NpyArray a = npy_read(p8);
  EXPECT_EQ(a.dtype, "<f8");
  EXPECT_EQ(a.data, (std::vector<float>{0.5f, -1.25f, 1e-3f}));

  const std::string pi4 = write_raw(
      "i4.npy", npy_bytes(1, 0, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\n",
                          raw(std::vector<int32_t>{-7, 123456})));
  EXPECT_EQ(npy_read(pi4).data, (std::vector<float>{-7.0f, 123456.0f}));

  const std::string pi8 = write_raw(
      "i8.npy", npy_bytes(1, 0, "{'shape': (2,), 'fortran_order': False, 'descr': '<i8'}\n",
                          raw(std::vector<int64_t>{3, -9})));
  EXPECT_EQ(npy_read(pi8).data, (std::vector<float>{3.0f, -9.0f}));
}

TEST(Npy, HeaderVariantsNumpyWrites) {
  // Double quotes, no trailing comma, a 1-D tuple with a trailing comma, extra spaces.
  const std::string p = write_raw(
      "variants.npy",
      npy_bytes(1, 0, "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":( 4 , )}   \n",
                raw(std::vector<float>{1, 2, 3, 4})));
  EXPECT_EQ(npy_read(p).shape, (Shape{4}));
}

TEST(Npy, MissingFile) {
  const std::string msg = read_error(file("does-not-exist.npy"));
  EXPECT_NE(msg.find("does-not-exist.npy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
}

TEST(Npy, BadMagic) {
  const std::string msg = read_error(write_raw("magic.npy", "PK\x03\x04 this is a zip, not npy"));
  EXPECT_NE(msg.find("magic.npy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad magic"), std::string::npos) << msg;
}

TEST(Npy, UnsupportedVersion) {
  const std::string msg = read_error(write_raw("v4.npy", npy_bytes(4, 0, kHeader34, std::string(48, '\0'))));
  EXPECT_NE(msg.find("unsupported .npy format version 4.0"), std::string::npos) << msg;
}

TEST(Npy, UnsupportedDtypeIsNamed) {
  for (const std::string dtype : {">f4", "<f2", "|b1", "<u2"}) {
    const std::string h = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': (2,), }\n";
    const std::string msg = read_error(write_raw("dtype.npy", npy_bytes(1, 0, h, std::string(16, '\0'))));
    EXPECT_NE(msg.find("unsupported dtype '" + dtype + "'"), std::string::npos) << msg;
  }
}

TEST(Npy, FortranOrder) {
  const std::string h = "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }\n";
  const std::string msg = read_error(write_raw("fortran.npy", npy_bytes(1, 0, h, std::string(48, '\0'))));
  EXPECT_NE(msg.find("fortran_order True is not supported"), std::string::npos) << msg;
}

TEST(Npy, HeaderParseErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{'descr': '<f4', 'fortran_order': False, }\n", "missing key 'shape'"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }\n", "expected True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }\n", "expected a dimension size"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}\n", "unexpected key 'extra'"},
      {"{'descr': '<f4 'fortran_order': False, 'shape': (2,)}\n", "expected ',' or '}'"},
      {"['descr', '<f4']\n", "expected '{'"},
  };
  for (const auto& [header, want] : cases) {
    const std::string msg = read_error(write_raw("parse.npy", npy_bytes(1, 0, header, std::string(8, '\0'))));
    EXPECT_NE(msg.find("header parse error"), std::string::npos) << msg;
    EXPECT_NE(msg.find(want), std::string::npos) << "header " << header << ": " << msg;
  }
  // A header length that runs past the end of the file.
  std::string bytes = npy_bytes(1, 0, kHeader34, "");
  bytes[8] = '\xff';
  const std::string msg = read_error(write_raw("short-header.npy", bytes));
  EXPECT_NE(msg.find("header parse error"), std::string::npos) << msg;
}

TEST(Npy, TruncatedData) {
  const std::string p = write_raw("X.npy", npy_bytes(1, 0, kHeader34, std::string(20, '\0')));
  const std::string msg = read_error(p);
  EXPECT_NE(msg.find("X.npy: truncated: header says shape [3, 4] (48 bytes), file has 20"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace sat
