// Temporary: subcommands being written in parallel. Each file that lands removes its line here.
#include "commands.hpp"
#include "sat/error.hpp"

namespace sat::cli {
}  // namespace sat::cli
