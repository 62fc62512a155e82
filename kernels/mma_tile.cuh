#pragma once
// The tile machinery the two mma.sync products share (spmm_sp24.cu, spmm_general.cu): a block computes
// a 128-line x 128-column tile of out[p][l] with 8 warps (2 along lines x 4 along columns, 64 x 32
// each), the dense input streamed through shared memory with cp.async in 64-position steps,
// fragments loaded with ldmatrix from XOR-swizzled rows (no bank conflicts), FP32 accumulators.
#include <cstdint>

#include "common.cuh"
#include "ops.hpp"

namespace sat::cuda::tile {

constexpr int kBM = kTileLines;   // lines per block
constexpr int kBN = kTileCols;    // columns (p) per block
constexpr int kBK = kTileK;       // positions along the line per step
constexpr int kThreads = 256;
static_assert(kBM == 128 && kBN == 128 && kBK == 64, "the index arithmetic below assumes these");

// 16-byte asynchronous copy global -> shared; zero-filled when !valid.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// Input tile: kBN rows (p) x kBK BF16 (128 bytes, 8 chunks of 16), chunk c of row r stored at
// chunk c ^ (r & 7).
__device__ __forceinline__ int b_off(int row, int chunk) { return row * 64 + ((chunk ^ (row & 7)) * 8); }

// Issues the copies of the input tile rows col0.., positions k0..k0+63 (1024 chunks of 16 bytes
// over kNT threads).
template <int kNT = kThreads>
__device__ __forceinline__ void load_b_tile(uint16_t* bs, const uint16_t* in, int64_t ld_in,
                                            int64_t cols, int64_t col0, int64_t k0, int tid) {
#pragma unroll
  for (int i = 0; i < kBN * 8 / kNT; ++i) {
    const int id = tid + i * kNT;
    const int row = id >> 3, chunk = id & 7;
    const int64_t p = col0 + row;
    const bool ok = p < cols;
    const uint16_t* src = in + (ok ? p : 0) * ld_in + k0 + chunk * 8;
    cp_async16(bs + b_off(row, chunk), src, ok);
  }
}

// B fragments of n-tile j (columns col_base + j*8 ..) for one 32-position step s of the tile
// (ldmatrix x4: positions s*32 + 0..7, 8..15, 16..23, 24..31 of 8 columns): regs 0,1 = first 16
// positions, 2,3 = next 16.
__device__ __forceinline__ void load_b_frag(uint32_t (&b)[4], const uint16_t* bs, int col_base, int j,
                                            int s, int lane) {
  const int row = col_base + j * 8 + (lane & 7);
  const int chunk = s * 4 + (lane >> 3);
  ldmatrix_x4(b, bs + b_off(row, chunk));
}

// Writes the accumulators of a warp (kMT m-tiles x kNTl n-tiles of 16 x 8, its first line
// line0 + line_base and column col0 + col_base) to out[p][l].
template <typename OutT, int kMT, int kNTl>
__device__ __forceinline__ void store_acc(const float (&acc)[kMT][kNTl][4], OutT* out, int64_t ld_out,
                                          int64_t lines, int64_t cols, int64_t line0, int64_t col0,
                                          int line_base, int col_base, int lane) {
#pragma unroll
  for (int i = 0; i < kMT; ++i) {
#pragma unroll
    for (int j = 0; j < kNTl; ++j) {
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int64_t l = line0 + line_base + i * 16 + (lane >> 2) + (q >> 1) * 8;
        const int64_t p = col0 + col_base + j * 8 + (lane & 3) * 2 + (q & 1);
        if (l < lines && p < cols) {
          if constexpr (sizeof(OutT) == 2) {
            out[p * ld_out + l] = sat::f32_to_bf16_bits(acc[i][j][q]);
          } else {
            out[p * ld_out + l] = acc[i][j][q];
          }
        }
      }
    }
  }
}

}  // namespace sat::cuda::tile
