// The scheduler framework: memory map, dependency tokens, tiling of products onto the PE array with
// double buffering, weight forms per method, and the lowering of a whole training step.
// Design and the reasoning behind each choice: docs/dataflow.md.
#include "sat/lowering.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <set>

#include "compiler/lower_common.hpp"
#include "compiler/lowerings.hpp"
#include "sat/bf16.hpp"
#include "sat/arch/access.hpp"
#include "sat/error.hpp"

namespace sat {

const char* region_kind_name(RegionKind k) {
  switch (k) {
    case RegionKind::input: return "input";
    case RegionKind::labels: return "labels";
    case RegionKind::activation: return "activation";
    case RegionKind::gradient: return "gradient";
    case RegionKind::master: return "master";
    case RegionKind::momentum: return "momentum";
    case RegionKind::param_grad: return "param_grad";
    case RegionKind::weight_form: return "weight_form";
    case RegionKind::stats: return "stats";
    case RegionKind::control: return "control";
  }
  return "?";
}

int MemoryMap::find(const std::string& name) const {
  for (size_t i = 0; i < regions.size(); ++i)
    if (regions[i].name == name) return static_cast<int>(i);
  throw Error("memory map: no region named '" + name + "'");
}

}  // namespace sat

namespace sat::compiler {

using namespace sat::isa;

// ---- Small types ---------------------------------------------------------------------------------

int64_t TensorRef::numel() const { return sat::numel(shape); }

TensorRef TensorRef::slice(int64_t elems, Shape sub_shape) const {
  TensorRef r = *this;
  r.byte_offset += static_cast<uint64_t>(elems * elem_bytes());
  r.shape = std::move(sub_shape);
  return r;
}

namespace {

// An Operand or Output of t read or written through strides.
template <typename T>
T strided_access(const TensorRef& t, int64_t row_stride, int64_t col_stride) {
  T o;
  o.kind = T::Kind::strided;
  o.t = t;
  o.row_stride = row_stride;
  o.col_stride = col_stride;
  return o;
}

// An Operand or Output of the NHWC tensor t through the window geometry g (im2col and its kin).
template <typename T>
T window_access(typename T::Kind kind, const TensorRef& t, const ConvGeom& g) {
  T o;
  o.kind = kind;
  o.t = t;
  o.geom = g;
  return o;
}

}  // namespace

Operand Operand::rows(const TensorRef& t, int64_t row_stride, int64_t col_stride) {
  return strided_access<Operand>(t, row_stride, col_stride);
}

Operand Operand::conv_rows(const TensorRef& t, const ConvGeom& g) {
  return window_access<Operand>(Kind::conv, t, g);
}

Operand Operand::conv_cols(const TensorRef& t, const ConvGeom& g) {
  return window_access<Operand>(Kind::conv_t, t, g);
}

Operand Operand::conv_bp(const TensorRef& t, const ConvGeom& g) {
  return window_access<Operand>(Kind::conv_bp, t, g);
}

Output Output::rows(const TensorRef& t, int64_t row_stride, int64_t col_stride) {
  return strided_access<Output>(t, row_stride, col_stride);
}

PhaseTaps phase_taps_1d(int kernel, int pad, int parity) {
  PhaseTaps t;
  t.first = (parity + pad) % 2;
  if (t.first >= kernel) return t;
  t.count = (kernel - t.first + 1) / 2;
  // Tap j (ky = first + 2j) reads dY row i + d0 - j; the flipped window reads i - pad + count-1-j.
  const int d0 = (parity + pad - t.first) / 2;
  t.pad = t.count - 1 - d0;
  return t;
}

Output Output::lines(const TensorRef& t, int64_t base, int64_t line_rows, int64_t line_stride, int64_t row_stride) {
  Output o = strided_access<Output>(t, row_stride, 1);
  o.base = base;
  o.line_rows = line_rows;
  o.line_stride = line_stride;
  return o;
}

Output Output::col2im(const TensorRef& t, const ConvGeom& g) {
  return window_access<Output>(Kind::col2im, t, g);
}

Shape dram_shape(int64_t batch, const Shape& per_sample) {
  Shape s{batch};
  if (per_sample.size() == 3) {
    s.insert(s.end(), {per_sample[1], per_sample[2], per_sample[0]});
  } else {
    s.insert(s.end(), per_sample.begin(), per_sample.end());
  }
  return s;
}

// ---- The context's private state -----------------------------------------------------------------

namespace {

constexpr int kExec = kNumExecUnits;
constexpr uint64_t kAlign = 64;

// Who last wrote a resource (region or on-chip bank) and, per unit, who read it since.
struct Access {
  int64_t writer = -1;
  std::array<int64_t, kExec> readers;
  Access() { readers.fill(-1); }
};

// On-chip banks as resources: A0 A1 B0 B1 C0 C1.
enum Buf { kBufA = 0, kBufB = 1, kBufC = 2 };
int bank_resource(Buf buf, int bank) { return -1 - (static_cast<int>(buf) * 2 + bank); }

struct Scope {
  std::string name, type, phase;
};

// Identifies an operand tile inside one matmul (bank contents are valid within it only).
struct TileKey {
  int64_t row_tile = -1, k_tile = -1;
  bool operator==(const TileKey&) const = default;
};

uint8_t unit_bit(int u) { return static_cast<uint8_t>(1u << u); }

}  // namespace

struct Lowering::Impl {
  // Dependency tracking.
  std::vector<Access> regions;
  std::array<Access, 6> banks;
  std::vector<std::array<int64_t, kExec>> clock;   // per instruction: what its unit knew done
  std::array<std::array<int64_t, kExec>, kExec> known{};   // known[V][U]
  std::vector<uint8_t> unit_of;                     // unit of each instruction

  // Bank state (double buffering): contents and least-recently used bank of A and B; next C bank.
  std::array<TileKey, 2> a_tile, b_tile;
  int a_lru = 0, b_lru = 0, c_next = 0;
  // The input patch the load unit's patch buffer holds (patch_reuse): tensor address and extent.
  struct HeldPatch {
    bool valid = false;
    uint32_t addr = 0;
    isa::ConvPatch extent;
  } patch;

