#pragma once
// XRT's no-op shim for the driver tests: a staged XILINX_XRT (a temp directory whose lib/ holds a
// link to libxrt_noop.so.2; the system prefix does not work) and XCL_EMULATION_MODE=noop, set
// before the first XRT call of the process (XRT picks its shim once). Under the shim a card opens,
// xclbins load, buffers allocate, map and sync; device addresses are fake (0xdeadbeef), wait()
// returns at once and registers cannot be read, so no kernel ever runs: a run needs a board.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "temp_dir.hpp"

namespace sat::test {

// Where CMake found libxrt_noop.so.2 ("" when it did not).
inline const std::string& noop_library() {
  static const std::string lib = SAT_XRT_NOOP_LIB;
  return lib;
}

// Skips the current test, saying why, where the shim is not installed.
#define SAT_REQUIRE_NOOP_SHIM()                                                                         \
  do {                                                                                                  \
    if (::sat::test::noop_library().empty()) {                                                          \
      GTEST_SKIP() << "XRT's no-op shim (libxrt_noop.so.2) was not found at configure time: install "   \
                      "libxrt-dev (scripts/install-deps.sh) and re-run cmake";                          \
    }                                                                                                   \
  } while (0)

class NoopEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (noop_library().empty()) return;
    dir_ = std::make_unique<TempDir>();
    std::filesystem::create_directories(dir_->file("lib"));
    std::filesystem::create_symlink(noop_library(), dir_->file("lib/libxrt_noop.so.2"));
    ::setenv("XILINX_XRT", dir_->path().c_str(), 1);
    ::setenv("XCL_EMULATION_MODE", "noop", 1);
  }
  void TearDown() override { dir_.reset(); }
  static std::string staged() { return std::getenv("XILINX_XRT") ? std::getenv("XILINX_XRT") : ""; }

 private:
  std::unique_ptr<TempDir> dir_;
};

// Sets an environment variable (or unsets it: nullptr) for a scope: the CLI tests run `sat` in
// child processes that inherit it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace sat::test
