// Structural checks of the accelerator lowerings of batchnorm2d, layernorm, gelu, residual,
// attention, patch_embed and token_mean (host/src/compiler/lower_*.cpp): the instruction kinds
// each layer emits in FF and BP, their settings fields, and a data-flow check of whole compiled
// steps: every DRAM access of a decodable instruction lies inside one region of the memory map,
// every element an instruction reads was written earlier in the stream (or is host-provided:
// input, masters, weight forms, ...), and every parameter gradient is fully written by the
// layer's own instructions before the update reads it. Numerical equality with the CPU backend is
// the hls backend's test; this one needs no kernel.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "expect_error.hpp"
#include "sat/arch/isa.hpp"
#include "sat/bf16.hpp"
#include "sat/compiler.hpp"
#include "sat/model.hpp"

using namespace sat;
using namespace sat::isa;

namespace {

// ---- Data-flow checker ---------------------------------------------------------------------------

// One DRAM access: elements (r, c), r < rows, c < cols, at halfword addr + (r*rs + c*cs) * eh.
struct Access {
  const char* field;
  bool write;
  uint32_t addr;
  int64_t rows, cols, rs, cs;
  int eh;   // halfwords per element: 1 BF16, 2 FP32/int32
};

Access flat(const char* field, bool write, uint32_t addr, int64_t n, bool f32) {
  return {field, write, addr, 1, n, 0, 1, f32 ? 2 : 1};
}

class FlowChecker {
 public:
  explicit FlowChecker(const Program& p) : p_(p) {
    const auto& rs = p.map.regions;
    written_.resize(rs.size());
    count_.assign(rs.size(), 0);
    for (size_t i = 0; i < rs.size(); ++i) {
      const Region& r = rs[i];
      const bool host = r.kind == RegionKind::input || r.kind == RegionKind::labels ||
                        r.kind == RegionKind::master || r.kind == RegionKind::momentum ||
                        r.kind == RegionKind::weight_form || r.kind == RegionKind::control ||
                        (r.kind == RegionKind::stats && !ends_with(r.name, ".mean") &&
                         !ends_with(r.name, ".rstd"));
      written_[i].assign(r.bytes / 2, host ? 1 : 0);
      count_[i] = host ? static_cast<int64_t>(r.bytes / 2) : 0;
    }
  }

  // Runs the stream; returns the problems found (empty: consistent).
  std::vector<std::string> run() {
    for (size_t i = 0; i < p_.insns.size() && problems_.size() < 20; ++i) step(i, p_.insns[i]);
    return problems_;
  }

 private:
  static bool ends_with(const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  }

  void problem(size_t i, const Insn& in, const std::string& what) {
    problems_.push_back("insn " + std::to_string(i) + " " + opcode_name(in.opcode()) + " (" +
                        layer_of(i) + "): " + what);
  }

  std::string layer_of(size_t i) const {
    for (const auto& s : p_.layers) {
      if (static_cast<int64_t>(i) >= s.first_insn &&
          static_cast<int64_t>(i) < s.first_insn + s.instructions) {
        return s.name + " " + s.phase;
      }
    }
    return "?";
  }

