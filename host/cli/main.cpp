// sat: train, evaluate and inspect N:M sparse models; run single primitives on .npy files.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "commands.hpp"
#include "sat/error.hpp"

namespace {

const char* kUsage =
    "usage: sat <command> [flags]\n"
    "\n"
    "commands:\n"
    "  train     train a model (BDWP, SR-STE or dense) on a backend\n"
    "  eval      evaluate a checkpoint on the test set\n"
    "  summary   per-layer shapes, FLOPs per pass and sparsity of a model\n"
    "  op        one primitive (prune, gemm, layer) on .npy files\n"
    "  compile   the accelerator's instruction stream and memory map for a model (--emit: a trace)\n"
    "  replay    run a trace file on an accelerator device and compare with its reference\n"
    "  sim       one training step on the cycle-accurate simulator: per-layer cycles, stalls,\n"
    "            energy; sweeps, ablations and the evaluation document\n"
    "  info      this build: backends, accelerator configuration, interface version\n"
    "\n"
    "`sat <command> --help` lists a command's flags; docs/user-guide.md has examples.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (cmd == "train") return sat::cli::cmd_train(args);
    if (cmd == "eval") return sat::cli::cmd_eval(args);
    if (cmd == "summary") return sat::cli::cmd_summary(args);
    if (cmd == "op") return sat::cli::cmd_op(args);
    if (cmd == "compile") return sat::cli::cmd_compile(args);
    if (cmd == "replay") return sat::cli::cmd_replay(args);
    if (cmd == "info") return sat::cli::cmd_info(args);
    if (cmd == "sim") return sat::cli::cmd_sim(args);
    std::fprintf(stderr, "sat: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const sat::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
    return 3;
  }
}
