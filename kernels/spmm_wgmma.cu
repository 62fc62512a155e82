// Sparse x dense product on Hopper's warpgroup sparse tensor cores (wgmma.mma_async.sp, sm_90a),
// over the re-packed 2:4 form of an N:M weight with N <= 2 (DevNM::v24/meta24, the same arrays the
// mma.sp kernel reads).
//
// A CTA computes kBM lines x kBN columns with one producer and two or four consumer warpgroups
// (128 x 256, 128 x 128, 256 x 128; or 64 x 256 for products of 64 lines, whose two consumers share
// the lines and split the columns). With 128 x kBN:
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

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>

#include "common.cuh"
#include "env_setting.hpp"
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

// A CTA: kCons consumer warpgroups of 64 lines x kBN columns each, plus the producer. The consumers
// stack their lines (kBM = 64 kCons lines x kBN columns), or, with kSplit, share one 64-line block
// and put their columns side by side (64 lines x kCons kBN columns): a product of 64 lines (a
// convolution with 64 output channels, or BP into 64 input channels) would leave half of a
// 128-line tile's MMAs on padding.
template <int kCons, int kBN, bool kSplit = false>
struct Cfg {
  static constexpr int kBM = kSplit ? 64 : 64 * kCons;
  static constexpr int kCols = kSplit ? kBN * kCons : kBN;   // columns of a tile
  static constexpr int kThreads = 128 * (kCons + 1);
  static constexpr int kBBytes = kCols * kBK * 2;        // kCols rows of 128 bytes
  static constexpr int kABytes = kBM * kBK;              // kBM lines x 32 BF16 = 64 bytes each
  static constexpr int kMetaBytes = kBM / 16 * 2 * 64;   // per 16 lines: 2 k32 x 16 words
  static constexpr int kLoadBytes = kBBytes + kABytes + kMetaBytes;   // what a stage's copies bring
  static constexpr int kStageBytes = (kLoadBytes + 1023) / 1024 * 1024;
  static constexpr int kStages = 5;
  static_assert(kCols <= 256, "a tensor copy's box has at most 256 rows");
  static constexpr int kSmem = kStages * kStageBytes + kCons * kEpiBytes + 1024;   // + slack to align to 1024
  // Registers: the CTA starts with the launch bound's cap per thread (ptxas assigns exactly that
  // when setmaxnreg is used); the producer drops to 24 and the consumers may only take what it
  // frees: setmaxnreg.inc waits until registers are free, so asking for more hangs the CTA.
  static constexpr int kLaunchRegs = 65536 / kThreads / 8 * 8;
  static constexpr int kFree = kLaunchRegs * kThreads - 128 * 24;
  static constexpr int kConsumerRegs = kFree / (128 * kCons) / 8 * 8 > 240 ? 240 : kFree / (128 * kCons) / 8 * 8;
  static_assert(kConsumerRegs >= kBN / 2 + 48, "too few registers for a consumer's accumulators");
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
  int stat_blocks;   // column blocks of the statistics: one per consumer's kBN columns
  bool vec_out;   // out and ld_out allow 16-byte stores
  bool tma_out;   // BF16 output written by bulk tensor stores (tm_out), see the epilogue
  void* out;
  // BF16 output only, may be null: per statistics block b (kBN columns) and line l, the sum and the
  // sum of squares of the block's rounded outputs, stats[b * lines + l] and
  // stats[(stat_blocks + b) * lines + l]
  // (BatchNorm's column partials, layer_ops.hpp, taken from the product's epilogue).
  double* stats;
  // The implicit form (tm_b an im2col map over a channels-last image, spmm_implicit): the K step's
  // kernel position and channel block come from its index, a tile's first position from cb.
  bool implicit;
  int im_cblocks;              // channels / 64: K steps per kernel position
  int im_k, im_pad;            // kernel size, the lowering's padding (the window corner's offset)
  int im_oh, im_ow;            // output positions per image
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
template <int kCons, int kBN, bool kSplit, typename OutT>
__global__ void __launch_bounds__(Cfg<kCons, kBN, kSplit>::kThreads, 1)
    spmm_wgmma_kernel(const __grid_constant__ CUtensorMap tm_a, const __grid_constant__ CUtensorMap tm_b,
                      const __grid_constant__ CUtensorMap tm_meta, const __grid_constant__ CUtensorMap tm_out,
                      WgArgs a) {
#ifdef SAT_WGMMA_DEVICE
  using C = Cfg<kCons, kBN, kSplit>;
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
        int n0 = 0, y0 = 0, x0 = 0;   // implicit: the tile's first output position (image, row, column)
        if (a.implicit) {
          const int p0 = cb * C::kCols, per_image = a.im_oh * a.im_ow;
          n0 = p0 / per_image;
          y0 = (p0 - n0 * per_image) / a.im_ow;
          x0 = p0 - n0 * per_image - y0 * a.im_ow;
        }
        for (int step = 0; step < a.steps; ++step, ++it) {
          const int s = it % C::kStages, round = it / C::kStages;
          mbar_wait(&empty[s], (round & 1) ^ 1);
          mbar_expect_tx(&full[s], C::kLoadBytes);
          if (a.implicit) {
            // K order (ky, kx, c): step = (ky * k + kx) * cblocks + channel block
            const int tap = step / a.im_cblocks, c0 = (step - tap * a.im_cblocks) * kBK;
            const int ky = tap / a.im_k, kx = tap - ky * a.im_k;
            tma_load_im2col_4d(stage_b(s), &tm_b, c0, x0 - a.im_pad, y0 - a.im_pad, n0, static_cast<uint16_t>(kx),
                               static_cast<uint16_t>(ky), &full[s]);
          } else {
            tma_load_2d(stage_b(s), &tm_b, step * kBK, cb * C::kCols, &full[s]);
          }
          tma_load_2d(stage_a(s), &tm_a, step * (kBK / 2), lb * kBM, &full[s]);
          tma_load_2d(stage_m(s), &tm_meta, step * 32, lb * (kBM / 16), &full[s]);
        }
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(C::kConsumerRegs));
  const int c = wg - 1;                  // consumer: lines c*64 .. c*64+63 of a tile (kSplit: columns c*kBN ..)
  const int c_line = kSplit ? 0 : c;     // its 64-line block within the tile
  const int c_col = kSplit ? c : 0;      // its kBN-column block within the tile
  const int wq = (tid >> 5) & 3;         // warp within the warpgroup: 16 lines
  const int t128 = tid & 127;
  const uint32_t meta_off = ((c_line * 4 + wq) * 32 + (lane >> 2) * 2 + (lane & 1)) * 4;
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
      const uint32_t a_addr = smem_addr(stage_a(s)) + c_line * 64 * 64;
      const uint32_t b_addr = smem_addr(stage_b(s)) + c_col * kBN * 128;   // kBN rows of 128 bytes
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