  // Region holding halfword `off` of channel `ch`; -1 if none.
  int region_at(uint32_t ch, uint64_t off) const {
    const auto& rs = p_.map.regions;
    for (size_t i = 0; i < rs.size(); ++i) {
      if (rs[i].channel == ch && off >= rs[i].offset / 2 && off < (rs[i].offset + rs[i].bytes) / 2) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  // The region an access lies in entirely, or -1 after reporting.
  int locate(size_t i, const Insn& in, const Access& a, uint64_t* base) {
    const uint32_t ch = addr_channel(a.addr);
    const uint64_t first = addr_offset(a.addr);
    const int r = region_at(ch, first);
    if (r < 0) {
      problem(i, in, std::string(a.field) + " address is in no region");
      return -1;
    }
    const uint64_t last =
        first + static_cast<uint64_t>(((a.rows - 1) * a.rs + (a.cols - 1) * a.cs) * a.eh + a.eh - 1);
    const Region& reg = p_.map.regions[static_cast<size_t>(r)];
    if (last >= (reg.offset + reg.bytes) / 2) {
      problem(i, in, std::string(a.field) + " runs past the end of region '" + reg.name + "'");
      return -1;
    }
    *base = first - reg.offset / 2;
    return r;
  }

  void touch(size_t i, const Insn& in, const Access& a) {
    if (a.rows <= 0 || a.cols <= 0) {
      problem(i, in, std::string(a.field) + " has an empty extent");
      return;
    }
    uint64_t base = 0;
    const int r = locate(i, in, a, &base);
    if (r < 0) return;
    auto& bits = written_[static_cast<size_t>(r)];
    int64_t unwritten = 0;
    for (int64_t y = 0; y < a.rows; ++y)
      for (int64_t x = 0; x < a.cols; ++x)
        for (int h = 0; h < a.eh; ++h) {
          const uint64_t o = base + static_cast<uint64_t>((y * a.rs + x * a.cs) * a.eh + h);
          if (a.write) {
            if (!bits[o]) {
              bits[o] = 1;
              ++count_[static_cast<size_t>(r)];
            }
          } else if (!bits[o]) {
            ++unwritten;
          }
        }
    if (unwritten) {
      problem(i, in, std::string(a.field) + " reads " + std::to_string(unwritten) +
                         " halfwords of '" + p_.map.regions[static_cast<size_t>(r)].name +
                         "' that nothing wrote before");
    }
  }

  // Reads the region at `addr` as a whole (convolution windows, col2im targets): it must be written
  // completely by then.
  void whole(size_t i, const Insn& in, const char* field, uint32_t addr) {
    const int r = region_at(addr_channel(addr), addr_offset(addr));
    if (r < 0) {
      problem(i, in, std::string(field) + " address is in no region");
      return;
    }
    if (count_[static_cast<size_t>(r)] != static_cast<int64_t>(written_[static_cast<size_t>(r)].size())) {
      problem(i, in, std::string(field) + " reads '" + p_.map.regions[static_cast<size_t>(r)].name +
                         "' before it is completely written");
    }
  }

  void step(size_t i, const Insn& in) {
    std::vector<Access> acc;
    const auto op = static_cast<Opcode>(in.opcode());
    const bool b0 = in.flag(0), b1 = in.flag(1), b2 = in.flag(2);
    switch (op) {
      case OP_LD_2D:
        acc.push_back({"addr", false, in[f_LD_2D::addr], in[f_LD_2D::rows], in[f_LD_2D::cols],
                       in[f_LD_2D::row_stride], in[f_LD_2D::col_stride], 1});
        break;
      case OP_LD_CONV: whole(i, in, "addr", in[f_LD_CONV::addr]); break;
      case OP_ST_2D: {
        const Access w{"addr", true, in[f_ST_2D::addr], in[f_ST_2D::rows], in[f_ST_2D::cols],
                       in[f_ST_2D::row_stride], in[f_ST_2D::col_stride], b0 ? 2 : 1};
        if (b1) {
          Access r = w;
          r.write = false;
          acc.push_back(r);
        }
        if (b2) acc.push_back(flat("bias_addr", false, in[f_ST_2D::bias_addr], in[f_ST_2D::cols], true));
        acc.push_back(w);
        break;
      }
      case OP_ST_COL2IM: whole(i, in, "addr", in[f_ST_COL2IM::addr]); break;
      case OP_V_FILL: acc.push_back(flat("y", true, in[f_V_FILL::y], in[f_V_FILL::count], b0)); break;
      case OP_V_CONVERT:
        acc.push_back(flat("x", false, in[f_V_CONVERT::x], in[f_V_CONVERT::count], true));
        acc.push_back(flat("y", true, in[f_V_CONVERT::y], in[f_V_CONVERT::count], false));
        break;
      case OP_V_ADD:
        acc.push_back(flat("a", false, in[f_V_ADD::a], in[f_V_ADD::count], b0));
        acc.push_back(flat("b", false, in[f_V_ADD::b], in[f_V_ADD::count], b1));
        acc.push_back(flat("y", true, in[f_V_ADD::y], in[f_V_ADD::count], b2));
        break;
      case OP_V_BCAST_ADD: {
        const int64_t n = int64_t{in[f_V_BCAST_ADD::rows]} * in[f_V_BCAST_ADD::cols];
        acc.push_back(flat("x", false, in[f_V_BCAST_ADD::x], n, false));
        acc.push_back(flat("p", false, in[f_V_BCAST_ADD::p], in[f_V_BCAST_ADD::cols], true));
        acc.push_back(flat("y", true, in[f_V_BCAST_ADD::y], n, false));
        break;
      }
      case OP_V_COLSUM: {
        const int64_t n = int64_t{in[f_V_COLSUM::rows]} * in[f_V_COLSUM::cols];
        acc.push_back(flat("x", false, in[f_V_COLSUM::x], n, false));
        if (b0) acc.push_back(flat("y", false, in[f_V_COLSUM::y], in[f_V_COLSUM::cols], true));
        acc.push_back(flat("y", true, in[f_V_COLSUM::y], in[f_V_COLSUM::cols], true));
        break;
      }
      case OP_V_RELU:
      case OP_V_GELU:
        acc.push_back(flat("x", false, in[1], in[3], false));
        acc.push_back(flat("y", true, in[2], in[3], false));
        break;
      case OP_V_RELU_BWD:
      case OP_V_GELU_BWD:
        acc.push_back(flat("x", false, in[1], in[4], false));
        acc.push_back(flat("dy", false, in[2], in[4], false));
        acc.push_back(flat("dx", true, in[3], in[4], false));
        break;
      case OP_V_POOL: {
        const int64_t b = in[f_V_POOL::b], c = in[f_V_POOL::c];
        acc.push_back(flat("x", false, in[f_V_POOL::x], b * in[f_V_POOL::h] * in[f_V_POOL::w] * c, false));
        acc.push_back(flat("y", true, in[f_V_POOL::y], b * in[f_V_POOL::oh] * in[f_V_POOL::ow] * c, false));
        break;
      }
      case OP_V_POOL_BWD: {
        const int64_t b = in[f_V_POOL_BWD::b], c = in[f_V_POOL_BWD::c];
        const int64_t xn = b * in[f_V_POOL_BWD::h] * in[f_V_POOL_BWD::w] * c;
        if (!b0) acc.push_back(flat("x", false, in[f_V_POOL_BWD::x], xn, false));
        acc.push_back(flat("dy", false, in[f_V_POOL_BWD::dy],
                           b * in[f_V_POOL_BWD::oh] * in[f_V_POOL_BWD::ow] * c, false));
        acc.push_back(flat("dx", true, in[f_V_POOL_BWD::dx], xn, false));
        break;
      }
      case OP_V_BN: {
        const int64_t n = int64_t{in[f_V_BN::rows]} * in[f_V_BN::c], c = in[f_V_BN::c];
        acc.push_back(flat("x", false, in[f_V_BN::x], n, false));
        acc.push_back(flat("gamma", false, in[f_V_BN::gamma], c, true));
        acc.push_back(flat("beta", false, in[f_V_BN::beta], c, true));
        acc.push_back(flat("run_mean", false, in[f_V_BN::run_mean], c, true));
        acc.push_back(flat("run_var", false, in[f_V_BN::run_var], c, true));
        if (b0) {
          acc.push_back(flat("mean", true, in[f_V_BN::mean], c, true));
          acc.push_back(flat("rstd", true, in[f_V_BN::rstd], c, true));
          acc.push_back(flat("run_mean", true, in[f_V_BN::run_mean], c, true));
          acc.push_back(flat("run_var", true, in[f_V_BN::run_var], c, true));
        }
        acc.push_back(flat("y", true, in[f_V_BN::y], n, false));
        break;
      }
      case OP_V_BN_BWD: {
        const int64_t n = int64_t{in[f_V_BN_BWD::rows]} * in[f_V_BN_BWD::c], c = in[f_V_BN_BWD::c];
        acc.push_back(flat("x", false, in[f_V_BN_BWD::x], n, false));
        acc.push_back(flat("dy", false, in[f_V_BN_BWD::dy], n, false));
        acc.push_back(flat("gamma", false, in[f_V_BN_BWD::gamma], c, true));
        acc.push_back(flat("mean", false, in[f_V_BN_BWD::mean], c, true));
        acc.push_back(flat("rstd", false, in[f_V_BN_BWD::rstd], c, true));
        acc.push_back(flat("dx", true, in[f_V_BN_BWD::dx], n, false));
        acc.push_back(flat("dgamma", true, in[f_V_BN_BWD::dgamma], c, true));
        acc.push_back(flat("dbeta", true, in[f_V_BN_BWD::dbeta], c, true));
        break;
      }
      case OP_V_LN: {
        const int64_t rows = in[f_V_LN::rows], d = in[f_V_LN::d];
        acc.push_back(flat("x", false, in[f_V_LN::x], rows * d, false));
        acc.push_back(flat("gamma", false, in[f_V_LN::gamma], d, true));
        acc.push_back(flat("beta", false, in[f_V_LN::beta], d, true));
        acc.push_back(flat("y", true, in[f_V_LN::y], rows * d, false));
        acc.push_back(flat("mean", true, in[f_V_LN::mean], rows, true));
        acc.push_back(flat("rstd", true, in[f_V_LN::rstd], rows, true));
        break;
      }
      case OP_V_LN_BWD: {
        const int64_t rows = in[f_V_LN_BWD::rows], d = in[f_V_LN_BWD::d];
        acc.push_back(flat("x", false, in[f_V_LN_BWD::x], rows * d, false));
        acc.push_back(flat("dy", false, in[f_V_LN_BWD::dy], rows * d, false));
        acc.push_back(flat("gamma", false, in[f_V_LN_BWD::gamma], d, true));
        acc.push_back(flat("mean", false, in[f_V_LN_BWD::mean], rows, true));
        acc.push_back(flat("rstd", false, in[f_V_LN_BWD::rstd], rows, true));
        acc.push_back(flat("dx", true, in[f_V_LN_BWD::dx], rows * d, false));
        acc.push_back(flat("dgamma", true, in[f_V_LN_BWD::dgamma], d, true));
        acc.push_back(flat("dbeta", true, in[f_V_LN_BWD::dbeta], d, true));
        break;
      }
      case OP_V_SOFTMAX: {
        const int64_t n = int64_t{in[f_V_SOFTMAX::rows]} * in[f_V_SOFTMAX::cols];
        acc.push_back(flat("x", false, in[f_V_SOFTMAX::x], n, false));
        acc.push_back(flat("y", true, in[f_V_SOFTMAX::y], n, false));
        break;
      }
      case OP_V_SOFTMAX_BWD: {
        const int64_t n = int64_t{in[f_V_SOFTMAX_BWD::rows]} * in[f_V_SOFTMAX_BWD::cols];
        acc.push_back(flat("y", false, in[f_V_SOFTMAX_BWD::y], n, false));
        acc.push_back(flat("dy", false, in[f_V_SOFTMAX_BWD::dy], n, false));
        acc.push_back(flat("dx", true, in[f_V_SOFTMAX_BWD::dx], n, false));
        break;
      }
      case OP_V_XENT: {
        const int64_t rows = in[f_V_XENT::rows], n = rows * in[f_V_XENT::classes];
        acc.push_back(flat("logits", false, in[f_V_XENT::logits], n, false));
        acc.push_back(flat("labels", false, in[f_V_XENT::labels], rows, true));
        if (b0) acc.push_back(flat("dlogits", true, in[f_V_XENT::dlogits], n, false));
        acc.push_back(flat("out", true, in[f_V_XENT::out], 2, true));
        break;
      }
      case OP_SGD: {
        const int64_t n = in[f_SGD::count];
        acc.push_back(flat("w", false, in[f_SGD::w], n, true));
        acc.push_back(flat("v", false, in[f_SGD::v], n, true));
        acc.push_back(flat("g", false, in[f_SGD::g], n, true));
        acc.push_back(flat("hyper", false, in[f_SGD::hyper], 4, true));
        acc.push_back(flat("w", true, in[f_SGD::w], n, true));
        acc.push_back(flat("v", true, in[f_SGD::v], n, true));
        break;
      }
      case OP_V_PERMUTE: {
        const int64_t n = int64_t{in[f_V_PERMUTE::outer]} * in[f_V_PERMUTE::rows] * in[f_V_PERMUTE::cols];
        acc.push_back(flat("x", false, in[f_V_PERMUTE::x], n, false));
        acc.push_back(flat("y", true, in[f_V_PERMUTE::y], n, false));
        break;
      }
      default:
        break;   // LD_SPW, GEMM, PGEN, FINISH: not checked here
    }
    for (const Access& a : acc) touch(i, in, a);
  }

  const Program& p_;
  std::vector<std::vector<uint8_t>> written_;   // per region, per halfword
  std::vector<int64_t> count_;                  // written halfwords per region
  std::vector<std::string> problems_;
};

void expect_consistent(const Program& p) {
  for (const auto& s : FlowChecker(p).run()) ADD_FAILURE() << s;
  // The framework zero-fills a gradient no instruction wrote; with every parameter reaching the
  // loss, such a fill means a lowering forgot a gradient.
  for (const auto& pb : p.params) {
    if (pb.grad < 0) continue;
    const Region& g = p.map.regions[static_cast<size_t>(pb.grad)];
    for (const Insn& in : p.insns) {
      if (in.opcode() == OP_V_FILL && in[f_V_FILL::y] == g.addr()) {
        ADD_FAILURE() << "gradient of " << pb.param->name << " is never written by its layer";
      }
    }
  }
}

// ---- Per-layer instruction histograms ------------------------------------------------------------

struct Segments {
  const Program& p;
  // Instructions of every segment of `layer` in `phase`.
  std::vector<const Insn*> of(const std::string& layer, const std::string& phase) const {
    std::vector<const Insn*> out;
    for (const auto& s : p.layers) {
      if (s.name != layer || s.phase != phase) continue;
      for (int64_t i = 0; i < s.instructions; ++i) {
        out.push_back(&p.insns[static_cast<size_t>(s.first_insn + i)]);
      }
    }
    return out;
  }
  int count(const std::string& layer, const std::string& phase, Opcode op) const {
    int n = 0;
    for (const Insn* in : of(layer, phase)) n += in->opcode() == op;
    return n;
  }
  const Insn* first(const std::string& layer, const std::string& phase, Opcode op) const {
    for (const Insn* in : of(layer, phase))
      if (in->opcode() == op) return in;
    return nullptr;
  }
};

Program compile_text(const std::string& text, Method method, int batch, bool training = true) {
  Model m = Model::from_json_text(text, "test.json");
  ScheduleOptions opt;
  opt.batch = batch;
  opt.method = method;
  opt.training = training;
  return compile(m, opt);
}

float as_float(uint32_t bits) { return f32_from_bits(bits); }

// A small pre-norm transformer: 8x8 image, 4x4 patches -> 4 tokens of width 16, 2 heads.
const char* kTinyVit = R"({
  "name": "tiny_vit", "input": [1, 8, 8], "classes": 10, "nm": "2:8",
  "layers": [
    {"type": "patch_embed", "name": "pe", "patch": 4, "dim": 16},
    {"type": "residual", "name": "blk1", "body": [
      {"type": "layernorm", "name": "ln1"},
      {"type": "attention", "name": "attn", "heads": 2}]},
    {"type": "residual", "name": "blk2", "body": [
      {"type": "layernorm", "name": "ln2", "eps": 0.001},
      {"type": "linear", "name": "fc1", "out": 32},
      {"type": "gelu", "name": "act", "approximate": "tanh"},
      {"type": "linear", "name": "fc2", "out": 16}]},
    {"type": "layernorm", "name": "ln_f"},
    {"type": "token_mean", "name": "pool"},
    {"type": "linear", "name": "head", "out": 10}
  ]})";

// A small residual CNN: identity and projection shortcuts, batch norm, GELU.
const char* kTinyCnn = R"({
  "name": "tiny_cnn", "input": [3, 8, 8], "classes": 10, "nm": "2:8",
  "layers": [
    {"type": "conv2d", "name": "stem", "out": 8, "kernel": 3, "padding": 1, "bias": false},
    {"type": "batchnorm2d", "name": "bn0", "momentum": 0.2},
    {"type": "relu"},
    {"type": "residual", "name": "down", "body": [
      {"type": "conv2d", "out": 16, "kernel": 3, "stride": 2, "padding": 1, "bias": false},
      {"type": "batchnorm2d", "name": "bn1"},
      {"type": "relu"},
      {"type": "conv2d", "out": 16, "kernel": 3, "padding": 1, "bias": false},
      {"type": "batchnorm2d", "name": "bn2"}],
     "shortcut": [
      {"type": "conv2d", "out": 16, "kernel": 1, "stride": 2, "bias": false},
      {"type": "batchnorm2d", "name": "bn_sc"}]},
    {"type": "residual", "name": "same", "body": [
      {"type": "batchnorm2d", "name": "bn3"},
      {"type": "gelu", "name": "g"}]},
    {"type": "global_avgpool"},
    {"type": "flatten"},
    {"type": "linear", "out": 10}
  ]})";


