// sat: train, evaluate and inspect N:M sparse models; run single primitives on .npy files.
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.hpp"
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
    "  devices   the FPGA cards XRT sees (name, PCIe BDF, shell, memory banks), or why it sees none\n"
    "\n"
    "`sat <command> --help` lists a command's flags; docs/user-guide.md has examples.\n"
    "exit status: 0 success, 1 error, 2 bad command line; an interrupted `sat train` 130 (SIGINT)\n"
    "or 143 (SIGTERM), after writing its checkpoint.\n";

}  // namespace

int main(int argc, char** argv) {
  using sat::cli::kExitError;
  using sat::cli::kExitUsage;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : sat::cli::kExitOk;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  // Every error is reported by what it names (a flag, a file, a layer); none is "internal".
  try {
    if (cmd == "train") return sat::cli::cmd_train(args);
    if (cmd == "eval") return sat::cli::cmd_eval(args);
    if (cmd == "summary") return sat::cli::cmd_summary(args);
    if (cmd == "op") return sat::cli::cmd_op(args);
    if (cmd == "compile") return sat::cli::cmd_compile(args);
    if (cmd == "replay") return sat::cli::cmd_replay(args);
    if (cmd == "info") return sat::cli::cmd_info(args);
    if (cmd == "devices") return sat::cli::cmd_devices(args);
    if (cmd == "sim") return sat::cli::cmd_sim(args);
    std::fprintf(stderr, "sat: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return kExitUsage;
  } catch (const sat::cli::UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitUsage;
  } catch (const sat::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitError;
  } catch (const std::filesystem::filesystem_error& e) {
    // The library reports its own file errors as sat::Error; this is one it did not wrap.
    std::fprintf(stderr, "error: sat %s: %s\n", cmd.c_str(), e.what());
    return kExitError;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: sat %s: out of memory (a smaller --batch or model, or a budget: "
                         "SAT_MAX_PARAMETERS, SAT_MAX_ACTIVATION; docs/user-guide.md)\n", cmd.c_str());
    return kExitError;
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "error: sat %s: JSON: %s\n", cmd.c_str(), e.what());
    return kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: sat %s: %s\n", cmd.c_str(), e.what());
    return kExitError;
  }
}
