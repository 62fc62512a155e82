// Temporary: subcommands being written in parallel. Each file that lands removes its line here.
#include "commands.hpp"
#include "sat/error.hpp"

namespace sat::cli {
int cmd_train(const std::vector<std::string>&) { throw Error("sat train: not built yet"); }
int cmd_eval(const std::vector<std::string>&) { throw Error("sat eval: not built yet"); }
int cmd_summary(const std::vector<std::string>&) { throw Error("sat summary: not built yet"); }
int cmd_op(const std::vector<std::string>&) { throw Error("sat op: not built yet"); }
}  // namespace sat::cli