// ---- A reference interpreter for dense streams ---------------------------------------------------
//
// Runs a compiled dense-method step sequentially (program order is a valid schedule: the tokens
// only relax it) with the instruction semantics of docs/isa.md, written here independently of the
// HLS kernel, so that the lowerings' address, stride and transposition choices can be compared
// numerically with the CPU reference. It covers the instructions dense streams of the layers under
// test use; anything else fails the test.
class DenseInterpreter {
 public:
  explicit DenseInterpreter(const Program& p) : p_(p) {
    for (int c = 0; c < arch::kDdrChannels; ++c) mem_[c].assign(p.map.channel_bytes[c] / 2, 0);
    for (auto& b : a_) b.assign(size_t(arch::kMaxTileRows) * arch::kMaxTileK, 0.f);
    for (auto& b : b_) b.assign(size_t(arch::kMaxTileCols) * arch::kMaxTileK, 0.f);
    for (auto& b : c_) b.assign(size_t(arch::kMaxTileRows) * arch::kMaxTileCols, 0.f);
  }

  float f32(uint32_t a, int64_t i) const {
    const uint16_t* h = &mem_[addr_channel(a)].at(addr_offset(a) + 2 * i);
    return f32_from_bits(uint32_t{h[0]} | uint32_t{h[1]} << 16);
  }
  void set_f32(uint32_t a, int64_t i, float v) {
    const uint32_t u = f32_bits(v);
    uint16_t* h = &mem_[addr_channel(a)].at(addr_offset(a) + 2 * i);
    h[0] = static_cast<uint16_t>(u & 0xffff);
    h[1] = static_cast<uint16_t>(u >> 16);
  }
  float bf(uint32_t a, int64_t i) const { return bf16_bits_to_f32(mem_[addr_channel(a)].at(addr_offset(a) + i)); }
  void set_bf(uint32_t a, int64_t i, float v) { mem_[addr_channel(a)].at(addr_offset(a) + i) = f32_to_bf16_bits(v); }
  float get(uint32_t a, int64_t i, bool fp32) const { return fp32 ? f32(a, i) : bf(a, i); }
  void set(uint32_t a, int64_t i, float v, bool fp32) { fp32 ? set_f32(a, i, v) : set_bf(a, i, v); }

