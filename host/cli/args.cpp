#include "args.hpp"

#include <cerrno>
#include <cstdlib>
#include <string>

#include "sat/error.hpp"

namespace sat::cli {

Args::Args(const std::string& command, const std::vector<std::string>& argv,
           std::set<std::string> value_flags, std::set<std::string> bool_flags)
    : command_(command) {
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) fail("unexpected argument '" + a + "' (flags start with --)");
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (value_flags.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argv.size()) fail("flag --" + name + " needs a value");
        value = argv[++i];
      }
      if (values_.count(name)) fail("flag --" + name + " given twice");
      values_[name] = value;
    } else if (bool_flags.count(name)) {
      if (inline_value) fail("flag --" + name + " takes no value");
      bools_.insert(name);
    } else {
      std::string known;
      for (const auto& f : value_flags) known += " --" + f;
      for (const auto& f : bool_flags) known += " --" + f;
      fail("unknown flag --" + name + " (known:" + known + ")");
    }
  }
}

bool Args::has(const std::string& f) const { return values_.count(f) || bools_.count(f); }
bool Args::flag(const std::string& f) const { return bools_.count(f) > 0; }

std::string Args::str(const std::string& f) const {
  const auto it = values_.find(f);
  if (it == values_.end()) fail("missing required flag --" + f);
  return it->second;
}

std::string Args::str(const std::string& f, const std::string& fallback) const {
  const auto it = values_.find(f);
  return it == values_.end() ? fallback : it->second;
}

std::optional<std::string> Args::opt(const std::string& f) const {
  const auto it = values_.find(f);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

long long Args::integer(const std::string& f, long long fallback) const {
  const auto it = values_.find(f);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') fail("--" + f + " expects an integer, got '" + it->second + "'");
  if (errno == ERANGE) fail("--" + f + " is out of range: " + it->second);
  return v;
}

long long Args::integer(const std::string& f, long long fallback, long long lo, long long hi) const {
  const long long v = integer(f, fallback);
  if (v < lo || v > hi) {
    const auto it = values_.find(f);
    fail("--" + f + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
         (it != values_.end() ? it->second : std::to_string(v)));
  }
  return v;
}

double Args::real(const std::string& f, double fallback) const {
  const auto it = values_.find(f);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') fail("--" + f + " expects a number, got '" + it->second + "'");
  return v;
}

void Args::fail(const std::string& msg) const { throw Error("sat " + command_ + ": " + msg); }

}  // namespace sat::cli
