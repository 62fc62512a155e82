// sat replay: runs a trace file on an accelerator device and compares every region with the
// trace's reference results.
#include <cstdio>

#include "args.hpp"
#include "board_flags.hpp"
#include "commands.hpp"
#include "sat/backend.hpp"
#include "sat/arch/config.hpp"
#include "sat/device.hpp"
#include "sat/io.hpp"
#include "sat/trace.hpp"

namespace sat::cli {

namespace {

CommandSpec replay_spec() {
  CommandSpec c("replay", "FILE [--backend DEVICE] [--report R.json]",
                "Runs the trace FILE (written by `sat compile --emit`) on an accelerator device: writes its\n"
                "initial DDR contents, runs its instruction stream, and compares the status words and every\n"
                "region of the memory map with the results of the trace's reference run. Prints the regions\n"
                "that differ and by how much; exits 0 when everything is equal, 1 when anything differs.");
  c.positional("FILE", "the trace file")
      .value("backend", "DEVICE", "hls (default), sim or fpga")
      .value("report", "R.json", "the device's counters of the run as JSON (docs/sim.md: cycles, clock_mhz, macs, "
                                 "dram_bytes_read, dram_bytes_written, busy and stall per unit from sim; the "
                                 "kernel's own counters from hls and fpga, docs/fpga.md)")
      .note("docs/formats.md describes the trace format.");
  add_board_flags(c);
  return c;
}

}  // namespace

int cmd_replay(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = replay_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  if (!args.positional()) args.fail("the trace FILE is missing (usage: sat replay FILE [--backend DEVICE])");
  const std::string path = *args.positional();
  const Trace trace = read_trace(path);
  std::unique_ptr<Device> dev = open_device(backend_flag(args, "hls"));
  std::printf("trace %s: %s, %zu instructions, %zu regions; reference %s\n", path.c_str(), trace.description.c_str(),
              trace.insns.size(), trace.regions.size(), trace.reference.c_str());
  const ReplayReport rep = replay_trace(trace, *dev);
  std::fputs(rep.summary().c_str(), stdout);
  if (const auto& c = rep.run.counters) {
    std::printf("%s: %s\n", rep.device.c_str(), counters_summary(*c).c_str());
    if (c->source == DeviceCounters::Source::simulator && rep.run.seconds > 0) {
      std::printf("%s: %.0f simulated cycles per wall second\n", rep.device.c_str(), c->cycles / rep.run.seconds);
    }
    if (auto path = args.opt("report")) atomic_write_file(*path, counters_json(*c));
  } else if (args.has("report")) {
    args.fail("--report: device '" + rep.device + "' returned no counters");
  }
  return rep.ok() ? 0 : 1;
}

}  // namespace sat::cli