  uint32_t region_addr(int r) const { return p_.map.regions.at(size_t(r)).addr(); }

  void run(const std::vector<Insn>& insns, bool stop_at_update) {
    for (const Insn& in : insns) {
      if (stop_at_update && in.opcode() == OP_SGD) return;
      exec(in);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

 private:
  static float gelu(double x, bool t) {
    if (t) return float(0.5 * x * (1.0 + std::tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x))));
    return float(0.5 * x * (1.0 + std::erf(x / 1.41421356237309504880)));
  }
  static float gelu_d(double x, bool t) {
    if (t) {
      const double th = std::tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x));
      return float(0.5 * (1 + th) + 0.5 * x * (1 - th * th) * 0.79788456080286535588 * (1 + 3 * 0.044715 * x * x));
    }
    return float(0.5 * (1.0 + std::erf(x / 1.41421356237309504880)) +
                 x * 0.39894228040143267794 * std::exp(-0.5 * x * x));
  }

  // Element (p, k) of the im2col of the NHWC image at `a`.
  float im2col(const Insn& in, int64_t p, int64_t k) const {
    const int64_t c = in[f_LD_CONV::c], h = in[f_LD_CONV::h], w = in[f_LD_CONV::w];
    const int64_t kh = lo16(in[f_LD_CONV::kh_kw]), kw = hi16(in[f_LD_CONV::kh_kw]);
    const int64_t st = lo16(in[f_LD_CONV::stride_pad]), pad = hi16(in[f_LD_CONV::stride_pad]);
    const int64_t oh = in[f_LD_CONV::oh], ow = in[f_LD_CONV::ow];
    const int64_t b = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
    const int64_t ci = k / (kh * kw), ky = k / kw % kh, kx = k % kw;
    const int64_t iy = oy * st - pad + ky, ix = ox * st - pad + kx;
    if (iy < 0 || iy >= h || ix < 0 || ix >= w) return 0.f;
    return bf(in[f_LD_CONV::addr], ((b * h + iy) * w + ix) * c + ci);
  }

  void exec(const Insn& in) {
    const bool b0 = in.flag(0), b1 = in.flag(1), b2 = in.flag(2);
    switch (in.opcode()) {
      case OP_LD_2D: {
        auto& buf = b0 ? b_[in[f_LD_2D::bank]] : a_[in[f_LD_2D::bank]];
        const int64_t rows = in[f_LD_2D::rows], cols = in[f_LD_2D::cols];
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t k = 0; k < cols; ++k)
            buf[r * arch::kMaxTileK + k] =
                bf(in[f_LD_2D::addr], r * in[f_LD_2D::row_stride] + k * in[f_LD_2D::col_stride]);
        break;
      }
      case OP_LD_CONV: {
        auto& buf = b0 ? b_[in[f_LD_CONV::bank]] : a_[in[f_LD_CONV::bank]];
        const int64_t rows = in[f_LD_CONV::rows], cols = in[f_LD_CONV::cols];
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t k = 0; k < cols; ++k)
            buf[r * arch::kMaxTileK + k] =
                b1 ? im2col(in, in[f_LD_CONV::p0] + k, in[f_LD_CONV::k0] + r)
                   : im2col(in, in[f_LD_CONV::p0] + r, in[f_LD_CONV::k0] + k);
        break;
      }
      case OP_GEMM: {
        ASSERT_EQ(in[f_GEMM::n], in[f_GEMM::m]) << "the dense interpreter runs dense products only";
        const auto& a = a_[in[f_GEMM::a_bank]];
        const auto& b = b_[in[f_GEMM::b_bank]];
        auto& c = c_[in[f_GEMM::c_bank]];
        for (int64_t r = 0; r < in[f_GEMM::mt]; ++r)
          for (int64_t n = 0; n < in[f_GEMM::nt]; ++n) {
            double s = b0 ? c[r * arch::kMaxTileCols + n] : 0.0;
            for (int64_t k = 0; k < in[f_GEMM::kt]; ++k)
              s += double(a[r * arch::kMaxTileK + k]) * b[n * arch::kMaxTileK + k];
            c[r * arch::kMaxTileCols + n] = float(s);
          }
        break;
      }
      case OP_ST_2D: {
        const auto& c = c_[in[f_ST_2D::c_bank]];
        for (int64_t r = 0; r < in[f_ST_2D::rows]; ++r)
          for (int64_t n = 0; n < in[f_ST_2D::cols]; ++n) {
            const int64_t i = r * in[f_ST_2D::row_stride] + n * in[f_ST_2D::col_stride];
            float v = c[r * arch::kMaxTileCols + n];
            if (b2) v += f32(in[f_ST_2D::bias_addr], n);
            if (b1) v += f32(in[f_ST_2D::addr], i);
            set(in[f_ST_2D::addr], i, v, b0);
          }
        break;
      }
      case OP_ST_COL2IM: {
        const auto& c = c_[in[f_ST_COL2IM::c_bank]];
        const int64_t ch = in[f_ST_COL2IM::c], h = in[f_ST_COL2IM::h], w = in[f_ST_COL2IM::w];
        const int64_t kh = lo16(in[f_ST_COL2IM::kh_kw]), kw = hi16(in[f_ST_COL2IM::kh_kw]);
        const int64_t st = lo16(in[f_ST_COL2IM::stride_pad]), pad = hi16(in[f_ST_COL2IM::stride_pad]);
        const int64_t oh = in[f_ST_COL2IM::oh], ow = in[f_ST_COL2IM::ow];
        for (int64_t r = 0; r < in[f_ST_COL2IM::rows]; ++r)
          for (int64_t n = 0; n < in[f_ST_COL2IM::cols]; ++n) {
            const int64_t p = in[f_ST_COL2IM::p0] + r, k = in[f_ST_COL2IM::k0] + n;
            const int64_t b = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
            const int64_t ci = k / (kh * kw), ky = k / kw % kh, kx = k % kw;
            const int64_t iy = oy * st - pad + ky, ix = ox * st - pad + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            const int64_t i = ((b * h + iy) * w + ix) * ch + ci;
            set_f32(in[f_ST_COL2IM::addr], i, f32(in[f_ST_COL2IM::addr], i) + c[r * arch::kMaxTileCols + n]);
          }
        break;
      }
      case OP_V_FILL:
        for (int64_t i = 0; i < in[f_V_FILL::count]; ++i)
          set(in[f_V_FILL::y], i, f32_from_bits(in[f_V_FILL::value]), b0);
        break;
      case OP_V_CONVERT:
        for (int64_t i = 0; i < in[f_V_CONVERT::count]; ++i)
          set_bf(in[f_V_CONVERT::y], i, f32(in[f_V_CONVERT::x], i));
        break;
      case OP_V_ADD:
        for (int64_t i = 0; i < in[f_V_ADD::count]; ++i)
          set(in[f_V_ADD::y], i, get(in[f_V_ADD::a], i, b0) + get(in[f_V_ADD::b], i, b1), b2);
        break;
      case OP_V_BCAST_ADD:
        for (int64_t r = 0; r < in[f_V_BCAST_ADD::rows]; ++r)
          for (int64_t c = 0; c < in[f_V_BCAST_ADD::cols]; ++c) {
            const int64_t i = r * in[f_V_BCAST_ADD::cols] + c;
            set_bf(in[f_V_BCAST_ADD::y], i, bf(in[f_V_BCAST_ADD::x], i) + f32(in[f_V_BCAST_ADD::p], c));
          }
        break;
      case OP_V_COLSUM:
        for (int64_t c = 0; c < in[f_V_COLSUM::cols]; ++c) {
          double s = b0 ? f32(in[f_V_COLSUM::y], c) : 0.0;
          for (int64_t r = 0; r < in[f_V_COLSUM::rows]; ++r) s += bf(in[f_V_COLSUM::x], r * in[f_V_COLSUM::cols] + c);
          set_f32(in[f_V_COLSUM::y], c, float(s));
        }
        break;
      case OP_V_RELU:
        for (int64_t i = 0; i < in[f_V_RELU::count]; ++i)
          set_bf(in[f_V_RELU::y], i, std::max(0.f, bf(in[f_V_RELU::x], i)));
        break;
      case OP_V_RELU_BWD:
        for (int64_t i = 0; i < in[f_V_RELU_BWD::count]; ++i)
          set_bf(in[f_V_RELU_BWD::dx], i, bf(in[f_V_RELU_BWD::x], i) > 0 ? bf(in[f_V_RELU_BWD::dy], i) : 0.f);
        break;
      case OP_V_GELU:
        for (int64_t i = 0; i < in[f_V_GELU::count]; ++i)
          set_bf(in[f_V_GELU::y], i, gelu(bf(in[f_V_GELU::x], i), b0));
        break;
      case OP_V_GELU_BWD:
        for (int64_t i = 0; i < in[f_V_GELU_BWD::count]; ++i)
          set_bf(in[f_V_GELU_BWD::dx], i, bf(in[f_V_GELU_BWD::dy], i) * gelu_d(bf(in[f_V_GELU_BWD::x], i), b0));
        break;
      case OP_V_POOL:
      case OP_V_POOL_BWD: {
        ASSERT_TRUE(b0) << "the dense interpreter runs average pooling only";
        const bool bwd = in.opcode() == OP_V_POOL_BWD;
        const int o = bwd ? 1 : 0;   // V_POOL_BWD has one more leading field (dy)
        const int64_t nb = in[3 + o], c = in[4 + o], h = in[5 + o], w = in[6 + o];
        const int64_t kh = lo16(in[7 + o]), kw = hi16(in[7 + o]);
        const int64_t st = lo16(in[8 + o]), pad = hi16(in[8 + o]), oh = in[9 + o], ow = in[10 + o];
        const uint32_t xa = bwd ? in[f_V_POOL_BWD::dx] : in[f_V_POOL::x];
        const uint32_t ya = bwd ? in[f_V_POOL_BWD::dy] : in[f_V_POOL::y];
        if (bwd) for (int64_t i = 0; i < nb * h * w * c; ++i) set_bf(xa, i, 0.f);
        std::vector<double> acc(size_t(nb * h * w * c), 0.0);
        for (int64_t b = 0; b < nb; ++b)
          for (int64_t oy = 0; oy < oh; ++oy)
            for (int64_t ox = 0; ox < ow; ++ox)
              for (int64_t ch = 0; ch < c; ++ch) {
                const int64_t yi = ((b * oh + oy) * ow + ox) * c + ch;
                double s = 0;
                for (int64_t ky = 0; ky < kh; ++ky)
                  for (int64_t kx = 0; kx < kw; ++kx) {
                    const int64_t iy = oy * st - pad + ky, ix = ox * st - pad + kx;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                    const int64_t xi = ((b * h + iy) * w + ix) * c + ch;
                    if (bwd) acc[size_t(xi)] += double(bf(ya, yi)) / double(kh * kw);
                    else s += bf(xa, xi);
                  }
                if (!bwd) set_bf(ya, yi, float(s / double(kh * kw)));
              }
        if (bwd) for (size_t i = 0; i < acc.size(); ++i) set_bf(xa, int64_t(i), float(acc[i]));
        break;
      }
      case OP_V_LN: {
        const int64_t rows = in[f_V_LN::rows], d = in[f_V_LN::d];
        const double eps = f32_from_bits(in[f_V_LN::eps]);
        for (int64_t r = 0; r < rows; ++r) {
          double s = 0, q = 0;
          for (int64_t i = 0; i < d; ++i) s += bf(in[f_V_LN::x], r * d + i);
          const double mean = s / double(d);
          for (int64_t i = 0; i < d; ++i) q += std::pow(bf(in[f_V_LN::x], r * d + i) - mean, 2);
          const double rstd = 1.0 / std::sqrt(q / double(d) + eps);
          set_f32(in[f_V_LN::mean], r, float(mean));
          set_f32(in[f_V_LN::rstd], r, float(rstd));
          for (int64_t i = 0; i < d; ++i) {
            const double xh = (bf(in[f_V_LN::x], r * d + i) - mean) * rstd;
            set_bf(in[f_V_LN::y], r * d + i, float(f32(in[f_V_LN::gamma], i) * xh + f32(in[f_V_LN::beta], i)));
          }
        }
        break;
      }
      case OP_V_LN_BWD: {
        const int64_t rows = in[f_V_LN_BWD::rows], d = in[f_V_LN_BWD::d];
        std::vector<double> dg(size_t(d), 0.0), db(size_t(d), 0.0);
        for (int64_t r = 0; r < rows; ++r) {
          const double mean = f32(in[f_V_LN_BWD::mean], r), rstd = f32(in[f_V_LN_BWD::rstd], r);
          double sg = 0, sgh = 0;
          for (int64_t i = 0; i < d; ++i) {
            const double xh = (bf(in[f_V_LN_BWD::x], r * d + i) - mean) * rstd;
            const double dy = bf(in[f_V_LN_BWD::dy], r * d + i);
            dg[size_t(i)] += dy * xh;
            db[size_t(i)] += dy;
            const double g = dy * f32(in[f_V_LN_BWD::gamma], i);
            sg += g;
            sgh += g * xh;
          }
          for (int64_t i = 0; i < d; ++i) {
            const double xh = (bf(in[f_V_LN_BWD::x], r * d + i) - mean) * rstd;
            const double g = bf(in[f_V_LN_BWD::dy], r * d + i) * f32(in[f_V_LN_BWD::gamma], i);
            set_bf(in[f_V_LN_BWD::dx], r * d + i, float(rstd * (g - sg / double(d) - xh * sgh / double(d))));
          }
        }
        for (int64_t i = 0; i < d; ++i) {
          set_f32(in[f_V_LN_BWD::dgamma], i, float(dg[size_t(i)]));
          set_f32(in[f_V_LN_BWD::dbeta], i, float(db[size_t(i)]));
        }
        break;
      }
      case OP_V_BN: {
        ASSERT_TRUE(b0) << "the dense interpreter runs training steps only";
        const int64_t rows = in[f_V_BN::rows], c = in[f_V_BN::c];
        const double eps = f32_from_bits(in[f_V_BN::eps]), mom = f32_from_bits(in[f_V_BN::momentum]);
        for (int64_t ch = 0; ch < c; ++ch) {
          double s = 0, q = 0;
          for (int64_t r = 0; r < rows; ++r) s += bf(in[f_V_BN::x], r * c + ch);
          const double mean = s / double(rows);
          for (int64_t r = 0; r < rows; ++r) q += std::pow(bf(in[f_V_BN::x], r * c + ch) - mean, 2);
          const double rstd = 1.0 / std::sqrt(q / double(rows) + eps);
          set_f32(in[f_V_BN::mean], ch, float(mean));
          set_f32(in[f_V_BN::rstd], ch, float(rstd));
          set_f32(in[f_V_BN::run_mean], ch, float((1 - mom) * f32(in[f_V_BN::run_mean], ch) + mom * mean));
          set_f32(in[f_V_BN::run_var], ch,
                  float((1 - mom) * f32(in[f_V_BN::run_var], ch) + mom * q / double(rows - 1)));
          for (int64_t r = 0; r < rows; ++r) {
            const double xh = (bf(in[f_V_BN::x], r * c + ch) - mean) * rstd;
            set_bf(in[f_V_BN::y], r * c + ch, float(f32(in[f_V_BN::gamma], ch) * xh + f32(in[f_V_BN::beta], ch)));
          }
        }
        break;
      }
      case OP_V_BN_BWD: {
        const int64_t rows = in[f_V_BN_BWD::rows], c = in[f_V_BN_BWD::c];
        for (int64_t ch = 0; ch < c; ++ch) {
          const double mean = f32(in[f_V_BN_BWD::mean], ch), rstd = f32(in[f_V_BN_BWD::rstd], ch);
          double sg = 0, sgx = 0;
          for (int64_t r = 0; r < rows; ++r) {
            const double dy = bf(in[f_V_BN_BWD::dy], r * c + ch);
            sg += dy;
            sgx += dy * (bf(in[f_V_BN_BWD::x], r * c + ch) - mean) * rstd;
          }
          set_f32(in[f_V_BN_BWD::dgamma], ch, float(sgx));
          set_f32(in[f_V_BN_BWD::dbeta], ch, float(sg));
          const double scale = f32(in[f_V_BN_BWD::gamma], ch) * rstd;
          for (int64_t r = 0; r < rows; ++r) {
            const double xh = (bf(in[f_V_BN_BWD::x], r * c + ch) - mean) * rstd;
            const double dy = bf(in[f_V_BN_BWD::dy], r * c + ch);
            set_bf(in[f_V_BN_BWD::dx], r * c + ch,
                   float(scale * (dy - sg / double(rows) - xh * sgx / double(rows))));
          }
        }
        break;
      }
      case OP_V_SOFTMAX: {
        const int64_t rows = in[f_V_SOFTMAX::rows], cols = in[f_V_SOFTMAX::cols];
        const double scale = f32_from_bits(in[f_V_SOFTMAX::scale]);
        for (int64_t r = 0; r < rows; ++r) {
          double mx = -1e300, s = 0;
          for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, scale * bf(in[f_V_SOFTMAX::x], r * cols + c));
          for (int64_t c = 0; c < cols; ++c) s += std::exp(scale * bf(in[f_V_SOFTMAX::x], r * cols + c) - mx);
          for (int64_t c = 0; c < cols; ++c)
            set_bf(in[f_V_SOFTMAX::y], r * cols + c, float(std::exp(scale * bf(in[f_V_SOFTMAX::x], r * cols + c) - mx) / s));
        }
        break;
      }
      case OP_V_SOFTMAX_BWD: {
        const int64_t rows = in[f_V_SOFTMAX_BWD::rows], cols = in[f_V_SOFTMAX_BWD::cols];
        const double scale = f32_from_bits(in[f_V_SOFTMAX_BWD::scale]);
        for (int64_t r = 0; r < rows; ++r) {
          double dot = 0;
          for (int64_t c = 0; c < cols; ++c)
            dot += double(bf(in[f_V_SOFTMAX_BWD::y], r * cols + c)) * bf(in[f_V_SOFTMAX_BWD::dy], r * cols + c);
          for (int64_t c = 0; c < cols; ++c) {
            const double y = bf(in[f_V_SOFTMAX_BWD::y], r * cols + c), dy = bf(in[f_V_SOFTMAX_BWD::dy], r * cols + c);
            set_bf(in[f_V_SOFTMAX_BWD::dx], r * cols + c, float(scale * y * (dy - dot)));
          }
        }
        break;
      }
      case OP_V_XENT: {
        const int64_t rows = in[f_V_XENT::rows], cls = in[f_V_XENT::classes];
        double loss = 0;
        for (int64_t r = 0; r < rows; ++r) {
          const int label = int(f32_bits(f32(in[f_V_XENT::labels], r)));
          double mx = -1e300, s = 0;
          for (int64_t c = 0; c < cls; ++c) mx = std::max<double>(mx, bf(in[f_V_XENT::logits], r * cls + c));
          for (int64_t c = 0; c < cls; ++c) s += std::exp(bf(in[f_V_XENT::logits], r * cls + c) - mx);
          loss += std::log(s) - (bf(in[f_V_XENT::logits], r * cls + label) - mx);
          if (b0)
            for (int64_t c = 0; c < cls; ++c) {
              const double pr = std::exp(bf(in[f_V_XENT::logits], r * cls + c) - mx) / s;
              set_bf(in[f_V_XENT::dlogits], r * cls + c, float((pr - (c == label)) / double(rows)));
            }
        }
        set_f32(in[f_V_XENT::out], 0, float(loss / double(rows)));
        break;
      }
      case OP_PGEN:
        ASSERT_EQ(in[f_PGEN::n], in[f_PGEN::m]) << "the dense interpreter makes dense copies only";
        ASSERT_TRUE(b2);
        for (int64_t i = 0; i < int64_t{in[f_PGEN::cout]} * in[f_PGEN::k]; ++i)
          set_bf(in[f_PGEN::dense_addr], i, f32(in[f_PGEN::w], i));
        break;
      case OP_FINISH:
        break;
      default:
        FAIL() << "the dense interpreter does not run " << opcode_name(in.opcode());
    }
  }

  const Program& p_;
  std::array<std::vector<uint16_t>, arch::kDdrChannels> mem_;
  std::array<std::vector<float>, 2> a_, b_, c_;
};

