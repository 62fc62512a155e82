#pragma once
// Runs the built `sat` binary as a user does and checks failures: shared by the CLI tests.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace sat::test {

struct CliRun {
  int status = -1;   // exit status; -1 when the command could not be run or did not exit
  std::string out;   // stdout and stderr together
};

// A shell command line, its stdout and stderr together.
inline CliRun run_command(const std::string& cmd) {
  CliRun r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// `sat <args>` through the shell (args are shell words, quoted by the caller where needed), in the
// directory `cwd` when given.
inline CliRun run_sat(const std::string& args, const std::string& cwd = "") {
  return run_command((cwd.empty() ? std::string() : "cd '" + cwd + "' && ") + "'" + SAT_BINARY_DIR + "/sat' " + args);
}

// Expects `sat <args>` to fail with `needle` in its output and the documented exit status
// (docs/user-guide.md): 1 for an error, 2 for a bad command line.
inline void expect_cli_error(const std::string& args, const std::string& needle, int status = 1) {
  const CliRun r = run_sat(args);
  EXPECT_EQ(r.status, status) << "sat " << args << ":\n" << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << "sat " << args << ":\n" << r.out;
  EXPECT_EQ(r.out.find("internal"), std::string::npos) << "sat " << args << ":\n" << r.out;
}

// The same for a bad command line: exit status 2.
inline void expect_usage_error(const std::string& args, const std::string& needle) {
  expect_cli_error(args, needle, 2);
}

}  // namespace sat::test