  // Layers.
  std::map<const Layer*, std::unique_ptr<LayerLowering>> lowerings;
  std::map<const Layer*, int> input_channel;        // channel of each layer's forward input
  std::map<const Param*, int> param_index;          // into Program::params
  std::map<const SparseWeight*, int> weight_index;  // into Program::weights
  std::map<const Param*, const SparseWeight*> weight_of_param;
  std::map<const Param*, Layer*> owner;
  std::vector<Scope> scopes;
  int open_segment = -1;                            // Program::layers entry the top scope fills
  int fwd_in_channel = 1;                           // channel of the current layer's input (FF)
  bool next_relu = false;                           // forward_sequence: the next layer is a ReLU
  int grad_hint_channel = 1;                        // channel of the tensor whose gradient is
                                                    // being allocated (BP)
  std::set<const Param*> updated;                   // parameters whose SGD is emitted
  std::set<const SparseWeight*> pregenerated;       // weights whose forms are regenerated
};

// ---- Construction: parameters and weight forms ---------------------------------------------------

namespace {

void collect_owners(std::vector<LayerPtr>& layers, std::map<const Param*, Layer*>& owner) {
  for (auto& l : layers) {
    std::vector<Param*> ps;
    l->params(ps);
    for (Param* p : ps) owner[p] = l.get();   // children below overwrite: the innermost layer owns
    for (auto* branch : l->branches()) collect_owners(*branch, owner);
  }
}

}  // namespace

Lowering::Lowering(Model& model, const ScheduleOptions& opt)
    : model_(model), opt_(opt), impl_(std::make_shared<Impl>()) {
  prog_.options = opt;
  auto& I = *impl_;
  for (auto& k : I.known) k.fill(-1);
  if (opt.batch < 1) throw Error("compile: batch must be >= 1, got " + std::to_string(opt.batch));
  check_tile_limits(opt);
  if (model.layers.empty()) throw Error("compile: model '" + model.name + "' has no layers");
  if (model.classes < 1) throw Error("compile: model '" + model.name + "' has no classes");
  collect_owners(model.layers, I.owner);

  I.scopes.push_back({"(step)", "-", "setup"});
  const TensorRef in = alloc("input", RegionKind::input, dram_shape(opt.batch, model.input));
  prog_.input = in.region;
  prog_.labels = alloc("labels", RegionKind::labels, {opt.batch}, DType::f32).region;   // int32
  if (opt.batch_slot != 0 && !(opt.batch_slot == 1 && opt.training)) {
    throw Error("compile: batch slot " + std::to_string(opt.batch_slot) +
                " does not exist (0, or 1 for a training program)");
  }
  prog_.hyper = alloc("hyper", RegionKind::control, {4}, DType::f32).region;
  prog_.result = alloc("result", RegionKind::control, {2}, DType::f32).region;

  for (Param* p : model.params()) {
    ParamBinding b;
    b.param = p;
    b.value = alloc(p->name, p->trainable ? RegionKind::master : RegionKind::stats, p->shape,
                    DType::f32)
                  .region;
    if (opt.training && p->trainable) {
      b.momentum = alloc(p->name + ".momentum", RegionKind::momentum, p->shape, DType::f32).region;
      b.grad = alloc(p->name + ".grad", RegionKind::param_grad, p->shape, DType::f32).region;
    }
    I.param_index[p] = static_cast<int>(prog_.params.size());
    prog_.params.push_back(b);
  }
  // The forms each product reads: the same choice as cpu/weight_ops.cpp (SparseWeight::ff_sparse,
  // bp_sparse): FF reads W_F compressed when N:M applies under the method, else the dense copy;
  // BP reads W_B compressed under bdwp, the masked-dense W_F under srste, else the dense copy.
  for (SparseWeight* sw : model.sparse_weights()) {
    WeightBinding b;
    b.weight = sw;
    b.nm = sw->nm;
    const Method m = opt.method;
    const std::string& n = sw->weight->name;
    const int64_t nnz = sw->sparse() ? sw->cout * sw->k / sw->nm.m * sw->nm.n : 0;
    const bool ff_sparse = sw->ff_sparse(m);
    const bool bp_sparse = opt.training && sw->bp_sparse(m);
    const bool dense = !ff_sparse;
    const bool dense_t = opt.training && !sw->bp_sparse(m);
    if (ff_sparse) {
      b.fwd_values = alloc(n + ".wf.values", RegionKind::weight_form, {nnz}).region;
      b.fwd_index = alloc(n + ".wf.index", RegionKind::weight_form, {(nnz + 3) / 4}).region;
    }
    if (bp_sparse) {
      b.bwd_values = alloc(n + ".wb.values", RegionKind::weight_form, {nnz}).region;
      b.bwd_index = alloc(n + ".wb.index", RegionKind::weight_form, {(nnz + 3) / 4}).region;
    }
    if (dense) b.dense = alloc(n + ".dense", RegionKind::weight_form, {sw->cout, sw->k}).region;
    if (dense_t) {
      b.dense_t = alloc(n + (ff_sparse ? ".wf.dense_t" : ".dense_t"), RegionKind::weight_form, {sw->k, sw->cout})
                      .region;
    }
    I.weight_index[sw] = static_cast<int>(prog_.weights.size());
    I.weight_of_param[sw->weight] = sw;
    prog_.weights.push_back(b);
  }
  I.scopes.clear();
}

// ---- Memory --------------------------------------------------------------------------------------

TensorRef Lowering::alloc_gradient_apart(const std::string& name, Shape shape, const std::vector<TensorRef>& apart) {
  if (opt_.interleave_mapping) {
    for (const int ch : {3, 2, 1}) {   // the activation and gradient channels (weights live on 0)
      bool used = false;
      for (const TensorRef& t : apart)
        used = used || (t.valid() && prog_.map.regions.at(static_cast<size_t>(t.region)).channel == static_cast<uint32_t>(ch));
      if (!used) return alloc_on(name, RegionKind::gradient, std::move(shape), DType::bf16, ch);
    }
  }
  return alloc(name, RegionKind::gradient, std::move(shape));
}

TensorRef Lowering::alloc(const std::string& name, RegionKind kind, Shape shape, DType dtype) {
  auto& I = *impl_;
  // Interleave mapping (docs/dataflow.md): weight forms and parameter gradients on channel 0,
  // activations alternate between channels 1 and 2 layer by layer, gradients of activations on
  // 3 or 2 (the one its activation does not use), masters/statistics on 3 and momentum on 1, so
  // that every product's two operands and its result, and the update's three streams, use three
  // different channels.
  int ch = 0;
  if (opt_.interleave_mapping) {
    switch (kind) {
      case RegionKind::input: ch = 1; break;
      case RegionKind::activation: ch = I.fwd_in_channel == 1 ? 2 : 1; break;
      case RegionKind::gradient: ch = I.grad_hint_channel == 2 ? 2 : 3; break;
      case RegionKind::master: ch = 3; break;
      case RegionKind::stats: ch = 3; break;
      case RegionKind::momentum: ch = 1; break;
      case RegionKind::param_grad: ch = 0; break;
      case RegionKind::weight_form: ch = 0; break;
      case RegionKind::labels: ch = 0; break;
      case RegionKind::control: ch = 0; break;
    }
  }
  return alloc_on(name, kind, std::move(shape), dtype, ch);
}

TensorRef Lowering::alloc_on(const std::string& name, RegionKind kind, Shape shape, DType dtype, int ch) {
  auto& I = *impl_;
  for (int64_t d : shape) {
    if (d < 1) fail("region '" + name + "' has a non-positive dimension " + shape_str(shape));
  }
  TensorRef t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  const uint64_t bytes = static_cast<uint64_t>(t.numel() * t.elem_bytes());
  Region r;
  r.name = name;
  r.kind = kind;
  r.channel = static_cast<uint32_t>(ch);
  r.offset = (prog_.map.channel_bytes[ch] + kAlign - 1) / kAlign * kAlign;
  r.bytes = bytes;
  r.dtype = dtype;
  const uint64_t end = (r.offset + bytes + kAlign - 1) / kAlign * kAlign;
  if (end > arch::kChannelWindowBytes) {
    fail("memory map: region '" + name + "' (" + std::to_string(bytes) + " bytes) ends at byte " +
         std::to_string(end) + " of DDR channel " + std::to_string(ch) +
         ", past its window of " + std::to_string(arch::kChannelWindowBytes) +
         " bytes (reduce the batch size)");
  }
  prog_.map.channel_bytes[ch] = end;
  t.region = static_cast<int>(prog_.map.regions.size());
  prog_.map.regions.push_back(std::move(r));
  I.regions.emplace_back();
  return t;
}

int Lowering::region_of_param(const Param* p) const {
  const auto it = impl_->param_index.find(p);
  if (it == impl_->param_index.end()) fail("parameter " + p->name + " is not part of the model");
  return prog_.params[static_cast<size_t>(it->second)].value;
}

int Lowering::grad_region_of_param(const Param* p) const {
  const auto it = impl_->param_index.find(p);
  if (it == impl_->param_index.end()) fail("parameter " + p->name + " is not part of the model");
  const int g = prog_.params[static_cast<size_t>(it->second)].grad;
  if (g < 0) fail("parameter " + p->name + " has no gradient region (inference, or not trainable)");
  return g;
}

Param* Lowering::param(Layer& layer, const std::string& suffix) const {
  std::vector<Param*> ps;
  layer.params(ps);
  for (Param* p : ps)
    if (p->name == layer.name + suffix) return p;
  return nullptr;
}

TensorRef Lowering::param_ref(const Param* p) const { return region_ref(region_of_param(p), p->shape); }

TensorRef Lowering::grad_ref(const Param* p) const {
  return region_ref(grad_region_of_param(p), p->shape);
}

bool Lowering::region_written(int region) const {
  return impl_->regions.at(static_cast<size_t>(region)).writer >= 0;
}

// ---- Errors and fields ---------------------------------------------------------------------------

void Lowering::fail(const std::string& msg) const {
  const auto& s = impl_->scopes;
  if (s.empty()) throw Error("compile " + model_.name + ": " + msg);
  throw Error(s.back().name + " (" + s.back().type + "): " + msg);
}

uint32_t Lowering::u32(int64_t v, const char* what) const {
  if (v < 0 || v > static_cast<int64_t>(std::numeric_limits<uint32_t>::max())) {
    fail(std::string("instruction field ") + what + " = " + std::to_string(v) +
         " does not fit 32 bits");
  }
  return static_cast<uint32_t>(v);
}

uint32_t Lowering::f32(float v) { return f32_bits(v); }

void Lowering::check_row(int64_t len, const char* what) const {
  if (len > arch::kMaxVecRow) {
    fail(std::string(what) + " row of " + std::to_string(len) +
         " elements is longer than the vector unit holds (kMaxVecRow " +
         std::to_string(arch::kMaxVecRow) + ")");
  }
}

void Lowering::place_batch_slot_b(const Region& input_b, const Region& labels_b) {
  slot_b_[0] = input_b;
  slot_b_[1] = labels_b;
  slot_b_placed_ = true;
}

uint32_t Lowering::addr(const TensorRef& t, int64_t elem) const {
  if (!t.valid()) fail("address of an unallocated tensor");
  const bool slot_b = opt_.batch_slot == 1 && (t.region == prog_.input || t.region == prog_.labels);
  if (slot_b && !slot_b_placed_) fail("batch slot 1 lowered before slot 0 placed its regions (place_batch_slot_b)");
  const Region& r = slot_b ? slot_b_[t.region == prog_.input ? 0 : 1] : prog_.map.regions.at(static_cast<size_t>(t.region));
  const uint64_t off = t.byte_offset + static_cast<uint64_t>(elem * t.elem_bytes());
  if (elem < 0 || off > r.bytes) {
    fail("element " + std::to_string(elem) + " lies outside region '" + r.name + "'");
  }
  return r.addr(off);
}

Insn Lowering::insn(Opcode op, uint8_t flags,
                    std::initializer_list<std::pair<int, uint32_t>> fields) {
  Insn in = make_insn(op, flags);
  const int n = opcode_fields(op);
  for (const auto& [f, v] : fields) {
    if (f < 1 || f > n) {
      throw Error(std::string("scheduler invariant broken (a bug; please report it): field ") + std::to_string(f) + " is not a field of " +
                  opcode_name(op));
    }
    in.w[f] = v;
  }
  return in;
}

// ---- Emission and tokens -------------------------------------------------------------------------

void Lowering::emit(Insn in, const std::vector<int>& reads, const std::vector<int>& writes,
                    const Traffic& traffic) {
  if (opcode_unit(in.opcode()) < 0) fail("scheduler invariant broken (a bug; please report it): emitting an unknown opcode");
  for (int r : reads)
    if (r < 0 || r >= static_cast<int>(prog_.map.regions.size())) fail("scheduler invariant broken (a bug; please report it): bad region read");
  for (int w : writes)
    if (w < 0 || w >= static_cast<int>(prog_.map.regions.size())) fail("scheduler invariant broken (a bug; please report it): bad region write");
  emit_raw(in, reads, writes, traffic);
}

void Lowering::emit_raw(Insn in, const std::vector<int>& reads, const std::vector<int>& writes,
                        const Traffic& traffic) {
  auto& I = *impl_;
  const auto idx = static_cast<int64_t>(prog_.insns.size());
  {
    const auto j = static_cast<int64_t>(prog_.insns.size());
    const int v = opcode_unit(in.opcode());
    auto state = [&](int res) -> Access& {
      return res >= 0 ? I.regions.at(static_cast<size_t>(res)) : I.banks.at(static_cast<size_t>(-1 - res));
    };
    std::array<int64_t, kExec> need;
    need.fill(-1);
    auto add = [&](int64_t i) {
      if (i < 0) return;
      const int u = I.unit_of[static_cast<size_t>(i)];
      if (u != v && u < kExec) need[u] = std::max(need[u], i);
    };
    if (v < kExec) {
      for (int r : reads) add(state(r).writer);
      for (int w : writes) {
        Access& a = state(w);
        add(a.writer);
        for (int64_t rd : a.readers) add(rd);
      }
    }
    if (opt_.record_dependencies) {
      for (int u = 0; u < kExec; ++u)
        if (need[u] >= 0) prog_.dependencies.emplace_back(need[u], j);
    }
    std::array<int64_t, kExec> clk{};
    clk.fill(-1);
    if (v < kExec) {
      if (opt_.offline_scheduling) {
        auto& kv = I.known[static_cast<size_t>(v)];
        for (int u = 0; u < kExec; ++u) {
          const int64_t i = need[u];
          if (i <= kv[u]) continue;   // already ordered through earlier tokens
          Insn& src = prog_.insns[static_cast<size_t>(i)];
          set_signal(src, static_cast<uint8_t>(src.signal() | unit_bit(v)));
          set_wait(in, static_cast<uint8_t>(in.wait() | unit_bit(u)));
          const auto& ci = I.clock[static_cast<size_t>(i)];
          for (int x = 0; x < kExec; ++x) kv[x] = std::max(kv[x], ci[x]);
        }
        kv[v] = j;
        clk = kv;
      } else if (j > 0) {
        // Naive runtime: every instruction waits for the one before it.
        const int u = I.unit_of[static_cast<size_t>(j - 1)];
        if (u != v && u < kExec) {
          Insn& src = prog_.insns[static_cast<size_t>(j - 1)];
          set_signal(src, static_cast<uint8_t>(src.signal() | unit_bit(v)));
          set_wait(in, static_cast<uint8_t>(in.wait() | unit_bit(u)));
        }
      }
      for (int r : reads) state(r).readers[static_cast<size_t>(v)] = j;
      for (int w : writes) {
        Access& a = state(w);
        a.writer = j;
        a.readers.fill(-1);
      }
    }
    I.clock.push_back(clk);
    I.unit_of.push_back(static_cast<uint8_t>(v < 0 ? kNumUnits : v));
    prog_.insns.push_back(in);
  }
  // Accounting: to the innermost open layer scope.
  Scope top = I.scopes.empty() ? Scope{"(step)", "-", "end"} : I.scopes.back();
  if (I.open_segment < 0) {
    LayerSchedule s;
    s.name = top.name;
    s.type = top.type;
    s.phase = top.phase;
    s.first_insn = idx;
    prog_.layers.push_back(s);
    I.open_segment = static_cast<int>(prog_.layers.size()) - 1;
  }
  InsnTraffic it;
  it.loaded = traffic.loaded;
  it.stored = traffic.stored;
  for (int r : reads)
    if (r >= 0) it.read_channels |= static_cast<uint8_t>(1u << prog_.map.regions[static_cast<size_t>(r)].channel);
  for (int w : writes) {
    if (w < 0) continue;
    Region& reg = prog_.map.regions[static_cast<size_t>(w)];
    it.write_channels |= static_cast<uint8_t>(1u << reg.channel);
    reg.written = true;
  }
  prog_.traffic.push_back(it);
  LayerSchedule& s = prog_.layers[static_cast<size_t>(I.open_segment)];
  s.instructions += 1;
  s.bytes_loaded += traffic.loaded;
  s.bytes_stored += traffic.stored;
  s.macs += traffic.macs;
}

void Lowering::emit_vec(Insn in, const std::vector<TensorRef>& reads,
                        const std::vector<TensorRef>& writes) {
  std::vector<int> r, w;
  Traffic t;
  for (const auto& x : reads) {
    if (!x.valid()) fail(std::string("scheduler invariant broken (a bug; please report it): ") + opcode_name(in.opcode()) + " reads an unallocated tensor");
    r.push_back(x.region);
    t.loaded += x.numel() * x.elem_bytes();
  }
  for (const auto& x : writes) {
    if (!x.valid()) fail(std::string("scheduler invariant broken (a bug; please report it): ") + opcode_name(in.opcode()) + " writes an unallocated tensor");
    w.push_back(x.region);
    t.stored += x.numel() * x.elem_bytes();
  }
  emit(in, r, w, t);
}

// ---- Products ------------------------------------------------------------------------------------

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

namespace {
// ST_2D of the C tile (r0, c0) of rows x cols into `c` with `flags` (b3 added where c's rows are in
// lines: the tile's first row is row r0 % line_rows of line r0 / line_rows).
Insn st_2d_insn(const Lowering& lw, const Output& c, uint8_t flags, int cb, int64_t r0, int64_t rows, int64_t c0,
                int64_t cols, uint32_t bias_addr) {
  const bool lines = c.line_rows > 0;
  const int64_t at = lines ? c.base + r0 / c.line_rows * c.line_stride + c0 * c.col_stride
                           : r0 * c.row_stride + c0 * c.col_stride;
  Insn in = Lowering::insn(OP_ST_2D, static_cast<uint8_t>(flags | (lines ? 8 : 0)),
                           {{f_ST_2D::c_bank, static_cast<uint32_t>(cb)},
                            {f_ST_2D::rows, lw.u32(rows, "rows")},
                            {f_ST_2D::cols, lw.u32(cols, "cols")},
                            {f_ST_2D::addr, lw.addr(c.t, at)},
                            {f_ST_2D::row_stride, lw.u32(c.row_stride, "row_stride")},
                            {f_ST_2D::col_stride, lw.u32(c.col_stride, "col_stride")},
                            {f_ST_2D::bias_addr, bias_addr}});
  if (lines) {
    in.w[f_ST_2D::row0] = lw.u32(r0 % c.line_rows, "row0");
    in.w[f_ST_2D::line_rows] = lw.u32(c.line_rows, "line_rows");
    in.w[f_ST_2D::line_stride] = lw.u32(c.line_stride, "line_stride");
  }
  return in;
}
}  // namespace

void Lowering::zero_output(const Output& c, int64_t m, int64_t n) {
  if (c.kind != Output::Kind::strided || c.accumulate || c.bias_region >= 0) {
    fail("scheduler invariant broken (a bug; please report it): only a plain strided output can be zero-filled by the store unit");
  }
  const uint8_t flags = static_cast<uint8_t>((c.t.dtype == DType::f32 ? 1 : 0) | 16);
  for (int64_t r0 = 0; r0 < m; r0 += opt_.tile_rows) {
    for (int64_t c0 = 0; c0 < n; c0 += opt_.tile_cols) {
      const int64_t rows = std::min<int64_t>(opt_.tile_rows, m - r0), cols = std::min<int64_t>(opt_.tile_cols, n - c0);
      Traffic t;
      t.stored = rows * cols * c.t.elem_bytes();
      emit_raw(st_2d_insn(*this, c, flags, 0, r0, rows, c0, cols, 0), {}, {c.t.region}, t);
    }
  }
}

void Lowering::matmul(const Operand& a, const Operand& b, const Output& c, int64_t m, int64_t n,
                      int64_t k) {
  matmul_parts({ProductPart{a, b, c, k}}, m, n);
}

void Lowering::matmul_parts(const std::vector<ProductPart>& parts, int64_t m, int64_t n) {
  auto& I = *impl_;
  if (parts.empty()) fail("scheduler invariant broken (a bug; please report it): a product without parts");
  // K tiles: whole groups of every M (tile_k is a multiple of 16, check_tile_limits). Balanced, the
  // same count of tiles shares K evenly, rounded up to what an N:M PE row covers a cycle, so that no
  // tile is a short rest whose GEMM cannot hide the next tile's load.
  // A K split into segments (b.tap_len: the taps of a phase convolution) is tiled segment by
  // segment, so that no tile crosses one.
  auto tile_of = [&](int64_t len) {
    int64_t kt = std::min<int64_t>(len, opt_.tile_k);
    if (opt_.balanced_k_tiles && len > opt_.tile_k) {
      constexpr int64_t kGranule = arch::kPeLanes * arch::kSelectWindowRatio;
      static_assert(kGranule % 16 == 0, "balanced K tiles must hold whole groups of every M");
      const int64_t even = ceil_div(ceil_div(len, ceil_div(len, opt_.tile_k)), kGranule) * kGranule;
      kt = std::min<int64_t>(opt_.tile_k, even);
    }
    return kt;
  };
  struct Plan {
    bool sparse = false;
    int nm_n = 1, nm_m = 1;
    std::vector<std::pair<int64_t, int64_t>> k_tiles;   // (k0, kc)
    int64_t key0 = 0;                                   // its K tiles' numbers in the bank keys
  };
  std::vector<Plan> plans;
  int64_t keys = 0;
  for (const ProductPart& part : parts) {
    const Operand& a = part.a;
    const Operand& b = part.b;
    const Output& c = part.c;
    const int64_t k = part.k;
    if (m < 1 || n < 1 || k < 1) {
      fail("product of shape M " + std::to_string(m) + " x N " + std::to_string(n) + " x K " +
           std::to_string(k) + " has an empty dimension");
    }
    if (a.kind == Operand::Kind::sparse) fail("scheduler invariant broken (a bug; please report it): the A operand of a product cannot be N:M");
    Plan pl;
    pl.sparse = b.kind == Operand::Kind::sparse;
    pl.nm_n = pl.sparse ? b.nm.n : 1;
    pl.nm_m = pl.sparse ? b.nm.m : 1;
    if (pl.sparse) {
      if (!arch::supported_m(pl.nm_m) || pl.nm_n < 1 || pl.nm_n > pl.nm_m) {
        fail("N:M " + b.nm.str() + " is not supported by the PE array");
      }
      if (k % pl.nm_m != 0) {
        fail("sparse product K " + std::to_string(k) + " is not a multiple of M " +
             std::to_string(pl.nm_m));
      }
    }
    if (c.accumulate && c.t.dtype != DType::f32) fail("scheduler invariant broken (a bug; please report it): accumulating stores need FP32");
    if (c.kind == Output::Kind::col2im && c.t.dtype != DType::f32) {
      fail("scheduler invariant broken (a bug; please report it): col2im scatters into FP32 only");
    }
    const int64_t seg = b.tap_len > 0 ? b.tap_len : k;
    if (k % seg != 0 || (b.tap_len > 0 && static_cast<int64_t>(b.taps.size()) != k / seg)) {
      fail("scheduler invariant broken (a bug; please report it): the B operand's taps do not cover K");
    }
    if (pl.sparse && seg % pl.nm_m != 0) fail("scheduler invariant broken (a bug; please report it): a K segment is not a multiple of M");
    for (int64_t s0 = 0; s0 < k; s0 += seg) {
      const int64_t kt = tile_of(seg);
      for (int64_t k0 = s0; k0 < s0 + seg; k0 += kt) pl.k_tiles.emplace_back(k0, std::min(kt, s0 + seg - k0));
    }
    pl.key0 = keys;
    keys += static_cast<int64_t>(pl.k_tiles.size());
    plans.push_back(std::move(pl));
  }

  const int64_t mt = std::min<int64_t>(m, opt_.tile_rows);
  const int64_t nt = std::min<int64_t>(n, opt_.tile_cols);
  const int64_t n_m = ceil_div(m, mt), n_n = ceil_div(n, nt);
  const bool dbuf = opt_.offline_scheduling;

  // Operand sizes (bytes per full pass over the operand), to pick the loop order that reloads less
  // when one operand tile can stay resident (K in one tile). Several parts run M outer: each row
  // tile's parts follow one another (the phases of a convolution's BP share its input patch).
  bool m_outer = true;
  if (parts.size() == 1 && plans[0].k_tiles.size() == 1) {
    const Operand& b = parts[0].b;
    const int64_t k = parts[0].k;
    const double a_bytes = static_cast<double>(m) * static_cast<double>(k) * 2;
    const double b_bytes = static_cast<double>(n) * static_cast<double>(k) * 2 *
                           (plans[0].sparse ? (b.master_region >= 0 ? 2.0 : plans[0].nm_n * 1.25 / plans[0].nm_m) : 1.0);
    const double cost_m_outer = a_bytes + (n_n > 1 ? n_m * b_bytes : b_bytes);
    const double cost_n_outer = b_bytes + (n_m > 1 ? n_n * a_bytes : a_bytes);
    m_outer = cost_m_outer <= cost_n_outer;
  }

  // Bank and patch buffer contents are only trusted inside one product.
  I.a_tile = {TileKey{}, TileKey{}};
  I.b_tile = {TileKey{}, TileKey{}};
  I.patch = {};

  auto load = [&](const Operand& op, bool to_b, int bank, int64_t r0, int64_t rows, int64_t k_product,
                  int64_t cols) {
    const int res = bank_resource(to_b ? kBufB : kBufA, bank);
    // The operand's own K column of the product's k_product (segments: the tile is within one).
    const int64_t k0 = op.tap_len > 0
                           ? op.taps.at(static_cast<size_t>(k_product / op.tap_len)) * op.tap_len + k_product % op.tap_len
                           : k_product;
    Traffic t;
    switch (op.kind) {
      case Operand::Kind::strided: {
        const Insn in = insn(OP_LD_2D, to_b ? 1 : 0,
                             {{f_LD_2D::bank, static_cast<uint32_t>(bank)},
                              {f_LD_2D::rows, u32(rows, "rows")},
                              {f_LD_2D::cols, u32(cols, "cols")},
                              {f_LD_2D::addr, addr(op.t, r0 * op.row_stride + k0 * op.col_stride)},
                              {f_LD_2D::row_stride, u32(op.row_stride, "row_stride")},
                              {f_LD_2D::col_stride, u32(op.col_stride, "col_stride")}});
        t.loaded = rows * cols * 2;
        emit_raw(in, {op.t.region}, {res}, t);
        break;
      }
      case Operand::Kind::conv:
      case Operand::Kind::conv_t:
      case Operand::Kind::conv_bp: {
        const ConvGeom& g = op.geom;
        const bool tr = op.kind == Operand::Kind::conv_t, flip = op.kind == Operand::Kind::conv_bp;
        const uint8_t flags = static_cast<uint8_t>((to_b ? 1 : 0) | (tr ? 2 : 0) | (flip ? 4 : 0));
        Insn in = insn(OP_LD_CONV, flags,
                             {{f_LD_CONV::bank, static_cast<uint32_t>(bank)},
                              {f_LD_CONV::rows, u32(rows, "rows")},
                              {f_LD_CONV::cols, u32(cols, "cols")},
                              {f_LD_CONV::addr, addr(op.t)},
                              {f_LD_CONV::p0, u32(tr ? k0 : r0, "p0")},
                              {f_LD_CONV::k0, u32(tr ? r0 : k0, "k0")},
                              {f_LD_CONV::c, u32(g.c, "c")},
                              {f_LD_CONV::h, u32(g.h, "h")},
                              {f_LD_CONV::w, u32(g.w, "w")},
                              {f_LD_CONV::kh_kw, pack16(u32(g.kh, "kh"), u32(g.kw, "kw"))},
                              {f_LD_CONV::stride_pad, pack16(u32(g.stride, "stride"), u32(g.pad, "pad"))},
                              {f_LD_CONV::oh, u32(g.oh, "oh")},
                              {f_LD_CONV::ow, u32(g.ow, "ow")}});
        // The patch the buffer would hold after this load; b3 when it holds it already (the
        // tensor is an input of the product, so nothing writes it between the two loads).
        const isa::ConvPatch pt = isa::conv_patch(in, arch::kConvPatchElems);
        const Impl::HeldPatch now{pt.fits, in[f_LD_CONV::addr], pt};
        const Impl::HeldPatch& held = I.patch;
        const bool reuse = opt_.patch_reuse && now.valid && held.valid && held.addr == now.addr &&
                           held.extent.covers(pt);
        if (reuse) in.w[0] |= uint32_t{8} << 24;
        if (now.valid && !reuse) I.patch = now;   // b3 builds from the held patch, which stays
        t.loaded = reuse ? 0 : rows * cols * 2;
        emit_raw(in, {op.t.region}, {res}, t);
        break;
      }
      case Operand::Kind::sparse: {
        const int64_t groups = cols / op.nm.m;
        if (op.master_region >= 0) {
          // On the fly: reads the FP32 master of every weight of the tile's groups.
          const Region& mr = prog_.map.regions.at(static_cast<size_t>(op.master_region));
          const uint8_t flags = static_cast<uint8_t>(1 | (op.along_cout ? 2 : 0));
          const Insn in = insn(OP_LD_SPW, flags,
                               {{f_LD_SPW::bank, static_cast<uint32_t>(bank)},
                                {f_LD_SPW::rows, u32(rows, "rows")},
                                {f_LD_SPW::groups, u32(groups, "groups")},
                                {f_LD_SPW::n, static_cast<uint32_t>(op.nm.n)},
                                {f_LD_SPW::m, static_cast<uint32_t>(op.nm.m)},
                                {f_LD_SPW::val_addr, mr.addr()},
                                {f_LD_SPW::idx_addr, u32(op.master_k, "k")},
                                {f_LD_SPW::line_groups, u32(op.line_groups, "line_groups")},
                                {f_LD_SPW::l0, u32(r0, "l0")},
                                {f_LD_SPW::g0, u32(k0 / op.nm.m, "g0")}});
          t.loaded = rows * groups * op.nm.m * 4;
          emit_raw(in, {op.master_region}, {res}, t);
          break;
        }
        const Region& vr = prog_.map.regions.at(static_cast<size_t>(op.val_region));
        const Region& ir = prog_.map.regions.at(static_cast<size_t>(op.idx_region));
        const Insn in = insn(OP_LD_SPW, 0,
                             {{f_LD_SPW::bank, static_cast<uint32_t>(bank)},
                              {f_LD_SPW::rows, u32(rows, "rows")},
                              {f_LD_SPW::groups, u32(groups, "groups")},
                              {f_LD_SPW::n, static_cast<uint32_t>(op.nm.n)},
                              {f_LD_SPW::m, static_cast<uint32_t>(op.nm.m)},
                              {f_LD_SPW::val_addr, vr.addr()},
                              {f_LD_SPW::idx_addr, ir.addr()},
                              {f_LD_SPW::line_groups, u32(op.line_groups, "line_groups")},
                              {f_LD_SPW::l0, u32(r0, "l0")},
                              {f_LD_SPW::g0, u32(k0 / op.nm.m, "g0")}});
        const int64_t entries = rows * groups * op.nm.n;
        t.loaded = entries * 2 + (entries + 1) / 2;
        emit_raw(in, {op.val_region, op.idx_region}, {res}, t);
        break;
      }
    }
  };

  // Makes operand tile (row tile, k tile) resident in a bank of A or B; returns the bank.
  auto ensure = [&](const Operand& op, bool is_b, int64_t ti, int64_t ki, int64_t r0, int64_t rows,
                    int64_t k0, int64_t cols) {
    auto& tiles = is_b ? I.b_tile : I.a_tile;
    int& lru = is_b ? I.b_lru : I.a_lru;
    const TileKey key{ti, ki};
    for (int x = 0; x < (dbuf ? 2 : 1); ++x) {
      if (tiles[static_cast<size_t>(x)] == key) {
        if (dbuf) lru = 1 - x;
        return x;
      }
    }
    const int bank = dbuf ? lru : 0;
    load(op, is_b, bank, r0, rows, k0, cols);
    tiles[static_cast<size_t>(bank)] = key;
    if (dbuf) lru = 1 - bank;
    return bank;
  };

  auto store = [&](const Output& c, int cb, int64_t r0, int64_t rows, int64_t c0, int64_t cols) {
    const int res = bank_resource(kBufC, cb);
    Traffic t;
    if (c.kind == Output::Kind::strided) {
      const bool f32out = c.t.dtype == DType::f32;
      const bool bias = c.bias_region >= 0;
      const uint8_t flags =
          static_cast<uint8_t>((f32out ? 1 : 0) | (c.accumulate ? 2 : 0) | (bias ? 4 : 0));
      uint32_t bias_addr = 0;
      if (bias) {
        const Region& br = prog_.map.regions.at(static_cast<size_t>(c.bias_region));
        if (static_cast<uint64_t>(c0 + cols) * 4 > br.bytes) fail("bias region shorter than the output columns");
        bias_addr = br.addr(static_cast<uint64_t>(c0) * 4);
      }
      const Insn in = st_2d_insn(*this, c, flags, cb, r0, rows, c0, cols, bias_addr);
      t.stored = rows * cols * c.t.elem_bytes();
      if (c.accumulate) t.loaded += rows * cols * 4;
      if (bias) t.loaded += cols * 4;
      std::vector<int> reads{res};
      if (bias) reads.push_back(c.bias_region);
      if (c.accumulate) reads.push_back(c.t.region);
      emit_raw(in, reads, {c.t.region}, t);
    } else {
      const ConvGeom& g = c.geom;
      const Insn in = insn(OP_ST_COL2IM, 0,
                           {{f_ST_COL2IM::c_bank, static_cast<uint32_t>(cb)},
                            {f_ST_COL2IM::rows, u32(rows, "rows")},
                            {f_ST_COL2IM::cols, u32(cols, "cols")},
                            {f_ST_COL2IM::addr, addr(c.t)},
                            {f_ST_COL2IM::p0, u32(r0, "p0")},
                            {f_ST_COL2IM::k0, u32(c0, "k0")},
                            {f_ST_COL2IM::c, u32(g.c, "c")},
                            {f_ST_COL2IM::h, u32(g.h, "h")},
                            {f_ST_COL2IM::w, u32(g.w, "w")},
                            {f_ST_COL2IM::kh_kw, pack16(u32(g.kh, "kh"), u32(g.kw, "kw"))},
                            {f_ST_COL2IM::stride_pad, pack16(u32(g.stride, "stride"), u32(g.pad, "pad"))},
                            {f_ST_COL2IM::oh, u32(g.oh, "oh")},
                            {f_ST_COL2IM::ow, u32(g.ow, "ow")}});
      t.loaded = rows * cols * 4;   // read-modify-write of the FP32 target
      t.stored = rows * cols * 4;
      emit_raw(in, {res, c.t.region}, {c.t.region}, t);
    }
  };

  const int64_t outer = m_outer ? n_m : n_n, inner = m_outer ? n_n : n_m;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in_i = 0; in_i < inner; ++in_i) {
      const int64_t mi = m_outer ? o : in_i, ni = m_outer ? in_i : o;
      const int64_t r0 = mi * mt, rows = std::min(mt, m - r0);
      const int64_t c0 = ni * nt, cols = std::min(nt, n - c0);
      for (size_t pi = 0; pi < parts.size(); ++pi) {
        const ProductPart& part = parts[pi];
        const Plan& pl = plans[pi];
        const int cb = dbuf ? I.c_next : 0;
        if (dbuf) I.c_next = 1 - I.c_next;
        for (size_t ki = 0; ki < pl.k_tiles.size(); ++ki) {
          const auto [k0, kc] = pl.k_tiles[ki];
          const int64_t key = pl.key0 + static_cast<int64_t>(ki);
          const int ab = ensure(part.a, false, mi, key, r0, rows, k0, kc);
          const int bb = ensure(part.b, true, ni, key, c0, cols, k0, kc);
          const uint8_t flags = static_cast<uint8_t>((ki > 0 ? 1 : 0) | (pl.sparse ? 2 : 0));
          const Insn g = insn(OP_GEMM, flags,
                              {{f_GEMM::a_bank, static_cast<uint32_t>(ab)},
                               {f_GEMM::b_bank, static_cast<uint32_t>(bb)},
                               {f_GEMM::c_bank, static_cast<uint32_t>(cb)},
                               {f_GEMM::mt, u32(rows, "mt")},
                               {f_GEMM::nt, u32(cols, "nt")},
                               {f_GEMM::kt, u32(kc, "kt")},
                               {f_GEMM::n, static_cast<uint32_t>(pl.nm_n)},
                               {f_GEMM::m, static_cast<uint32_t>(pl.nm_m)}});
          Traffic t;
          t.macs = static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(kc) *
                   pl.nm_n / pl.nm_m;
          std::vector<int> reads{bank_resource(kBufA, ab), bank_resource(kBufB, bb)};
          if (ki > 0) reads.push_back(bank_resource(kBufC, cb));
          emit_raw(g, reads, {bank_resource(kBufC, cb)}, t);
        }
        store(part.c, cb, r0, rows, c0, cols);
      }
    }
  }
}

