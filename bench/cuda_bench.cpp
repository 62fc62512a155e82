// CUDA benchmark: prints tables (never pass/fail) of the BDWP layer step on the GPU against cuBLAS
// dense BF16 on the same shapes, with the machine's own ceilings. Usage and the recorded figures:
// docs/performance.md ("CUDA on the H200"); design: docs/cuda.md.
//
//   cuda_bench [--quick | --large] [--pregen] [--reps N] [--model-step FILE] [--batch B]
//   cuda_bench --steps "models/resnet18.json models/mlp.json" --batches "128 512"
//   (--steps: the whole training step of each model, dense and BDWP, at each batch: ms and img/s)
//   (--pregen: only the pre-generation table; --large: only the large layers, then pre-generation;
//   --model-layers: only the models' own layer shapes at 2:8)
//   cuda_bench --lowering [--batch B]
//   cuda_bench --batchnorm [--batch B]
//   cuda_bench --data-parallel "models/resnet18.json models/vit_tiny.json" [--batch B]
//   (the data-parallel step on one rank: split, NCCL after BP, NCCL overlapped, beside train_step)
//   (BatchNorm2d forward and backward on ResNet-18's shapes: the hand-written kernels, ReLU fused
//   as the resident step runs them, beside cuDNN's where the build has it, and the rate of the
//   bytes they must move)
//   (the resident step's channels-last im2col and col2im on ResNet-18's convolutions, the fast
//   kernels beside the row kernels, with the bytes each moves against the copy rate)
//
// Per layer shape (Cout x K x P, P = batch x positions or tokens) and pass:
//   FF  Y[P][Cout]  = X[P][K] W^T     dense: cuBLAS; BDWP: N:M kernel over W_F (groups along K)
//   BP  dX[P][K]    = dY[P][Cout] W   dense: cuBLAS; BDWP: N:M kernel over W_B (groups along Cout)
//   WU  dW[Cout][K] = dY^T X          cuBLAS in both (BDWP keeps WU dense), FP32 result
// BF16 operands and results (WU: FP32), FP32 accumulation. Times are means of CUDA-event-timed
// repetitions after warm-up.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cudnn_bn.hpp"
#include "gradient_buckets.hpp"
#include "layer_ops.hpp"
#include "ops.hpp"
#include "resident.hpp"
#include "sat/backend.hpp"
#include "sat/distributed.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"

using namespace sat;
using namespace sat::cuda;

namespace {

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) throw Error(std::string(#x) + ": " + cudaGetErrorString(e_));       \
  } while (0)

int g_reps = 20;
bool g_only_auto = false;   // --large: only the kernel `automatic` picks

template <typename F>
double time_ms(F&& f, int reps = -1) {
  if (reps < 0) reps = g_reps;
  for (int i = 0; i < 3; ++i) f();
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  for (int i = 0; i < reps; ++i) f();
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  CK(cudaGetLastError());
  return ms / reps;
}

template <typename T>
struct Buf {
  T* p = nullptr;
  size_t n = 0;
  explicit Buf(size_t count) : n(count) { CK(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T))); }
  ~Buf() { cudaFree(p); }
  Buf(const Buf&) = delete;
};

// Fills BF16 with N(0,1)-ish values (host generated in chunks, copied).
void fill_bf16(uint16_t* d, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist;
  const size_t chunk = 1 << 22;
  std::vector<uint16_t> h(std::min(n, chunk));
  for (auto& x : h) x = f32_to_bf16_bits(dist(rng));
  for (size_t at = 0; at < n; at += chunk) {
    const size_t c = std::min(chunk, n - at);
    CK(cudaMemcpy(d + at, h.data(), c * 2, cudaMemcpyHostToDevice));
  }
}
void fill_f32(float* d, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> h(n);
  for (auto& x : h) x = dist(rng) * 0.05f;
  CK(cudaMemcpy(d, h.data(), n * 4, cudaMemcpyHostToDevice));
}

struct LayerShape {
  const char* name;
  int64_t cout, k, p;
};

double copy_rate() {
  const size_t bytes = size_t{2} << 30;
  Buf<char> a(bytes), b(bytes);
  CK(cudaMemset(a.p, 1, bytes));
  const double ms = time_ms([&] { CK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); }, 10);
  return 2.0 * bytes / ms / 1e6;
}

