#pragma once
// Studies on the simulator (sat sim, docs/sim.md): one training step (or inference pass) of a model
// simulated with per-instruction records and turned into a StepReport; sweeps over N:M settings
// and configuration values; ablations of the dataflow optimisations; the evaluation document.
// No SystemC in this header: the CLI includes it.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sat/model.hpp"
#include "sat_sim/device.hpp"
#include "sat_sim_study/step_report.hpp"

namespace sat::sim {

struct StepSpec {
  std::string model_path;           // a model description (models/NAME.json)
  std::optional<NM> nm;             // overrides the model file's
  Method method = Method::bdwp;
  int batch = 0;                    // 0: the model's recipe
  bool inference = false;           // the inference pass instead of a training step
  bool interleave_mapping = arch::kInterleaveMapping;
  bool pregeneration = arch::kPregeneration;
  bool offline_scheduling = arch::kOfflineScheduling;
  bool transposed_conv_bp = arch::kTransposedConvBp;
  bool phase_bp = arch::kPhaseBp;
  bool overlap_update = arch::kOverlapUpdate;
  bool balanced_k_tiles = arch::kBalancedKTiles;
  bool patch_reuse = arch::kPatchReuse;
  bool fuse_relu = arch::kFuseRelu;
  bool fused_pregen = arch::kFusedPregen;
  uint64_t seed = 1;                // the synthetic batch
};

// Called now and then while a run goes: instructions executed and the stream's length.
using Progress = std::function<void(uint64_t executed, uint64_t total)>;

// Compiles and simulates one run; throws sat::Error when the model cannot be built or compiled, or
// the run fails (its status in clear text).
StepReport simulate_step(const StepSpec& spec, const SimConfig& cfg, const Progress& progress = {});

// What one study point changed: "nm=2:8 pe=32x16x8".
struct StudyPoint {
  std::string label;
  StepSpec spec;
  SimConfig config;
};

// The points of a sweep spec "key=v1,v2;key=v1,v2" (cartesian product, in the order given). Keys:
// nm (N:M or "dense": the dense method), batch, and every apply_setting key (pe, tile, clock,
// window, vector_lanes, queue, tokens, dram_queue). Throws naming a bad key or value.
std::vector<StudyPoint> sweep_points(const std::string& spec, const StepSpec& base, const SimConfig& cfg);
// The baseline and each dataflow optimisation off in turn.
std::vector<StudyPoint> ablation_points(const StepSpec& base, const SimConfig& cfg);

}  // namespace sat::sim