    const int64_t line_base = static_cast<int64_t>(lb) * kBM + c_line * 64;
    const int64_t col_base = static_cast<int64_t>(cb) * C::kCols + c_col * kBN;
    const int stat_block = cb * (C::kCols / kBN) + c_col;
    if constexpr (sizeof(OutT) == 2) {
      if (a.stats && stat_block < a.stat_blocks) {
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
          const int64_t l0 = line_base + wq * 16 + (lane >> 2), l1 = l0 + 8, sq = static_cast<int64_t>(a.stat_blocks) * a.lines;
          double* part = a.stats + static_cast<int64_t>(stat_block) * a.lines;
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
            tma_store_2d(&tm_out, buf, static_cast<int>(line_base), static_cast<int>(col_base) + pass * kTmaCols);
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
        const int64_t p = col_base + pass * E::kPassCols + col;
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

// A CUDA 12 driver entry point (the tensor-map encoders are driver API; the runtime hands them out
// so that the kernels need not link libcuda).
template <typename Fn>
Fn driver_fn(const char* name) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult q{};
  const cudaError_t e = cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &q);
  if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !p) {
    throw Error(std::string("spmm (wgmma): the driver has no ") + name + " (needs a CUDA 12 or newer driver)");
  }
  return reinterpret_cast<Fn>(p);
}

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static const auto fn = driver_fn<PFN_cuTensorMapEncodeTiled_v12000>("cuTensorMapEncodeTiled");
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