double ceilings(Blas& blas) {
  std::printf("## Ceilings measured on this GPU\n\n");
  const size_t bytes = size_t{2} << 30;
  Buf<char> a(bytes), b(bytes);
  CK(cudaMemset(a.p, 1, bytes));
  const double ms = time_ms([&] { CK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); }, 10);
  std::printf("- device-to-device copy of 2 GiB: %.3f ms, %.0f GB/s counting bytes read + written\n", ms,
              2.0 * bytes / ms / 1e6);
  const double copy_gbs = 2.0 * bytes / ms / 1e6;
  const int64_t n = 8192;
  Buf<uint16_t> x(n * n), w(n * n), y(n * n);
  fill_bf16(x.p, n * n, 1);
  fill_bf16(w.p, n * n, 2);
  const double g = time_ms([&] { blas.ff(w.p, n, n, x.p, n, n, y.p, true, n); }, 10);
  std::printf("- cuBLAS BF16 GEMM 8192^3 (random data, BF16 out, FP32 accumulate): %.3f ms, %.0f TFLOP/s\n\n", g,
              2.0 * n * n * n / g / 1e9);
  return copy_gbs;
}

void layer_table(Blas& blas, const std::vector<LayerShape>& shapes, const std::vector<NM>& settings) {
  std::printf("## Per-layer step: BDWP vs cuBLAS dense BF16\n\n");
  std::printf("FF/BP/WU/step in ms; TFLOP/s of the sparse FF (actual = kept multiply-adds, dense-eq = the dense "
              "product's FLOPs over this time); speed-up = dense step / BDWP step. Kernel: wgmma = Hopper's "
              "warpgroup sparse MMA (wgmma.mma_async.sp, TMA-fed), sp24 = warp-level mma.sp (2:4 sparse tensor cores), "
              "general = dense-tile expansion.\n\n");
  std::printf("| layer | Cout x K x P | N:M | kernel | FF ms | BP ms | WU ms | step ms | FF TFLOP/s actual / dense-eq | BP TFLOP/s dense-eq | step speed-up |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const LayerShape& s : shapes) {
    const int64_t ldk = padded_len(s.k), ldc = padded_len(s.cout);
    Buf<uint16_t> x(s.p * ldk), dy(s.p * ldc), y(s.p * s.cout), dx(s.p * s.k), wb(s.cout * s.k);
    Buf<float> dw(s.cout * s.k), w32(s.cout * s.k);
    fill_bf16(x.p, x.n, 3);
    fill_bf16(dy.p, dy.n, 4);
    fill_f32(w32.p, w32.n, 5);
    PregenOut dense_out;
    dense_out.dense = wb.p;
    pregen(w32.p, s.cout, s.k, NM{1, 1}, dense_out);
    const double flops = 2.0 * s.cout * s.k * s.p;
    const double ff_d = time_ms([&] { blas.ff(wb.p, s.cout, s.k, x.p, ldk, s.p, y.p, true, s.cout); });
    const double bp_d = time_ms([&] { blas.bp(wb.p, s.cout, s.k, dy.p, ldc, s.p, dx.p, true, s.k); });
    const double wu_d = time_ms([&] { blas.wu(dy.p, ldc, x.p, ldk, s.p, s.cout, s.k, dw.p, false, 0.0f); });
    const double step_d = ff_d + bp_d + wu_d;
    char shape[96];
    std::snprintf(shape, sizeof shape, "%lld x %lld x %lld", (long long)s.cout, (long long)s.k, (long long)s.p);
    std::printf("| %s | %s | dense | cuBLAS | %.3f | %.3f | %.3f | %.3f | %.0f / %.0f | %.0f | 1.00 |\n", s.name, shape,
                ff_d, bp_d, wu_d, step_d, flops / ff_d / 1e9, flops / ff_d / 1e9, flops / bp_d / 1e9);
    for (const NM nm : settings) {
      if (s.k % nm.m || s.cout % nm.m) continue;
      DevNM f = alloc_devnm(s.cout, s.k, nm, Axis::K, true), b = alloc_devnm(s.cout, s.k, nm, Axis::Cout, true);
      PregenOut po;
      po.fwd = &f;
      po.bwd = &b;
      pregen(w32.p, s.cout, s.k, nm, po);
      // The kernel `automatic` picks; at 2:8 also the slower ones, for comparison.
      std::vector<SpmmKernel> kernels = {spmm_choice(f, x.p, ldk)};
      if (nm == NM{2, 8} && !g_only_auto) {
        if (kernels[0] == SpmmKernel::wgmma) kernels.push_back(SpmmKernel::sp24);
        if (kernels[0] != SpmmKernel::general) kernels.push_back(SpmmKernel::general);
      }
      for (const SpmmKernel which : kernels) {
        const double ff = time_ms([&] { spmm(f, x.p, ldk, s.p, y.p, true, s.cout, which); });
        const double bp = time_ms([&] { spmm(b, dy.p, ldc, s.p, dx.p, true, s.k, which); });
        const double step = ff + bp + wu_d;
        std::printf("| %s | %s | %s | %s | %.3f | %.3f | %.3f | %.3f | %.0f / %.0f | %.0f | %.2f |\n", s.name, shape,
                    nm.str().c_str(), spmm_kernel_name(which), ff, bp, wu_d, step,
                    flops * nm.n / nm.m / ff / 1e9, flops / ff / 1e9, flops / bp / 1e9, step_d / step);
      }
      free_devnm(f);
      free_devnm(b);
    }
    std::fflush(stdout);
  }
  std::printf("\n");
}