// ---- Weight products -----------------------------------------------------------------------------

const WeightBinding& Lowering::binding(const SparseWeight* w) const {
  const auto it = impl_->weight_index.find(w);
  if (it == impl_->weight_index.end()) fail("weight is not part of the model");
  return prog_.weights[static_cast<size_t>(it->second)];
}

Insn Lowering::pgen_insn(const SparseWeight* w, WeightForm form, std::vector<int>* writes,
                         Traffic* traffic) const {
  const WeightBinding& b = binding(w);
  auto reg = [&](int r) -> const Region& {
    if (r < 0) fail("scheduler invariant broken (a bug; please report it): pre-generation of a weight form without a region");
    return prog_.map.regions.at(static_cast<size_t>(r));
  };
  const Region& master = reg(region_of_param(w->weight));
  const int64_t nnz = w->sparse() ? w->cout * w->k / w->nm.m * w->nm.n : 0;
  uint8_t flags = 0;
  uint32_t val = 0, idx = 0, dense = 0, dense_t = 0, val_b = 0, idx_b = 0;
  NM nm = w->nm;
  std::vector<int> wr;
  int64_t stored = 0;
  auto compressed = [&](int vr, int ir) {
    flags |= 2;
    val = reg(vr).addr();
    idx = reg(ir).addr();
    wr.push_back(vr);
    wr.push_back(ir);
    stored += nnz * 2 + (nnz + 1) / 2;
  };
  auto masked_dense = [&](bool transposed) {   // b2: [cout][k] at dense_addr; b3: [k][cout] at dense_t_addr
    const int r = transposed ? b.dense_t : b.dense;
    flags |= transposed ? 8 : 4;
    (transposed ? dense_t : dense) = reg(r).addr();
    wr.push_back(r);
    stored += w->cout * w->k * 2;
  };
  switch (form) {
    case WeightForm::fwd: compressed(b.fwd_values, b.fwd_index); break;
    case WeightForm::fwd_masked_dense: masked_dense(true); break;
    case WeightForm::fwd_all:
      compressed(b.fwd_values, b.fwd_index);
      masked_dense(true);
      break;
    case WeightForm::bwd:
      flags |= 1;
      compressed(b.bwd_values, b.bwd_index);
      break;
    case WeightForm::dense_copy:
    case WeightForm::dense_copy_t:
      nm = NM{1, 1};   // n == m: a plain BF16 copy
      masked_dense(form == WeightForm::dense_copy_t);
      break;
    case WeightForm::dense_both:
      nm = NM{1, 1};
      masked_dense(false);
      masked_dense(true);
      break;
    case WeightForm::fwd_bwd:
      compressed(b.fwd_values, b.fwd_index);
      flags |= 16;
      val_b = reg(b.bwd_values).addr();
      idx_b = reg(b.bwd_index).addr();
      wr.push_back(b.bwd_values);
      wr.push_back(b.bwd_index);
      stored += nnz * 2 + (nnz + 1) / 2;
      break;
  }
  if (writes) *writes = wr;
  if (traffic) {
    traffic->loaded = w->cout * w->k * 4;
    traffic->stored = stored;
  }
  return insn(OP_PGEN, flags,
              {{f_PGEN::w, master.addr()},
               {f_PGEN::val_addr, val},
               {f_PGEN::idx_addr, idx},
               {f_PGEN::dense_addr, dense},
               {f_PGEN::cout, u32(w->cout, "cout")},
               {f_PGEN::k, u32(w->k, "k")},
               {f_PGEN::n, static_cast<uint32_t>(nm.n)},
               {f_PGEN::m, static_cast<uint32_t>(nm.m)},
               {f_PGEN::dense_t_addr, dense_t},
               {f_PGEN::val_b_addr, val_b},
               {f_PGEN::idx_b_addr, idx_b}});
}

