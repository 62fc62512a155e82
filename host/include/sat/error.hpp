#pragma once
// The one exception type of the SAT host library. Messages name the problem and, where there is
// one, the file, field or flag it came from; the CLI prints them verbatim.
#include <stdexcept>
#include <string>

namespace sat {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace sat
