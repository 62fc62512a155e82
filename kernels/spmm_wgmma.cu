// Sparse x dense product on Hopper's warpgroup sparse tensor cores (wgmma.mma_async.sp, sm_90a),
// over the re-packed 2:4 form of an N:M weight with N <= 2 (DevNM::v24/meta24, the same arrays the
// mma.sp kernel reads).
//
// A CTA computes 128 lines x kBN columns (kBN = 256 or 128) with three warpgroups:
//  - warpgroup 0 is the producer: one thread streams, per 64-position step, the compressed weight
//    tile (128 lines x 32 BF16, 64-byte swizzle), the input tile (kBN columns x 64 BF16, 128-byte
//    swizzle) and the 1 KiB of metadata into a kStages-deep ring of shared memory with the bulk
//    tensor copy engine (TMA), completing on a "full" mbarrier per stage;
//  - warpgroups 1 and 2 consume: each owns 64 lines, waits for a stage, issues two
//    m64n<kBN>k32 sparse wgmma (operands read from shared memory through matrix descriptors,
//    metadata from registers), waits for them and releases the stage on its "empty" mbarrier; the
//    two consumers' MMAs interleave on the tensor cores.
// The kernel is persistent (one CTA per multiprocessor, each looping over tiles): the producer runs
// ahead into the next tile while a consumer's epilogue transposes its FP32 accumulators through its
// own shared-memory buffer, so that out[p][l] (lines contiguous) is written in 16-byte pieces. Tiles
// are visited in groups of line blocks so that the CTAs working at one time share their inputs in
// L2. Layouts and numbers: docs/cuda.md.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "common.cuh"
#include "spmm_kernels.hpp"
#include "hopper.cuh"
#include "wgmma_sp_ops.cuh"

