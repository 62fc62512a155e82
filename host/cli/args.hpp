#pragma once
// The subcommands' flags on Boost.Program_options. Each command declares its flags once, in a
// CommandSpec; the same declaration parses the command line ("--name value", "--name=value",
// boolean "--flag") and writes `--help`. Unknown flags, missing values, flags given twice and bad
// numbers are usage errors (exit status 2) that name the flag.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sat/error.hpp"
#include "sat/layer.hpp"
#include "sat/nm.hpp"

namespace sat::cli {

// A bad command line: main() exits with status 2 for it, 1 for every other error.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Exit statuses of `sat` (docs/user-guide.md, "Exit status").
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

class Args;

class CommandSpec {
 public:
  // `command` as the user types it ("train", "op gemm"); `synopsis` follows "usage: sat <command>";
  // `about` is the paragraph under it.
  CommandSpec(std::string command, std::string synopsis, std::string about = "");

  CommandSpec& value(const std::string& name, const std::string& meta, const std::string& help);
  CommandSpec& flag(const std::string& name, const std::string& help);
  // A positional argument (at most one per command), named META in the help.
  CommandSpec& positional(const std::string& meta, const std::string& help);
  CommandSpec& note(const std::string& text);   // a paragraph after the flags

  std::string help() const;
  // Parses argv (the words after the command). On --help or -h prints help() to stdout and returns
  // nothing: the command returns 0.
  std::optional<Args> parse(const std::vector<std::string>& argv) const;

  const std::string& command() const { return command_; }

 private:
  struct Option {
    std::string name, meta, help;
    bool takes_value;
  };
  std::string command_, synopsis_, about_, positional_meta_, positional_help_;
  std::vector<Option> options_;
  std::vector<std::string> notes_;
  friend class Args;
};

class Args {
 public:
  bool has(const std::string& flag) const;               // given on the command line
  bool flag(const std::string& flag) const;              // a bool flag
  std::string str(const std::string& flag) const;        // required value
  std::string str(const std::string& flag, const std::string& fallback) const;
  std::optional<std::string> opt(const std::string& flag) const;
  std::optional<std::string> positional() const;         // the positional argument, if given
  long long integer(const std::string& flag, long long fallback) const;
  // The same, refused (naming the flag, the range and the value) outside [lo, hi]: a value is
  // never narrowed or wrapped.
  long long integer(const std::string& flag, long long fallback, long long lo, long long hi) const;
  double real(const std::string& flag, double fallback) const;
  [[noreturn]] void fail(const std::string& msg) const;  // throws UsageError "sat <cmd>: msg"
  // A well-formed command line whose input cannot be used (a file's contents, shapes that do not
  // match): throws sat::Error "sat <cmd>: msg", exit status 1.
  [[noreturn]] void input_error(const std::string& msg) const;

 private:
  friend class CommandSpec;
  explicit Args(std::string command) : command_(std::move(command)) {}
  std::string command_;
  std::map<std::string, std::string> values_;
  std::set<std::string> bools_;
  std::optional<std::string> positional_;
};

// "--nm N:M" parsed, a bad value a usage error naming the flag; `fallback` when not given ("" =
// required).
NM nm_flag(const Args& args, const std::string& fallback);
std::optional<NM> nm_opt(const Args& args);   // --nm where given
// "--method M" parsed the same way; `fallback` when not given ("" = required).
Method method_flag(const Args& args, const std::string& fallback);

}  // namespace sat::cli