// One row of the pre-generation tables: a setting and which outputs a step needs.
struct PregenRow {
  NM nm;
  bool bdwp;   // true: W_F, W_B (+ re-packs), mask (BDWP); false: W_F (+ re-pack), mask, pruned dense (SR-STE)
};
const PregenRow kPregenRows[] = {{NM{2, 4}, true}, {NM{2, 8}, true}, {NM{1, 8}, true}, {NM{4, 8}, true}, {NM{2, 8}, false}};

// The device outputs of one row for an n x n weight, freed on scope exit.
struct RowOutputs {
  DevNM f, b;
  PregenOut po;
  int64_t n;
  RowOutputs(int64_t n_, const PregenRow& r, uint8_t* mask, uint16_t* dense) : n(n_) {
    f = alloc_devnm(n, n, r.nm, Axis::K, true);
    if (r.bdwp) b = alloc_devnm(n, n, r.nm, Axis::Cout, true);
    po.fwd = &f;
    po.bwd = r.bdwp ? &b : nullptr;
    po.mask_f = mask;
    po.dense = r.bdwp ? nullptr : dense;
    po.dense_pruned = !r.bdwp;
  }
  ~RowOutputs() {
    free_devnm(f);
    free_devnm(b);
  }
  RowOutputs(const RowOutputs&) = delete;
  RowOutputs& operator=(const RowOutputs&) = delete;
  // The fewest bytes writing these outputs takes (the mask included).
  double bytes_written() const {
    const double elems = double(n) * n;
    const int forms = po.bwd ? 2 : 1;
    double bytes = elems;                                                   // mask
    bytes += forms * (2.0 * f.nnz() + f.nnz() / 2.0);                       // compressed forms
    if (f.sp24) bytes += forms * (elems + elems / 8.0);                     // 2:4 values + metadata
    if (po.dense) bytes += 2.0 * elems;                                     // dense BF16 copy
    return bytes;
  }
};

