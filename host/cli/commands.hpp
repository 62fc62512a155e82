#pragma once
// The subcommands of the `sat` CLI. Each takes the arguments after its name and returns the exit
// status; errors are thrown as sat::Error and printed by main.
#include <string>
#include <vector>

namespace sat::cli {

int cmd_train(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_summary(const std::vector<std::string>& args);
int cmd_op(const std::vector<std::string>& args);
int cmd_compile(const std::vector<std::string>& args);
int cmd_replay(const std::vector<std::string>& args);
int cmd_info(const std::vector<std::string>& args);
int cmd_devices(const std::vector<std::string>& args);
int cmd_sim(const std::vector<std::string>& args);

}  // namespace sat::cli