// Error of `got` against `want` in the 2-norm, relative to the larger of |want| and a floor of
// 1e-3 per element (a gradient that is zero in exact arithmetic, such as the key bias's, since the
// softmax ignores a constant per row, comes out as rounding noise of that order).
double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += std::pow(double(got[i]) - want[i], 2);
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-6 * double(want.size())));
}

// Runs one dense training step of `text` on the CPU reference and through the compiled stream on
// the interpreter; compares the loss and every parameter gradient.
void expect_step_matches_cpu(const std::string& text, int batch, double tol) {
  Model m = Model::from_json_text(text, "test.json");
  m.regenerate(Method::dense);
  ScheduleOptions opt;
  opt.batch = batch;
  opt.method = Method::dense;
  const Program p = compile(m, opt);

  Rng rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  Shape xs = m.input;
  xs.insert(xs.begin(), batch);
  std::vector<float> xv(size_t(sat::numel(xs)));
  for (float& v : xv) v = nd(rng);
  const Tensor x = Tensor::from_f32(xs, xv);
  std::vector<int> labels(static_cast<size_t>(batch));
  for (int i = 0; i < batch; ++i) labels[size_t(i)] = (i * 7 + 3) % m.classes;

  DenseInterpreter k(p);
  // Host-provided data: the input (NHWC; the tests use C = 1 or rank-2 samples, where NCHW and
  // NHWC agree), labels, masters.
  ASSERT_TRUE(xs.size() != 4 || xs[1] == 1);
  const uint32_t in_addr = k.region_addr(p.input);
  for (size_t i = 0; i < xv.size(); ++i) k.set_bf(in_addr, int64_t(i), xv[i]);
  for (int i = 0; i < batch; ++i) k.set_f32(k.region_addr(p.labels), i, f32_from_bits(uint32_t(labels[size_t(i)])));
  for (const auto& pb : p.params) {
    for (int64_t i = 0; i < pb.param->numel(); ++i) k.set_f32(k.region_addr(pb.value), i, pb.param->value[size_t(i)]);
  }
  k.run(p.prologue, false);
  k.run(p.insns, true);
  if (::testing::Test::HasFatalFailure()) return;

  StepContext ctx;
  ctx.method = Method::dense;
  m.zero_grad();
  const Tensor logits = m.forward(x, ctx);
  Tensor dlogits;
  const float loss = softmax_cross_entropy(logits, labels, &dlogits, nullptr);
  m.backward(dlogits, ctx);

  EXPECT_NEAR(k.f32(k.region_addr(p.result), 0), loss, 0.02 * std::abs(loss) + 1e-3);
  double worst = 0;
  for (const auto& pb : p.params) {
    if (pb.grad < 0) continue;
    std::vector<float> got(size_t(pb.param->numel()));
    for (int64_t i = 0; i < pb.param->numel(); ++i) got[size_t(i)] = k.f32(k.region_addr(pb.grad), i);
    const double e = rel_err(got, pb.param->grad);
    EXPECT_LT(e, tol) << pb.param->name;
    worst = std::max(worst, e);
  }
  ::testing::Test::RecordProperty("worst_gradient_error", std::to_string(worst));
  std::printf("[ info ] loss %g (cpu %g), worst gradient error %.3e\n",
              k.f32(k.region_addr(p.result), 0), loss, worst);
}
}  // namespace

