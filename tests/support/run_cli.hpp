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

// `sat <args>` through the shell (args are shell words, quoted by the caller where needed), in the
// directory `cwd` when given.
inline CliRun run_sat(const std::string& args, const std::string& cwd = "") {
  const std::string cmd = (cwd.empty() ? std::string() : "cd '" + cwd + "' && ") + "'" + SAT_BINARY_DIR + "/sat' " +
                          args + " 2>&1";
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Expects `sat <args>` to fail (non-zero exit) with `needle` in its output.
inline void expect_cli_error(const std::string& args, const std::string& needle) {
  const CliRun r = run_sat(args);
  EXPECT_NE(r.status, 0) << "sat " << args << " succeeded:\n" << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << "sat " << args << ":\n" << r.out;
}

}  // namespace sat::test
