#pragma once
// The pieces of the GPU-resident step shared by its translation units (resident.cpp: the plan,
// the convolutional layers; resident_transformer.cpp: ViT's layers): the device activation, the
// plan's context, the operation interface, and the product helpers every weight layer uses.
// Internal to kernels/.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda_check.hpp"
#include "resident.hpp"

namespace sat::cuda {

// A device activation: rows x cols BF16 (layer_ops.hpp's layout) of per-sample shape `shape`.
struct Act {
  uint16_t* p = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t n() const { return rows * cols; }
};
Act act_of(const Shape& s, int64_t batch);

// Everything an operation needs from its plan: allocation, the stream, cuBLAS, scratch shared by
// the operations (they run one after another on one stream).
struct Ctx {
  int64_t batch;
  Method method;
  const ResidentLinks* links;
  Blas* blas;
  cudaStream_t s;
  std::vector<void*>* allocs;
  // shared scratch, sized to the largest user while the plan is built, allocated after
  int64_t acc_elems = 0, pad_elems = 0, partial_elems = 0, trows_elems = 0;
  float* acc = nullptr;      // FP32 product outputs (bias epilogue, BP before col2im)
  uint16_t* pad = nullptr;   // padded gradient rows of sparse BP
  uint16_t* trows = nullptr; // the lowered output gradient of a transposed BP (conv_dgrad.cu)
  double* partial = nullptr;
  // A convolution's FF product followed by a BatchNorm writes the BatchNorm's column partials in
  // its epilogue (SAT_CUDA_BN_STATS, resident.cpp): into `partial`, for the activation stats_of, in
  // stats_chunks chunks; the BatchNorm whose input that is takes them and clears stats_of.
  const uint16_t* stats_of = nullptr;
  int64_t stats_chunks = 0;
  // SAT_CUDA_PROFILE=1: device time per piece of work (events, the stream synchronised at each
  // mark, so the step runs slower), printed when the plan goes away.
  bool prof = false;
  cudaEvent_t last = nullptr;
  std::map<std::string, double> prof_ms;
  int prof_steps = 0;
  // The plan's first training steps are left out: their first launches load each kernel's module
  // (CUDA's lazy loading) and run cuBLAS's heuristics, which would be counted as the step's work.
  static constexpr int kProfSkip = 2;
  int profiled_steps() const { return prof_steps > kProfSkip ? prof_steps - kProfSkip : 0; }
  void mark(const char* what) {
    if (!prof || prof_steps <= kProfSkip) return;
    cudaEvent_t e;
    SAT_CUDA_CHECK(cudaEventCreate(&e));
    SAT_CUDA_CHECK(cudaEventRecord(e, s));
    SAT_CUDA_CHECK(cudaEventSynchronize(e));
    if (last) {
      float ms = 0;
      SAT_CUDA_CHECK(cudaEventElapsedTime(&ms, last, e));
      prof_ms[what] += ms;
      cudaEventDestroy(last);
    }
    last = e;
  }

  template <typename T>
  T* alloc(int64_t n) {
    void* p = nullptr;
    SAT_CUDA_CHECK(cudaMalloc(&p, static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T)));
    allocs->push_back(p);
    return static_cast<T*>(p);
  }
  Act act(const Shape& s) {
    Act a = act_of(s, batch);
    a.p = alloc<uint16_t>(a.n());
    return a;
  }
};

struct ResidentPlan::Op {
  virtual ~Op() = default;
  virtual void fwd(Ctx& c, const Act& x, bool training) = 0;
  // Returns dL/dx (null when !need_dx).
  virtual const uint16_t* bwd(Ctx& c, const Act& x, const uint16_t* dy, bool need_dx) = 0;
  // Whether the op can take its dy gated by the zeros of a ReLU's output (a ReLU fused after the
  // residual add its sequence ends in), and the gate it applies in bwd (BatchNorm only: its own
  // fused ReLU's output, or that residual's).
  virtual bool can_gate_dy() const { return false; }
  const uint16_t* gate_y = nullptr;
  std::vector<const Param*> params;   // the layer's own trainable ones (ResidentLinks::grad_ready)
  Act y;              // output
  uint16_t* dx = nullptr;
  const char* fwd_name = "?";
  const char* bwd_name = "?";
};

struct ResidentPlan::Seq {
  std::vector<std::unique_ptr<Op>> ops;
  std::vector<Act> ins;   // the input of each op
  Act out;
  void fwd(Ctx& c, bool training) {
    for (size_t i = 0; i < ops.size(); ++i) {
      ops[i]->fwd(c, ins[i], training);
      c.mark(ops[i]->fwd_name);
    }
  }
  // top: the model's own sequence, whose first layer needs no dL/dx (the data's).
  const uint16_t* bwd(Ctx& c, const uint16_t* dy, bool top) {
    for (size_t i = ops.size(); i-- > 0;) {
      dy = ops[i]->bwd(c, ins[i], dy, !top || i > 0);
      c.mark(ops[i]->bwd_name);
      if (c.links->grad_ready) {
        for (const Param* p : ops[i]->params) c.links->grad_ready(p);
      }
    }
    return dy;
  }
};

// A layer's parameters in its own order (weight, bias, ...).
inline std::vector<Param*> params_of(Layer* l) {
  std::vector<Param*> ps;
  l->params(ps);
  return ps;
}

// The products of a weight layer on the plan's stream, sparse or dense as the method says.
// FF: x BF16 [rows][ld_x] (ld_x = padded_len(k), zero beyond k) -> out [rows][ld_out].
// stats (may be null): the output's column partials for a BatchNorm after it, where the sparse
// kernel gives them (spmm's line_stats); returns their chunks, 0 where none were given.
int64_t ff_product(Ctx& c, const SparseWeight& sw, const uint16_t* x, int64_t ld_x, int64_t rows, void* out,
                   bool out_bf16, int64_t ld_out, double* stats = nullptr);
// BP: dy BF16 [rows][cout] -> out [rows][ld_out] (through W_B's N:M form, dY padded into c.pad
// where the form's lines are longer, or the dense weight).
void bp_product(Ctx& c, const SparseWeight& sw, const uint16_t* dy, int64_t rows, void* out, bool out_bf16,
                int64_t ld_out);

// ViT's layers (resident_transformer.cpp): layernorm, gelu, token_mean and attention. The
// operation for such a layer (null for any other type), and why one cannot run resident (empty
// when it can: the kernels stage rows and attention heads in shared memory).
std::unique_ptr<ResidentPlan::Op> make_transformer_op(Ctx& c, Layer* l, const Act& in);
bool is_transformer_type(const std::string& type);
std::string transformer_unsupported(Layer& l);

}  // namespace sat::cuda