// ---- Transformer layers ----------------------------------------------------------------------------

TEST(CompilerLayers, TinyVitStreamIsConsistentForEveryMethod) {
  for (Method m : {Method::dense, Method::srste, Method::bdwp}) {
    SCOPED_TRACE(method_name(m));
    expect_consistent(compile_text(kTinyVit, m, 3));
  }
}

TEST(CompilerLayers, TinyVitInstructionKinds) {
  const int B = 3, H = 2, T = 4;
  const Program p = compile_text(kTinyVit, Method::bdwp, B);
  const Segments s{p};

  // Patch embedding: the im2col product, then the position embedding; BP: two column sums and the
  // WU product only (first layer: no dX).
  EXPECT_GE(s.count("pe", "ff", OP_LD_CONV), 1);
  EXPECT_EQ(s.count("pe", "ff", OP_V_BCAST_ADD), 1);
  const Insn* bc = s.first("pe", "ff", OP_V_BCAST_ADD);
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ((*bc)[f_V_BCAST_ADD::rows], uint32_t(B));
  EXPECT_EQ((*bc)[f_V_BCAST_ADD::cols], uint32_t(T * 16));
  EXPECT_EQ(s.count("pe", "bp", OP_V_COLSUM), 2);
  EXPECT_EQ(s.count("pe", "bp", OP_ST_COL2IM), 0);
  EXPECT_GE(s.count("pe", "bp", OP_LD_CONV), 1);

  // Attention: 4 projections + 2 products per (sample, head), one softmax per chunk of samples.
  EXPECT_EQ(s.count("attn", "ff", OP_GEMM), 4 + 2 * B * H);
  EXPECT_EQ(s.count("attn", "ff", OP_V_SOFTMAX), std::min(B, 4));
  const Insn* sm = s.first("attn", "ff", OP_V_SOFTMAX);
  ASSERT_NE(sm, nullptr);
  EXPECT_EQ((*sm)[f_V_SOFTMAX::cols], uint32_t(T));
  EXPECT_EQ((*sm)[f_V_SOFTMAX::rows], uint32_t(H * T));   // one sample per chunk at B = 3
  EXPECT_FLOAT_EQ(as_float((*sm)[f_V_SOFTMAX::scale]), 1.0f / std::sqrt(8.0f));
  // BP: output projection BP + WU, 4 products per (sample, head), 3 x (WU + BP), 4 bias sums.
  EXPECT_EQ(s.count("attn", "bp", OP_GEMM), 2 + 4 * B * H + 6);
  EXPECT_EQ(s.count("attn", "bp", OP_V_SOFTMAX_BWD), std::min(B, 4));
  EXPECT_EQ(s.count("attn", "bp", OP_V_COLSUM), 4);
  EXPECT_EQ(s.count("attn", "bp", OP_V_CONVERT), 1);
  const Insn* smb = s.first("attn", "bp", OP_V_SOFTMAX_BWD);
  ASSERT_NE(smb, nullptr);
  EXPECT_EQ((*smb)[f_V_SOFTMAX_BWD::scale], (*sm)[f_V_SOFTMAX::scale]);

  // Layer norms.
  EXPECT_EQ(s.count("ln1", "ff", OP_V_LN), 1);
  EXPECT_EQ(s.count("ln1", "bp", OP_V_LN_BWD), 1);
  const Insn* ln = s.first("ln2", "ff", OP_V_LN);
  ASSERT_NE(ln, nullptr);
  EXPECT_EQ((*ln)[f_V_LN::rows], uint32_t(B * T));
  EXPECT_EQ((*ln)[f_V_LN::d], 16u);
  EXPECT_FLOAT_EQ(as_float((*ln)[f_V_LN::eps]), 0.001f);

  // GELU, tanh form.
  const Insn* g = s.first("act", "ff", OP_V_GELU);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->flag(0));
  EXPECT_EQ((*g)[f_V_GELU::count], uint32_t(B * T * 32));
  const Insn* gb = s.first("act", "bp", OP_V_GELU_BWD);
  ASSERT_NE(gb, nullptr);
  EXPECT_TRUE(gb->flag(0));

  // Residuals: one add each way.
  for (const char* r : {"blk1", "blk2"}) {
    EXPECT_EQ(s.count(r, "ff", OP_V_ADD), 1) << r;
    EXPECT_EQ(s.count(r, "bp", OP_V_ADD), 1) << r;
  }

  // Token mean: average pooling with a T x 1 window, one output per sample.
  const Insn* pool = s.first("pool", "ff", OP_V_POOL);
  ASSERT_NE(pool, nullptr);
  EXPECT_TRUE(pool->flag(0));
  EXPECT_EQ((*pool)[f_V_POOL::h], uint32_t(T));
  EXPECT_EQ((*pool)[f_V_POOL::w], 1u);
  EXPECT_EQ((*pool)[f_V_POOL::kh_kw], pack16(T, 1));
  EXPECT_EQ((*pool)[f_V_POOL::oh], 1u);
  EXPECT_EQ((*pool)[f_V_POOL::ow], 1u);
  EXPECT_EQ(s.count("pool", "bp", OP_V_POOL_BWD), 1);
}