// Pre-generation of a 4096 x 4096 weight against the dense step of that layer. Bytes: the fewest a
// pass must move (the FP32 masters read once, every requested output written once); GB/s = those
// bytes over the time, "% copy" = that rate over the measured device-to-device copy rate.
void pregen_table(Blas& blas, double copy_gbs) {
  std::printf("## Pre-generation of a 4096 x 4096 weight\n\n");
  const int64_t n = 4096, p = 8192;
  Buf<float> w32(n * n);
  fill_f32(w32.p, w32.n, 9);
  Buf<uint16_t> wb(n * n), x(p * n), y(p * n), dy(p * n), dx(p * n);
  Buf<float> dw(n * n);
  Buf<uint8_t> mask(n * n);
  fill_bf16(x.p, x.n, 10);
  fill_bf16(dy.p, dy.n, 11);
  PregenOut dense_out;
  dense_out.dense = wb.p;
  pregen(w32.p, n, n, NM{1, 1}, dense_out);
  const double step = time_ms([&] {
    blas.ff(wb.p, n, n, x.p, n, p, y.p, true, n);
    blas.bp(wb.p, n, n, dy.p, n, p, dx.p, true, n);
    blas.wu(dy.p, n, x.p, n, p, n, n, dw.p, false, 0.0f);
  });
  std::printf("dense cuBLAS step (FF+BP+WU) of that layer at P = %lld: %.3f ms; device-to-device copy: %.0f GB/s\n\n",
              (long long)p, step, copy_gbs);
  // The update of that weight, alone: memory-bound.
  Buf<float> w(n * n), v(n * n), g(n * n);   // its own weight: the table below selects from w32
  Buf<int> nonfinite(1);
  CK(cudaMemset(nonfinite.p, 0, sizeof(int)));
  fill_f32(w.p, w.n, 9);
  fill_f32(v.p, v.n, 12);
  fill_f32(g.p, g.n, 13);
  const SgdHyper h{1e-6f, 0.9f, 1e-4f, 2e-4f};
  {
    Buf<uint8_t> ones(n * n);
    CK(cudaMemset(ones.p, 1, ones.n));
    const double us = 1e3 * time_ms([&] { sgd_update(w.p, v.p, g.p, ones.p, n * n, h, nonfinite.p); }, 100);
    const double mb = (3 * 4.0 + 1.0 + 2 * 4.0) * n * n / 1e6;   // read w, v, g, mask; write w, v
    std::printf("SGD + momentum + weight decay + SR-STE update of that weight: %.1f us (%.0f MB, %.0f GB/s); "
                "one read of the FP32 masters at the copy rate: %.1f us\n\n",
                us, mb, mb / us * 1e3, 4.0 * n * n / copy_gbs / 1e3);
  }
  std::printf("| N:M | outputs | pregen us | share of the dense step | MB moved (min) | GB/s | %% copy |\n"
              "|---|---|---|---|---|---|---|\n");
  for (const PregenRow& r : kPregenRows) {
    const NM nm = r.nm;
    const RowOutputs out(n, r, mask.p, wb.p);
    const PregenOut& po = out.po;
    pregen(w32.p, n, n, nm, po);
    CK(cudaDeviceSynchronize());
    const double ms = time_ms([&] { pregen(w32.p, n, n, nm, po); }, 100);
    const double ms2 = time_ms([&] { pregen(w32.p, n, n, nm, po); }, 100);   // spread
    const double bytes = 4.0 * n * n + out.bytes_written();                  // masters read once
    const double best = std::min(ms, ms2);
    std::printf("| %s | %s | %.1f (%.1f) | %.1f%% | %.0f | %.0f | %.0f%% |\n", nm.str().c_str(),
                r.bdwp ? (out.f.sp24 ? "W_F, W_B (+2:4 re-packs), mask" : "W_F, W_B, mask")
                       : "W_F (+2:4 re-pack), mask, pruned dense (SR-STE)",
                best * 1e3, std::max(ms, ms2) * 1e3, 100.0 * best / step, bytes / 1e6, bytes / best / 1e6,
                100.0 * bytes / best / 1e6 / copy_gbs);
    std::fflush(stdout);
  }
  std::printf("\n(pregen us: the faster of two means of 100 launches; the slower one in parentheses)\n\n");

  // What the backend runs after every step: the update, then pre-generation from the new weights.
  // Separate: sgd_update + pregen (two passes over the masters); fused: update_pregen (one).
  std::printf("## Update + pre-generation of that weight: separate launches vs fused (update_pregen)\n\n"
              "| N:M | outputs | update + pregen us | fused us | fused speed-up | fused share of the dense step | "
              "fused MB moved (min) | fused GB/s |\n|---|---|---|---|---|---|---|---|\n");
  for (const PregenRow& r : kPregenRows) {
    const NM nm = r.nm;
    const RowOutputs out(n, r, mask.p, wb.p);
    const PregenOut& po = out.po;
    const uint8_t* srste = r.bdwp ? nullptr : mask.p;   // SR-STE reads FF's mask in the update
    pregen(w.p, n, n, nm, po);
    auto separate = [&] {
      sgd_update(w.p, v.p, g.p, srste, n * n, h, nonfinite.p);
      pregen(w.p, n, n, nm, po);
    };
    auto fused = [&] { update_pregen(w.p, SgdArgs{v.p, g.p, srste, h, nonfinite.p}, n, n, nm, po); };
    // Interleaved, twice each, best of each: the machine is shared.
    double sep = 1e30, fus = 1e30;
    for (int rep = 0; rep < 2; ++rep) {
      sep = std::min(sep, time_ms(separate, 100));
      fus = std::min(fus, time_ms(fused, 100));
    }
    double bytes = (3 * 4.0 + 2 * 4.0) * n * n + out.bytes_written();   // read w, v, g; write w, v
    if (!r.bdwp) bytes += double(n) * n;                                // SR-STE: the old mask read
    std::printf("| %s | %s | %.1f | %.1f | %.2fx | %.1f%% | %.0f | %.0f |\n", nm.str().c_str(),
                r.bdwp ? "BDWP: W_F, W_B, mask" : "SR-STE: W_F, mask, pruned dense", sep * 1e3, fus * 1e3,
                sep / fus, 100.0 * fus / step, bytes / 1e6, bytes / fus / 1e6);
    std::fflush(stdout);
  }
  int bad = 0;
  CK(cudaMemcpy(&bad, nonfinite.p, sizeof bad, cudaMemcpyDeviceToHost));
  std::printf("\n(best of two interleaved means of 100 launches each; non-finite weights after the runs: %s)\n\n",
              bad ? "yes" : "none");
}

struct StepTiming {
  std::string model;
  NM nm{1, 1};
  double ms = 0;
};

// Wall clock per train_step of the model in `file` on backend 'cuda' (FF, loss, BP, WU, update,
// pre-generation, the step's result back on the host) on one random batch: the mean of `reps`
// steps after `warmups` (which also build the resident plan).
// Wall clock of one call of `step` (whole training steps, which end on the host): the mean of
// `reps` calls after `warmups`, the device drained before and after them.
template <typename F>
double wall_ms(F&& step, int warmups, int reps) {
  for (int i = 0; i < warmups; ++i) step();
  CK(cudaDeviceSynchronize());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) step();
  CK(cudaDeviceSynchronize());
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
}

