// sat replay: runs a trace file on an accelerator device and compares every region with the
// trace's reference results.
#include <cstdio>

#include "args.hpp"
#include "commands.hpp"
#include "sat/backend.hpp"
#include "sat/arch/config.hpp"
#include "sat/device.hpp"
#include "sat/io.hpp"
#include "sat/trace.hpp"

namespace sat::cli {

namespace {

const char* kHelp =
    "usage: sat replay FILE [--backend DEVICE] [--report R.json]\n"
    "  Runs the trace FILE (written by `sat compile --emit`) on an accelerator device: writes its\n"
    "  initial DDR contents, runs its instruction stream, and compares the status words and every\n"
    "  region of the memory map with the results of the trace's reference run. Prints the regions\n"
    "  that differ and by how much; exits 0 when everything is equal, 1 when anything differs.\n"
    "  --backend DEVICE      hls (default), sim or fpga\n"
    "  --report R.json       the device's counters of the run as JSON (cycles, clock_mhz, macs,\n"
    "                        dram_bytes_read, dram_bytes_written, busy and stall per unit;\n"
    "                        docs/sim.md); refused for a device without counters (hls)\n"
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
  Args args("replay", std::vector<std::string>(argv.begin() + 1, argv.end()), {"backend", "report"}, {});
  const Trace trace = read_trace(path);
  std::unique_ptr<Device> dev = open_device(args.str("backend", "hls"));
  std::printf("trace %s: %s, %zu instructions, %zu regions; reference %s\n", path.c_str(), trace.description.c_str(),
              trace.insns.size(), trace.regions.size(), trace.reference.c_str());
  if (args.has("report") && dev->name() == "hls") {
    args.fail("--report: device 'hls' keeps no time (the C-simulation has no counters); use --backend sim");
  }
  const ReplayReport rep = replay_trace(trace, *dev);
  std::fputs(rep.summary().c_str(), stdout);
  if (const auto& c = rep.run.counters) {
    std::printf("%s: %llu cycles (%.3f ms at %d MHz), %.1f%% of the PE array's peak, %.1f MB read, %.1f MB written; "
                "%.0f simulated cycles per wall second\n",
                rep.device.c_str(), static_cast<unsigned long long>(c->cycles), c->cycles / (arch::kClockMHz * 1e3),
                arch::kClockMHz,
                c->cycles ? 100.0 * c->macs / (double(c->cycles) * arch::kPeRows * arch::kPeCols * arch::kPeLanes) : 0.0,
                [&] { double s = 0; for (auto b : c->dram_read_bytes) s += b; return s / 1e6; }(),
                [&] { double s = 0; for (auto b : c->dram_write_bytes) s += b; return s / 1e6; }(),
                rep.run.seconds > 0 ? c->cycles / rep.run.seconds : 0.0);
    if (auto path = args.opt("report")) atomic_write_file(*path, counters_json(*c));
  } else if (args.has("report")) {
    args.fail("--report: device '" + rep.device + "' returned no counters");
  }
  return rep.ok() ? 0 : 1;
}

}  // namespace sat::cli