namespace sat::cuda {

namespace {

constexpr int kBK = 64;   // positions per stage (two k32 MMAs)

// Epilogue staging: each consumer warpgroup has its own buffer, so that its epilogue overlaps the
// loads (and the other warpgroups' MMAs) of the next tile. It holds kPassCols columns of 64 lines,
// rows padded (kLd) so that the transposing stores hit distinct banks; a tile's columns go out in
// kBN / kPassCols passes.
template <typename OutT>
struct Epi {
  static constexpr int kLd = sizeof(OutT) == 2 ? 72 : 68;
  static constexpr int kPassCols = sizeof(OutT) == 2 ? 64 : 32;
};
constexpr int kEpiBytes = 9216;   // >= 64 x 72 x 2 and 32 x 68 x 4, a multiple of 1024
constexpr int kTmaCols = 32;      // columns per bulk store of the BF16 epilogue; two such boxes staged
static_assert(64 * 72 * 2 <= kEpiBytes && 32 * 68 * 4 <= kEpiBytes && 2 * kTmaCols * 128 <= kEpiBytes,
              "staging buffer too small");

// A CTA: kCons consumer warpgroups of 64 lines each (kBM lines) x kBN columns, plus the producer.
template <int kCons, int kBN>
struct Cfg {
  static constexpr int kBM = 64 * kCons;
  static constexpr int kThreads = 128 * (kCons + 1);
  static constexpr int kBBytes = kBN * kBK * 2;          // kBN rows of 128 bytes
  static constexpr int kABytes = kBM * kBK;              // kBM lines x 32 BF16 = 64 bytes each
  static constexpr int kMetaBytes = kBM / 16 * 2 * 64;   // per 16 lines: 2 k32 x 16 words
  static constexpr int kStageBytes = kBBytes + kABytes + kMetaBytes;
  static constexpr int kStages = 5;
  static constexpr int kSmem = kStages * kStageBytes + kCons * kEpiBytes + 1024;   // + slack to align to 1024
  // Registers: the CTA starts with the launch bound's cap per thread (ptxas assigns exactly that
  // when setmaxnreg is used); the producer drops to 24 and the consumers may only take what it
  // frees: setmaxnreg.inc waits until registers are free, so asking for more hangs the CTA.
  static constexpr int kLaunchRegs = 65536 / kThreads / 8 * 8;
  static constexpr int kFree = kLaunchRegs * kThreads - 128 * 24;
  static constexpr int kConsumerRegs = kFree / (128 * kCons) / 8 * 8 > 240 ? 240 : kFree / (128 * kCons) / 8 * 8;
  static_assert(kConsumerRegs >= kBN / 2 + 48, "too few registers for a consumer's accumulators");
  static_assert(kStageBytes % 1024 == 0, "stages must keep the 1024-byte swizzle alignment");
  static_assert(kSmem <= 227 * 1024, "over the shared memory of a multiprocessor");
};

// The kernel's body exists only in the sm_90a pass (the compute_90 PTX pass has no wgmma).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SAT_WGMMA_DEVICE 1
using namespace hopper;
#endif

struct WgArgs {
  int64_t lines, cols, ld_out;
  int steps, line_blocks, col_blocks;
  bool vec_out;   // out and ld_out allow 16-byte stores
  bool tma_out;   // BF16 output written by bulk tensor stores (tm_out), see the epilogue
  void* out;
  // BF16 output only, may be null: per column block cb and line l, the sum and the sum of squares
  // of the block's rounded outputs, stats[cb * lines + l] and stats[(col_blocks + cb) * lines + l]
  // (BatchNorm's column partials, layer_ops.hpp, taken from the product's epilogue).
  double* stats;
};

#ifdef SAT_WGMMA_DEVICE
// Tile t of the product (line block, column block): groups of kGroup line blocks, line blocks
// fastest within a group, so that the CTAs of a wave share their inputs in L2.
__device__ __forceinline__ void tile_of(int t, int line_blocks, int col_blocks, int& lb, int& cb) {
  constexpr int kGroup = 8;
  const int per_group = kGroup * col_blocks;
  const int first = t / per_group * kGroup;
  const int gsize = min(line_blocks - first, kGroup);
  const int in_group = t % per_group;
  lb = first + in_group % gsize;
  cb = in_group / gsize;
}
#endif

// Persistent: CTA b computes tiles b, b + gridDim.x, ...; the producer runs ahead across tiles.
template <int kCons, int kBN, typename OutT>
__global__ void __launch_bounds__(Cfg<kCons, kBN>::kThreads, 1)
    spmm_wgmma_kernel(const __grid_constant__ CUtensorMap tm_a, const __grid_constant__ CUtensorMap tm_b,
                      const __grid_constant__ CUtensorMap tm_meta, const __grid_constant__ CUtensorMap tm_out,
                      WgArgs a) {
#ifdef SAT_WGMMA_DEVICE
  using C = Cfg<kCons, kBN>;
  using E = Epi<OutT>;
  constexpr int kBM = C::kBM;
  using Mma = wgmma::SparseMma<kBN>;
  extern __shared__ unsigned char smem_raw[];
  __shared__ __align__(8) uint64_t full[C::kStages], empty[C::kStages];
  unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  auto stage_b = [&](int s) { return smem + s * C::kStageBytes; };
  auto stage_a = [&](int s) { return stage_b(s) + C::kBBytes; };
  auto stage_m = [&](int s) { return stage_a(s) + C::kABytes; };

  const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31;
  const int tiles = a.line_blocks * a.col_blocks;

  if (tid == 0) {
    for (int s = 0; s < C::kStages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], 4 * kCons);   // lane 0 of each consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    if (tid == 0) {
      int it = 0;
      for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
        int lb, cb;
        tile_of(t, a.line_blocks, a.col_blocks, lb, cb);
        for (int step = 0; step < a.steps; ++step, ++it) {
          const int s = it % C::kStages, round = it / C::kStages;
          mbar_wait(&empty[s], (round & 1) ^ 1);
          mbar_expect_tx(&full[s], C::kStageBytes);
          tma_load_2d(stage_b(s), &tm_b, step * kBK, cb * kBN, &full[s]);
          tma_load_2d(stage_a(s), &tm_a, step * (kBK / 2), lb * kBM, &full[s]);
          tma_load_2d(stage_m(s), &tm_meta, step * 32, lb * (kBM / 16), &full[s]);
        }
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(C::kConsumerRegs));
  const int c = wg - 1;                 // consumer: lines c*64 .. c*64+63 of a tile
  const int wq = (tid >> 5) & 3;        // warp within the warpgroup: 16 lines
  const int t128 = tid & 127;
  const uint32_t meta_off = ((c * 4 + wq) * 32 + (lane >> 2) * 2 + (lane & 1)) * 4;
  OutT* st = reinterpret_cast<OutT*>(smem + C::kStages * C::kStageBytes + c * kEpiBytes);
  OutT* out = static_cast<OutT*>(a.out);
  constexpr int kPer = 16 / static_cast<int>(sizeof(OutT));   // elements per 16-byte piece
  constexpr int kPieces = 64 / kPer;                          // pieces per column of 64 lines
  float acc[Mma::kRegs];
  int it = 0;
  for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
    int lb, cb;
    tile_of(t, a.line_blocks, a.col_blocks, lb, cb);
#pragma unroll
    for (int i = 0; i < Mma::kRegs; ++i) acc[i] = 0.0f;
    for (int step = 0; step < a.steps; ++step, ++it) {
      const int s = it % C::kStages, round = it / C::kStages;
      mbar_wait(&full[s], round & 1);
      const uint32_t meta_addr = smem_addr(stage_m(s)) + meta_off;
      const uint32_t m0 = ld_shared_u32(meta_addr), m1 = ld_shared_u32(meta_addr + 64);
      const uint32_t a_addr = smem_addr(stage_a(s)) + c * 64 * 64;
      const uint32_t b_addr = smem_addr(stage_b(s));
      wg_fence();
      Mma::run(acc, mat_desc(a_addr, 512, 2), mat_desc(b_addr, 1024, 1), m0, 1);
      Mma::run(acc, mat_desc(a_addr + 32, 512, 2), mat_desc(b_addr + 64, 1024, 1), m1, 1);
      wg_commit();
      // Wait for this stage's MMAs before the next metadata load: the MMA reads its metadata
      // register asynchronously and ptxas does not keep it from being overwritten (seen on the
      // H200: with one group left in flight, 64x256 tiles came out wrong). The other consumer
      // warpgroup's MMAs keep the tensor cores busy meanwhile.
      wg_wait<0>();
      if (lane == 0) mbar_arrive(&empty[s]);
    }

