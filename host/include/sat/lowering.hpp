#pragma once
// The scheduler's lowering API, public as the plug-in point of a layer type's instructions: the
// Lowering context every layer lowering emits through, and the interface of a layer lowering
// (docs/architecture.md, "Adding a layer type"). The context owns the memory map, the instruction stream, the
// dependency tracking (tokens), the tiling of products onto the PE array with double buffering, and
// the choice of which weight form each product reads; a layer lowering only says which tensors its
// FF and BP read and write.
//
// Conventions (docs/dataflow.md):
// - Activations and activation gradients are BF16 in DRAM, batch first and channels last: an image
//   [C, H, W] per sample is stored [B][H][W][C]; [T, D] is [B][T][D]; [F] is [B][F].
// - Products are C[M][N] (+)= sum_k A[M][K] * B[N][K] (both operands K-contiguous in the buffers).
//   FF: A = X rows (or the im2col of X), B = W_F lines (K-pruned) or W.
//   BP: A = dY rows, B = W_B lines (Cout-pruned, i.e. W^T lines) or W^T.
//   WU: A = dY^T, B = X^T (or the transposed im2col); C = dW [Cout][K] in FP32.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sat/compiler.hpp"

namespace sat::compiler {

// A tensor in DRAM: a region, a byte offset inside it, its element type and its logical shape
// (batch first, channels last).
struct TensorRef {
  int region = -1;
  uint64_t byte_offset = 0;
  DType dtype = DType::bf16;
  Shape shape;

  bool valid() const { return region >= 0; }
  int64_t numel() const;
  int64_t elem_bytes() const { return dtype == DType::f32 ? 4 : 2; }
  // The same tensor starting `elems` elements further, with another shape (a sample, a head, ...).
  TensorRef slice(int64_t elems, Shape sub_shape) const;
};

// Geometry of a convolution window over an NHWC tensor (also used by pooling).
struct ConvGeom {
  int64_t c = 0, h = 0, w = 0;        // input channels, height, width
  int64_t kh = 1, kw = 1, stride = 1, pad = 0;
  int64_t oh = 0, ow = 0;             // output height, width
};

// How the load unit fetches a product operand, as a [rows][K] matrix.
struct Operand {
  enum class Kind {
    strided,    // element (r, k) at t + r * row_stride + k * col_stride (plain or transposed)
    conv,       // im2col of NHWC t: row r = output position p = (b*oh + oy)*ow + ox, col k = (ci, ky, kx)
    conv_t,     // transposed im2col: row r = k, col = p (the WU B operand of a convolution)
    conv_bp,    // im2col of dY for the BP convolution: col k = (ky, kx, co) tap-major, window flipped
    sparse,     // compressed N:M weight lines (values + packed indices), groups along K
  };
  Kind kind = Kind::strided;
  TensorRef t;
  int64_t row_stride = 0, col_stride = 1;
  ConvGeom geom;
  // sparse only
  int val_region = -1, idx_region = -1;
  NM nm{1, 1};
  int64_t line_groups = 0;            // groups per line in DRAM (K / m)
  // sparse, selected on the fly (LD_SPW b0) from the FP32 master [cout][k] instead of the
  // pre-generated values/indices: the master's region, its row length, and the group axis
  int master_region = -1;
  int64_t master_k = 0;
  bool along_cout = false;            // W_B lines (groups along Cout), else W_F (along K)
  // K in segments (the taps of a phase convolution, docs/dataflow.md §8): the product's K column
  // s*tap_len + j is the operand's column taps[s]*tap_len + j. K tiles never cross a segment.
  int64_t tap_len = 0;
  std::vector<int32_t> taps;