void Lowering::pgen(const SparseWeight* w, WeightForm form) {
  std::vector<int> writes;
  Traffic t;
  const Insn in = pgen_insn(w, form, &writes, &t);
  emit(in, {region_of_param(w->weight)}, writes, t);
}

// The pre-generation instructions that produce every form the stream reads for `w`.
std::vector<Lowering::WeightForm> Lowering::forms_of(const SparseWeight* w) const {
  const WeightBinding& b = binding(w);
  std::vector<WeightForm> f;
  const bool both = opt_.fused_pregen && b.fwd_values >= 0 && b.bwd_values >= 0 && b.dense_t < 0 &&
                    w->cout % w->nm.m == 0 && w->nm.m * w->k <= arch::kPgenBlockElems;
  if (both) return {WeightForm::fwd_bwd};
  if (b.fwd_values >= 0) f.push_back(b.dense_t >= 0 ? WeightForm::fwd_all : WeightForm::fwd);
  if (b.bwd_values >= 0) f.push_back(WeightForm::bwd);
  if (b.fwd_values < 0) {   // a dense layer: its FF copy and/or its BP copy, in one pass
    if (b.dense >= 0 && b.dense_t >= 0) f.push_back(WeightForm::dense_both);
    else if (b.dense >= 0) f.push_back(WeightForm::dense_copy);
    else if (b.dense_t >= 0) f.push_back(WeightForm::dense_copy_t);
  }
  return f;
}

