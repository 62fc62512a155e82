#pragma once
// A small flag parser shared by the subcommands: "--name value", "--name=value" and boolean
// "--flag". Unknown flags, missing values and bad numbers are errors that name the flag.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sat::cli {

class Args {
 public:
  // `value_flags` take a value, `bool_flags` do not. Positional arguments are not accepted.
  Args(const std::string& command, const std::vector<std::string>& argv,
       std::set<std::string> value_flags, std::set<std::string> bool_flags);

  bool has(const std::string& flag) const;               // given on the command line
  bool flag(const std::string& flag) const;              // a bool flag
  std::string str(const std::string& flag) const;        // required value
  std::string str(const std::string& flag, const std::string& fallback) const;
  std::optional<std::string> opt(const std::string& flag) const;
  long long integer(const std::string& flag, long long fallback) const;
  // The same, refused (naming the flag, the range and the value) outside [lo, hi]: a value is
  // never narrowed or wrapped.
  long long integer(const std::string& flag, long long fallback, long long lo, long long hi) const;
  double real(const std::string& flag, double fallback) const;
  [[noreturn]] void fail(const std::string& msg) const;  // throws sat::Error "sat <cmd>: msg"

 private:
  std::string command_;
  std::map<std::string, std::string> values_;
  std::set<std::string> bools_;
};

}  // namespace sat::cli