  static Operand rows(const TensorRef& t, int64_t row_stride, int64_t col_stride = 1);
  static Operand conv_rows(const TensorRef& t, const ConvGeom& g);
  static Operand conv_cols(const TensorRef& t, const ConvGeom& g);
  // dY read for dX = conv(dY, W flipped): g is dY's geometry as the input of that convolution.
  static Operand conv_bp(const TensorRef& t, const ConvGeom& g);
};

// One output parity of a stride-2 convolution's BP along one axis (docs/dataflow.md §8): dX at
// y = 2i + parity gathers the taps ky = first, first + 2, ... (`count` of them, 0: none) from dY
// rows i + (parity + pad - ky) / 2, which is a stride-1 window over dY, read flipped (LD_CONV b2),
// with padding `pad` (negative where no such window exists).
struct PhaseTaps {
  int first = 0, count = 0, pad = 0;
};
PhaseTaps phase_taps_1d(int kernel, int pad, int parity);

// Where the store unit puts C[M][N].
struct Output {
  enum class Kind { strided, col2im };
  Kind kind = Kind::strided;
  TensorRef t;                        // BF16 (rounded) or FP32
  int64_t row_stride = 0, col_stride = 1;
  bool accumulate = false;            // add into t (FP32 only)
  int bias_region = -1;               // FP32 per-column bias added before rounding
  ConvGeom geom;                      // col2im: scatter-add of C[p][k] into FP32 NHWC t
  // Rows in lines (ST_2D b3): row q at t + base + (q / line_rows) * line_stride + (q % line_rows) *
  // row_stride; line_rows 0: row q at t + q * row_stride.
  int64_t base = 0, line_rows = 0, line_stride = 0;

  static Output rows(const TensorRef& t, int64_t row_stride, int64_t col_stride = 1);
  static Output lines(const TensorRef& t, int64_t base, int64_t line_rows, int64_t line_stride, int64_t row_stride);
  // Scatter-add of C[p][k] at im2col position (p, k) into FP32 NHWC t (the BP of a convolution).
  static Output col2im(const TensorRef& t, const ConvGeom& g);
};

// DRAM traffic and work of one instruction, for the per-layer summary.
struct Traffic {
  int64_t loaded = 0, stored = 0;
  double macs = 0;
};

class Lowering;

// Lowers one layer instance: forward emits its FF (and saves what BP needs), backward its BP and
// WU. Instances live for one compile, so they may keep regions between the two calls.
class LayerLowering {
 public:
  virtual ~LayerLowering() = default;
  // Emits FF of `x`; returns the output tensor (allocated through lw).
  virtual TensorRef forward(Lowering& lw, Layer& layer, const TensorRef& x) = 0;
  // Emits BP and WU given dL/dy; returns dL/dx, or an invalid TensorRef when !need_dx.
  virtual TensorRef backward(Lowering& lw, Layer& layer, const TensorRef& dy, bool need_dx) = 0;
  // True when this layer took the ReLU that follows it in its sequence into its own instructions
  // (it asked Lowering::fuse_next_relu() in forward()): its output is then the ReLU's, and the dy
  // its backward() receives is the ReLU's output gradient (ScheduleOptions::fuse_relu).
  virtual bool fused_relu() const { return false; }
};

// The DRAM shape of a per-sample CPU shape: [C, H, W] -> [B, H, W, C]; any other rank -> [B, ...].
Shape dram_shape(int64_t batch, const Shape& per_sample);

// The lowering of a layer type ("conv2d", ...); throws sat::Error naming the type when unknown.
std::unique_ptr<LayerLowering> make_lowering(const Layer& layer);

class Lowering {
 public:
  Lowering(Model& model, const ScheduleOptions& opt);
  // For the lowering of batch slot 1 (ScheduleOptions::batch_slot): where slot 0's lowering placed
  // input.1 and labels.1, which every address of the input and the labels then points into.
  void place_batch_slot_b(const Region& input_b, const Region& labels_b);

  const ScheduleOptions& options() const { return opt_; }
  Program& program() { return prog_; }
  int batch() const { return opt_.batch; }
  bool training() const { return opt_.training; }
  // In a layer's forward(): the next layer of its sequence is a ReLU, the only reader of this
  // layer's output, and ReLU fusion is on; a layer that takes it says so with fused_relu().
  bool fuse_next_relu() const;
  Method method() const { return opt_.method; }