// The im2col map of a channels-last BF16 image [nb][ih][iw][ch] for the implicit product: boxes of
// `pixels` output positions x 64 channels (128 bytes, 128-byte swizzle: the layout of the lowered
// input's stage), the window's corner running from -pad to (the output's size - 1 - pad).
CUtensorMap make_im2col_map(const uint16_t* img, const ImplicitConv& g, uint32_t pixels) {
  static const auto fn = driver_fn<PFN_cuTensorMapEncodeIm2col_v12000>("cuTensorMapEncodeIm2col");
  CUtensorMap m;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(g.ch), static_cast<cuuint64_t>(g.iw),
                              static_cast<cuuint64_t>(g.ih), static_cast<cuuint64_t>(g.nb)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(g.ch * 2), static_cast<cuuint64_t>(g.iw * g.ch * 2),
                                 static_cast<cuuint64_t>(g.ih * g.iw * g.ch * 2)};
  // the corner of the window of output position (y, x) is (y - pad, x - pad); the last is at
  // (oh - 1 - pad) = (ih - 1) + (oh - ih - pad)
  const int lower[2] = {-static_cast<int>(g.pad), -static_cast<int>(g.pad)};
  const int upper[2] = {static_cast<int>(g.ow - g.iw - g.pad), static_cast<int>(g.oh - g.ih - g.pad)};
  const cuuint32_t estr[4] = {1, 1, 1, 1};
  const CUresult r = fn(&m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<uint16_t*>(img), dims, strides, lower, upper,
                        static_cast<cuuint32_t>(kBK), pixels, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    throw Error("spmm (wgmma, implicit): cuTensorMapEncodeIm2col failed (CUresult " + std::to_string(static_cast<int>(r)) +
                ") for the image " + std::to_string(g.nb) + " x " + std::to_string(g.ih) + " x " + std::to_string(g.iw) +
                " x " + std::to_string(g.ch) + ", kernel " + std::to_string(g.k) + ", padding " + std::to_string(g.pad));
  }
  return m;
}

