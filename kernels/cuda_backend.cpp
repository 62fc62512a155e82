// The `cuda` backend. It mirrors every parameter of the Model on the GPU (FP32 value, momentum,
// gradient; BatchNorm's running statistics) with the weight forms its products read, and trains in
// one of two ways (docs/cuda.md, "What runs where"):
//   - GPU-resident (every layer type has a resident implementation, resident.cpp): the whole step
//     runs on the GPU from buffers allocated once per model and batch; the host model is updated
//     only at the sync point (Backend::sync);
//   - host layers (other models): the layer graph runs in the host Model, the products of every
//     weight layer are routed here through the ProductRouter in their StepContext, and the
//     updated parameters are copied back after each step.
// Both run the loss and the SGD / SR-STE update fused with the pre-generation of both N:M forms on
// the GPU.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include "sat/product_router.hpp"
#include "layer_ops.hpp"
#include "ops.hpp"
#include "resident.hpp"
#include "cuda_check.hpp"
#include "gradient_buckets.hpp"
#include "env_setting.hpp"
#include "nccl_reducer.hpp"
#include "step_profile.hpp"
#include "sat/backend.hpp"
#include "sat/backend_registry.hpp"
#include "sat/distributed.hpp"
#include "sat/error.hpp"
#include "sat/ops.hpp"