void Lowering::ff_product(SparseWeight* w, const Operand& a, int64_t p, const Output& y) {
  const WeightBinding& b = binding(w);
  const bool sparse = w->ff_sparse(opt_.method);
  // Pre-generation off: the sparse form is selected on the fly from the master at every tile
  // load; a dense copy is still generated (by PGEN) right before the product.
  if (!opt_.pregeneration && !sparse) pgen(w, WeightForm::dense_copy);
  Operand wop;
  if (sparse) {
    wop.kind = Operand::Kind::sparse;
    wop.val_region = b.fwd_values;
    wop.idx_region = b.fwd_index;
    wop.nm = w->nm;
    wop.line_groups = w->k / w->nm.m;
    if (!opt_.pregeneration) {
      wop.master_region = region_of_param(w->weight);
      wop.master_k = w->k;
    }
  } else {
    TensorRef d;
    d.region = b.dense;
    d.shape = {w->cout, w->k};
    wop = Operand::rows(d, w->k, 1);
  }
  matmul(a, wop, y, p, w->cout, w->k);
}

void Lowering::bp_product(SparseWeight* w, const Operand& a, int64_t p, const Output& dx) {
  bp_conv_product(w, a, p, 1, dx);   // a product is the one-tap case: line k of W_B or of W^T
}

