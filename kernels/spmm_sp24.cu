// Sparse x dense product on the 2:4 sparse tensor cores (mma.sp, m16n8k32, BF16 in, FP32
// accumulation) over the re-packed 2:4 form of an N:M weight with N <= 2 (DevNM::v24/meta24).
// A block of 4 warps (2 x 2, each 64 lines x 64 columns) computes 128 lines x 128 columns. Per
// 64-position step it stages 128 lines x 32 kept-or-zero values (8 KiB), their metadata (1 KiB) and
// 128 columns x 64 positions of the input (16 KiB) in a 4-deep cp.async pipeline; a warp issues 32
// mma.sp per 32 positions (4 m-tiles x 8 n-tiles).
#include "mma_tile.cuh"
#include "spmm_kernels.hpp"

namespace sat::cuda {

namespace {

using namespace tile;

constexpr int kStages = 4;
constexpr int kNT = 128;                     // threads per block
constexpr int kNTiles = 8;                   // n-tiles (8 columns) per warp
constexpr int kAElems = kBM * kBK / 2;       // compressed A tile (BF16)
constexpr int kBElems = kBN * kBK;           // input tile (BF16)
constexpr int kMetaWords = (kBM / 16) * 2 * 16;
constexpr int kStageBytes = (kAElems + kBElems) * 2 + kMetaWords * 4;
constexpr int kSmemBytes = kStages * kStageBytes;

// Compressed A tile: kBM rows x 32 BF16 (64 bytes, 4 chunks), chunk c of row r at c ^ ((r >> 1) & 3).
__device__ __forceinline__ int a_off(int row, int chunk) {
  return row * 32 + ((chunk ^ ((row >> 1) & 3)) * 8);
}

__device__ __forceinline__ void mma_sp(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4],
                                       uint32_t meta) {
  asm volatile(
      "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]),
        "r"(meta));
}

struct Sp24Args {
  const uint16_t* v24;
  const uint32_t* meta24;
  int64_t lines, len_pad;
  const uint16_t* in;
  int64_t ld_in, cols;
  void* out;
  int64_t ld_out;
};

template <typename OutT>
__global__ void __launch_bounds__(kNT) spmm_sp24_kernel(Sp24Args a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp & 1, warp_n = warp >> 1;   // 2 x 2 warps
  const int64_t line0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int64_t ldc = a.len_pad / 2;           // compressed row length
  const int64_t k32_per_line = a.len_pad / 32;
  const int steps = static_cast<int>(a.len_pad / kBK);

  auto stage_a = [&](int s) { return reinterpret_cast<uint16_t*>(smem + s * kStageBytes); };
  auto stage_b = [&](int s) { return stage_a(s) + kAElems; };
  auto stage_m = [&](int s) { return reinterpret_cast<uint32_t*>(stage_b(s) + kBElems); };

  auto issue = [&](int step, int s) {
    const int64_t k0 = static_cast<int64_t>(step) * kBK;
    uint16_t* as = stage_a(s);
#pragma unroll
    for (int i = 0; i < kBM * 4 / kNT; ++i) {
      const int id = tid + i * kNT;
      const int row = id >> 2, chunk = id & 3;
      cp_async16(as + a_off(row, chunk), a.v24 + (line0 + row) * ldc + k0 / 2 + chunk * 8, true);
    }
    if (tid < 64) {
      const int b = tid >> 3, c = tid & 7;   // line block b of the tile, 16-byte chunk c of its 128 bytes
      cp_async16(stage_m(s) + b * 32 + c * 4,
                 a.meta24 + ((line0 / 16 + b) * k32_per_line + k0 / 32) * 16 + c * 4, true);
    }
    load_b_tile<kNT>(stage_b(s), a.in, a.ld_in, a.cols, col0, k0, tid);
  };

  float acc[4][kNTiles][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < kNTiles; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) issue(s, s);
    cp_async_commit();
  }

  for (int step = 0; step < steps; ++step) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    {
      const int next = step + kStages - 1;
      if (next < steps) issue(next, next % kStages);
      cp_async_commit();
    }
    const int s = step % kStages;
    const uint16_t* as = stage_a(s);
    const uint16_t* bs = stage_b(s);
    const uint32_t* ms = stage_m(s);
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
      uint32_t af[4][4], meta[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = warp_m * 64 + i * 16 + (lane & 15);
        ldmatrix_x4(af[i], as + a_off(row, ks * 2 + (lane >> 4)));
        meta[i] = ms[(warp_m * 4 + i) * 32 + ks * 16 + (lane >> 2) * 2 + (lane & 1)];
      }
#pragma unroll
      for (int j = 0; j < kNTiles; ++j) {
        uint32_t bf[4];
        load_b_frag(bf, bs, warp_n * 64, j, ks, lane);
#pragma unroll
        for (int i = 0; i < 4; ++i) mma_sp(acc[i][j], af[i], bf, meta[i]);
      }
    }
  }
  cp_async_wait<0>();
  store_acc(acc, static_cast<OutT*>(a.out), a.ld_out, a.lines, a.cols, line0, col0, warp_m * 64, warp_n * 64, lane);
}

template <typename OutT>
void launch(const Sp24Args& args, int64_t lines_pad, cudaStream_t stream) {
  static bool configured = false;
  if (!configured) {
    SAT_CUDA_CHECK(cudaFuncSetAttribute(spmm_sp24_kernel<OutT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        kSmemBytes));
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(args.cols, kBN)), static_cast<unsigned>(lines_pad / kBM));
  spmm_sp24_kernel<OutT><<<grid, kNT, kSmemBytes, stream>>>(args);
  SAT_CUDA_LAUNCHED("spmm_sp24_kernel");
}

}  // namespace

void launch_spmm_sp24(const DevNM& a, const uint16_t* in, int64_t ld_in, int64_t cols, void* out,
                      bool out_bf16, int64_t ld_out, cudaStream_t stream) {
  const Sp24Args args{a.v24, a.meta24, a.lines, a.len_pad, in, ld_in, cols, out, ld_out};
  if (out_bf16) launch<uint16_t>(args, a.lines_pad, stream);
  else launch<float>(args, a.lines_pad, stream);
}

}  // namespace sat::cuda
