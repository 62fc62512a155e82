// Sparse x dense product for any N:M (the general kernel: 3:4, 4:8, 4:16, ... and every N:M when
// asked): per 64-position step the block expands its 128 lines of the compressed form
// (NMCompressed layout: BF16 values, 4-bit in-group indices) into a dense BF16 tile in shared
// memory and multiplies it on the dense tensor cores (mma m16n8k16, FP32 accumulation); the input
// tile is double-buffered with cp.async. It does the dense number of multiply-adds; what it saves
// is the weight traffic (N/M of the values plus 4-bit indices).
#include "mma_tile.cuh"
#include "spmm_kernels.hpp"

namespace sat::cuda {

namespace {

using namespace tile;

constexpr int kAElems = kBM * kBK;
constexpr int kBElems = kBN * kBK;
constexpr int kSmemBytes = (kAElems + 2 * kBElems) * 2;

// Dense A tile: kBM rows x 64 BF16 (128 bytes), chunk c of row r at c ^ (r & 7).
__device__ __forceinline__ int a_off(int row, int col) {
  return row * 64 + (((col >> 3) ^ (row & 7)) * 8) + (col & 7);
}

__device__ __forceinline__ void mma_dense(float (&d)[4], const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

struct GenArgs {
  const uint16_t* values;
  const uint8_t* index;
  int64_t lines, groups;
  int n, m;
  int64_t len_pad;
  const uint16_t* in;
  int64_t ld_in, cols;
  void* out;
  int64_t ld_out;
};

template <int kM, typename OutT>
__global__ void __launch_bounds__(kThreads, 2) spmm_general_kernel(GenArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  uint16_t* as = reinterpret_cast<uint16_t*>(smem);
  uint16_t* bsb[2] = {as + kAElems, as + kAElems + kBElems};
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp & 1, warp_n = warp >> 1;
  const int64_t line0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int steps = static_cast<int>(a.len_pad / kBK);
  const int n = a.n;
  constexpr int kGpt = kBK / kM;

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

  load_b_tile(bsb[0], a.in, a.ld_in, a.cols, col0, 0, tid);
  cp_async_commit();
  for (int step = 0; step < steps; ++step) {
    if (step + 1 < steps) load_b_tile(bsb[(step + 1) & 1], a.in, a.ld_in, a.cols, col0, (step + 1) * int64_t{kBK}, tid);
    cp_async_commit();
    // Expand the compressed lines: one thread writes a whole group of M (kept values and zeros).
    for (int idx = tid; idx < kBM * kGpt; idx += kThreads) {
      const int row = idx / kGpt, gg = idx % kGpt;
      const int64_t line = line0 + row, g = static_cast<int64_t>(step) * kGpt + gg;
      uint16_t v[kM];
#pragma unroll
      for (int i = 0; i < kM; ++i) v[i] = 0;
      if (line < a.lines && g < a.groups) {
        const int64_t e0 = (line * a.groups + g) * n;
        for (int j = 0; j < n; ++j) {
          const int64_t e = e0 + j;
          const int pos = (a.index[e >> 1] >> ((e & 1) * 4)) & 15;
          const uint16_t val = a.values[e];
#pragma unroll
          for (int i = 0; i < kM; ++i) v[i] = (i == pos) ? val : v[i];
        }
      }
#pragma unroll
      for (int i = 0; i < kM; ++i) as[a_off(row, gg * kM + i)] = v[i];
    }
    cp_async_wait<1>();
    __syncthreads();
    const uint16_t* bs = bsb[step & 1];
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      uint32_t bf[4][4];
#pragma unroll
      for (int j = 0; j < 4; ++j) load_b_frag(bf[j], bs, warp_n * 32, j, s, lane);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int ks = s * 2 + h;   // 16-position step
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          uint32_t af[4];
          const int row = warp_m * 64 + i * 16 + (lane & 15);
          ldmatrix_x4(af, as + a_off(row, ks * 16 + (lane >> 4) * 8));
#pragma unroll
          for (int j = 0; j < 4; ++j) mma_dense(acc[i][j], af, bf[j][h * 2], bf[j][h * 2 + 1]);
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  store_acc(acc, static_cast<OutT*>(a.out), a.ld_out, a.lines, a.cols, line0, col0, warp_m * 64, warp_n * 32, lane);
}

template <int kM, typename OutT>
void launch(const GenArgs& args, cudaStream_t stream) {
  static bool configured = false;
  if (!configured) {
    SAT_CUDA_CHECK(cudaFuncSetAttribute(spmm_general_kernel<kM, OutT>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(args.cols, kBN)), static_cast<unsigned>(ceil_div(args.lines, kBM)));
  spmm_general_kernel<kM, OutT><<<grid, kThreads, kSmemBytes, stream>>>(args);
  SAT_CUDA_LAUNCHED("spmm_general_kernel");
}

template <typename OutT>
void launch_m(const GenArgs& args, cudaStream_t stream) {
  switch (args.m) {
    case 2: return launch<2, OutT>(args, stream);
    case 4: return launch<4, OutT>(args, stream);
    case 8: return launch<8, OutT>(args, stream);
    case 16: return launch<16, OutT>(args, stream);
  }
  throw Error("spmm (general kernel): unsupported M = " + std::to_string(args.m));
}

}  // namespace

void launch_spmm_general(const DevNM& a, const uint16_t* in, int64_t ld_in, int64_t cols, void* out,
                         bool out_bf16, int64_t ld_out, cudaStream_t stream) {
  const GenArgs args{a.values, a.index, a.lines, a.groups, a.nm.n, a.nm.m, padded_len(a.len),
                     in, ld_in, cols, out, ld_out};
  if (out_bf16) launch_m<uint16_t>(args, stream);
  else launch_m<float>(args, stream);
}

}  // namespace sat::cuda