  // ---- Memory --------------------------------------------------------------------------------
  // A new region of `shape` elements of `dtype`, named "<layer>.<what>"; the channel follows the
  // kind (interleave mapping) or is 0 (mapping off).
  TensorRef alloc(const std::string& name, RegionKind kind, Shape shape, DType dtype = DType::bf16);
  // A gradient on an activation channel none of `apart` lies on, where there is one (interleave
  // mapping on): the result of an element-wise operation on those tensors, so that its streams use
  // different channels. Otherwise as alloc.
  TensorRef alloc_gradient_apart(const std::string& name, Shape shape, const std::vector<TensorRef>& apart);
  int region_of_param(const Param* p) const;            // its FP32 value region
  int grad_region_of_param(const Param* p) const;       // its FP32 gradient region (training)
  // The parameter of `layer` whose name ends in `suffix` (".weight", ".bias", ".pos_embed", ...);
  // null when the layer has none.
  Param* param(Layer& layer, const std::string& suffix) const;
  TensorRef param_ref(const Param* p) const;           // FP32 value as a tensor of its shape
  TensorRef grad_ref(const Param* p) const;            // FP32 gradient as a tensor of its shape
  // Whether an instruction of this stream has written `region` yet (a parameter gradient that is
  // already written gets accumulated into rather than overwritten).
  bool region_written(int region) const;

  // ---- Emission ------------------------------------------------------------------------------
  // Appends `in`, adding the tokens that order it after the earlier instructions that wrote what
  // it reads or touched what it writes (regions; on-chip banks are tracked by the tiler).
  void emit(isa::Insn in, const std::vector<int>& reads, const std::vector<int>& writes,
            const Traffic& traffic = {});
  // Builds an instruction from (field, value) pairs.
  static isa::Insn insn(isa::Opcode op, uint8_t flags,
                        std::initializer_list<std::pair<int, uint32_t>> fields);
  uint32_t addr(const TensorRef& t, int64_t elem = 0) const;   // ISA address of an element
  // emit() for DRAM -> DRAM instructions (vector, update, pre-generation units): the regions and
  // the traffic (bytes of every tensor read / written) come from the tensors.
  void emit_vec(isa::Insn in, const std::vector<TensorRef>& reads,
                const std::vector<TensorRef>& writes);
  // Checked conversion of an instruction field: throws sat::Error naming the current layer and
  // `what` when v does not fit 32 bits (or is negative).
  uint32_t u32(int64_t v, const char* what) const;
  static uint32_t f32(float v);                        // IEEE-754 bits of a float field
  // Throws sat::Error "<layer> (<type>): <msg>" for the layer being lowered.
  [[noreturn]] void fail(const std::string& msg) const;
  // Throws (naming the layer) when a row-wise vector op's row is longer than arch::kMaxVecRow.
  void check_row(int64_t len, const char* what) const;

  // ---- Products ------------------------------------------------------------------------------
  // C[M][N] (+)= A B^T, tiled to the buffers, loads/compute/stores double-buffered.
  void matmul(const Operand& a, const Operand& b, const Output& c, int64_t m, int64_t n, int64_t k);
  // Several products of the same M and N, row tile by row tile: each row tile's parts follow one
  // another in the order given.
  struct ProductPart {
    Operand a, b;
    Output c;
    int64_t k = 0;
  };
  void matmul_parts(const std::vector<ProductPart>& parts, int64_t m, int64_t n);
  // Zeros into the rows x cols elements of `c` (a plain strided output, rows in lines or not) by
  // the store unit (ST_2D b4), tile by tile, reading no C bank.
  void zero_output(const Output& c, int64_t m, int64_t n);
  // The three weight products; they choose the weight form the method reads (and, with
  // pre-generation off, generate it right before use).
  //   ff: Y[P][Cout] = X[P][K] W^T            (a: X operand, P rows)
  //   bp: dX[P][K]   = dY[P][Cout] W          (a: dY operand)
  //   wu: dW[Cout][K] = dY^T X  into the weight's FP32 gradient region (a: dY^T, b: X^T operands)
  void ff_product(SparseWeight* w, const Operand& a, int64_t p, const Output& y);
  void bp_product(SparseWeight* w, const Operand& a, int64_t p, const Output& dx);
  // Whether the BP of convolution weight `w` can run as a convolution of dY (bp_conv_product).
  bool bp_as_convolution(const SparseWeight* w, const ConvGeom& g) const;
  // dX[p_in][cin] = conv(dY, W flipped) for a stride-1 convolution of `taps` = kh*kw: A is
  // Operand::conv_bp of dY; B is W_B's lines of one input channel (taps consecutive lines of the
  // compressed form) or the rows of W^T.
  void bp_conv_product(SparseWeight* w, const Operand& a, int64_t p_in, int64_t taps, const Output& dx);
  // Phases of a strided convolution's BP (docs/dataflow.md §8), each `p_in` rows: phase i's K is
  // only its `taps` of the kernel's (each a segment of Cout columns of W_B's lines or W^T's rows).
  // The phases run row tile by row tile, in the order given, so that the first phase's input patch
  // serves the others (LD_CONV b3).
  struct BpPhase {
    Operand a;
    Output dx;
    std::vector<int32_t> taps;
  };
  void bp_phase_products(SparseWeight* w, int64_t p_in, int64_t taps, const std::vector<BpPhase>& phases);
  // Whether the BP of a strided convolution can run as one stride-1 convolution of dY per output
  // phase (phase_bp): square kernel, stride 2, even input height, the same window padding in
  // every phase, and pre-generated weight forms where the BP is sparse.
  bool bp_as_phases(const SparseWeight* w, const ConvGeom& g) const;
  void wu_product(SparseWeight* w, const Operand& a, const Operand& b, int64_t p);