bool Lowering::bp_as_convolution(const SparseWeight* w, const ConvGeom& g) const {
  // One pad serves both axes of the flipped window, so the kernel is square; on-the-fly selection
  // reads W_B lines one at a time and cannot give an input channel's taps as one line.
  const bool sparse = w->bp_sparse(opt_.method);
  return opt_.transposed_conv_bp && g.stride == 1 && g.kh == g.kw && (opt_.pregeneration || !sparse);
}

bool Lowering::bp_as_phases(const SparseWeight* w, const ConvGeom& g) const {
  const bool sparse = w->bp_sparse(opt_.method);
  if (!opt_.phase_bp || g.stride != 2 || g.kh != g.kw || g.h % 2 != 0) return false;
  // Each phase reads the pre-generated W_B or W^T (without pre-generation each would make its own).
  if (!opt_.pregeneration || (sparse && w->cout % w->nm.m != 0)) return false;
  const PhaseTaps p0 = phase_taps_1d(g.kh, g.pad, 0), p1 = phase_taps_1d(g.kh, g.pad, 1);
  // Every phase's window: its pad fits LD_CONV (pad < its taps), and the two parities agree (one
  // pad serves both axes); a parity without taps only leaves zeros.
  auto fits = [](const PhaseTaps& t) { return t.count == 0 || (t.pad >= 0 && t.pad < t.count); };
  return fits(p0) && fits(p1) && (p0.count == 0 || p1.count == 0 || p0.pad == p1.pad);
}

