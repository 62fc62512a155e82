// sat replay: runs a trace file on an accelerator device and compares every region with the
// trace's reference results.
#include <cstdio>

#include "args.hpp"
#include "commands.hpp"
#include "sat/backend.hpp"
#include "sat/device.hpp"
#include "sat/trace.hpp"

namespace sat::cli {

namespace {

const char* kHelp =
    "usage: sat replay FILE [--backend DEVICE]\n"
    "  Runs the trace FILE (written by `sat compile --emit`) on an accelerator device: writes its\n"
    "  initial DDR contents, runs its instruction stream, and compares the status words and every\n"
    "  region of the memory map with the results of the trace's reference run. Prints the regions\n"
    "  that differ and by how much; exits 0 when everything is equal, 1 when anything differs.\n"
    "  --backend DEVICE      hls (default), sim or fpga\n"
    "  docs/formats.md describes the trace format.\n";

}  // namespace

int cmd_replay(const std::vector<std::string>& argv) {
  if (!argv.empty() && argv[0] == "--help") {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (argv.empty() || argv[0].rfind("--", 0) == 0) {
    Args none("replay", {}, {}, {});
    none.fail("the trace FILE is missing (usage: sat replay FILE [--backend DEVICE])");
  }
  const std::string path = argv[0];
  Args args("replay", std::vector<std::string>(argv.begin() + 1, argv.end()), {"backend"}, {});
  const Trace trace = read_trace(path);
  std::unique_ptr<Device> dev = open_device(args.str("backend", "hls"));
  std::printf("trace %s: %s, %zu instructions, %zu regions; reference %s\n", path.c_str(), trace.description.c_str(),
              trace.insns.size(), trace.regions.size(), trace.reference.c_str());
  const ReplayReport rep = replay_trace(trace, *dev);
  std::fputs(rep.summary().c_str(), stdout);
  return rep.ok() ? 0 : 1;
}

}  // namespace sat::cli