TEST(CompilerLayers, AttentionChunksLargerBatchesAndOmitsAbsentBiases) {
  const std::string text = R"({
    "name": "attn_nobias", "input": [6, 16], "classes": 10, "nm": "2:8",
    "layers": [
      {"type": "attention", "name": "a", "heads": 4, "bias": false},
      {"type": "token_mean"},
      {"type": "linear", "out": 10}]})";
  const int B = 9;
  const Program p = compile_text(text, Method::bdwp, B);
  expect_consistent(p);
  const Segments s{p};
  EXPECT_EQ(s.count("a", "ff", OP_V_SOFTMAX), 4);
  EXPECT_EQ(s.count("a", "bp", OP_V_SOFTMAX_BWD), 4);
  int rows = 0;
  for (const Insn* in : s.of("a", "ff"))
    if (in->opcode() == OP_V_SOFTMAX) rows += static_cast<int>((*in)[f_V_SOFTMAX::rows]);
  EXPECT_EQ(rows, B * 4 * 6);   // every (sample, head, token) row exactly once
  EXPECT_EQ(s.count("a", "bp", OP_V_COLSUM), 0);
  // The first layer: no dX, so neither the three input BP products nor the conversion.
  EXPECT_EQ(s.count("a", "bp", OP_V_CONVERT), 0);
  EXPECT_EQ(s.count("a", "bp", OP_GEMM), 2 + 4 * B * 4 + 3);
}