template <int kCons, int kBN, bool kSplit, typename OutT>
int64_t launch(const DevNM& f, const uint16_t* in, int64_t ld_in, int64_t cols, void* out, int64_t ld_out,
               double* stats, cudaStream_t stream, const ImplicitConv* im) {
  using C = Cfg<kCons, kBN, kSplit>;
  static std::once_flag once;
  std::call_once(once, [] {
    SAT_CUDA_CHECK(cudaFuncSetAttribute(spmm_wgmma_kernel<kCons, kBN, kSplit, OutT>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem));
  });
  // Boxes past the end of a tensor (lines beyond lines_pad, columns beyond cols) read as zeros.
  const CUtensorMap ma = make_map(f.v24, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, f.len_pad / 2, f.lines_pad,
                                  f.len_pad, kBK / 2, C::kBM, CU_TENSOR_MAP_SWIZZLE_64B, "weight");
  const CUtensorMap mb = im ? make_im2col_map(in, *im, C::kCols)
                            : make_map(in, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, f.len_pad, cols, ld_in * 2, kBK, C::kCols,
                                       CU_TENSOR_MAP_SWIZZLE_128B, "input");
  const CUtensorMap mm = make_map(f.meta24, CU_TENSOR_MAP_DATA_TYPE_UINT32, f.len_pad / 2, f.lines_pad / 16,
                                  f.len_pad * 2, 32, C::kBM / 16, CU_TENSOR_MAP_SWIZZLE_NONE, "metadata");
  WgArgs a{};
  a.lines = f.lines;
  a.cols = cols;
  a.ld_out = ld_out;
  a.steps = static_cast<int>(f.len_pad / kBK);
  a.line_blocks = static_cast<int>(ceil_div(f.lines, C::kBM));   // lines_pad is a multiple of 128: a 64-line tile stops at the last real block
  a.col_blocks = static_cast<int>(ceil_div(cols, C::kCols));
  a.stat_blocks = static_cast<int>(ceil_div(cols, kBN));   // a split tile's second half past the end writes none
  constexpr int kPer = 16 / static_cast<int>(sizeof(OutT));
  a.vec_out = reinterpret_cast<uintptr_t>(out) % 16 == 0 && ld_out % kPer == 0;
  a.tma_out = sizeof(OutT) == 2 && a.vec_out && std::getenv("SAT_WGMMA_NO_TMA_STORE") == nullptr;
  a.out = out;
  a.stats = sizeof(OutT) == 2 ? stats : nullptr;
  if (im) {
    a.implicit = true;
    a.im_cblocks = static_cast<int>(im->ch / kBK);
    a.im_k = static_cast<int>(im->k);
    a.im_pad = static_cast<int>(im->pad);
    a.im_oh = static_cast<int>(im->oh);
    a.im_ow = static_cast<int>(im->ow);
  }
  // The output as a tensor (lines contiguous, columns ld_out apart) for the bulk stores; a valid
  // dummy map where they are not used.
  const CUtensorMap mo = a.tma_out ? make_map(out, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, f.lines, cols, ld_out * 2, 64,
                                              kTmaCols, CU_TENSOR_MAP_SWIZZLE_128B, "output")
                                   : mm;
  const int64_t tiles = static_cast<int64_t>(a.line_blocks) * a.col_blocks;
  const int64_t grid = tiles < sm_count() ? tiles : sm_count();   // one CTA per multiprocessor
  spmm_wgmma_kernel<kCons, kBN, kSplit, OutT><<<static_cast<unsigned>(grid), C::kThreads, C::kSmem, stream>>>(ma, mb, mm, mo, a);
  SAT_CUDA_LAUNCHED("spmm_wgmma_kernel");
  return a.stats ? a.stat_blocks : 0;
}

// The CTA tiles (lines x columns) the kernel is built for.
enum class WgTile { t128x128, t128x256, t256x128, t64x256 };

template <typename OutT>
int64_t launch_tile(WgTile t, const DevNM& f, const uint16_t* in, int64_t ld_in, int64_t cols, void* out,
                    int64_t ld_out, double* stats, cudaStream_t stream, const ImplicitConv* im = nullptr) {
  switch (t) {
    case WgTile::t128x128: return launch<2, 128, false, OutT>(f, in, ld_in, cols, out, ld_out, stats, stream, im);
    case WgTile::t128x256: return launch<2, 256, false, OutT>(f, in, ld_in, cols, out, ld_out, stats, stream, im);
    case WgTile::t256x128: return launch<4, 128, false, OutT>(f, in, ld_in, cols, out, ld_out, stats, stream, im);
    case WgTile::t64x256: return launch<2, 128, true, OutT>(f, in, ld_in, cols, out, ld_out, stats, stream, im);
  }
  return 0;
}

// Whether the automatic choice may take the 64 x 256 tile: on since its tests passed on an H100 and
// the ResNet-18 BDWP step at batch 512 measured 15.0-15.1 ms with it against 15.4-15.5 without
// (docs/performance.md, 2026-12-07).
constexpr bool kTile64ByDefault = true;