// What a timed step takes: one random batch of `batch` inputs of model m (labels cycling through
// its classes) and the update of `method` at a fixed learning rate.
struct StepInputs {
  Tensor x;
  std::vector<int> y;
  UpdateConfig cfg;
};
StepInputs step_inputs(const Model& m, Method method, int batch) {
  Shape xs = {batch};
  for (int64_t d : m.input) xs.push_back(d);
  std::mt19937_64 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> xv(numel(xs));
  for (auto& v : xv) v = dist(rng);
  StepInputs in{Tensor::from_f32(xs, xv), std::vector<int>(batch), UpdateConfig{}};
  for (int i = 0; i < batch; ++i) in.y[i] = i % m.classes;
  in.cfg.method = method;
  in.cfg.lr = 0.01;
  return in;
}

StepTiming time_steps(const std::string& file, Method method, int batch, int warmups, int reps) {
  Model m = Model::load(file);
  const auto be = open_backend("cuda");
  be->prepare(m, method);
  const StepInputs in = step_inputs(m, method, batch);
  return {m.name, m.nm, wall_ms([&] { be->train_step(m, in.x, in.y, in.cfg); }, warmups, reps)};
}

void model_step(const std::string& file, int batch, int reps) {
  std::printf("## Whole training step of %s on backend 'cuda' (BDWP 2:8), batch %d\n\n", file.c_str(), batch);
  for (const Method method : {Method::dense, Method::bdwp}) {
    const StepTiming t = time_steps(file, method, batch, 1, reps);
    std::printf("- method %s: %.1f ms per step (wall clock, mean of %d steps after one warm-up)\n", method_name(method),
                t.ms, reps);
  }
  std::printf("\n");
}

// Whole training steps of each model at each batch, dense and BDWP at the model's N:M.
void step_table(const std::vector<std::string>& files, const std::vector<int>& batches, int reps) {
  std::printf("## Whole training step on backend 'cuda'\n\n");
  std::printf("| model | batch | method | ms per step | img/s | path |\n|---|---|---|---|---|---|\n");
  const char* env = std::getenv("SAT_CUDA_RESIDENT");
  for (const std::string& file : files) {
    Model probe = Model::load(file);
    const std::string why = cuda::resident_unsupported(probe);
    const std::string path = env && env[0] == '0' ? "host layers (SAT_CUDA_RESIDENT=0)"
                             : why.empty()        ? "resident"
                                                  : "host layers (" + why + ")";
    for (const int batch : batches) {
      for (const Method method : {Method::dense, Method::bdwp}) {
        const StepTiming t = time_steps(file, method, batch, 2, reps);
        const std::string what = method == Method::dense ? "dense" : "BDWP " + t.nm.str();
        std::printf("| %s | %d | %s | %.2f | %.0f | %s |\n", t.model.c_str(), batch, what.c_str(), t.ms,
                    batch * 1e3 / t.ms, path.c_str());
        std::fflush(stdout);
      }
    }
  }
  std::printf("\n(wall clock per train_step, mean of %d after two warm-ups)\n\n", reps);
}

