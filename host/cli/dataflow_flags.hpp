#pragma once
// The dataflow switches of `sat compile` and `sat sim` (docs/dataflow.md §8): each turns one
// optimisation of the offline scheduler off. Declared once here, for both commands' flags, help and
// the refusal of `sat sim --resources`.
#include "args.hpp"

namespace sat::cli {

struct DataflowSwitch {
  const char* flag;
  const char* help;
};

inline constexpr DataflowSwitch kDataflowSwitches[] = {
    {"no-interleave", "all regions on DDR channel 0 (interleave mapping off)"},
    {"no-pregen", "generate each weight form right before the product that reads it (pre-generation off)"},
    {"no-offline", "every instruction waits for the one before it, single-buffered (offline scheduling off)"},
    {"no-bp-conv", "BP of stride-1 convolutions as a product scattered back by col2im"},
    {"no-phase-bp", "BP of stride-2 convolutions as a product scattered back by col2im, not as four phase "
                    "convolutions of dY"},
    {"no-overlap-update", "every update and pre-generation after the whole backward pass"},
    {"no-balanced-k", "K tiles of the full size and a short rest instead of equal sizes"},
    {"no-patch-reuse", "every LD_CONV reads its input patch, even the one the buffer holds"},
    {"no-fuse-relu", "a ReLU after a BatchNorm as its own pass, not inside V_BN/V_BN_BWD"},
    {"no-fused-pregen", "W_F and W_B each from its own read of the master (two PGENs)"},
};

inline void add_dataflow_switches(CommandSpec& c) {
  for (const DataflowSwitch& s : kDataflowSwitches) c.flag(s.flag, s.help);
}

// The switches given on the command line into `o`: a ScheduleOptions (sat compile) or the
// simulator's StepSpec (sat sim), which name the optimisations alike.
template <typename Options>
void apply_dataflow_switches(const Args& args, Options& o) {
  o.interleave_mapping = !args.flag("no-interleave");
  o.pregeneration = !args.flag("no-pregen");
  o.offline_scheduling = !args.flag("no-offline");
  o.transposed_conv_bp = !args.flag("no-bp-conv");
  o.phase_bp = !args.flag("no-phase-bp");
  o.overlap_update = !args.flag("no-overlap-update");
  o.balanced_k_tiles = !args.flag("no-balanced-k");
  o.patch_reuse = !args.flag("no-patch-reuse");
  o.fuse_relu = !args.flag("no-fuse-relu");
  o.fused_pregen = !args.flag("no-fused-pregen");
}

}  // namespace sat::cli