void Lowering::bp_conv_product(SparseWeight* w, const Operand& a, int64_t p_in, int64_t taps, const Output& dx) {
  bp_phase_products(w, p_in, taps, {BpPhase{a, dx, {}}});
}

void Lowering::bp_phase_products(SparseWeight* w, int64_t p_in, int64_t taps, const std::vector<BpPhase>& phases) {
  if (!opt_.training) fail("scheduler invariant broken (a bug; please report it): BP product in an inference stream");
  const WeightBinding& b = binding(w);
  const bool sparse = w->bp_sparse(opt_.method);
  if (taps < 1 || w->k % taps != 0) fail("scheduler invariant broken (a bug; please report it): the BP convolution's taps do not divide K");
  if (sparse && !opt_.pregeneration && taps > 1) fail("scheduler invariant broken (a bug; please report it): a BP convolution needs the pre-generated W_B");
  if (!opt_.pregeneration && !sparse) {
    pgen(w, w->ff_sparse(opt_.method) ? WeightForm::fwd_masked_dense : WeightForm::dense_copy_t);
  }
  // Line ci of B is W_B's lines k = ci*taps .. ci*taps + taps - 1 one after the other (K' = (tap,
  // co), groups of M along co, as W_B groups them), or the same rows of W^T [k][cout].
  const int64_t cin = w->k / taps, kk = taps * w->cout;
  Operand wop;
  if (sparse) {
    wop.kind = Operand::Kind::sparse;
    wop.val_region = b.bwd_values;
    wop.idx_region = b.bwd_index;
    wop.nm = w->nm;
    wop.line_groups = kk / w->nm.m;
    if (!opt_.pregeneration) {   // one tap: on the fly from the master, as in ff_product
      wop.master_region = region_of_param(w->weight);
      wop.master_k = w->k;
      wop.along_cout = true;
    }
  } else {
    TensorRef d;
    d.region = b.dense_t;
    d.shape = {w->k, w->cout};
    wop = Operand::rows(d, kk, 1);
  }
  if (phases.size() == 1 && phases[0].taps.empty()) {
    matmul(phases[0].a, wop, phases[0].dx, p_in, cin, kk);
    return;
  }
  std::vector<ProductPart> parts;
  for (const BpPhase& ph : phases) {
    if (ph.taps.empty()) fail("scheduler invariant broken (a bug; please report it): a BP phase without taps");
    Operand bw = wop;
    bw.tap_len = w->cout;
    bw.taps = ph.taps;
    parts.push_back({ph.a, bw, ph.dx, static_cast<int64_t>(ph.taps.size()) * w->cout});
  }
  matmul_parts(parts, p_in, cin);
}

void Lowering::wu_product(SparseWeight* w, const Operand& a, const Operand& b, int64_t p) {
  if (!opt_.training) fail("scheduler invariant broken (a bug; please report it): WU product in an inference stream");
  TensorRef g = grad_ref(w->weight);
  g.shape = {w->cout, w->k};
  Output out = Output::rows(g, w->k, 1);
  out.accumulate = region_written(g.region);   // a second product into the same gradient adds
  // Accounted as the layer's WU pass, apart from its BP products.
  auto& I = *impl_;
  const Scope top = I.scopes.empty() ? Scope{"(step)", "-", "bp"} : I.scopes.back();
  I.scopes.push_back({top.name, top.type, "wu"});
  I.open_segment = -1;
  matmul(a, b, out, w->cout, w->k, p);
  I.scopes.pop_back();
  I.open_segment = -1;
}

// ---- Layers --------------------------------------------------------------------------------------

void Lowering::begin_layer(const Layer& layer, const char* phase) {
  impl_->scopes.push_back({layer.name, layer.type(), phase});
  impl_->open_segment = -1;
}

void Lowering::end_layer() {
  if (!impl_->scopes.empty()) impl_->scopes.pop_back();
  impl_->open_segment = -1;
}

namespace {
uint32_t channel_of(const Program& p, const TensorRef& t) {
  return p.map.regions.at(static_cast<size_t>(t.region)).channel;
}
}  // namespace

bool Lowering::fuse_next_relu() const { return impl_->next_relu; }

TensorRef Lowering::forward_sequence(std::vector<LayerPtr>& layers, const TensorRef& x) {
  auto& I = *impl_;
  const int saved = I.fwd_in_channel;
  TensorRef cur = x;
  LayerLowering* prev = nullptr;   // the lowering of the layer before, in this sequence
  for (size_t i = 0; i < layers.size(); ++i) {
    Layer& l = *layers[i];
    begin_layer(l, "ff");
    const Shape want = dram_shape(batch(), l.in_shape);
    if (cur.numel() != sat::numel(want)) {
      fail("input " + shape_str(cur.shape) + " does not match the layer's " + shape_str(want));
    }
    I.fwd_in_channel = static_cast<int>(channel_of(prog_, cur));
    I.input_channel[&l] = I.fwd_in_channel;
    auto& slot = I.lowerings[&l];
    // A ReLU the layer before took into its own instructions lowers to nothing.
    const bool fused = l.type() == "relu" && prev && prev->fused_relu();
    slot = fused ? compiler::make_fused_relu_lowering() : make_lowering(l);
    I.next_relu = opt_.fuse_relu && i + 1 < layers.size() && layers[i + 1]->type() == "relu";
    TensorRef y = slot->forward(*this, l, cur);
    I.next_relu = false;
    if (!y.valid()) fail("forward produced no output");
    end_layer();
    cur = y;
    prev = slot.get();
  }
  I.fwd_in_channel = saved;
  return cur;
}

TensorRef Lowering::backward_sequence(std::vector<LayerPtr>& layers, const TensorRef& dy,
                                      bool need_dx) {
  auto& I = *impl_;
  const int saved = I.grad_hint_channel;
  TensorRef cur = dy;
  for (size_t i = layers.size(); i-- > 0;) {
    Layer& l = *layers[i];
    const bool need = i > 0 || need_dx;
    begin_layer(l, "bp");
    const auto it = I.lowerings.find(&l);
    if (it == I.lowerings.end()) fail("backward before forward");
    I.grad_hint_channel = I.input_channel[&l];
    TensorRef dx = it->second->backward(*this, l, cur, need);
    if (need && !dx.valid()) fail("backward produced no input gradient");
    end_layer();
    // The layer's gradients are complete: its update and pre-generation can run on their units
    // while BP goes on (with pre-generation off, SGD's SR-STE term needs W_F of the masters before
    // any update, so the updates stay at the end).
    if (opt_.overlap_update && opt_.pregeneration && !opt_.update_apart) {
      for (const ParamBinding& pb : prog_.params)
        if (I.owner.count(pb.param) && I.owner[pb.param] == &l) update_param(pb.param);
      for (const WeightBinding& wb : prog_.weights)
        if (I.owner.count(wb.weight->weight) && I.owner[wb.weight->weight] == &l) pregen_weight(wb.weight);
    }
    if (!need) {
      cur = TensorRef{};
      break;
    }
    cur = dx;
  }
  I.grad_hint_channel = saved;
  return cur;
}