  // ---- Layers --------------------------------------------------------------------------------
  // Lowers a sequence (the model's, or a container's branch) forward / backward; containers
  // call these on their branches.
  TensorRef forward_sequence(std::vector<LayerPtr>& layers, const TensorRef& x);
  TensorRef backward_sequence(std::vector<LayerPtr>& layers, const TensorRef& dy, bool need_dx);
  // Per-layer accounting: instructions emitted between begin and end count to `layer`.
  void begin_layer(const Layer& layer, const char* phase);
  void end_layer();

  // The whole step (or inference); called once by compile().
  void lower_model();

 private:
  // The weight forms pre-generation writes (PGEN flags in docs/dataflow.md).
  enum class WeightForm {
    fwd,               // W_F compressed along K
    fwd_masked_dense,  // W_F as masked dense BF16, transposed [k][cout] (the srste BP operand)
    fwd_all,           // both of the above in one pass
    bwd,               // W_B compressed along Cout
    dense_copy,        // plain BF16 copy of W [cout][k] (dense FF)
    dense_copy_t,      // plain BF16 copy of W^T [k][cout] (dense BP)
    dense_both,        // both of the above in one pass
    fwd_bwd,           // W_F and W_B compressed from one read of the master (PGEN b4)
  };
  const WeightBinding& binding(const SparseWeight* w) const;
  isa::Insn pgen_insn(const SparseWeight* w, WeightForm form, std::vector<int>* writes = nullptr,
                      Traffic* traffic = nullptr) const;
  void pgen(const SparseWeight* w, WeightForm form);
  std::vector<WeightForm> forms_of(const SparseWeight* w) const;
  void update_param(Param* p);
  void pregen_weight(SparseWeight* w);
  // The step's updates and pre-generation (after BP, where they were not overlapped with it).
  void emit_updates();
  void emit_finish();
  // ScheduleOptions::update_apart: emits FINISH, then starts the update stream, whose instructions
  // order only among themselves (every unit has drained at the step's FINISH); moves it into
  // Program::update after its own FINISH (end_update_stream).
  void begin_update_stream();
  void end_update_stream();
  int64_t update_begin_ = -1;   // index in Program::insns where the update stream starts
  // alloc() on DDR channel `ch`.
  TensorRef alloc_on(const std::string& name, RegionKind kind, Shape shape, DType dtype, int ch);
  // emit() without the region checks; resources < 0 are on-chip banks.
  void emit_raw(isa::Insn in, const std::vector<int>& reads, const std::vector<int>& writes,
                const Traffic& traffic);

 public:
  struct Impl;

 private:
  Model& model_;
  ScheduleOptions opt_;
  Program prog_;
  std::shared_ptr<Impl> impl_;
  Region slot_b_[2];   // input.1, labels.1 of slot 0's program (place_batch_slot_b)
  bool slot_b_placed_ = false;
};

}  // namespace sat::compiler
