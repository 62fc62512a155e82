#pragma once
// The offline scheduler: compiles a model, a batch size and a method into one instruction stream
// and one DRAM memory map for a whole training step (FF, loss gradient, BP, WU, update,
// pre-generation, every layer) or for inference. The stream is compiled once and replayed every
// step; the per-step scalars (learning rate, ...) live in a DRAM block the host rewrites.
// Design: docs/dataflow.md; instruction semantics: docs/isa.md.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sat/arch/isa.hpp"
#include "sat/model.hpp"

namespace sat {

// What a DRAM region holds; decides its channel under interleave mapping (docs/dataflow.md).
enum class RegionKind {
  input,        // the batch, BF16 NHWC
  labels,       // int32 per sample
  activation,   // layer outputs and saved intermediates, BF16
  gradient,     // activation gradients, BF16 (FP32 for accumulation scratch)
  master,       // FP32 master weights and other trainable parameters
  momentum,     // FP32 SGD momentum
  param_grad,   // FP32 parameter gradients
  weight_form,  // BF16 compressed values, packed indices, dense BF16 weight copies
  stats,        // FP32 normalisation statistics (saved mean/rstd, running mean/var)
  control,      // hyper-parameters (FP32 lr, momentum, weight decay, SR-STE lambda) and results
};
const char* region_kind_name(RegionKind k);

struct Region {
  std::string name;             // "conv1.weight", "layers[2].out", ...
  RegionKind kind = RegionKind::activation;
  uint32_t channel = 0;
  uint64_t offset = 0;          // bytes from the channel's start, 64-byte aligned
  uint64_t bytes = 0;
  DType dtype = DType::bf16;    // element type (packed index regions count as BF16 halfwords)
  bool written = false;         // the step stream (Program::insns) writes it
  uint32_t addr(uint64_t byte_offset = 0) const {   // ISA address of a byte inside the region
    return isa::make_addr(channel, static_cast<uint32_t>((offset + byte_offset) / 2));
  }
};

struct MemoryMap {
  std::vector<Region> regions;
  uint64_t channel_bytes[arch::kDdrChannels] = {};   // bytes each channel's buffer must have
  // Index of the region called `name`; throws sat::Error naming it when absent.
  int find(const std::string& name) const;
};

// The three dataflow optimisations of the paper, each a switch (docs/dataflow.md).
struct ScheduleOptions {
  int batch = 32;
  Method method = Method::bdwp;
  bool training = true;                               // false: inference (FF and loss only)
  bool interleave_mapping = arch::kInterleaveMapping;
  bool pregeneration = arch::kPregeneration;
  bool offline_scheduling = arch::kOfflineScheduling;
  // The BP of a stride-1 convolution as a convolution of dY with the flipped kernel (LD_CONV b2),
  // writing dX directly, instead of a product scattered back by ST_COL2IM (docs/dataflow.md §8).
  bool transposed_conv_bp = arch::kTransposedConvBp;
  // The BP of a stride-2 convolution as four stride-1 convolutions of dY, one per parity of dX's
  // rows and columns, each stored into its every-second rows and columns (ST_2D b3), instead of a
  // product scattered back by ST_COL2IM (docs/dataflow.md §8).
  bool phase_bp = arch::kPhaseBp;
  // Each layer's SGD and pre-generation right after its backward pass, so that the update and
  // pre-generation units work while BP goes on, instead of after the whole BP (docs/dataflow.md §8).
  bool overlap_update = arch::kOverlapUpdate;
  // A product's K split into tiles of equal size (whole groups of 16) instead of full tiles and a
  // short rest, so that the load of one K tile hides behind the GEMM of the other (docs/dataflow.md §8).
  bool balanced_k_tiles = arch::kBalancedKTiles;
  // LD_CONV b3 on a load whose input patch is the one the previous LD_CONV of the product loaded:
  // the load unit builds the tile from the patch it holds and reads no DRAM (docs/isa.md, LD_CONV).
  bool patch_reuse = arch::kPatchReuse;
  // A ReLU right after a BatchNorm in a sequence runs inside it: V_BN b1 writes relu(y), V_BN_BWD
  // b0 masks dy with that output, so the ReLU's own passes over DRAM go (docs/dataflow.md §8).
  bool fuse_relu = arch::kFuseRelu;
  // BDWP's W_F and W_B from one read of the master (PGEN b4) where M rows fit the PGEN block buffer.
  bool fused_pregen = arch::kFusedPregen;
  // Data-parallel training (docs/distributed.md): the step stream stops after WU, leaving every
  // parameter's gradient in its param_grad region, and Program::update holds the SGD and
  // pre-generation of every parameter as a stream of its own, run after the host has written the
  // gradients summed over the ranks. Implies no overlap_update.
  bool update_apart = false;
  bool record_dependencies = false;                   // fill Program::dependencies (tests)
  // Which of a training program's two batch regions a lowering's stream reads: 0 "input"/"labels",
  // 1 "input.1"/"labels.1". compile() lowers both itself; callers leave it 0.
  int batch_slot = 0;
  // The largest GEMM tile the stream uses: the on-chip banks' capacity by default; smaller values
  // study smaller buffers (sat sim --sweep). Checked by check_tile_limits.
  int tile_rows = arch::kMaxTileRows, tile_cols = arch::kMaxTileCols, tile_k = arch::kMaxTileK;
};
// Throws sat::Error naming the limit when a tile limit is not positive, exceeds the banks the kernel
// is built with (arch/config.hpp), or tile_k is not a multiple of 16 (whole groups of every M).
void check_tile_limits(const ScheduleOptions& opt);

// Per-layer accounting for `sat compile` and the simulator.
struct LayerSchedule {
  std::string name, type;
  std::string phase;                            // "setup", "ff", "loss", "bp", "wu" (the weight-gradient
                                                // products), "update", "pregen", "end"; one layer has
                                                // one entry per contiguous run
  int64_t instructions = 0;
  int64_t bytes_loaded = 0, bytes_stored = 0;   // DRAM traffic of the layer's instructions
  double macs = 0;                              // PE-array multiply-accumulates (kept weights only)
  int64_t first_insn = 0;                       // index of its first instruction
};

// Where the host finds what it exchanges with the kernel. Before the first step the host writes
// every master value, zeroes every momentum, and runs Program::prologue (or writes the forms
// itself); each step it writes `input` (BF16, NHWC), `labels` (int32) and `hyper`, runs `insns`,
// and reads `result` (and `logits`). A training program has two batch regions, ping-pong: step i
// reads slot i % 2 (`insns` slot 0, `insns_b` slot 1), so the host can write the next step's batch
// into the other slot while a step runs (docs/dataflow.md, "Batch slots").
struct ParamBinding {
  Param* param = nullptr;
  int value = -1, momentum = -1, grad = -1;     // region indices; -1 where absent
};
struct WeightBinding {
  SparseWeight* weight = nullptr;
  NM nm{1, 1};                                  // the effective N:M (dense where it cannot apply)
  int fwd_values = -1, fwd_index = -1;          // W_F compressed (along K)
  int bwd_values = -1, bwd_index = -1;          // W_B compressed (along Cout)
  int dense = -1;                               // dense BF16 copy [cout][k], where FF reads it
  int dense_t = -1;                             // BF16 W^T [k][cout] (dense or masked W_F), where BP reads it
};

// DRAM traffic of one instruction and the channels it reads and writes (bit c = channel c).
struct InsnTraffic {
  int64_t loaded = 0, stored = 0;
  uint8_t read_channels = 0, write_channels = 0;
};

struct Program {
  ScheduleOptions options;
  std::vector<isa::Insn> insns;
  std::vector<InsnTraffic> traffic;             // per instruction of `insns`
  MemoryMap map;
  std::vector<LayerSchedule> layers;
  std::vector<ParamBinding> params;
  std::vector<WeightBinding> weights;
  int input = -1, labels = -1;                  // regions the host fills each step (slot 0)
  int input_b = -1, labels_b = -1;              // slot 1 (training programs; -1 otherwise)
  std::vector<isa::Insn> insns_b;               // the step reading slot 1; empty without slot 1
  int hyper = -1;                               // FP32 [lr, momentum, weight_decay, srste_lambda]
  int result = -1;                              // FP32 mean loss, then int32 correct count
  int logits = -1;                              // BF16 [batch][classes]
  // PGEN of every weight form the stream reads, then FINISH: run once before the first step (and
  // after the host writes new master weights) when pre-generation is on, since the stream then
  // regenerates the forms only after its update. Same memory map as `insns`.
  std::vector<isa::Insn> prologue;
  // ScheduleOptions::update_apart: the update of every trainable parameter and the pre-generation of
  // every form, then FINISH, over the same memory map; it reads the param_grad regions and the
  // hyper-parameters. Its own dependency tokens: it starts after the step stream's FINISH. Its
  // per-instruction traffic and per-layer accounting (first_insn into this stream) beside it.
  std::vector<isa::Insn> update;
  std::vector<InsnTraffic> update_traffic;
  std::vector<LayerSchedule> update_layers;
  // Debug (ScheduleOptions::record_dependencies): every ordering the stream must respect, as
  // (earlier, later) instruction indices on different units, for checkers.
  std::vector<std::pair<int64_t, int64_t>> dependencies;
};

// Compiles `model` (built, any method's forms) for `opt`. Throws sat::Error naming the layer when
// a layer cannot be scheduled (unsupported shape, a tile that cannot fit, a memory map past the
// channel window).
Program compile(Model& model, const ScheduleOptions& opt);

// The program of one `sat op gemm` product (make_gemm_problem in sat/ops.hpp): regions a (BF16
// input rows), b (BF16 X, wu only) and c (FP32 result: [B][Cout], [B][K] or the [Cout][K] weight
// gradient), and the weight's forms bound as in training. `model` owns the one-layer wrapper the
// program's bindings point into; keep it alive while the program is used.
struct GemmProblem;
struct GemmProgram {
  std::unique_ptr<Model> model;
  Program program;
  int a = -1, b = -1, c = -1;
};
GemmProgram compile_gemm(GemmProblem& problem);

// A first-order timing model of one run of the stream (docs/dataflow.md, "Timing estimate"): each
// unit executes its instructions in order, starting when its tokens have arrived; a GEMM takes the
// PE array's cycles (arch::gemm_cycles, sat/arch/timing.hpp: the activation window included); a
// DRAM instruction occupies each channel it touches for its bytes at kDdrChannelGBs (one transfer
// at a time per channel, in stream order) plus a fixed latency. An
// estimate for comparing schedules, not the cycle-accurate simulator (sim/).
struct TimingEstimate {
  double cycles = 0;                            // the step's makespan at kClockMHz
  double unit_busy[isa::kNumUnits] = {};        // cycles each unit spent executing
  double channel_busy[arch::kDdrChannels] = {}; // cycles each DDR channel spent transferring
  double ms() const { return cycles / (arch::kClockMHz * 1e3); }
};
TimingEstimate estimate_timing(const Program& p);

// One instruction in assembler form: "GEMM  wait=LOAD  signal=STORE  a_bank=0 b_bank=1 ... flags=0x3"
// (addresses as channel:byte offset, packed pairs as lo,hi, float fields as numbers).
std::string disassemble(const isa::Insn& in);
// The whole stream, grouped by layer, then the per-layer summary table and the memory map.
std::string dump_program(const Program& p);
// Just the per-layer summary table (instructions, bytes moved, MACs) and totals.
std::string program_summary(const Program& p);
// The memory map: every region per channel (offset, size, kind) and each channel's total.
std::string memory_map_summary(const Program& p);

}  // namespace sat