    const int64_t line_base = static_cast<int64_t>(lb) * kBM + c * 64;
    if constexpr (sizeof(OutT) == 2) {
      if (a.stats) {
        // The statistics of the rounded outputs this thread holds: two lines, kBN / 4 columns each,
        // summed in FP32 within the thread (few registers are left beside the accumulators), then
        // over the four lanes that share the lines; one lane writes each line's pair in FP64.
        // Columns past the end are zeros (the input's box reads zeros there) and add nothing.
        float s0 = 0, q0 = 0, s1 = 0, q1 = 0;
#pragma unroll
        for (int i = 0; i < Mma::kRegs; ++i) {
          const float v = __uint_as_float(static_cast<uint32_t>(sat::f32_to_bf16_bits(acc[i])) << 16);
          if ((i >> 1) & 1) {
            s1 += v;
            q1 = fmaf(v, v, q1);
          } else {
            s0 += v;
            q0 = fmaf(v, v, q0);
          }
        }
#pragma unroll
        for (int o = 1; o <= 2; o <<= 1) {
          s0 += __shfl_xor_sync(0xffffffffu, s0, o);
          q0 += __shfl_xor_sync(0xffffffffu, q0, o);
          s1 += __shfl_xor_sync(0xffffffffu, s1, o);
          q1 += __shfl_xor_sync(0xffffffffu, q1, o);
        }
        if ((lane & 3) == 0) {
          const int64_t l0 = line_base + wq * 16 + (lane >> 2), l1 = l0 + 8, sq = static_cast<int64_t>(a.col_blocks) * a.lines;
          double* part = a.stats + static_cast<int64_t>(cb) * a.lines;
          if (l0 < a.lines) {
            part[l0] = s0;
            part[sq + l0] = q0;
          }
          if (l1 < a.lines) {
            part[l1] = s1;
            part[sq + l1] = q1;
          }
        }
      }
      if (a.tma_out) {
        // Epilogue through the copy engine: kTmaCols-column passes into a staging box laid out as
        // the output box (kTmaCols columns x 64 lines of 128 bytes, 128-byte swizzle, so the
        // transposing stores hit distinct banks), then one bulk tensor store per pass, which clips
        // the box at the edges of the output and leaves the threads free for the next tile's MMAs.
        // The staging holds two boxes used in turn, so that a pass waits only for the store two
        // passes back to have read its box (one 64-column box measured 1-3% slower on the
        // ResNet-18 layer4 BP, docs/performance.md).
        constexpr int kBufs = 2;
        unsigned char* stb = reinterpret_cast<unsigned char*>(st);
#pragma unroll
        for (int pass = 0; pass < kBN / kTmaCols; ++pass) {
          unsigned char* buf = stb + (pass % kBufs) * (kTmaCols * 128);
          if (t128 == 0) bulk_wait_read<kBufs - 1>();   // the store that last used `buf` has read it
          asm volatile("bar.sync %0, 128;\n" ::"r"(2 + c) : "memory");
#pragma unroll
          for (int i = 0; i < Mma::kRegs; ++i) {
            if ((i >> 2) * 8 / kTmaCols != pass) continue;
            const int line = wq * 16 + (lane >> 2) + ((i >> 1) & 1) * 8;
            const int col = (i >> 2) * 8 % kTmaCols + (lane & 3) * 2 + (i & 1);
            const int off = col * 128 + ((((line >> 3) ^ (col & 7)) << 4) | ((line & 7) << 1));
            *reinterpret_cast<uint16_t*>(buf + off) = sat::f32_to_bf16_bits(acc[i]);
          }
          fence_async_smem();
          asm volatile("bar.sync %0, 128;\n" ::"r"(2 + c) : "memory");
          if (t128 == 0) {
            tma_store_2d(&tm_out, buf, static_cast<int>(line_base), cb * kBN + pass * kTmaCols);
          }
        }
        continue;
      }
    }
    // Epilogue: transpose through this warpgroup's staging buffer, 16-byte stores of out[p][l].
#pragma unroll
    for (int pass = 0; pass < kBN / E::kPassCols; ++pass) {
      asm volatile("bar.sync %0, 128;\n" ::"r"(2 + c) : "memory");   // staging free again
#pragma unroll
      for (int i = 0; i < Mma::kRegs; ++i) {
        if ((i >> 2) * 8 / E::kPassCols != pass) continue;
        const int line = wq * 16 + (lane >> 2) + ((i >> 1) & 1) * 8;
        const int col = (i >> 2) * 8 % E::kPassCols + (lane & 3) * 2 + (i & 1);
        if constexpr (sizeof(OutT) == 2) st[col * E::kLd + line] = sat::f32_to_bf16_bits(acc[i]);
        else st[col * E::kLd + line] = acc[i];
      }
      asm volatile("bar.sync %0, 128;\n" ::"r"(2 + c) : "memory");
      for (int id = t128; id < E::kPassCols * kPieces; id += 128) {
        const int col = id / kPieces, piece = id % kPieces;
        const int64_t p = static_cast<int64_t>(cb) * kBN + pass * E::kPassCols + col;
        const int64_t l = line_base + piece * kPer;
        if (p >= a.cols || l >= a.lines) continue;
        const OutT* src = st + col * E::kLd + piece * kPer;
        OutT* dst = out + p * a.ld_out + l;
        if (a.vec_out && l + kPer <= a.lines) {
          *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
        } else {
          for (int e = 0; e < kPer && l + e < a.lines; ++e) dst[e] = src[e];
        }
      }
    }
  }
  if (t128 == 0) bulk_wait_all();   // bulk stores done before the CTA's shared memory goes
#else
  (void)tm_a;
  (void)tm_b;
  (void)tm_meta;
  (void)tm_out;
  (void)a;
  __trap();   // the sm_90a build is the only one with wgmma; spmm never launches this elsewhere
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !p) {
      throw Error("spmm (wgmma): the driver has no cuTensorMapEncodeTiled (needs a CUDA 12 or newer driver)");
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

// A 2-D tensor map: dim0 contiguous (dim0 elements), dim1 rows stride1 bytes apart; box box0 x box1.
CUtensorMap make_map(const void* base, CUtensorMapDataType type, uint64_t dim0, uint64_t dim1, uint64_t stride1,
                     uint32_t box0, uint32_t box1, CUtensorMapSwizzle swizzle, const char* what) {
  CUtensorMap m;
  const cuuint64_t dims[2] = {dim0, dim1};
  const cuuint64_t strides[1] = {stride1};
  const cuuint32_t box[2] = {box0, box1};
  const cuuint32_t estr[2] = {1, 1};
  const CUresult r = encode_fn()(&m, type, 2, const_cast<void*>(base), dims, strides, box, estr,
                                 CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                 CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    throw Error(std::string("spmm (wgmma): cuTensorMapEncodeTiled failed for the ") + what + " (CUresult " +
                std::to_string(static_cast<int>(r)) + ", " + std::to_string(dim0) + " x " + std::to_string(dim1) +
                ", stride " + std::to_string(stride1) + " bytes)");
  }
  return m;
}

template <int kCons, int kBN, typename OutT>
int64_t launch(const DevNM& f, const uint16_t* in, int64_t ld_in, int64_t cols, void* out, int64_t ld_out,
               double* stats, cudaStream_t stream) {
  using C = Cfg<kCons, kBN>;
  static std::once_flag once;
  std::call_once(once, [] {
    SAT_CUDA_CHECK(cudaFuncSetAttribute(spmm_wgmma_kernel<kCons, kBN, OutT>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem));
  });
  // Boxes past the end of a tensor (lines beyond lines_pad, columns beyond cols) read as zeros.
  const CUtensorMap ma = make_map(f.v24, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, f.len_pad / 2, f.lines_pad,
                                  f.len_pad, kBK / 2, C::kBM, CU_TENSOR_MAP_SWIZZLE_64B, "weight");
  const CUtensorMap mb = make_map(in, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, f.len_pad, cols, ld_in * 2, kBK, kBN,
                                  CU_TENSOR_MAP_SWIZZLE_128B, "input");
  const CUtensorMap mm = make_map(f.meta24, CU_TENSOR_MAP_DATA_TYPE_UINT32, f.len_pad / 2, f.lines_pad / 16,
                                  f.len_pad * 2, 32, C::kBM / 16, CU_TENSOR_MAP_SWIZZLE_NONE, "metadata");
  WgArgs a{};
  a.lines = f.lines;
  a.cols = cols;
  a.ld_out = ld_out;
  a.steps = static_cast<int>(f.len_pad / kBK);
  a.line_blocks = static_cast<int>(ceil_div(f.lines_pad, C::kBM));
  a.col_blocks = static_cast<int>(ceil_div(cols, kBN));
  constexpr int kPer = 16 / static_cast<int>(sizeof(OutT));
  a.vec_out = reinterpret_cast<uintptr_t>(out) % 16 == 0 && ld_out % kPer == 0;
  a.tma_out = sizeof(OutT) == 2 && a.vec_out && std::getenv("SAT_WGMMA_NO_TMA_STORE") == nullptr;
  a.out = out;
  a.stats = sizeof(OutT) == 2 ? stats : nullptr;
  // The output as a tensor (lines contiguous, columns ld_out apart) for the bulk stores; a valid
  // dummy map where they are not used.
  const CUtensorMap mo = a.tma_out ? make_map(out, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, f.lines, cols, ld_out * 2, 64,
                                              kTmaCols, CU_TENSOR_MAP_SWIZZLE_128B, "output")
                                   : mm;
  const int64_t tiles = static_cast<int64_t>(a.line_blocks) * a.col_blocks;
  const int64_t grid = tiles < sm_count() ? tiles : sm_count();   // one CTA per multiprocessor
  spmm_wgmma_kernel<kCons, kBN, OutT><<<static_cast<unsigned>(grid), C::kThreads, C::kSmem, stream>>>(ma, mb, mm, mo, a);
  SAT_CUDA_LAUNCHED("spmm_wgmma_kernel");
  return a.stats ? a.col_blocks : 0;
}

// The CTA tiles (lines x columns) the kernel is built for.
enum class WgTile { t128x128, t128x256, t256x128 };

template <typename OutT>
int64_t launch_tile(WgTile t, const DevNM& f, const uint16_t* in, int64_t ld_in, int64_t cols, void* out,
                    int64_t ld_out, double* stats, cudaStream_t stream) {
  switch (t) {
    case WgTile::t128x128: return launch<2, 128, OutT>(f, in, ld_in, cols, out, ld_out, stats, stream);
    case WgTile::t128x256: return launch<2, 256, OutT>(f, in, ld_in, cols, out, ld_out, stats, stream);
    case WgTile::t256x128: return launch<4, 128, OutT>(f, in, ld_in, cols, out, ld_out, stats, stream);
  }
  return 0;
}

// Fraction of the multiprocessors' tile slots doing useful lines: tiles over (waves x SMs), times
// the share of real lines in the line blocks.
double tile_efficiency(int64_t lines, int64_t cols, int bm, int bn) {
  const int64_t lb = ceil_div(lines, bm), tiles = lb * ceil_div(cols, bn);
  const int64_t waves = ceil_div(tiles, sm_count());
  return double(tiles) / double(waves * sm_count()) * double(lines) / double(lb * bm);
}

// SAT_WGMMA_TILE=128x128|128x256|256x128 forces a tile (for measurements and tests); otherwise the
// larger tiles unless they leave clearly more of the GPU idle.
WgTile pick_tile(const DevNM& f, int64_t cols) {
  const char* e = std::getenv("SAT_WGMMA_TILE");
  if (e && *e) {
    const std::string v = e;
    if (v == "128x128") return WgTile::t128x128;
    if (v == "128x256") return WgTile::t128x256;
    if (v == "256x128") return WgTile::t256x128;
    throw Error("SAT_WGMMA_TILE='" + v + "': expected 128x128, 128x256 or 256x128");
  }
  // Measured on the H200 (docs/performance.md): 256x128 (four consumer warpgroups) beats 128x256
  // and 128x128 on every large layer; 128x128 only helps when the others leave the GPU idle.
  const double e256x128 = tile_efficiency(f.lines, cols, 256, 128);
  const double e128x256 = tile_efficiency(f.lines, cols, 128, 256);
  const double e128x128 = tile_efficiency(f.lines, cols, 128, 128);
  if (e256x128 >= 0.9 * e128x128 && e256x128 >= 0.9 * e128x256) return WgTile::t256x128;
  if (e128x256 >= 0.9 * e128x128) return WgTile::t128x256;
  return WgTile::t128x128;
}

bool wgmma_available() {
  static const bool ok = [] {
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) return false;
    return major == 9 && minor == 0;   // sm_90a code runs on compute capability 9.0 only
  }();
  return ok;
}

}  // namespace

std::string wgmma_unusable(const DevNM& a, const uint16_t* in, int64_t ld_in) {
  if (!a.sp24) return "the weight has no 2:4 re-packed form (" + a.nm.str() + ": N must be <= 2)";
  if (!wgmma_available()) return "the device is not compute capability 9.0 (the wgmma code is built for sm_90a)";
  if (sp24_meta_layout() != 0) return "the 2:4 metadata is in the alternative layout (SAT_SP24_META=1), which it does not read";
  if (reinterpret_cast<uintptr_t>(in) % 16 != 0) return "the input is not 16-byte aligned";
  if (ld_in % 8 != 0) return "the input's leading dimension is not a multiple of 8";
  return "";
}

int64_t launch_spmm_wgmma(const DevNM& a, const uint16_t* in, int64_t ld_in, int64_t cols, void* out, bool out_bf16,
                          int64_t ld_out, double* stats, cudaStream_t stream) {
  const WgTile t = pick_tile(a, cols);
  if (out_bf16) return launch_tile<uint16_t>(t, a, in, ld_in, cols, out, ld_out, stats, stream);
  return launch_tile<float>(t, a, in, ld_in, cols, out, ld_out, nullptr, stream);
}

}  // namespace sat::cuda
