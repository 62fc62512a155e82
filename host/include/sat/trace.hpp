#pragma once
// Trace files: one format that every accelerator target replays unchanged (C-simulation, SystemC
// model, board). A trace holds an instruction stream, its memory map, the initial contents of the
// DDR channels (parameters, weight forms, a batch, hyper-parameters) and, from a run on the
// reference device, the status words and the contents of every region afterwards. Replaying it on
// another device and comparing region by region says whether that device computes the same bits,
// and where it does not. Format: docs/formats.md ("Trace files").
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sat/accelerator.hpp"
#include "sat/compiler.hpp"
#include "sat/device.hpp"

namespace sat {

inline constexpr uint32_t kTraceFormatVersion = 1;

struct TraceRegion {
  Region region;
  std::vector<uint8_t> init;     // contents before the run; empty: all zero
  bool has_expected = false;     // filled by a reference run
  uint32_t expected_crc32 = 0;   // CRC-32 of the region after the run
  std::vector<uint8_t> expected; // contents after the run, kept for regions the stream writes
};

struct Trace {
  uint32_t interface_version = 0;            // arch::kInterfaceVersion of the build that made it
  std::string description;                   // what it is: "lenet5 bdwp 2:8 batch 32 training step"
  std::string reference;                     // device of the expected results ("" until recorded)
  ChannelBytes channel_bytes{};
  std::vector<isa::Insn> insns;              // the stream, run once
  std::vector<TraceRegion> regions;
  bool has_expected_status = false;
  StatusWords expected_status{};
};

// The trace of one run of `program` from the contents `image` holds now (the host wrote the
// parameters, forms, batch and hyper-parameters into it); `description` says what it is.
Trace capture_trace(ProgramImage& image, const std::string& description);

// The memory image of one run of `model`'s program for `opt` on `device`: the model's current
// parameters and weight forms (call Model::regenerate for opt.method first), a synthetic batch drawn
// with `seed`, the recipe's hyper-parameters. `description` (optional) receives what it is.
std::unique_ptr<ProgramImage> make_program_image(Model& model, const ScheduleOptions& opt, Device& device,
                                                 uint64_t seed, std::string* description = nullptr);

// The trace of one run of `model`'s program for `opt`, as `sat compile --emit` writes it: the model's
// current parameters and weight forms (call Model::regenerate for opt.method first), a synthetic
// batch drawn with `seed`, the recipe's hyper-parameters; recorded on `reference`.
Trace make_program_trace(Model& model, const ScheduleOptions& opt, Device& reference, uint64_t seed);

// Runs `trace` on `device` from its initial contents and fills its expected status and contents
// (the device becomes the trace's reference). Throws sat::Error when the run fails.
void record_expected(Trace& trace, Device& device);

// Writes atomically (atomic_write_file, sat/io.hpp).
void write_trace(const std::string& path, const Trace& trace);
// Reads and validates a trace; throws sat::Error naming the file and the problem: not a trace,
// an unknown format version, another configuration's interface version, a truncated or corrupted
// file, a header inconsistent with the memory map.
Trace read_trace(const std::string& path);

struct RegionDiff {
  std::string name;
  RegionKind kind = RegionKind::activation;
  DType dtype = DType::bf16;
  uint32_t channel = 0;
  uint64_t offset = 0, bytes = 0;
  int64_t elements = 0, differing = 0;       // elements of dtype; how many differ
  int64_t first = -1;                        // index of the first differing element
  double max_abs = 0, max_rel = 0;           // over differing elements (NaN where one side is not a number)
  bool exact_known = true;                   // false: only the checksum was recorded, no contents
};

struct ReplayReport {
  std::string device;
  RunResult run;
  bool status_matches = true;
  std::string status_difference;            // what differs in the status words, if anything
  int64_t regions = 0, regions_checked = 0;
  std::vector<RegionDiff> differing;
  bool ok() const { return run.ok() && status_matches && differing.empty(); }
  std::string summary() const;               // a table of the differing regions, then one verdict line
};

// Replays `trace` on `device`: writes the initial contents, runs the stream, and compares the status
// words and every region with the expected ones. Throws sat::Error when the trace has no expected
// results, or the device cannot take the memory map.
ReplayReport replay_trace(const Trace& trace, Device& device);

}  // namespace sat