TEST(CompilerLayers, PatchEmbedBackPropagatesWhenNotFirst) {
  for (int patch : {1, 2}) {
    SCOPED_TRACE("patch " + std::to_string(patch));
    const std::string text = R"({
      "name": "pe_second", "input": [2, 8, 8], "classes": 10, "nm": "2:8",
      "layers": [
        {"type": "conv2d", "out": 4, "kernel": 1},
        {"type": "patch_embed", "name": "pe", "patch": )" + std::to_string(patch) + R"(, "dim": 8},
        {"type": "token_mean"},
        {"type": "linear", "out": 10}]})";
    const Program p = compile_text(text, Method::bdwp, 2);
    expect_consistent(p);
    const Segments s{p};
    if (patch == 1) {
      EXPECT_EQ(s.count("pe", "bp", OP_ST_COL2IM), 0);
      EXPECT_EQ(s.count("pe", "bp", OP_V_CONVERT), 0);
    } else {
      EXPECT_EQ(s.count("pe", "bp", OP_V_FILL), 1);
      EXPECT_GE(s.count("pe", "bp", OP_ST_COL2IM), 1);
      EXPECT_EQ(s.count("pe", "bp", OP_V_CONVERT), 1);
    }
  }
}

// ---- Normalisation and containers in a CNN --------------------------------------------------------

TEST(CompilerLayers, TinyCnnStreamIsConsistentForEveryMethod) {
  for (Method m : {Method::dense, Method::srste, Method::bdwp}) {
    SCOPED_TRACE(method_name(m));
    expect_consistent(compile_text(kTinyCnn, m, 2));
  }
}

TEST(CompilerLayers, BatchNormTrainingAndInference) {
  const int B = 2;
  const Program p = compile_text(kTinyCnn, Method::bdwp, B);
  const Segments s{p};
  const Insn* bn = s.first("bn0", "ff", OP_V_BN);
  ASSERT_NE(bn, nullptr);
  EXPECT_TRUE(bn->flag(0));
  EXPECT_EQ((*bn)[f_V_BN::rows], uint32_t(B * 8 * 8));
  EXPECT_EQ((*bn)[f_V_BN::c], 8u);
  EXPECT_FLOAT_EQ(as_float((*bn)[f_V_BN::eps]), 1e-5f);
  EXPECT_FLOAT_EQ(as_float((*bn)[f_V_BN::momentum]), 0.2f);
  const Insn* bn1 = s.first("bn1", "ff", OP_V_BN);
  ASSERT_NE(bn1, nullptr);
  EXPECT_EQ((*bn1)[f_V_BN::rows], uint32_t(B * 4 * 4));
  EXPECT_FLOAT_EQ(as_float((*bn1)[f_V_BN::momentum]), 0.1f);
  for (const char* name : {"bn0", "bn1", "bn2", "bn_sc", "bn3"}) {
    EXPECT_EQ(s.count(name, "bp", OP_V_BN_BWD), 1) << name;
  }
  // The projection shortcut's BP and the body's are summed by the residual.
  EXPECT_EQ(s.count("down", "ff", OP_V_ADD), 1);
  EXPECT_EQ(s.count("down", "bp", OP_V_ADD), 1);
  EXPECT_EQ(s.count("same", "bp", OP_V_ADD), 1);

  const Program inf = compile_text(kTinyCnn, Method::bdwp, B, false);
  const Segments si{inf};
  const Insn* bi = si.first("bn0", "ff", OP_V_BN);
  ASSERT_NE(bi, nullptr);
  EXPECT_FALSE(bi->flag(0));
  for (const Insn& in : inf.insns) {
    EXPECT_NE(in.opcode(), OP_V_BN_BWD);
    EXPECT_NE(in.opcode(), OP_V_SOFTMAX_BWD);
  }
  expect_consistent(inf);
}

// ---- Shipped models and errors -----------------------------------------------------------------

TEST(CompilerLayers, ShippedModelsWithTheseLayersCompile) {
  for (const char* name : {"vit_tiny", "resnet18", "vgg_small"}) {
    Model m = Model::load(std::string(SAT_SOURCE_DIR "/models/") + name + ".json");
    for (Method method : {Method::dense, Method::srste, Method::bdwp}) {
      SCOPED_TRACE(std::string(name) + " " + method_name(method));
      ScheduleOptions opt;
      opt.batch = 2;
      opt.method = method;
      const Program p = compile(m, opt);
      EXPECT_EQ(p.insns.back().opcode(), OP_FINISH);
      if (method == Method::bdwp) expect_consistent(p);
    }
    ScheduleOptions inf;
    inf.batch = 2;
    inf.training = false;
    EXPECT_NO_THROW(compile(m, inf)) << name;
  }
}

TEST(CompilerLayers, RowsLongerThanTheVectorUnitAreRefusedNamingTheLayer) {
  const std::string ln = R"({
    "name": "wide", "input": [9000], "classes": 10,
    "layers": [{"type": "layernorm", "name": "wide_ln"}, {"type": "linear", "out": 10}]})";
  test::expect_error([&] { compile_text(ln, Method::dense, 1); }, {"wide_ln", "layernorm", "9000"});
  const std::string at = R"({
    "name": "long", "input": [8200, 8], "classes": 10,
    "layers": [{"type": "attention", "name": "long_attn", "heads": 1},
               {"type": "token_mean"}, {"type": "linear", "out": 10}]})";
  test::expect_error([&] { compile_text(at, Method::dense, 1); }, {"long_attn", "attention", "8200"});
}

// ---- Numerics against the CPU reference (dense method, reference interpreter) -------------------

TEST(CompilerLayers, TinyVitDenseStepMatchesTheCpuReference) {
  expect_step_matches_cpu(kTinyVit, 5, 0.03);
}

TEST(CompilerLayers, AttentionWithoutBiasAndPatchEmbedBackwardMatchTheCpuReference) {
  const std::string text = R"({
    "name": "pe_attn", "input": [1, 8, 8], "classes": 10,
    "layers": [
      {"type": "conv2d", "out": 4, "kernel": 1},
      {"type": "patch_embed", "patch": 2, "dim": 8},
      {"type": "residual", "body": [{"type": "attention", "heads": 2, "bias": false}]},
      {"type": "gelu"},
      {"type": "token_mean"},
      {"type": "linear", "out": 10}]})";
  expect_step_matches_cpu(text, 3, 0.03);
}

TEST(CompilerLayers, ResidualCnnWithBatchNormMatchesTheCpuReference) {
  const std::string text = R"({
    "name": "bn_cnn", "input": [1, 8, 8], "classes": 10,
    "layers": [
      {"type": "conv2d", "out": 8, "kernel": 3, "padding": 1, "bias": false},
      {"type": "batchnorm2d"},
      {"type": "relu"},
      {"type": "residual", "body": [
        {"type": "conv2d", "out": 16, "kernel": 3, "stride": 2, "padding": 1, "bias": false},
        {"type": "batchnorm2d"},
        {"type": "gelu"}],
       "shortcut": [
        {"type": "conv2d", "out": 16, "kernel": 1, "stride": 2, "bias": false},
        {"type": "batchnorm2d", "momentum": 0.3}]},
      {"type": "residual", "body": [{"type": "batchnorm2d"}, {"type": "relu"}]},
      {"type": "global_avgpool"},
      {"type": "flatten"},
      {"type": "linear", "out": 10}]})";
  expect_step_matches_cpu(text, 4, 0.03);
}