// Fraction of the multiprocessors' tile slots doing useful lines: tiles over (waves x SMs), times
// the share of real lines in the line blocks.
double tile_efficiency(int64_t lines, int64_t cols, int bm, int bn) {
  const int64_t lb = ceil_div(lines, bm), tiles = lb * ceil_div(cols, bn);
  const int64_t waves = ceil_div(tiles, sm_count());
  return double(tiles) / double(waves * sm_count()) * double(lines) / double(lb * bm);
}

// SAT_WGMMA_TILE=128x128|128x256|256x128|64x256 forces a tile (for measurements and tests);
// otherwise the larger tiles unless they leave clearly more of the GPU idle. 64 x 256 is for
// products of at most 64 lines, where every 128-line tile computes half padding.
WgTile pick_tile(const DevNM& f, int64_t cols) {
  const char* e = std::getenv("SAT_WGMMA_TILE");
  if (e && *e) {
    const std::string v = e;
    if (v == "128x128") return WgTile::t128x128;
    if (v == "128x256") return WgTile::t128x256;
    if (v == "256x128") return WgTile::t256x128;
    if (v == "64x256") return WgTile::t64x256;
    throw Error("SAT_WGMMA_TILE='" + v + "': expected 128x128, 128x256, 256x128 or 64x256");
  }
  // Measured on the H200 (docs/performance.md): 256x128 (four consumer warpgroups) beats 128x256
  // and 128x128 on every large layer; 128x128 only helps when the others leave the GPU idle.
  const double e256x128 = tile_efficiency(f.lines, cols, 256, 128);
  const double e128x256 = tile_efficiency(f.lines, cols, 128, 256);
  const double e128x128 = tile_efficiency(f.lines, cols, 128, 128);
  const double e64x256 = tile_efficiency(f.lines, cols, 64, 256);
  // SAT_WGMMA_64=0|1 leaves the 64-line tile out of the choice or lets it in (comparisons);
  // unset: kTile64ByDefault.
  static const bool allow64 = env_switch("SAT_WGMMA_64", "1", "0", kTile64ByDefault);
  if (allow64 && e64x256 >= 1.5 * std::max({e256x128, e128x256, e128x128})) return WgTile::t64x256;
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

std::string implicit_unusable(const DevNM& a, const uint16_t* img, const ImplicitConv& g) {
  if (g.nb < 1 || g.ch < 1 || g.ih < 1 || g.iw < 1 || g.k < 1 || g.oh < 1 || g.ow < 1) return "an empty geometry";
  if (g.ch % kBK != 0) return "the channels (" + std::to_string(g.ch) + ") are not a multiple of 64";
  const int64_t upper_h = g.oh - g.ih - g.pad, upper_w = g.ow - g.iw - g.pad;   // rank 4: corners in [-128, 127]
  if (g.pad < 0 || g.pad > 128 || upper_h < -128 || upper_h > 127 || upper_w < -128 || upper_w > 127) {
    return "the padding is outside what an im2col tensor map holds";
  }
  if (a.len != g.k * g.k * g.ch) return "the form's line length is not k*k*channels";
  return wgmma_unusable(a, img, kBK);   // the form, the device, the image's alignment
}

void spmm_implicit(const DevNM& a, const uint16_t* img, const ImplicitConv& g, uint16_t* out, int64_t ld_out,
                   cudaStream_t stream) {
  if (const std::string why = implicit_unusable(a, img, g); !why.empty()) {
    throw Error("spmm_implicit: the implicit product cannot run: " + why);
  }
  if (ld_out < a.lines) throw Error("spmm_implicit: the output's leading dimension is below the line count");
  const int64_t cols = g.nb * g.oh * g.ow;
  if (cols > INT32_MAX) throw Error("spmm_implicit: over 2^31 output positions");
  launch_tile<uint16_t>(pick_tile(a, cols), a, img, 0, cols, out, ld_out, nullptr, stream, &g);
}

}  // namespace sat::cuda
