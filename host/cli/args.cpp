#include "args.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <boost/program_options.hpp>

namespace po = boost::program_options;

namespace sat::cli {

namespace {

// Where the positional words go; no flag has this name.
constexpr const char* kPositional = "positional words";

std::string flag_name(const po::error_with_option_name& e) {
  std::string n = e.get_option_name();
  if (n.rfind("--", 0) != 0 && n.rfind("-", 0) != 0) n = "--" + n;
  return n;
}

}  // namespace

CommandSpec::CommandSpec(std::string command, std::string synopsis, std::string about)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), about_(std::move(about)) {}

CommandSpec& CommandSpec::value(const std::string& name, const std::string& meta, const std::string& help) {
  options_.push_back({name, meta, help, true});
  return *this;
}

CommandSpec& CommandSpec::flag(const std::string& name, const std::string& help) {
  options_.push_back({name, "", help, false});
  return *this;
}

CommandSpec& CommandSpec::positional(const std::string& meta, const std::string& help) {
  positional_meta_ = meta;
  positional_help_ = help;
  return *this;
}

CommandSpec& CommandSpec::note(const std::string& text) {
  notes_.push_back(text);
  return *this;
}

namespace {

po::options_description describe(const std::vector<std::string>& names, const std::vector<std::string>& metas,
                                  const std::vector<std::string>& helps, const std::vector<bool>& values) {
  po::options_description d("flags", 100, 50);
  for (size_t i = 0; i < names.size(); ++i) {
    if (values[i]) d.add_options()(names[i].c_str(), po::value<std::string>()->value_name(metas[i]), helps[i].c_str());
    else d.add_options()(names[i].c_str(), helps[i].c_str());
  }
  d.add_options()("help,h", "this help");
  return d;
}

}  // namespace

std::string CommandSpec::help() const {
  std::vector<std::string> names, metas, helps;
  std::vector<bool> values;
  for (const Option& o : options_) {
    names.push_back(o.name), metas.push_back(o.meta), helps.push_back(o.help), values.push_back(o.takes_value);
  }
  std::ostringstream s;
  s << "usage: sat " << command_ << (synopsis_.empty() ? "" : " ") << synopsis_ << "\n";
  if (!about_.empty()) s << "\n" << about_ << "\n";
  if (!positional_meta_.empty()) s << "\n  " << positional_meta_ << "  " << positional_help_ << "\n";
  s << "\n" << describe(names, metas, helps, values);
  for (const std::string& n : notes_) s << "\n" << n << "\n";
  return s.str();
}

std::optional<Args> CommandSpec::parse(const std::vector<std::string>& argv) const {
  std::vector<std::string> names, metas, helps;
  std::vector<bool> values;
  for (const Option& o : options_) {
    names.push_back(o.name), metas.push_back(o.meta), helps.push_back(o.help), values.push_back(o.takes_value);
  }
  po::options_description all = describe(names, metas, helps, values);
  all.add_options()(kPositional, po::value<std::vector<std::string>>());
  po::positional_options_description pos;
  pos.add(kPositional, -1);

  Args args(command_);
  po::variables_map vm;
  try {
    // Long flags only, with the value adjacent (=) or next; no abbreviations: a flag is spelled in
    // full, so that adding a flag never changes what an existing command line means. "-h" is the
    // one short form.
    const int style = po::command_line_style::allow_long | po::command_line_style::long_allow_adjacent |
                      po::command_line_style::long_allow_next | po::command_line_style::allow_short |
                      po::command_line_style::allow_dash_for_short | po::command_line_style::short_allow_next;
    po::store(po::command_line_parser(argv).options(all).positional(pos).style(style).run(), vm);
  } catch (const po::unknown_option& e) {
    std::string known;
    for (const Option& o : options_) known += " --" + o.name;
    args.fail("unknown flag " + flag_name(e) + (known.empty() ? " (this command takes no flags)" : " (known:" + known + ")"));
  } catch (const po::invalid_command_line_syntax& e) {
    if (e.kind() == po::invalid_syntax::missing_parameter) args.fail("flag " + flag_name(e) + " needs a value");
    if (e.kind() == po::invalid_syntax::extra_parameter) args.fail("flag " + flag_name(e) + " takes no value");
    args.fail(e.what());
  } catch (const po::multiple_occurrences& e) {
    args.fail("flag " + flag_name(e) + " given twice");
  } catch (const po::error& e) {
    args.fail(e.what());
  }
  if (vm.count("help")) {
    std::fputs(help().c_str(), stdout);
    return std::nullopt;
  }
  if (vm.count(kPositional)) {
    const auto& words = vm[kPositional].as<std::vector<std::string>>();
    const size_t allowed = positional_meta_.empty() ? 0 : 1;
    if (words.size() > allowed) {
      args.fail("unexpected argument '" + words[allowed] + "'" +
                (allowed ? "" : " (flags start with --; see sat " + command_ + " --help)"));
    }
    if (!words.empty()) args.positional_ = words[0];
  }
  for (const Option& o : options_) {
    if (!vm.count(o.name)) continue;
    if (o.takes_value) args.values_[o.name] = vm[o.name].as<std::string>();
    else args.bools_.insert(o.name);
  }
  return args;
}

bool Args::has(const std::string& f) const { return values_.count(f) || bools_.count(f); }
bool Args::flag(const std::string& f) const { return bools_.count(f) > 0; }
std::optional<std::string> Args::positional() const { return positional_; }

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

void Args::fail(const std::string& msg) const { throw UsageError("sat " + command_ + ": " + msg); }
void Args::input_error(const std::string& msg) const { throw Error("sat " + command_ + ": " + msg); }

NM nm_flag(const Args& args, const std::string& fallback) {
  const std::string text = fallback.empty() ? args.str("nm") : args.str("nm", fallback);
  try {
    return NM::parse(text);
  } catch (const Error& e) {
    args.fail(std::string("--nm: ") + e.what());
  }
}

std::optional<NM> nm_opt(const Args& args) {
  if (!args.has("nm")) return std::nullopt;
  return nm_flag(args, "");
}

Method method_flag(const Args& args, const std::string& fallback) {
  const std::string text = fallback.empty() ? args.str("method") : args.str("method", fallback);
  try {
    return parse_method(text);
  } catch (const Error& e) {
    args.fail(std::string("--method: ") + e.what());
  }
}

}  // namespace sat::cli
