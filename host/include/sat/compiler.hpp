#pragma once
// The offline scheduler: compiles a model, a batch size and a method into one instruction stream
// and one DRAM memory map for a whole training step (FF, loss gradient, BP, WU, update,
// pre-generation, every layer) or for inference. The stream is compiled once and replayed every
// step; the per-step scalars (learning rate, ...) live in a DRAM block the host rewrites.
// Design: docs/dataflow.md; instruction semantics: docs/isa.md.
#include <cstdint>
#include <string>
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
};

// Per-layer accounting for `sat compile` and the simulator.
struct LayerSchedule {
  std::string name, type;
  int64_t instructions = 0;
  int64_t bytes_loaded = 0, bytes_stored = 0;   // DRAM traffic of the layer's instructions
  double macs = 0;                              // PE-array multiply-accumulates (kept weights only)
  int64_t first_insn = 0;                       // index of its first instruction
};

// Where the host finds what it exchanges with the kernel.
struct ParamBinding {
  Param* param = nullptr;
  int value = -1, momentum = -1, grad = -1;     // region indices; -1 where absent
};
struct WeightBinding {
  SparseWeight* weight = nullptr;
  NM nm{1, 1};                                  // the effective N:M (dense where it cannot apply)
  int fwd_values = -1, fwd_index = -1;          // W_F compressed (along K)
  int bwd_values = -1, bwd_index = -1;          // W_B compressed (along Cout)
  int dense = -1;                               // dense or masked-dense BF16 copy, where read
};

struct Program {
  ScheduleOptions options;
  std::vector<isa::Insn> insns;
  MemoryMap map;
  std::vector<LayerSchedule> layers;
  std::vector<ParamBinding> params;
  std::vector<WeightBinding> weights;
  int input = -1, labels = -1;                  // regions the host fills each step
  int hyper = -1;                               // FP32 [lr, momentum, weight_decay, srste_lambda]
  int result = -1;                              // FP32 loss sum, then int32 correct count
  int logits = -1;                              // BF16 [batch][classes]
};

// Compiles `model` (built, any method's forms) for `opt`. Throws sat::Error naming the layer when
// a layer cannot be scheduled (unsupported shape, a tile that cannot fit, a memory map past the
// channel window).
Program compile(Model& model, const ScheduleOptions& opt);

// One instruction in assembler form: "GEMM   w=LOAD s=STORE  a_bank=0 b_bank=1 ... flags=0x3".
std::string disassemble(const isa::Insn& in);
// The whole stream, grouped by layer, then the per-layer summary table and the memory map.
std::string dump_program(const Program& p);
// Just the per-layer summary table (instructions, bytes moved, MACs) and totals.
std::string program_summary(const Program& p);

}  // namespace sat