// The data-parallel step on one rank (a one-rank communicator: NCCL on this GPU alone) beside the
// single-process step: what splitting the step, summing on the device and overlapping that sum
// with BP cost where there is no other rank to wait for. Each variant is a fresh backend and model.
void dp_table(const std::vector<std::string>& files, int batch, int reps) {
  std::printf("## Data-parallel step on one rank, batch %d (one-rank communicator)\n\n", batch);
  std::printf("| model | method | variant | ms per step | vs train_step | buckets (started during BP) |\n");
  std::printf("|---|---|---|---|---|---|\n");
  struct Variant {
    const char* name;
    bool dp, on_device;
    const char* overlap;
  };
  const Variant variants[] = {{"train_step, one process", false, false, "1"},
                              {"split step, sum through the host", true, false, "1"},
                              {"NCCL after BP", true, true, "0"},
                              {"NCCL in buckets overlapped with BP", true, true, "1"}};
  for (const std::string& file : files) {
    for (const Method method : {Method::dense, Method::bdwp}) {
      double base = 0;
      for (const Variant& v : variants) {
        setenv("SAT_DP_OVERLAP", v.overlap, 1);
        Model m = Model::load(file);
        const auto be = open_backend("cuda");
        be->prepare(m, method);
        const auto comm = make_single_rank_communicator();
        if (v.on_device && be->reduce_on_device(*comm).empty()) {
          std::printf("| %s | %s | %s | (no NCCL in this build) | | |\n", m.name.c_str(), method_name(method), v.name);
          continue;
        }
        const StepInputs in = step_inputs(m, method, batch);
        int64_t step = 0;
        auto one = [&] {
          bool stop = false;
          if (v.dp) data_parallel_step(*comm, *be, m, in.x, in.y, batch, in.cfg, step++, stop, v.on_device);
          else be->train_step(m, in.x, in.y, in.cfg);
        };
        const double ms = wall_ms(one, 2, reps);
        if (!v.dp) base = ms;
        const BucketStats st = last_bucket_stats(*be);
        char buckets[64] = "";
        if (st.buckets) {
          std::snprintf(buckets, sizeof buckets, "%zu (%zu; %zu of %zu gradients reported)", st.buckets, st.started_in_bp,
                        st.reported, st.gradients);
        }
        std::printf("| %s | %s | %s | %.2f | %.2fx | %s |\n", m.name.c_str(),
                    method == Method::dense ? "dense" : ("BDWP " + m.nm.str()).c_str(), v.name, ms,
                    base > 0 ? ms / base : 0.0, buckets);
        std::fflush(stdout);
      }
    }
  }
  unsetenv("SAT_DP_OVERLAP");
  std::printf("\n(wall clock per step, mean of %d after two warm-ups; the data-parallel rows run "
              "data_parallel_step)\n\n", reps);
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t j = s.find(' ', i);
    const std::string w = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (!w.empty()) out.push_back(w);
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

// The lowering kernels (lowering_nhwc.cu) on every distinct convolution of ResNet-18 (CIFAR stem),
// both kernel choices side by side, and the rows of a transposed BP (conv_dgrad.cu, stride 1 only)
// that replace col2im there. Bytes: im2col reads the image and writes the lowered rows (BF16);
// col2im reads the FP32 rows and writes the BF16 gradient; the transposed rows read dY and write
// k*k*cout BF16 columns per input pixel.
void lowering_table(int64_t batch) {
  const double copy_gbs = copy_rate();
  std::printf("## Channels-last lowering, ResNet-18 convolutions, batch %lld (device copy rate %.0f GB/s)\n\n",
              static_cast<long long>(batch), copy_gbs);
  std::printf("| convolution | im2col rows kernel | im2col fast | col2im rows kernel | col2im fast | transposed BP rows | fast: GB/s im2col, col2im |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  struct Conv {
    const char* name;
    ConvGeometry g;
    int count;   // convolutions of this shape in the model
  };
  const std::vector<Conv> convs = {
      {"64-64 3x3 @32x32", {64, 32, 32, 3, 1, 1, 32, 32}, 4},
      {"64-128 3x3 s2 @32x32", {64, 32, 32, 3, 2, 1, 16, 16}, 1},
      {"64-128 1x1 s2 @32x32", {64, 32, 32, 1, 2, 0, 16, 16}, 1},
      {"128-128 3x3 @16x16", {128, 16, 16, 3, 1, 1, 16, 16}, 3},
      {"128-256 3x3 s2 @16x16", {128, 16, 16, 3, 2, 1, 8, 8}, 1},
      {"256-256 3x3 @8x8", {256, 8, 8, 3, 1, 1, 8, 8}, 3},
      {"256-512 3x3 s2 @8x8", {256, 8, 8, 3, 2, 1, 4, 4}, 1},
      {"512-512 3x3 @4x4", {512, 4, 4, 3, 1, 1, 4, 4}, 3},
  };
  double tot[5] = {0, 0, 0, 0, 0};
  for (const Conv& c : convs) {
    const ConvGeometry& g = c.g;
    const int64_t ld = padded_len(g.kdim()), q = batch * g.oh * g.ow, img = batch * g.h * g.w * g.cin;
    Buf<uint16_t> x(img), col(q * ld), dx(img);
    Buf<float> dcol(q * ld);
    fill_bf16(x.p, img, 7);
    CK(cudaMemset(dcol.p, 0, q * ld * 4));
    const double i_rows = time_ms([&] { im2col_nhwc(x.p, g, batch, col.p, ld, 0, LoweringKernels::rows); });
    const double i_fast = time_ms([&] { im2col_nhwc(x.p, g, batch, col.p, ld, 0, LoweringKernels::fast); });
    const double c_rows = time_ms([&] { col2im_nhwc(dcol.p, ld, g, batch, dx.p, 0, LoweringKernels::rows); });
    const double c_fast = time_ms([&] { col2im_nhwc(dcol.p, ld, g, batch, dx.p, 0, LoweringKernels::fast); });
    // the transposed BP's rows where it exists; cout = cin for the stride-1 convolutions here
    double t_rows = 0;
    if (dgrad_applies(g)) {
      const int64_t ldt = padded_len(g.k * g.k * g.cin);
      Buf<uint16_t> rows(batch * g.h * g.w * ldt);
      t_rows = time_ms([&] { dgrad_rows_nhwc(x.p, g, g.cin, batch, rows.p, ldt, 0); });
    }
    const double ib = 2.0 * (img + q * ld), cb = 4.0 * q * ld + 2.0 * img;
    char tcol[32] = "-";
    if (t_rows > 0) std::snprintf(tcol, sizeof tcol, "%.3f ms", t_rows);
    std::printf("| %s (x%d) | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %s | %.0f, %.0f |\n", c.name, c.count, i_rows, i_fast,
                c_rows, c_fast, tcol, ib / i_fast / 1e6, cb / c_fast / 1e6);
    tot[4] += c.count * t_rows;
    tot[0] += c.count * i_rows;
    tot[1] += c.count * i_fast;
    tot[2] += c.count * c_rows;
    tot[3] += c.count * c_fast;
  }
  std::printf("| per step (every convolution but the stem) | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2f ms (stride 1) | |\n\n",
              tot[0], tot[1], tot[2], tot[3], tot[4]);
}

// BatchNorm2d on ResNet-18's (CIFAR stem) shapes: the hand-written kernels (layer_kernels.cu) with
// the ReLU fused, as the resident step runs them, beside cuDNN's (no ReLU: it has no fused one).
// The rate counts the bytes the pass must move at least: forward x twice (statistics, then the
// normalisation) and y once; backward x, dy and the ReLU's output twice and dx once.
void batchnorm_table(int64_t batch) {
  const double copy_gbs = copy_rate();
  const bool dnn = cudnn_built();
  std::printf("## BatchNorm2d, ResNet-18 shapes, batch %lld (device copy rate %.0f GB/s)\n\n",
              static_cast<long long>(batch), copy_gbs);
  std::printf("| channels @ map (layers) | forward + ReLU | backward + ReLU | cuDNN forward | cuDNN backward | GB/s forward, backward |\n");
  std::printf("|---|---|---|---|---|---|\n");
  struct Bn {
    int64_t c, hw;
    int count;
  };
  const std::vector<Bn> shapes = {{64, 32, 5}, {128, 16, 5}, {256, 8, 5}, {512, 4, 5}};
  double tot[4] = {0, 0, 0, 0};
  for (const Bn& b : shapes) {
    const int64_t rows = batch * b.hw * b.hw, n = rows * b.c;
    Buf<uint16_t> x(n), dy(n), y(n), dx(n);
    Buf<float> prm(6 * b.c), save(2 * b.c);
    Buf<double> stats(2 * b.c), part(column_partials(rows, b.c));
    fill_bf16(x.p, n, 3);
    fill_bf16(dy.p, n, 4);
    std::vector<float> h(6 * b.c, 0.0f);
    for (int64_t j = 0; j < b.c; ++j) h[j] = 1.0f, h[3 * b.c + j] = 1.0f;   // gamma 1, running variance 1
    CK(cudaMemcpy(prm.p, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    float *gamma = prm.p, *beta = gamma + b.c, *rmean = beta + b.c, *rvar = rmean + b.c, *grad = rvar + b.c;
    double *mean = stats.p, *invstd = mean + b.c;
    const double ff = time_ms([&] {
      bn_forward_train(x.p, rows, b.c, 1e-5, 0.1, gamma, beta, rmean, rvar, mean, invstd, part.p, y.p, 0, true);
    });
    const double bp = time_ms([&] {
      bn_backward(x.p, dy.p, rows, b.c, mean, invstd, gamma, grad, grad + b.c, part.p, dx.p, 0, y.p);
    });
    double dff = 0, dbp = 0;
    if (dnn) {
      CudnnBatchNorm d(rows, b.c, 1e-5);
      dff = time_ms([&] { d.forward_train(x.p, y.p, gamma, beta, 0.1, rmean, rvar, save.p, save.p + b.c, 0); });
      dbp = time_ms([&] { d.backward(x.p, dy.p, dx.p, gamma, grad, grad + b.c, save.p, save.p + b.c, 0); });
    }
    char c1[32] = "-", c2[32] = "-";
    if (dnn) {
      std::snprintf(c1, sizeof c1, "%.3f ms", dff);
      std::snprintf(c2, sizeof c2, "%.3f ms", dbp);
    }
    const double bytes = 2.0 * n;
    std::printf("| %lld @ %lldx%lld (x%d) | %.3f ms | %.3f ms | %s | %s | %.0f, %.0f |\n", static_cast<long long>(b.c),
                static_cast<long long>(b.hw), static_cast<long long>(b.hw), b.count, ff, bp, c1, c2,
                3 * bytes / ff / 1e6, 7 * bytes / bp / 1e6);
    tot[0] += b.count * ff;
    tot[1] += b.count * bp;
    tot[2] += b.count * dff;
    tot[3] += b.count * dbp;
  }
  std::printf("| per step (20 layers) | %.2f ms | %.2f ms | %.2f ms | %.2f ms | |\n\n", tot[0], tot[1], tot[2], tot[3]);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool quick = false, large = false, pregen_only = false, lowering = false, batchnorm = false, model_layers = false;
    std::string model_file, steps, batches = "128 512", data_parallel;
    int batch = 0;   // --batch; 0: 128 for --model-step, 512 for --lowering and --batchnorm
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--quick") quick = true;
      else if (a == "--large") large = true;
      else if (a == "--pregen") pregen_only = true;
      else if (a == "--lowering") lowering = true;
      else if (a == "--batchnorm") batchnorm = true;
      else if (a == "--model-layers") model_layers = true;
      else if (a == "--data-parallel" && i + 1 < argc) data_parallel = argv[++i];
      else if (a == "--reps" && i + 1 < argc) g_reps = std::stoi(argv[++i]);
      else if (a == "--model-step" && i + 1 < argc) model_file = argv[++i];
      else if (a == "--batch" && i + 1 < argc) batch = std::stoi(argv[++i]);
      else if (a == "--steps" && i + 1 < argc) steps = argv[++i];
      else if (a == "--batches" && i + 1 < argc) batches = argv[++i];
      else throw Error("cuda_bench: unknown argument '" + a + "' (usage: cuda_bench [--quick | --large] [--pregen] [--lowering] [--batchnorm] [--model-layers] [--data-parallel \"FILES\"] [--reps N] "
                       "[--model-step models/resnet18.json] [--batch B] [--steps \"FILES\" --batches \"B...\"])");
    }
    std::printf("# cuda_bench on %s\n\n", require_device("cuda_bench").c_str());
    if (!steps.empty()) {
      std::vector<int> bs;
      for (const std::string& w : words(batches)) bs.push_back(std::stoi(w));
      step_table(words(steps), bs, g_reps > 0 ? g_reps : 20);
      return 0;
    }
    if (!data_parallel.empty()) {
      dp_table(words(data_parallel), batch ? batch : 512, g_reps > 0 ? g_reps : 20);
      return 0;
    }
    if (lowering) {
      lowering_table(batch ? batch : 512);
      return 0;
    }
    if (batchnorm) {
      batchnorm_table(batch ? batch : 512);
      return 0;
    }
    Blas blas;
    if (!model_file.empty()) {
      model_step(model_file, batch ? batch : 128, quick ? 3 : 10);
      return 0;
    }
    if (pregen_only) {
      pregen_table(blas, copy_rate());
      return 0;
    }
    const double copy_gbs = ceilings(blas);
    // Shapes: the project's models at batch sizes that fill the GPU (ResNet-18 and the VGG on
    // 32 x 32 inputs at batch 512; the ViT's layers at 4096 images x 49 tokens), then large layers.
    std::vector<LayerShape> shapes = {
        {"ResNet-18 layer1 conv 64-64 3x3 @32x32, B 512", 64, 576, 512 * 1024},
        {"ResNet-18 layer2 conv 128-128 3x3 @16x16, B 512", 128, 1152, 512 * 256},
        {"ResNet-18 layer3 conv 256-256 3x3 @8x8, B 512", 256, 2304, 512 * 64},
        {"ResNet-18 layer4 conv 512-512 3x3 @4x4, B 512", 512, 4608, 512 * 16},
        {"VGG conv 64-128 3x3 @16x16, B 512", 128, 576, 512 * 256},
        {"VGG conv 128-256 3x3 @8x8, B 512", 256, 1152, 512 * 64},
        {"ViT-tiny MLP 128-256, 4096 x 49 tokens", 256, 128, 4096 * 49},
        {"ViT-tiny MLP 256-128, 4096 x 49 tokens", 128, 256, 4096 * 49},
        {"large: ResNet-18 layer4 (ImageNet) 512-512 3x3 @7x7, B 256", 512, 4608, 256 * 49},
        {"large: transformer 4096-4096, 8192 tokens", 4096, 4096, 8192},
        {"large: transformer MLP 4096-16384, 8192 tokens", 16384, 4096, 8192},
        {"large: transformer MLP 16384-4096, 8192 tokens", 4096, 16384, 8192},
    };
    std::vector<NM> settings = {NM{2, 4}, NM{2, 8}, NM{1, 8}, NM{4, 8}};
    if (quick) shapes = {shapes[3], shapes[9]};
    if (large) {
      g_only_auto = true;
      shapes.erase(shapes.begin(), shapes.begin() + 8);
      settings = {NM{2, 8}};
    }
    if (model_layers) {   // the models' own shapes at 2:8, the kernel the backend picks
      g_only_auto = true;
      shapes.resize(8);
      settings = {NM{2, 8}};
      layer_table(blas, shapes, settings);
      return 0;
    }
    layer_table(blas, shapes, settings);
    pregen_table(blas, copy_gbs);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_bench: %s\n", e.what());
    return 1;
  }
}
