#pragma once
// The host-callable interface of the CUDA kernels (kernels/*.cu). Plain C++: users (the backend,
// tests, the benchmark) need no CUDA compiler. All pointers are device pointers; every call is
// asynchronous on `stream` (0: the legacy default stream) and throws sat::Error on a launch error.
// Design and numerics: docs/cuda.md.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "sat/conv_geometry.hpp"
#include "sat/nm.hpp"
#include "sat/arch/sgd_rule.hpp"

namespace sat::cuda {

// Tile sizes the products are built around. Operands are padded to them so that the kernels need
// no bounds checks along the reduction: the dense input of a product has its rows padded with zeros
// to a multiple of kTileK columns, and the re-packed 2:4 form has its lines padded to kTileLines.
inline constexpr int kTileLines = 128;
inline constexpr int kTileCols = 128;
inline constexpr int kTileK = 64;

// Leading dimension (elements) of the BF16 dense input of a product whose reduction length is `len`.
inline int64_t padded_len(int64_t len) { return (len + kTileK - 1) / kTileK * kTileK; }

// Whether an N:M setting can run on the 2:4 sparse tensor cores: every aligned group of 4 then holds
// at most 2 kept weights. True for N <= 2 (1:2, 1:4, 2:4, 1:8, 2:8, 1:16, 2:16), false otherwise
// (3:4, 3:8, 4:8, 4:16, ...), which use the general kernel.
inline bool sp24_eligible(NM nm) { return !nm.dense() && nm.n <= 2; }

// One pruned axis of W[cout][k] on the device.
//  - values/index: the NMCompressed layout of docs/nm-format.md (values as BF16 bits, indices packed
//    4 bits each, low nibble first), so that masks compare with the CPU's exactly;
//  - v24/meta24 (when sp24): the same kept weights re-packed for mma.sp: per line, per aligned group
//    of 4 along the line, two BF16 values (a zero where fewer than 2 are kept) and their 2-bit
//    positions; lines padded to lines_pad (multiple of kTileLines), length to len_pad (multiple of
//    kTileK). meta24 holds, for each tile of 16 lines x 32 positions, the 16 32-bit words of the
//    mma.sp metadata in the order the threads of a warp read them (docs/cuda.md).
// Where the metadata of the 2:4 form lives in mma.sp's per-thread words. For a tile of 16 lines x 32
// positions (8 groups of 4 per line, 4 bits per group: first kept position in bits 0-1, second in
// bits 2-3), word t (0..15; read by lane 2*(t/2) + t%2 of each quad, sparsity selector 0) holds 8
// groups; slot i (0..7) of word t is the group of line `line`, group `group` (0..7 along the 32
// positions) at bit `bit`. Layout 0 (default): lanes 0 and 1 of quad q hold lines q and q+8, lane 0
// groups 0-3, lane 1 groups 4-7, line q in bits 0-15. Layout 1 (alternative, for the probe test):
// lane 0 holds line q, lane 1 line q+8, all 8 groups each. SAT_SP24_META=1 selects layout 1.
struct MetaSlot {
  int line, group, bit;
};
SAT_HD inline MetaSlot sp24_meta_slot(int layout, int t, int i) {
  const int q = t >> 1, h = t & 1;
  if (layout == 0) return {q + (i >> 2) * 8, h * 4 + (i & 3), (i >> 2) * 16 + (i & 3) * 4};
  return {q + h * 8, i, i * 4};
}
// The inverse of sp24_meta_slot: the word t (0..15) and bit of the group `group` (0..7 along a
// tile's 32 positions) of line `line` (0..15 of the tile).
struct MetaLocation {
  int t, bit;
};
SAT_HD inline MetaLocation sp24_meta_locate(int layout, int line, int group) {
  if (layout == 0) return {2 * (line & 7) + (group >> 2), (line >> 3) * 16 + (group & 3) * 4};
  return {2 * (line & 7) + (line >> 3), group * 4};
}
int sp24_meta_layout();   // from SAT_SP24_META (default 0)

struct DevNM {
  NM nm{1, 1};
  Axis axis = Axis::K;
  int64_t lines = 0, len = 0, groups = 0;
  uint16_t* values = nullptr;   // [lines * groups * n]
  uint8_t* index = nullptr;     // [(nnz + 1) / 2]
  bool sp24 = false;
  int64_t lines_pad = 0, len_pad = 0;
  uint16_t* v24 = nullptr;      // [lines_pad][len_pad / 2]
  uint32_t* meta24 = nullptr;   // [lines_pad / 16][len_pad / 32][16]
  int64_t nnz() const { return lines * groups * nm.n; }
};

// Allocates the arrays of a DevNM for a [cout][k] weight pruned along `axis` (sp24 form when
// sp24_eligible and `with_sp24`); frees them again.
DevNM alloc_devnm(int64_t cout, int64_t k, NM nm, Axis axis, bool with_sp24);
void free_devnm(DevNM& d);

// Pre-generation: ONE pass over the FP32 master W[cout][k] (tiles staged in shared memory) that
// produces whichever of these outputs are non-null: the forward form (groups along K), the backward
// form (groups along Cout), the keep-mask of the forward form (bytes, 1 = kept), and a dense BF16
// copy of W (zeros where the forward form prunes, when dense_pruned). Selection is the N:M core's
// (sat/nm_select.hpp, compiled for the device). nm must not be dense unless only `dense` is asked.
struct PregenOut {
  DevNM* fwd = nullptr;
  DevNM* bwd = nullptr;
  uint8_t* mask_f = nullptr;
  uint16_t* dense = nullptr;
  bool dense_pruned = false;
};
void pregen(const float* w, int64_t cout, int64_t k, NM nm, const PregenOut& out,
            cudaStream_t stream = 0);

// Sparse x dense product over the lines of a pruned weight:
//   out[p][l] = sum over kept (l, i) of value(l, i) * in[p][i]      (p < cols, l < a.lines)
// in: BF16 [cols][ld_in], ld_in >= padded_len(a.len), ld_in % 8 == 0, columns >= a.len zero.
// out: FP32 or BF16 (out_bf16) [cols][ld_out]. FP32 accumulation.
//   FF: a = forward form, in = X [P][K], out = Y [P][Cout];
//   BP: a = backward form, in = dY [P][Cout], out = dX [P][K].
//   Kernels: wgmma = Hopper's warpgroup sparse MMA (sm_90a; N <= 2), sp24 = mma.sp (any GPU with
//   sparse tensor cores; N <= 2), general = dense-tile expansion (any N:M). automatic picks the first
//   that applies.
//   line_stats (may be null): where the wgmma kernel writes a BF16 output, it also gives each line's
//   statistics over the columns, for a BatchNorm that follows (BatchNorm's column partials,
//   layer_ops.hpp): per column block b of its tile and line l, the sum and the sum of squares of
//   the rounded outputs at line_stats[b * lines + l] and [(blocks + b) * lines + l], summed in FP32
//   within the block. Returns the number of blocks (at most spmm_stat_blocks), or 0 where the
//   kernel that ran gave none.
enum class SpmmKernel { automatic, wgmma, sp24, general };
const char* spmm_kernel_name(SpmmKernel k);
int64_t spmm(const DevNM& a, const uint16_t* in, int64_t ld_in, int64_t cols, void* out, bool out_bf16,
             int64_t ld_out, SpmmKernel which = SpmmKernel::automatic, cudaStream_t stream = 0,
             double* line_stats = nullptr);
// The most column blocks spmm's line statistics of `cols` columns take (the narrowest tile's).
int64_t spmm_stat_blocks(int64_t cols);
// Which kernel `automatic` picks for a form (and the input pointer and leading dimension, which
// the wgmma kernel's tensor maps need 16-byte aligned).
SpmmKernel spmm_choice(const DevNM& a, const uint16_t* in, int64_t ld_in);
// Empty when the wgmma kernel can run this product; otherwise why not.
std::string wgmma_unusable(const DevNM& a, const uint16_t* in, int64_t ld_in);

// The product over a convolution's lowering that is never written (implicit GEMM): the input's
// tiles come from a channels-last BF16 image through the copy engine's im2col mode, in the
// lowering's K order (ky, kx, c), channel-minor. For a stride-1 convolution of `img`
// [nb][ih][iw][ch] with a k x k kernel and padding pad on the top and left (oh x ow positions; the
// padding on the bottom and right is whatever oh and ow need, down to none):
//   out[p][l] = sum over (ky, kx, c) of a(l, (ky*k + kx)*ch + c) * img[n][y - pad + ky][x - pad + kx][c]
// for p = (n*oh + y)*ow + x, pixels outside the image zero: the same bits as spmm over those rows.
// BF16 output [nb*oh*ow][ld_out]; wgmma kernel only (implicit_unusable says why not).
// The transposed BP (conv_dgrad.cu) is such a convolution of dY, channel-minor by construction.
struct ImplicitConv {
  int64_t nb = 0, ch = 0, ih = 0, iw = 0;   // the image
  int64_t k = 0, pad = 0;                   // kernel size, padding
  int64_t oh = 0, ow = 0;                   // output positions per image
};
std::string implicit_unusable(const DevNM& a, const uint16_t* img, const ImplicitConv& g);
void spmm_implicit(const DevNM& a, const uint16_t* img, const ImplicitConv& g, uint16_t* out, int64_t ld_out,
                   cudaStream_t stream = 0);

// Layout and type conversions (memory-bound helpers).
// in FP32 [feat][cols] (feature-major, the CPU layers' layout) -> out BF16 [cols][ld_out], columns
// feat..ld_out-1 zero.
void fm_f32_to_rm_bf16(const float* in, int64_t feat, int64_t cols, uint16_t* out, int64_t ld_out,
                       cudaStream_t stream = 0);
// in FP32 [rows][cols] -> out BF16 [rows][ld_out], columns cols..ld_out-1 zero.
void rm_f32_to_rm_bf16(const float* in, int64_t rows, int64_t cols, uint16_t* out, int64_t ld_out,
                       cudaStream_t stream = 0);
// in FP32 [cols][ld_in] -> out FP32 [feat][cols] (transpose of the first feat columns).
void rm_f32_to_fm_f32(const float* in, int64_t cols, int64_t feat, int64_t ld_in, float* out,
                      cudaStream_t stream = 0);
// BF16 bits -> FP32, n elements.
void bf16_to_f32(const uint16_t* in, float* out, int64_t n, cudaStream_t stream = 0);

// Convolution lowering (sat/conv_geometry.hpp's layout) on the device.
// x FP32 [nb][cin][h][w] -> out BF16 [nb*oh*ow][ld_out], the lowered matrix transposed (a product's
// input rows), columns cin*k*k..ld_out-1 zero.
void im2col_bf16(const float* x, const ConvGeometry& g, int64_t nb, uint16_t* out, int64_t ld_out,
                 cudaStream_t stream = 0);
// dcol FP32 [nb*oh*ow][ld_dcol] (a BP product's output rows) -> dx FP32 [nb][cin][h][w], each pixel
// the sum of its entries in the host col2im's order.
void col2im_f32(const float* dcol, int64_t ld_dcol, const ConvGeometry& g, int64_t nb, float* dx,
                cudaStream_t stream = 0);

// SGD with momentum and weight decay plus the SR-STE term (DESIGN §3) by the rule every backend
// shares (sat/sgd_rule.hpp), bit-identical to the CPU's: g' = g + wd*w (+ lambda*w where
// mask_f == 0), v = mu*v + g', w -= lr*v. mask_f may be null (no SR-STE term). Sets *nonfinite to
// 1 when some updated w is not finite.
// h_dev (may be null): the hyperparameters in device memory, read by the kernel instead of h, so
// that a captured CUDA graph replays with each step's learning rate.
void sgd_update(float* w, float* v, const float* g, const uint8_t* mask_f, int64_t n, const SgdHyper& h,
                int* nonfinite, cudaStream_t stream = 0, const SgdHyper* h_dev = nullptr);

// The same update of a sparse weight W[cout][k] fused with its pre-generation: one pass that reads
// W, v, g (and the SR-STE mask) once, writes W and v, and selects the outputs of `out` from the
// updated W while it is on chip. The results equal sgd_update followed by pregen, bit for bit.
// u.mask (FF's mask before the update) may be out.mask_f itself: each element's old mask byte is
// read before its new one is written.
struct SgdArgs {
  float* v = nullptr;             // momentum [cout * k]
  const float* g = nullptr;       // gradient [cout * k]
  const uint8_t* mask = nullptr;  // null: no SR-STE term
  SgdHyper h;
  int* nonfinite = nullptr;       // set to 1 when some updated weight is not finite
  const SgdHyper* h_dev = nullptr;   // when set, read instead of h (device memory; see sgd_update)
};
void update_pregen(float* w, const SgdArgs& u, int64_t cout, int64_t k, NM nm, const PregenOut& out,
                   cudaStream_t stream = 0);

// Softmax cross-entropy per sample (double inside, like the CPU): row_loss[i] = log(sum exp) -
// (z_y - max), row_correct[i] = (first argmax == y), dlogits[i][j] = (p_ij - [j == y]) / b (FP32,
// may be null). Labels are checked on the host before.
void softmax_xent(const float* logits, const int* labels, int64_t b, int64_t c, float* dlogits,
                  double* row_loss, int* row_correct, cudaStream_t stream = 0);

// Makes device `device` modulo the devices this process sees current (the ranks of a data-parallel
// run on one host take one each) and returns a one-line description of it; throws sat::Error
// naming what is missing (driver, device) when no usable CUDA device exists.
std::string require_device(const std::string& who, int device = 0);

// Dense products through cuBLAS (BF16 operands, FP32 accumulation). C is FP32 or BF16 (c_bf16).
class Blas {
 public:
  Blas();
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  void set_stream(cudaStream_t s);
  // FF: Y[cols][ldy] = X[cols][ldx] * W^T,  W BF16 [cout][k].
  void ff(const uint16_t* w, int64_t cout, int64_t k, const uint16_t* x, int64_t ldx, int64_t cols,
          void* y, bool y_bf16, int64_t ldy);
  // BP: dX[cols][lddx] = dY[cols][lddy] * W.
  void bp(const uint16_t* w, int64_t cout, int64_t k, const uint16_t* dy, int64_t lddy, int64_t cols,
          void* dx, bool dx_bf16, int64_t lddx);
  // WU: dW[cout][k] (FP32, or BF16) = beta * dW + dY^T X over cols rows.
  void wu(const uint16_t* dy, int64_t lddy, const uint16_t* x, int64_t ldx, int64_t cols,
          int64_t cout, int64_t k, void* dw, bool dw_bf16, float beta);

 private:
  void* handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace sat::cuda