// Update of one parameter (once per step): SGD with momentum, weight decay where the parameter
// takes it, the SR-STE term on weights whose FF is N:M under the method (mask from W_F's indices).
void Lowering::update_param(Param* p) {
  auto& I = *impl_;
  if (!opt_.training || !p->trainable || I.updated.count(p)) return;
  I.updated.insert(p);
  const ParamBinding& pb = prog_.params[static_cast<size_t>(I.param_index.at(p))];
  Layer* owner = I.owner.count(p) ? I.owner[p] : nullptr;
  if (owner) {
    begin_layer(*owner, "update");
  } else {
    I.scopes.push_back({p->name, "param", "update"});
    I.open_segment = -1;
  }
  const TensorRef hyper = region_ref(prog_.hyper, {4});
  const TensorRef w = param_ref(p), g = grad_ref(p);
  TensorRef v = w;
  v.region = pb.momentum;
  if (!prog_.map.regions[static_cast<size_t>(g.region)].written) {
    // No instruction produced this gradient (the parameter does not reach the loss): zero it so
    // that the update sees the CPU reference's zero gradient. (The map's flag, not the token
    // state: an update stream apart starts with no writer on record.)
    zero_f32(*this, g);
  }
  uint8_t flags = p->decay ? 1 : 0;
  uint32_t idx = 0, n = 0, m = 0, k = 0;
  std::vector<TensorRef> reads{w, v, g, hyper};
  const auto sw_it = I.weight_of_param.find(p);
  if (sw_it != I.weight_of_param.end() && sw_it->second->ff_sparse(opt_.method)) {
    const SparseWeight* sw = sw_it->second;
    const WeightBinding& b = binding(sw);
    flags |= 2;
    TensorRef ir;
    ir.region = b.fwd_index;
    ir.shape = {static_cast<int64_t>(prog_.map.regions[static_cast<size_t>(b.fwd_index)].bytes / 2)};
    idx = addr(ir);
    n = static_cast<uint32_t>(sw->nm.n);
    m = static_cast<uint32_t>(sw->nm.m);
    k = u32(sw->k, "k");
    reads.push_back(ir);
  }
  const Insn sgd = insn(OP_SGD, flags,
                        {{f_SGD::w, addr(w)}, {f_SGD::v, addr(v)}, {f_SGD::g, addr(g)},
                         {f_SGD::count, u32(w.numel(), "count")}, {f_SGD::hyper, addr(hyper)},
                         {f_SGD::idx_addr, idx}, {f_SGD::n, n}, {f_SGD::m, m}, {f_SGD::k, k}});
  emit_vec(sgd, reads, {w, v});
  if (owner) {
    end_layer();
  } else {
    I.scopes.pop_back();
    I.open_segment = -1;
  }
}

// Pre-generation of every form the next step reads of `w`, right after its update (pre-generation
// on; with it off the forms are generated before each product instead).
void Lowering::pregen_weight(SparseWeight* w) {
  auto& I = *impl_;
  if (!opt_.training || !opt_.pregeneration || I.pregenerated.count(w)) return;
  I.pregenerated.insert(w);
  Layer* owner = I.owner.count(w->weight) ? I.owner[w->weight] : nullptr;
  if (owner) begin_layer(*owner, "pregen");
  for (WeightForm f : forms_of(w)) pgen(w, f);
  if (owner) end_layer();
}

void Lowering::emit_updates() {
  auto& I = *impl_;
  // Pre-generation off: the SR-STE term of SGD reads W_F's indices (the mask FF used), which no
  // PGEN has written this step; generate W_F from the not yet updated masters first.
  if (!opt_.pregeneration) {
    for (const WeightBinding& wb : prog_.weights) {
      SparseWeight* w = wb.weight;
      if (!w->ff_sparse(opt_.method) || wb.fwd_values < 0) continue;
      Layer* owner = I.owner.count(w->weight) ? I.owner[w->weight] : nullptr;
      if (owner) begin_layer(*owner, "pregen");
      pgen(w, WeightForm::fwd);
      if (owner) end_layer();
    }
  }
  // The update of every trainable parameter not yet updated (all of them without overlap_update),
  // then pre-generation of every form the next step reads.
  for (const ParamBinding& pb : prog_.params) update_param(pb.param);
  for (const WeightBinding& wb : prog_.weights) pregen_weight(wb.weight);
}

void Lowering::emit_finish() {
  auto& I = *impl_;
  I.scopes.push_back({"(step)", "-", "end"});
  I.open_segment = -1;
  emit_raw(make_insn(OP_FINISH), {}, {}, {});
  I.scopes.pop_back();
  I.open_segment = -1;
}

void Lowering::begin_update_stream() {
  auto& I = *impl_;
  emit_finish();
  // Every unit has drained at FINISH and the host runs the update stream after it: nothing the
  // step did needs a token, and no bank or patch buffer content carries over.
  for (Access& a : I.regions) a = Access{};
  for (Access& a : I.banks) a = Access{};
  for (auto& k : I.known) k.fill(-1);
  I.a_tile = {};
  I.b_tile = {};
  I.patch = {};
  update_begin_ = static_cast<int64_t>(prog_.insns.size());
}

void Lowering::end_update_stream() {
  const auto at = static_cast<size_t>(update_begin_);
  prog_.update.assign(prog_.insns.begin() + static_cast<std::ptrdiff_t>(at), prog_.insns.end());
  prog_.update_traffic.assign(prog_.traffic.begin() + static_cast<std::ptrdiff_t>(at), prog_.traffic.end());
  prog_.insns.resize(at);
  prog_.traffic.resize(at);
  std::vector<LayerSchedule> step;
  for (LayerSchedule& l : prog_.layers) {
    if (l.first_insn < update_begin_) {
      step.push_back(l);
    } else {
      l.first_insn -= update_begin_;
      prog_.update_layers.push_back(l);
    }
  }
  prog_.layers = std::move(step);
  // Orderings inside the update stream are not recorded: the recorded pairs index Program::insns.
  std::vector<std::pair<int64_t, int64_t>> deps;
  for (const auto& d : prog_.dependencies)
    if (d.second < update_begin_) deps.push_back(d);
  prog_.dependencies = std::move(deps);
}

void Lowering::lower_model() {
  auto& I = *impl_;
  const int B = batch();
  TensorRef x;
  x.region = prog_.input;   // slot 1's addresses come from addr()
  x.shape = dram_shape(B, model_.input);
  const TensorRef logits = forward_sequence(model_.layers, x);
  prog_.logits = logits.region;

  I.scopes.push_back({"loss", "softmax_xent", "loss"});
  I.open_segment = -1;
  if (logits.numel() != static_cast<int64_t>(B) * model_.classes) {
    fail("the last layer outputs " + shape_str(logits.shape) + ", not [batch, " +
         std::to_string(model_.classes) + "] logits");
  }
  check_row(model_.classes, "softmax cross-entropy");
  TensorRef labels;
  labels.region = prog_.labels;
  labels.dtype = DType::f32;
  labels.shape = {B};
  TensorRef result;
  result.region = prog_.result;
  result.dtype = DType::f32;
  result.shape = {2};
  TensorRef dlogits;
  if (opt_.training) {
    I.grad_hint_channel = static_cast<int>(channel_of(prog_, logits));
    dlogits = alloc("loss.dlogits", RegionKind::gradient, logits.shape);
  }
  const Insn xent = insn(OP_V_XENT, opt_.training ? 1 : 0,
                         {{f_V_XENT::logits, addr(logits)},
                          {f_V_XENT::labels, addr(labels)},
                          {f_V_XENT::dlogits, dlogits.valid() ? addr(dlogits) : 0},
                          {f_V_XENT::out, addr(result)},
                          {f_V_XENT::rows, u32(B, "rows")},
                          {f_V_XENT::classes, u32(model_.classes, "classes")}});
  std::vector<TensorRef> writes{result};
  if (dlogits.valid()) writes.push_back(dlogits);
  emit_vec(xent, {logits, labels}, writes);
  I.scopes.pop_back();
  I.open_segment = -1;

  if (opt_.training) {
    backward_sequence(model_.layers, dlogits, false);
    if (opt_.update_apart) begin_update_stream();
    emit_updates();
  }

  emit_finish();
  if (update_begin_ >= 0) end_update_stream();

  // The prologue: every form, generated from the masters the host wrote, then FINISH. One unit,
  // so it needs no tokens.
  for (const WeightBinding& wb : prog_.weights)
    for (WeightForm f : forms_of(wb.weight)) prog_.prologue.push_back(pgen_insn(wb.weight, f));
  prog_.prologue.push_back(make_insn(OP_FINISH));

  // The second batch slot, the next step's batch written there while this one runs, allocated
  // after everything else so that no other region moves for it.
  if (opt_.training) {
    prog_.input_b = alloc("input.1", RegionKind::input, dram_shape(B, model_.input)).region;
    prog_.labels_b = alloc("labels.1", RegionKind::labels, {B}, DType::f32).region;
  }
}

}  // namespace sat::compiler