namespace sat {

namespace {

using namespace cuda;

// A growable CUDA allocation of T: device memory, or pinned host memory (the staging buffers of
// the batch and the step's results). Owned alone: moved, never copied.
template <typename T, bool kPinned>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  ~CudaBuffer() { release(); }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  CudaBuffer(CudaBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  // Makes room for n elements (contents are not kept when it grows).
  T* ensure(int64_t n) {
    if (n > n_) {
      release();
      void* p = nullptr;
      const size_t bytes = static_cast<size_t>(n) * sizeof(T);
      if constexpr (kPinned) {
        SAT_CUDA_CHECK(cudaMallocHost(&p, bytes));
      } else {
        SAT_CUDA_CHECK(cudaMalloc(&p, bytes));
      }
      p_ = static_cast<T*>(p);
      n_ = n;
    }
    return p_;
  }
  T* get() const { return p_; }

 private:
  void release() {
    if constexpr (kPinned) {
      cudaFreeHost(p_);
    } else {
      cudaFree(p_);
    }
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  int64_t n_ = 0;
};

template <typename T>
using DevArray = CudaBuffer<T, false>;
template <typename T>
using Pinned = CudaBuffer<T, true>;

template <typename T>
void upload(DevArray<T>& d, const T* host, int64_t n) {
  SAT_CUDA_CHECK(cudaMemcpy(d.ensure(n), host, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice));
}

struct DevSparse;

struct DevParam {
  Param* host = nullptr;
  DevArray<float> value, momentum, grad;
  bool grad_on_device = false;   // its gradient comes from the WU product on the GPU
  const uint8_t* mask_f = nullptr;
  DevSparse* sparse = nullptr;   // the forms selected from it, when it is a sparse weight
};

struct DevSparse {
  const SparseWeight* host = nullptr;
  DevParam* param = nullptr;
  DevNM fwd, bwd;
  DevArray<uint8_t> mask_f;
  DevArray<uint16_t> dense;
  bool has_fwd = false, has_bwd = false, has_dense = false, dense_pruned = false;
  DevSparse() = default;
  DevSparse(const DevSparse&) = delete;
  DevSparse& operator=(const DevSparse&) = delete;
  ~DevSparse() {
    free_devnm(fwd);
    free_devnm(bwd);
  }
};

// One CUDA graph of the resident step (CudaBackend::run_step).
struct StepGraph {
  cudaGraphExec_t exec = nullptr;
  int eager_steps = 0;
  bool failed = false;
  StepGraph() = default;
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;
  ~StepGraph() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};
// One of prefetch's two slots of the next batch: pinned copy, device copy, the upload's event
struct NextBatch {
  Pinned<uint16_t> hx;
  Pinned<int> hy;
  DevArray<uint16_t> dx;
  DevArray<int> dy;
  cudaEvent_t ready = nullptr;
  int64_t elems = 0, batch = 0;
  bool full = false;
};
// Pinned host memory for the asynchronous copies of a step (the batch up, the result down).
class CudaBackend final : public Backend, public ProductRouter {
 public:
  // One GPU per rank of a data-parallel run on this host (its local rank); device 0 otherwise.
  CudaBackend() : device_(require_device("backend 'cuda'", launcher_local_rank())), blas_(std::make_unique<Blas>()) {
    graphs_on_ = env_switch("SAT_CUDA_GRAPH", "1", "0", true) && !prof_.on();
    SAT_CUDA_CHECK(cudaStreamCreate(&stream_));
    SAT_CUDA_CHECK(cudaStreamCreate(&copy_stream_));
    for (NextBatch& n : next_) SAT_CUDA_CHECK(cudaEventCreateWithFlags(&n.ready, cudaEventDisableTiming));
    blas_->set_stream(stream_);
    links_.value = [this](const Param* p) -> float* {
      if (auto it = params_.find(p); it != params_.end()) return it->second->value.get();
      if (auto it = fixed_.find(p); it != fixed_.end()) return it->second->get();
      throw Error("backend 'cuda': parameter " + p->name + " has no device copy");
    };
    links_.grad = [this](const Param* p) -> float* {
      if (auto it = params_.find(p); it != params_.end()) return it->second->grad.get();
      throw Error("backend 'cuda': parameter " + p->name + " is not trainable");
    };
    links_.weight = [this](const SparseWeight* w) {
      DevSparse& d = forms_of(*w, method_);
      WeightDev v;
      v.fwd = d.has_fwd ? &d.fwd : nullptr;
      v.bwd = d.has_bwd ? &d.bwd : nullptr;
      v.dense = d.has_dense ? d.dense.get() : nullptr;
      v.grad = d.param->grad.get();
      return v;
    };
  }
  ~CudaBackend() override {
    // NCCL first: an all-reduce left in flight by a failed step is aborted before anything below
    // waits for the device.
    links_.grad_ready = nullptr;
    buckets_.reset();
    nccl_.reset();
    prof_.report(method_name(method_));
    if (prof_.on()) {
      std::fprintf(stderr, "cuda: %lld resident steps found their batch already uploaded (Backend::prefetch)\n",
                   static_cast<long long>(prefetch_hits_));
    }
    graphs_.clear();
    plans_.clear();
    cudaStreamSynchronize(copy_stream_);
    for (NextBatch& n : next_) cudaEventDestroy(n.ready);
    cudaStreamDestroy(copy_stream_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }
  const std::string& device() const { return device_; }

  void prepare(Model& model, Method method) override { mirror(model, method, true); }

  // The next batch, uploaded on a second stream while the current step runs (the training loop
  // announces it before that step). Two slots: the batch announced before step N is consumed by
  // step N+1, after the one announced before step N+1 has gone into the other slot. train_step
  // takes a slot whose contents equal its batch (compared with the pinned copy: a hint that
  // differs from the batch given is ignored); otherwise it uploads its batch itself.
  void prefetch(const Tensor& x, const std::vector<int>& y) override {
    if (!resident_ || x.dtype() != DType::bf16 || x.rank() == 0 || static_cast<int64_t>(y.size()) != x.dim(0)) return;
    NextBatch& n = next_[next_turn_];
    next_turn_ ^= 1;
    SAT_CUDA_CHECK(cudaEventSynchronize(n.ready));   // its last upload has left the pinned buffers
    n.elems = x.numel();
    n.batch = x.dim(0);
    std::memcpy(n.hx.ensure(n.elems), x.bf16_data(), n.elems * sizeof(uint16_t));
    std::memcpy(n.hy.ensure(n.batch), y.data(), n.batch * sizeof(int));
    SAT_CUDA_CHECK(cudaMemcpyAsync(n.dx.ensure(n.elems), n.hx.get(), n.elems * sizeof(uint16_t), cudaMemcpyHostToDevice,
                                   copy_stream_));
    SAT_CUDA_CHECK(cudaMemcpyAsync(n.dy.ensure(n.batch), n.hy.get(), n.batch * sizeof(int), cudaMemcpyHostToDevice,
                                   copy_stream_));
    SAT_CUDA_CHECK(cudaEventRecord(n.ready, copy_stream_));
    n.full = true;
  }

  StepResult train_step(Model& model, const Tensor& x, const std::vector<int>& y, const UpdateConfig& cfg) override {
    mirror(model, cfg.method, false);
    if (resident_) return resident_step(model, x, y, &cfg);
    const StepProfile::Scope whole(prof_, StepProfile::kPhases);
    model.zero_grad();
    for (auto& [p, d] : params_) {
      if (d->grad_on_device) SAT_CUDA_CHECK(cudaMemsetAsync(d->grad.get(), 0, d->host->numel() * sizeof(float)));
    }
    StepResult r;
    {
      StepContext ctx{cfg.method, true};
      ctx.router = this;
      const Tensor logits = model.forward(x, ctx);
      Tensor dlogits;
      {
        const StepProfile::Scope t(prof_, StepProfile::loss);
        r = loss(logits, y, &dlogits);
      }
      model.backward(dlogits, ctx);
    }
    const StepProfile::Scope t(prof_, StepProfile::update);
    update(model, cfg);
    return r;
  }

  StepResult evaluate(Model& model, const Tensor& x, const std::vector<int>& y, Method method) override {
    mirror(model, method, false);
    if (resident_) return resident_step(model, x, y, nullptr);
    StepContext ctx{method, false};
    ctx.router = this;
    const Tensor logits = model.forward(x, ctx);
    return loss(logits, y, nullptr);
  }

  // Data-parallel training's two halves (sat/distributed.hpp) on the resident path: the step
  // without its update, then the update. The gradients and BatchNorm's running statistics stay on
  // the GPU where NCCL sums them (reduce_gradients); otherwise they come to the host Params after
  // the first half, which the training loop sums over the ranks, and go back up before the second.
  bool splits_step() const override { return true; }

  StepResult forward_backward(Model& model, const Tensor& x, const std::vector<int>& y, Method method) override {
    require_resident(model, method);
    UpdateConfig cfg;
    cfg.method = method;
    // The step stops before its update (its own CUDA graph, StepMode::gradients) for this call only.
    struct Restore {
      bool& flag;
      ~Restore() { flag = true; }
    } restore{update_in_step_};
    update_in_step_ = false;
    const StepResult r = resident_step(model, x, y, &cfg);
    if (nccl_) return r;
    for (auto& [p, d] : params_) {
      Param* h = d->host;
      h->grad.resize(h->value.size());
      SAT_CUDA_CHECK(cudaMemcpy(h->grad.data(), d->grad.get(), h->numel() * sizeof(float), cudaMemcpyDeviceToHost));
    }
    statistics_to_host();
    return r;
  }

  void apply_update(Model& model, const UpdateConfig& cfg) override {
    require_resident(model, cfg.method);
    if (!nccl_) {
      for (auto& [p, d] : params_) {
        const Param* h = d->host;
        if (h->grad.size() != h->value.size()) throw Error("backend 'cuda': no gradient of " + h->name + " to apply");
        SAT_CUDA_CHECK(cudaMemcpyAsync(d->grad.get(), h->grad.data(), h->numel() * sizeof(float),
                                       cudaMemcpyHostToDevice, stream_));
      }
      for (auto& [p, d] : fixed_) {
        SAT_CUDA_CHECK(cudaMemcpyAsync(d->get(), p->value.data(), p->numel() * sizeof(float), cudaMemcpyHostToDevice,
                                       stream_));
      }
    }
    stage_hyper(cfg);
    update_device();
    const int64_t n = static_cast<int64_t>(param_list_.size());
    char* flags = h_result_.ensure(4 * n);
    SAT_CUDA_CHECK(cudaMemcpyAsync(flags, s_flags_.get(), n * sizeof(int), cudaMemcpyDeviceToHost, stream_));
    SAT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    check_update_flags(flags, n);
  }

  // The gradients summed on the GPUs through NCCL, where this build has it; otherwise the host path
  // (the training loop then says so).
  std::string reduce_on_device(Communicator& comm) override {
    bucket_settings_ = bucket_settings_from_env();
    if (!nccl_built()) {
      if (comm.rank() == 0) {
        std::fprintf(stderr, "backend 'cuda': NCCL %s: the gradients are summed through the host over MPI\n",
                     nccl_description().c_str());
      }
      return "";
    }
    nccl_ = std::make_unique<NcclReducer>(comm, stream_);
    const BucketSettings& b = bucket_settings_;
    char mib[64];
    std::snprintf(mib, sizeof mib, "%.4g", static_cast<double>(b.bytes) / 1048576.0);
    return nccl_description() + " on the GPUs' buffers, " +
           (b.overlap ? std::string("in buckets of ") + mib + " MiB overlapped with BP" : std::string("after BP"));
  }

  // With the overlap (SAT_DP_OVERLAP, on by default), the step that follows runs eagerly (run_step):
  // BP's enqueueing reports each finished gradient to the buckets, which start NCCL's sums on its
  // own stream while the GPU is still working through BP.
  void begin_gradient_reduction(float weight, const std::string& what) override {
    if (!nccl_ || !bucket_settings_.overlap || !model_) return;
    if (!buckets_) {
      std::vector<GradientBuckets::Gradient> grads;
      for (const Param* p : backward_param_order(*model_)) {
        if (auto it = params_.find(p); it != params_.end()) grads.push_back({p, it->second->grad.get(), p->numel()});
      }
      buckets_ = std::make_unique<GradientBuckets>(grads, bucket_settings_, *nccl_);
    }
    buckets_->begin(weight, what);
    links_.grad_ready = [this](const Param* p) { buckets_->ready(p); };
  }

  void reduce_gradients(float weight, const std::string& what) override {
    if (!nccl_) {
      Backend::reduce_gradients(weight, what);
      return;
    }
    // In the model's parameter order: every rank issues the same operations in the same order.
    std::vector<NcclReducer::Buffer> grads, stats;
    for (const Param* p : param_list_) {
      if (auto it = params_.find(p); it != params_.end()) grads.push_back({it->second->grad.get(), p->numel()});
      else if (auto f = fixed_.find(p); f != fixed_.end()) stats.push_back({f->second->get(), p->numel()});
    }
    if (links_.grad_ready) {
      links_.grad_ready = nullptr;
      buckets_->finish();
      last_buckets_ = buckets_->stats();
    } else {
      nccl_->weighted_sum(grads, weight, what);
      last_buckets_ = {};
    }
    nccl_->broadcast_from_rank0(stats, what + " (running statistics from rank 0)");
  }

  BucketStats bucket_stats() const { return last_buckets_; }

  std::vector<float> gemm(GemmMode mode, NM nm, const std::vector<float>& a, Shape a_shape, const std::vector<float>& b,
                          Shape b_shape, Shape* c_shape) override;

  // The explicit sync point of the resident step: values, momenta and BatchNorm's running
  // statistics back into the host model, whose weight forms are then selected again by the N:M
  // core from those values (the same masks as the GPU's: CudaKernels.PregenMatchesCpuExactly).
  void sync(Model& model) override {
    if (!resident_ || &model != model_) return;
    SAT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (auto& [p, d] : params_) {
      Param* h = d->host;
      SAT_CUDA_CHECK(cudaMemcpy(h->value.data(), d->value.get(), h->numel() * sizeof(float), cudaMemcpyDeviceToHost));
      h->momentum.resize(h->value.size());
      SAT_CUDA_CHECK(cudaMemcpy(h->momentum.data(), d->momentum.get(), h->numel() * sizeof(float),
                                cudaMemcpyDeviceToHost));
    }
    statistics_to_host();
    for (SparseWeight* sw : model.sparse_weights()) sw->regenerate(method_);
  }

  // ProductRouter: the products of the weight layers, on host feature-major FP32 arrays.
  void ff(const SparseWeight& w, Method method, const float* xt, int64_t cols, float* yt) override {
    DevSparse& d = forms_of(w, method);
    dy_key_ = {};
    const int64_t ldx = padded_len(w.k);
    {
      const StepProfile::Scope t(prof_, StepProfile::to_device);
      upload(s_f32_in_, xt, w.k * cols);
      fm_f32_to_rm_bf16(s_f32_in_.get(), w.k, cols, s_x_.ensure(cols * ldx), ldx);
    }
    ff_from_staged(w, method, d, ldx, cols, yt);
  }

  void bp(const SparseWeight& w, Method method, const float* dyt, int64_t cols, float* dxt) override {
    DevSparse& d = forms_of(w, method);
    const int64_t ldy = stage_dy(w, dyt, cols);
    dy_key_ = {};
    const float* out = bp_from_staged(w, method, d, ldy, cols);
    const StepProfile::Scope t(prof_, StepProfile::to_host);
    download_fm(out, cols, w.k, dxt);
  }

  void wu(const SparseWeight& w, const float* dyt, const float* xt, int64_t cols) override {
    DevSparse& d = forms_of(w, method_);
    const int64_t ldy = stage_dy(w, dyt, cols);
    const int64_t ldx = padded_len(w.k);
    {
      const StepProfile::Scope t(prof_, StepProfile::to_device);
      upload(s_f32_in_, xt, w.k * cols);
      fm_f32_to_rm_bf16(s_f32_in_.get(), w.k, cols, s_x_.ensure(cols * ldx), ldx);
    }
    wu_from_staged(w, d, ldy, ldx, cols);
    dy_key_ = {dyt, w.cout, cols};   // BP of the same layer follows with the same dY
  }

  // Whole convolutions: the raw images go up, the lowering runs on the GPU (im2col.cu), so the
  // k*k times larger lowered matrix never crosses PCIe; BP's result comes back as the image
  // gradient (col2im on the GPU).
  bool conv_ff(const SparseWeight& w, Method method, const ConvGeometry& g, const float* x, int64_t nb,
               float* yt) override {
    DevSparse& d = forms_of(w, method);
    dy_key_ = {};
    const int64_t cols = nb * g.oh * g.ow, ldx = padded_len(w.k);
    stage_lowered(g, x, nb, ldx);
    ff_from_staged(w, method, d, ldx, cols, yt);
    return true;
  }

  bool conv_backward(const SparseWeight& w, Method method, const ConvGeometry& g, const float* x, int64_t nb,
                     const float* dyt, float* dx) override {
    DevSparse& d = forms_of(w, method);
    const int64_t cols = nb * g.oh * g.ow, ldx = padded_len(w.k);
    const int64_t ldy = stage_dy(w, dyt, cols);
    dy_key_ = {};
    stage_lowered(g, x, nb, ldx);
    wu_from_staged(w, d, ldy, ldx, cols);
    if (!dx) return true;
    const float* dcol = bp_from_staged(w, method, d, ldy, cols);
    const StepProfile::Scope t(prof_, StepProfile::to_host);
    const int64_t n = nb * g.cin * g.h * g.w;
    float* dimg = s_f32_t_.ensure(n);
    col2im_f32(dcol, w.k, g, nb, dimg);
    SAT_CUDA_CHECK(cudaMemcpy(dx, dimg, static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToHost));
    return true;
  }

 private:
  // One step of the GPU-resident path (cfg null: an evaluation). The batch goes up from pinned
  // memory, the step runs on stream_ without a host round trip, and one small copy brings the
  // loss, the correct count and the update's non-finite flags back.
  StepResult resident_step(Model& model, const Tensor& x, const std::vector<int>& labels, const UpdateConfig* cfg) {
    if (x.dtype() != DType::bf16) throw Error("backend 'cuda' computes in BF16 only (Numerics::fp32 is set)");
    const int64_t b = x.rank() > 0 ? x.dim(0) : 0;
    Shape want = model.input;
    want.insert(want.begin(), b);
    if (x.shape() != want) throw Error("backend 'cuda': expected input " + shape_str(want) + ", got " + shape_str(x.shape()));
    if (static_cast<int64_t>(labels.size()) != b) {
      throw Error("loss: " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(b));
    }
    for (int v : labels) {
      if (v < 0 || v >= model.classes) {
        throw Error("loss: label " + std::to_string(v) + " out of range [0, " + std::to_string(model.classes) + ")");
      }
    }
    ResidentPlan& plan = plan_for(model, b);
    prof_.set_resident(true);
    std::optional<StepProfile::Scope> whole;   // training steps only
    if (cfg) whole.emplace(prof_, StepProfile::kPhases);
    {
      const StepProfile::Scope t(prof_, StepProfile::to_device);
      if (NextBatch* n = prefetched(x, labels)) {   // already on the device: a copy there
        SAT_CUDA_CHECK(cudaStreamWaitEvent(stream_, n->ready, 0));
        SAT_CUDA_CHECK(cudaMemcpyAsync(plan.input(), n->dx.get(), n->elems * sizeof(uint16_t), cudaMemcpyDeviceToDevice,
                                       stream_));
        SAT_CUDA_CHECK(cudaMemcpyAsync(plan.labels(), n->dy.get(), b * sizeof(int), cudaMemcpyDeviceToDevice, stream_));
        n->full = false;
        ++prefetch_hits_;
      } else {
        uint16_t* hx = h_in_.ensure(plan.input_elems());
        std::memcpy(hx, x.bf16_data(), plan.input_elems() * sizeof(uint16_t));
        int* hy = h_labels_.ensure(b);
        std::memcpy(hy, labels.data(), b * sizeof(int));
        SAT_CUDA_CHECK(cudaMemcpyAsync(plan.input(), hx, plan.input_elems() * sizeof(uint16_t), cudaMemcpyHostToDevice, stream_));
        SAT_CUDA_CHECK(cudaMemcpyAsync(plan.labels(), hy, b * sizeof(int), cudaMemcpyHostToDevice, stream_));
      }
    }
    if (cfg) stage_hyper(*cfg);
    run_step(plan, cfg);
    const int nflags = cfg && update_in_step_ ? static_cast<int>(param_list_.size()) : 0;
    // result: [loss (double)] [correct (int)] [flags (int) ...]
    char* res = h_result_.ensure(16 + 4 * static_cast<int64_t>(nflags));
    SAT_CUDA_CHECK(cudaMemcpyAsync(res, plan.loss(), sizeof(double), cudaMemcpyDeviceToHost, stream_));
    SAT_CUDA_CHECK(cudaMemcpyAsync(res + 8, plan.correct(), sizeof(int), cudaMemcpyDeviceToHost, stream_));
    if (nflags) SAT_CUDA_CHECK(cudaMemcpyAsync(res + 16, s_flags_.get(), nflags * sizeof(int), cudaMemcpyDeviceToHost, stream_));
    {
      const StepProfile::Scope t(prof_, StepProfile::to_host);
      SAT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    double loss = 0;
    StepResult r;
    std::memcpy(&loss, res, sizeof(double));
    std::memcpy(&r.correct, res + 8, sizeof(int));
    r.loss = static_cast<float>(loss);
    check_update_flags(res + 16, nflags);
    return r;
  }

  // The update's non-finite flags, one int per parameter of param_list_, as copied to the host.
  void check_update_flags(const char* flags, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) {
      int bad = 0;
      std::memcpy(&bad, flags + 4 * i, sizeof(int));
      if (bad) {
        throw Error("training diverged: parameter " + param_list_[i]->name +
                    " is not finite after the update (lower the learning rate)");
      }
    }
  }

  // BatchNorm's running statistics (the non-trainable parameters) into the host model.
  void statistics_to_host() {
    for (auto& [p, d] : fixed_) {
      Param* h = const_cast<Param*>(p);
      SAT_CUDA_CHECK(cudaMemcpy(h->value.data(), d->get(), h->numel() * sizeof(float), cudaMemcpyDeviceToHost));
    }
  }

  void require_resident(Model& model, Method method) {
    mirror(model, method, false);
    if (!resident_) {
      throw Error("backend 'cuda' splits its step for data-parallel training only where the whole step runs on the GPU "
                  "(not under SAT_CUDA_RESIDENT=0)");
    }
  }

  // The prefetched slot holding exactly this batch, if any.
  NextBatch* prefetched(const Tensor& x, const std::vector<int>& labels) {
    for (NextBatch& n : next_) {
      if (n.full && n.elems == x.numel() && n.batch == static_cast<int64_t>(labels.size()) &&
          std::memcmp(n.hx.get(), x.bf16_data(), n.elems * sizeof(uint16_t)) == 0 &&
          std::memcmp(n.hy.get(), labels.data(), n.batch * sizeof(int)) == 0) {
        return &n;
      }
    }
    return nullptr;
  }

  // The device work of one resident step, between the batch's upload and the result's copy back:
  // the gradients' reset, FF, loss, BP and WU, the update with pre-generation. Allocates nothing,
  // copies nothing to or from the host, waits for nothing: it can be captured as a CUDA graph.
  void enqueue_step(ResidentPlan& plan, const UpdateConfig* cfg) {
    if (cfg) {
      for (auto& [p, d] : params_) SAT_CUDA_CHECK(cudaMemsetAsync(d->grad.get(), 0, d->host->numel() * sizeof(float), stream_));
    }
    {
      const StepProfile::Scope t(prof_, StepProfile::products);
      plan.forward(cfg != nullptr);
      plan.loss_and_grad(cfg != nullptr);
      if (cfg) plan.backward();
    }
    if (cfg && update_in_step_) {
      const StepProfile::Scope t(prof_, StepProfile::update);
      update_device();
    }
  }

  // Runs enqueue_step as a CUDA graph: the first step of a plan (per batch size, training or
  // evaluation) runs eagerly, which loads the kernels' modules and lets cuBLAS pick its algorithms;
  // the second is captured and instantiated; every later one replays it with one launch. The step's
  // buffers are the plan's and the mirror's, fixed until prepare() drops both, and the update reads
  // its hyperparameters from device memory (stage_hyper), so a replay is the same step for any
  // learning rate. A capture that fails leaves that plan eager, with one line on stderr.
  void run_step(ResidentPlan& plan, const UpdateConfig* cfg) {
    // A step whose BP starts NCCL's sums runs eagerly: a replayed graph would not tell the buckets
    // when each gradient is done.
    if (!graphs_on_ || links_.grad_ready) {
      enqueue_step(plan, cfg);
      return;
    }
    const StepMode mode = !cfg ? StepMode::evaluation : update_in_step_ ? StepMode::training : StepMode::gradients;
    StepGraph& g = graphs_[{plan.batch(), mode}];
    if (g.exec) {
      SAT_CUDA_CHECK(cudaGraphLaunch(g.exec, stream_));
      return;
    }
    if (g.eager_steps < 1 || g.failed) {
      ++g.eager_steps;
      enqueue_step(plan, cfg);
      return;
    }
    SAT_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
    cudaGraph_t graph = nullptr;
    std::string why;
    try {
      enqueue_step(plan, cfg);
    } catch (const Error& e) {
      why = e.what();
    }
    cudaError_t err = cudaStreamEndCapture(stream_, &graph);
    if (why.empty() && err != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorName(err);
    if (why.empty()) {
      err = cudaGraphInstantiate(&g.exec, graph, 0);
      if (err != cudaSuccess) {
        g.exec = nullptr;
        why = std::string("cudaGraphInstantiate: ") + cudaGetErrorName(err);
      }
    }
    if (graph) cudaGraphDestroy(graph);
    if (!why.empty()) {
      cudaGetLastError();   // a failed capture leaves its error behind; the eager step below reports its own
      g.failed = true;
      std::fprintf(stderr, "backend 'cuda': the step could not be captured as a CUDA graph (%s); it runs without one\n",
                   why.c_str());
      enqueue_step(plan, cfg);
      return;
    }
    SAT_CUDA_CHECK(cudaGraphLaunch(g.exec, stream_));
  }

  // This step's hyperparameters of every parameter, into device memory before the step's work
  // (which reads them there: a replayed graph takes each step's learning rate).
  void stage_hyper(const UpdateConfig& cfg) {
    const int64_t n = static_cast<int64_t>(param_list_.size());
    SgdHyper* hh = h_hyper_.ensure(n);
    for (int64_t i = 0; i < n; ++i) {
      const Param* p = param_list_[i];
      hh[i] = SgdHyper{static_cast<float>(cfg.lr), static_cast<float>(cfg.momentum),
                       p->decay ? static_cast<float>(cfg.weight_decay) : 0.0f, static_cast<float>(cfg.srste_lambda)};
    }
    SAT_CUDA_CHECK(cudaMemcpyAsync(s_hyper_.ensure(n), hh, n * sizeof(SgdHyper), cudaMemcpyHostToDevice, stream_));
    update_method_ = cfg.method;
  }

  ResidentPlan& plan_for(Model& model, int64_t batch) {
    auto it = plans_.find(batch);
    if (it != plans_.end()) return *it->second;
    // A plan per batch size (the training batch, an epoch's last partial batch, the evaluation
    // batch): at most a few, each allocated once.
    auto p = std::make_unique<ResidentPlan>(model, batch, method_, links_, *blas_, stream_);
    return *plans_.emplace(batch, std::move(p)).first->second;
  }

  // The update of the resident path: every gradient is on the GPU already, nothing comes back. The
  // hyperparameters are the ones stage_hyper put in device memory.
  void update_device() {
    int* flags = s_flags_.ensure(static_cast<int64_t>(param_list_.size()));
    const SgdHyper* hyper = s_hyper_.get();
    SAT_CUDA_CHECK(cudaMemsetAsync(flags, 0, param_list_.size() * sizeof(int), stream_));
    for (size_t i = 0; i < param_list_.size(); ++i) {
      auto it = params_.find(param_list_[i]);
      if (it == params_.end()) {
        auto f = fixed_.find(param_list_[i]);
        if (f != fixed_.end()) flag_nonfinite(f->second->get(), param_list_[i]->numel(), flags + i, stream_);
        continue;
      }
      DevParam& d = *it->second;
      const uint8_t* mask = update_method_ != Method::dense ? d.mask_f : nullptr;
      if (d.sparse) {
        const SparseWeight& sw = *d.sparse->host;
        update_pregen(d.value.get(), SgdArgs{d.momentum.get(), d.grad.get(), mask, SgdHyper{}, flags + i, hyper + i},
                      sw.cout, sw.k, sw.nm, pregen_out(*d.sparse), stream_);
      } else {
        sgd_update(d.value.get(), d.momentum.get(), d.grad.get(), mask, d.host->numel(), SgdHyper{}, flags + i, stream_,
                   hyper + i);
      }
    }
  }

  // The products on operands already on the GPU (s_x_: BF16 X rows, s_dy_: BF16 dY rows). Which
  // operand each reads under which method follows cpu/weight_ops.hpp.
  void ff_from_staged(const SparseWeight& w, Method method, DevSparse& d, int64_t ldx, int64_t cols, float* yt) {
    float* out = s_f32_out_.ensure(cols * w.cout);
    {
      const StepProfile::Scope t(prof_, StepProfile::products);
      if (w.ff_sparse(method)) spmm(d.fwd, s_x_.get(), ldx, cols, out, false, w.cout);
      else blas_->ff(d.dense.get(), w.cout, w.k, s_x_.get(), ldx, cols, out, false, w.cout);
    }
    const StepProfile::Scope t(prof_, StepProfile::to_host);
    download_fm(out, cols, w.cout, yt);
  }
  // dX rows [cols][k] FP32 on the GPU (s_f32_out_).
  const float* bp_from_staged(const SparseWeight& w, Method method, DevSparse& d, int64_t ldy, int64_t cols) {
    float* out = s_f32_out_.ensure(cols * w.k);
    const StepProfile::Scope t(prof_, StepProfile::products);
    if (w.bp_sparse(method)) spmm(d.bwd, s_dy_.get(), ldy, cols, out, false, w.k);
    else blas_->bp(d.dense.get(), w.cout, w.k, s_dy_.get(), ldy, cols, out, false, w.k);
    return out;
  }
  void wu_from_staged(const SparseWeight& w, DevSparse& d, int64_t ldy, int64_t ldx, int64_t cols) {
    const StepProfile::Scope t(prof_, StepProfile::products);
    blas_->wu(s_dy_.get(), ldy, s_x_.get(), ldx, cols, w.cout, w.k, d.param->grad.get(), false, 1.0f);
  }
  // Raw images [nb][cin][h][w] up, lowered on the GPU into s_x_ (BF16 rows of ldx).
  void stage_lowered(const ConvGeometry& g, const float* x, int64_t nb, int64_t ldx) {
    const StepProfile::Scope t(prof_, StepProfile::to_device);
    upload(s_f32_in_, x, nb * g.cin * g.h * g.w);
    im2col_bf16(s_f32_in_.get(), g, nb, s_x_.ensure(nb * g.oh * g.ow * ldx), ldx);
  }

  struct DyKey {
    const float* ptr = nullptr;
    int64_t rows = 0, cols = 0;
    bool operator==(const DyKey&) const = default;
  };

  // dY^T [cout][cols] (host) -> BF16 [cols][padded cout] in s_dy_, unless it is already there.
  int64_t stage_dy(const SparseWeight& w, const float* dyt, int64_t cols) {
    const int64_t ldy = padded_len(w.cout);
    const DyKey key{dyt, w.cout, cols};
    if (!(key == dy_key_)) {
      const StepProfile::Scope t(prof_, StepProfile::to_device);
      upload(s_f32_in_, dyt, w.cout * cols);
      fm_f32_to_rm_bf16(s_f32_in_.get(), w.cout, cols, s_dy_.ensure(cols * ldy), ldy);
    }
    return ldy;
  }

  // out [cols][feat] (device) -> host [feat][cols]
  void download_fm(const float* out, int64_t cols, int64_t feat, float* host) {
    float* t = s_f32_t_.ensure(cols * feat);
    rm_f32_to_fm_f32(out, cols, feat, feat, t);
    SAT_CUDA_CHECK(cudaMemcpy(host, t, static_cast<size_t>(cols * feat) * sizeof(float), cudaMemcpyDeviceToHost));
  }

  DevSparse& forms_of(const SparseWeight& w, Method method) {
    auto it = sparse_.find(&w);
    if (it == sparse_.end()) {
      throw Error("backend 'cuda': weight " + (w.weight ? w.weight->name : std::string("?")) +
                  " has no device copy (the model was not prepared on this backend)");
    }
    if (method != method_) {
      throw Error(std::string("backend 'cuda': the weight forms were generated for method ") + method_name(method_) +
                  ", not " + method_name(method));
    }
    return *it->second;
  }

  // Builds (or refreshes with `force`) the device mirror of `model` for `method`.
  void mirror(Model& model, Method method, bool force) {
    std::vector<Param*> ps = model.params();
    const bool same = &model == model_ && ps == param_list_;
    if (same && !force && method == method_) return;
    SAT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    graphs_.clear();
    plans_.clear();
    links_.grad_ready = nullptr;
    buckets_.reset();   // over the gradient buffers of the mirror being replaced
    if (!same || force) {
      params_.clear();
      sparse_.clear();
      fixed_.clear();
      const char* env = std::getenv("SAT_CUDA_RESIDENT");
      resident_ = !(env && env[0] == '0') && resident_unsupported(model).empty();
      for (Param* p : ps) {
        if (!p->trainable) {
          auto d = std::make_unique<DevArray<float>>();
          upload(*d, p->value.data(), p->numel());
          fixed_[p] = std::move(d);
          continue;
        }
        auto d = std::make_unique<DevParam>();
        d->host = p;
        upload(d->value, p->value.data(), p->numel());
        if (static_cast<int64_t>(p->momentum.size()) == p->numel()) {
          upload(d->momentum, p->momentum.data(), p->numel());
        } else {
          SAT_CUDA_CHECK(cudaMemset(d->momentum.ensure(p->numel()), 0, p->numel() * sizeof(float)));
        }
        d->grad.ensure(p->numel());
        params_[p] = std::move(d);
      }
      for (SparseWeight* sw : model.sparse_weights()) {
        auto it = params_.find(sw->weight);
        if (it == params_.end()) throw Error("backend 'cuda': sparse weight without a trainable parameter");
        auto d = std::make_unique<DevSparse>();
        d->host = sw;
        d->param = it->second.get();
        d->param->grad_on_device = true;
        d->param->sparse = d.get();
        sparse_[sw] = std::move(d);
      }
      model_ = &model;
      param_list_ = ps;
    }
    method_ = method;
    for (auto& [sw, d] : sparse_) {
      free_devnm(d->fwd);
      free_devnm(d->bwd);
      d->has_fwd = sw->ff_sparse(method);
      d->has_bwd = sw->bp_sparse(method);
      d->has_dense = !d->has_fwd || !d->has_bwd;
      d->dense_pruned = d->has_dense && d->has_fwd;   // srste: BP reads the dense W_F
      if (d->has_fwd) {
        d->fwd = alloc_devnm(sw->cout, sw->k, sw->nm, Axis::K, true);
        d->mask_f.ensure(sw->cout * sw->k);
      }
      if (d->has_bwd) d->bwd = alloc_devnm(sw->cout, sw->k, sw->nm, Axis::Cout, true);
      if (d->has_dense) d->dense.ensure(sw->cout * sw->k);
      d->param->mask_f = d->has_fwd ? d->mask_f.get() : nullptr;
    }
    regenerate_all();
  }

  static PregenOut pregen_out(DevSparse& d) {
    PregenOut out;
    out.fwd = d.has_fwd ? &d.fwd : nullptr;
    out.bwd = d.has_bwd ? &d.bwd : nullptr;
    out.mask_f = d.has_fwd ? d.mask_f.get() : nullptr;
    out.dense = d.has_dense ? d.dense.get() : nullptr;
    out.dense_pruned = d.dense_pruned;
    return out;
  }

  void regenerate_all() {
    for (auto& [sw, d] : sparse_) pregen(d->param->value.get(), sw->cout, sw->k, sw->nm, pregen_out(*d));
  }

  StepResult loss(const Tensor& logits, const std::vector<int>& labels, Tensor* dlogits) {
    if (logits.rank() != 2) throw Error("loss: logits must be [batch, classes], got " + shape_str(logits.shape()));
    const int64_t b = logits.dim(0), c = logits.dim(1);
    if (static_cast<int64_t>(labels.size()) != b) {
      throw Error("loss: " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(b));
    }
    for (int y : labels) {
      if (y < 0 || y >= c) throw Error("loss: label " + std::to_string(y) + " out of range [0, " + std::to_string(c) + ")");
    }
    const std::vector<float> z = logits.to_f32();
    upload(s_f32_in_, z.data(), b * c);
    upload(s_labels_, labels.data(), b);
    float* dz = dlogits ? s_f32_out_.ensure(b * c) : nullptr;
    softmax_xent(s_f32_in_.get(), s_labels_.get(), b, c, dz, s_loss_.ensure(b), s_correct_.ensure(b));
    std::vector<double> row_loss(b);
    std::vector<int> row_correct(b);
    SAT_CUDA_CHECK(cudaMemcpy(row_loss.data(), s_loss_.get(), b * sizeof(double), cudaMemcpyDeviceToHost));
    SAT_CUDA_CHECK(cudaMemcpy(row_correct.data(), s_correct_.get(), b * sizeof(int), cudaMemcpyDeviceToHost));
    StepResult r;
    double sum = 0;
    for (int64_t i = 0; i < b; ++i) {
      sum += row_loss[i];
      r.correct += row_correct[i];
    }
    r.loss = static_cast<float>(sum / static_cast<double>(b));
    if (dlogits) {
      std::vector<float> g(b * c);
      SAT_CUDA_CHECK(cudaMemcpy(g.data(), dz, g.size() * sizeof(float), cudaMemcpyDeviceToHost));
      *dlogits = Tensor::from_f32(logits.shape(), g);
    }
    return r;
  }

  // The update of every parameter; a sparse weight's is fused with the pre-generation of its forms
  // (update_pregen: one pass over its masters instead of two).
  void update(Model& model, const UpdateConfig& cfg) {
    const float lr = static_cast<float>(cfg.lr), mu = static_cast<float>(cfg.momentum);
    const float lambda = static_cast<float>(cfg.srste_lambda);
    int* flags = s_flags_.ensure(static_cast<int64_t>(param_list_.size()));
    SAT_CUDA_CHECK(cudaMemsetAsync(flags, 0, param_list_.size() * sizeof(int)));
    for (size_t i = 0; i < param_list_.size(); ++i) {
      auto it = params_.find(param_list_[i]);
      if (it == params_.end()) continue;
      DevParam& d = *it->second;
      if (!d.grad_on_device) upload(d.grad, d.host->grad.data(), d.host->numel());
      const SgdHyper h{lr, mu, d.host->decay ? static_cast<float>(cfg.weight_decay) : 0.0f, lambda};
      const uint8_t* mask = cfg.method != Method::dense ? d.mask_f : nullptr;
      if (d.sparse) {
        const SparseWeight& sw = *d.sparse->host;
        update_pregen(d.value.get(), SgdArgs{d.momentum.get(), d.grad.get(), mask, h, flags + i}, sw.cout, sw.k,
                      sw.nm, pregen_out(*d.sparse));
      } else {
        sgd_update(d.value.get(), d.momentum.get(), d.grad.get(), mask, d.host->numel(), h, flags + i);
      }
    }
    std::vector<int> bad(param_list_.size());
    SAT_CUDA_CHECK(cudaMemcpy(bad.data(), flags, bad.size() * sizeof(int), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < param_list_.size(); ++i) {
      bool nonfinite = bad[i] != 0;
      if (!param_list_[i]->trainable) {
        for (float v : param_list_[i]->value) nonfinite |= !std::isfinite(v);
      }
      if (nonfinite) {
        throw Error("training diverged: parameter " + param_list_[i]->name +
                    " is not finite after the update (lower the learning rate)");
      }
    }
    for (auto& [p, d] : params_) {
      SAT_CUDA_CHECK(cudaMemcpy(d->host->value.data(), d->value.get(), d->host->numel() * sizeof(float),
                                cudaMemcpyDeviceToHost));
      d->host->momentum.resize(d->host->value.size());
      SAT_CUDA_CHECK(cudaMemcpy(d->host->momentum.data(), d->momentum.get(), d->host->numel() * sizeof(float),
                                cudaMemcpyDeviceToHost));
    }
    (void)model;
  }

  std::string device_;
  std::unique_ptr<Blas> blas_;
  StepProfile prof_;   // SAT_CUDA_PROFILE=1
  Model* model_ = nullptr;
  std::vector<Param*> param_list_;
  Method method_ = Method::bdwp;
  std::unordered_map<const Param*, std::unique_ptr<DevParam>> params_;
  std::unordered_map<const SparseWeight*, std::unique_ptr<DevSparse>> sparse_;
  DyKey dy_key_;
  cudaStream_t stream_ = nullptr;
  bool resident_ = false;   // every layer has a GPU-resident implementation (SAT_CUDA_RESIDENT=0: off)
  ResidentLinks links_;
  std::unordered_map<int64_t, std::unique_ptr<ResidentPlan>> plans_;
  // The resident step as CUDA graphs, per (batch size, StepMode): run_step. Cleared with plans_.
  enum class StepMode { evaluation, training, gradients };   // gradients: forward_backward's, no update
  std::map<std::pair<int64_t, StepMode>, StepGraph> graphs_;
  bool update_in_step_ = true;   // false: forward_backward's step, which stops before the update
  std::unique_ptr<NcclReducer> nccl_;   // data-parallel training's gradients summed on the GPU
  BucketSettings bucket_settings_;
  std::unique_ptr<GradientBuckets> buckets_;   // over nccl_, built at the first overlapped step
  BucketStats last_buckets_;
  NextBatch next_[2];
  int next_turn_ = 0;
  int64_t prefetch_hits_ = 0;   // steps whose batch was already on the device
  cudaStream_t copy_stream_ = nullptr;
  bool graphs_on_ = true;   // SAT_CUDA_GRAPH=0, or SAT_CUDA_PROFILE's synchronised timing: off
  Method update_method_ = Method::bdwp;   // the method of the staged update (its SR-STE mask)
  Pinned<SgdHyper> h_hyper_;
  DevArray<SgdHyper> s_hyper_;
  std::unordered_map<const Param*, std::unique_ptr<DevArray<float>>> fixed_;   // non-trainable (BN statistics)
  Pinned<uint16_t> h_in_;
  Pinned<int> h_labels_;
  Pinned<char> h_result_;
  DevArray<float> s_f32_in_, s_f32_out_, s_f32_t_;
  DevArray<uint16_t> s_x_, s_dy_;
  DevArray<int> s_labels_, s_correct_, s_flags_;
  DevArray<double> s_loss_;
};

// --- sat op gemm on the GPU: the same contract and checks as cpu_gemm (host/src/cpu_gemm_op.cpp).
std::vector<float> CudaBackend::gemm(GemmMode mode, NM nm, const std::vector<float>& a, Shape a_shape,
                                     const std::vector<float>& b, Shape b_shape, Shape* c_shape) {
  // The shared checks of `sat op gemm` (make_gemm_problem): every backend accepts and rejects the
  // same inputs with the same messages.
  const std::unique_ptr<GemmProblem> pr = make_gemm_problem(mode, nm, a, a_shape, b, b_shape);
  const std::string what = std::string("gemm ") + gemm_mode_name(mode);
  const int64_t batch = pr->batch, cout = pr->cout, k = pr->k;
  if (mode == GemmMode::wu) nm = NM{1, 1};
  if (numerics() != Numerics::bf16) throw Error(what + ": backend 'cuda' computes in BF16 only (Numerics::fp32 is set)");

  DevArray<float> w32, out;
  DevArray<uint16_t> a16, b16;
  if (mode == GemmMode::wu) {
    const int64_t ldy = padded_len(cout), ldx = padded_len(k);
    upload(w32, a.data(), batch * cout);
    rm_f32_to_rm_bf16(w32.get(), batch, cout, a16.ensure(batch * ldy), ldy);
    DevArray<float> x32;
    upload(x32, b.data(), batch * k);
    rm_f32_to_rm_bf16(x32.get(), batch, k, b16.ensure(batch * ldx), ldx);
    blas_->wu(a16.get(), ldy, b16.get(), ldx, batch, cout, k, out.ensure(cout * k), false, 0.0f);
    std::vector<float> c(cout * k);
    SAT_CUDA_CHECK(cudaMemcpy(c.data(), out.get(), c.size() * sizeof(float), cudaMemcpyDeviceToHost));
    *c_shape = {cout, k};
    return c;
  }
  const bool ff = mode == GemmMode::ff;
  const int64_t in_len = ff ? k : cout, out_len = ff ? cout : k;
  const int64_t ld = padded_len(in_len);
  DevArray<float> a32;
  upload(a32, a.data(), batch * in_len);
  rm_f32_to_rm_bf16(a32.get(), batch, in_len, a16.ensure(batch * ld), ld);
  upload(w32, b.data(), cout * k);
  float* o = out.ensure(batch * out_len);
  if (nm.dense()) {
    PregenOut po;
    po.dense = b16.ensure(cout * k);
    pregen(w32.get(), cout, k, nm, po);
    if (ff) blas_->ff(b16.get(), cout, k, a16.get(), ld, batch, o, false, cout);
    else blas_->bp(b16.get(), cout, k, a16.get(), ld, batch, o, false, k);
  } else {
    DevNM form = alloc_devnm(cout, k, nm, ff ? Axis::K : Axis::Cout, true);
    try {
      PregenOut po;
      (ff ? po.fwd : po.bwd) = &form;
      pregen(w32.get(), cout, k, nm, po);
      spmm(form, a16.get(), ld, batch, o, false, out_len);
      SAT_CUDA_CHECK(cudaDeviceSynchronize());
    } catch (...) {
      free_devnm(form);
      throw;
    }
    free_devnm(form);
  }
  std::vector<float> c(batch * out_len);
  SAT_CUDA_CHECK(cudaMemcpy(c.data(), o, c.size() * sizeof(float), cudaMemcpyDeviceToHost));
  *c_shape = {batch, out_len};
  return c;
}

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace

cuda::BucketStats cuda::last_bucket_stats(const Backend& cuda_backend) {
  const auto* b = dynamic_cast<const CudaBackend*>(&cuda_backend);
  if (!b) throw Error("last_bucket_stats: backend '" + cuda_backend.name() + "' is not cuda");
  return b->bucket_stats();
}

}  // namespace sat

SAT_BACKEND(cuda, &sat::make_cuda_backend, "CUDA kernels on an NVIDIA GPU (N:M products on sparse tensor cores)")
