// The tests' checker of a compiled instruction stream (stream_checker.hpp): the token pairing and
// the deadlock run of the units, and the data-flow walk over the memory map's regions.
#include "stream_checker.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>

#include "sat/arch/isa.hpp"

namespace sat::test {

using namespace sat::isa;

namespace {

constexpr int kExec = kNumExecUnits;
// Past this many problems a part stops looking: the stream is wrong already, and one mistake of a
// lowering tends to repeat at every tile.
constexpr size_t kMaxProblems = 20;

std::string opcode_text(uint8_t op) {
  if (opcode_unit(op) >= 0) return opcode_name(op);
  char buf[16];
  std::snprintf(buf, sizeof buf, "opcode 0x%02x", op);
  return buf;
}

// "<layer> <phase>" of instruction i, from the per-layer accounting.
std::string layer_of(const Program& p, size_t i) {
  for (const auto& s : p.layers) {
    if (static_cast<int64_t>(i) >= s.first_insn && static_cast<int64_t>(i) < s.first_insn + s.instructions) {
      return s.name + " " + s.phase;
    }
  }
  return "?";
}

// How every problem names its instruction: "insn 12 GEMM (layers[2] bp)".
std::string where(const Program& p, size_t i) {
  return "insn " + std::to_string(i) + " " + opcode_text(p.insns[i].opcode()) + " (" + layer_of(p, i) + ")";
}

// ---- Tokens ----------------------------------------------------------------------------------------

// The pairing, with its happens-before relation kept as vector clocks (clock[j][u]: the latest
// instruction of unit u that instruction j is ordered after), then the recorded dependencies
// against it. A wait that cannot be paired makes the clocks meaningless, so it ends this part.
void pair_tokens(const Program& p, std::vector<std::string>& out) {
  const size_t n = p.insns.size();
  std::array<std::array<std::vector<int64_t>, kExec>, kExec> signals;   // [U][V]: signalling insns
  std::array<std::array<size_t, kExec>, kExec> consumed{};
  std::vector<std::array<int64_t, kExec>> clock(n);
  std::array<std::array<int64_t, kExec>, kExec> unit_clock;
  for (auto& c : unit_clock) c.fill(-1);
  constexpr uint32_t kQueueMask = (1u << kExec) - 1;
  for (size_t j = 0; j < n; ++j) {
    const Insn& in = p.insns[j];
    const int v = opcode_unit(in.opcode());
    if (v < 0) {
      out.push_back(where(p, j) + ": unknown opcode");
      return;
    }
    if (v >= kExec) {
      if (in.wait()) out.push_back(where(p, j) + ": CTRL insn waits");
      if (in.signal()) out.push_back(where(p, j) + ": CTRL insn signals");
      continue;
    }
    if ((in.wait() | in.signal()) & ~kQueueMask) {
      out.push_back(where(p, j) + ": a token mask names a unit without token queues");
    }
    auto clk = unit_clock[v];
    for (int u = 0; u < kExec; ++u) {
      if (!(in.wait() & (1u << u))) continue;
      if (u == v) {
        out.push_back(where(p, j) + ": waits on its own unit");
        return;
      }
      const auto& q = signals[u][v];
      size_t& c = consumed[u][v];
      if (c >= q.size()) {
        out.push_back(where(p, j) + " (" + disassemble(in) + ") waits on " + unit_name(u) +
                      " with no earlier unconsumed signal");
        return;
      }
      const auto& from = clock[static_cast<size_t>(q[c++])];
      for (size_t x = 0; x < kExec; ++x) clk[x] = std::max(clk[x], from[x]);
    }
    clk[v] = static_cast<int64_t>(j);
    clock[j] = clk;
    unit_clock[v] = clk;
    for (int w = 0; w < kExec; ++w) {
      if (!(in.signal() & (1u << w))) continue;
      if (w == v) {
        out.push_back(where(p, j) + ": signals its own unit");
        return;
      }
      signals[v][w].push_back(static_cast<int64_t>(j));
    }
  }
  for (int u = 0; u < kExec; ++u)
    for (int v = 0; v < kExec; ++v) {
      const auto& q = signals[u][v];
      const size_t c = consumed[u][v];
      if (c != q.size()) {
        out.push_back("tokens " + std::string(unit_name(u)) + " -> " + unit_name(v) + " left at FINISH: " +
                      std::to_string(q.size() - c) + ", the first from " + where(p, static_cast<size_t>(q[c])));
      }
    }
  for (const auto& [i, j] : p.dependencies) {
    if (out.size() >= kMaxProblems) return;
    if (i < 0 || i >= j || j >= static_cast<int64_t>(n)) {
      out.push_back("recorded dependency (" + std::to_string(i) + ", " + std::to_string(j) +
                    ") is not an earlier and a later instruction of the stream");
      continue;
    }
    const Insn& first = p.insns[static_cast<size_t>(i)];
    const int u = opcode_unit(first.opcode());
    if (u < 0 || u >= kExec) {
      out.push_back(where(p, static_cast<size_t>(j)) + ": depends on " + where(p, static_cast<size_t>(i)) +
                    ", which is on no unit with token queues");
      continue;
    }
    if (clock[static_cast<size_t>(j)][u] < i) {
      out.push_back(where(p, static_cast<size_t>(j)) + " (" + disassemble(p.insns[static_cast<size_t>(j)]) +
                    ") is not ordered after " + where(p, static_cast<size_t>(i)) + " (" + disassemble(first) + ")");
    }
  }
}

// Runs the units as decoupled in-order machines, a wait blocking on an empty FIFO and a signal on
// a full one (arch::kTokenDepth); a state where no unit can move while some still have
// instructions is a deadlock the kernel's watchdog would report.
void run_units(const Program& p, std::vector<std::string>& out) {
  std::array<std::vector<size_t>, kExec> queue;
  for (size_t j = 0; j < p.insns.size(); ++j) {
    const int u = opcode_unit(p.insns[j].opcode());
    if (u >= 0 && u < kExec) queue[u].push_back(j);
  }
  std::array<size_t, kExec> pc{};
  std::array<std::array<int, kExec>, kExec> fifo{};
  for (;;) {
    bool moved = false, left = false;
    for (int v = 0; v < kExec; ++v) {
      const auto& q = queue[v];
      size_t& at = pc[v];
      while (at < q.size()) {
        const Insn& in = p.insns[q[at]];
        bool ok = true;
        for (int u = 0; u < kExec; ++u)
          if ((in.wait() & (1u << u)) && fifo[u][v] == 0) ok = false;
        for (int w = 0; w < kExec; ++w)
          if ((in.signal() & (1u << w)) && fifo[v][w] >= arch::kTokenDepth) ok = false;
        if (!ok) break;
        for (int u = 0; u < kExec; ++u)
          if (in.wait() & (1u << u)) --fifo[u][v];
        for (int w = 0; w < kExec; ++w)
          if (in.signal() & (1u << w)) ++fifo[v][w];
        ++at;
        moved = true;
      }
      if (at < q.size()) left = true;
    }
    if (!left) return;
    if (!moved) break;
  }
  std::string blocked;
  for (int v = 0; v < kExec; ++v) {
    if (pc[v] < queue[v].size()) {
      blocked += std::string(blocked.empty() ? "" : "; ") + unit_name(v) + " at " + where(p, queue[v][pc[v]]);
    }
  }
  out.push_back("token deadlock at FIFO depth " + std::to_string(arch::kTokenDepth) + ": " + blocked);
}

// ---- Data flow -------------------------------------------------------------------------------------

// One DRAM access: elements (r, c), r < rows, c < cols, at halfword addr + (r*rs + c*cs) * eh.
struct Access {
  const char* field;
  bool write;
  uint32_t addr;
  int64_t rows, cols, rs, cs;
  int eh;   // halfwords per element: 1 BF16 (and packed indices, counted by halfword), 2 FP32/int32
};

Access flat(const char* field, bool write, uint32_t addr, int64_t n, bool f32) {
  return {field, write, addr, 1, n, 0, 1, f32 ? 2 : 1};
}

// `addr` moved on by `halfwords`; an offset past the 30 bits lands in no region.
uint32_t advance(uint32_t addr, int64_t halfwords) {
  const int64_t off = int64_t{addr_offset(addr)} + halfwords;
  return make_addr(addr_channel(addr), off < (int64_t{1} << arch::kAddrChannelShift) ? static_cast<uint32_t>(off)
                                                                                     : addr_offset(~0u));
}

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

// Walks the stream once, keeping per region which halfwords are written so far.
class DataFlow {
 public:
  explicit DataFlow(const Program& p) : p_(p) {
    const auto& rs = p.map.regions;
    written_.resize(rs.size());
    count_.assign(rs.size(), 0);
    for (size_t i = 0; i < rs.size(); ++i) {
      const Region& r = rs[i];
      const bool host = r.kind == RegionKind::input || r.kind == RegionKind::labels ||
                        r.kind == RegionKind::master || r.kind == RegionKind::momentum ||
                        r.kind == RegionKind::weight_form || r.kind == RegionKind::control ||
                        (r.kind == RegionKind::stats && !ends_with(r.name, ".mean") && !ends_with(r.name, ".rstd"));
      written_[i].assign(r.bytes / 2, host ? 1 : 0);
      count_[i] = host ? static_cast<int64_t>(r.bytes / 2) : 0;
    }
  }

  std::vector<std::string> run() {
    for (size_t i = 0; i < p_.insns.size() && problems_.size() < kMaxProblems; ++i) step(i, p_.insns[i]);
    gradients_written_by_their_layers();
    return problems_;
  }

 private:
  void problem(size_t i, const std::string& what) { problems_.push_back(where(p_, i) + ": " + what); }

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
  int locate(size_t i, const Access& a, uint64_t* base) {
    const uint32_t ch = addr_channel(a.addr);
    const uint64_t first = addr_offset(a.addr);
    const int r = region_at(ch, first);
    if (r < 0) {
      problem(i, std::string(a.field) + " address is in no region");
      return -1;
    }
    const uint64_t last = first + static_cast<uint64_t>(((a.rows - 1) * a.rs + (a.cols - 1) * a.cs) * a.eh + a.eh - 1);
    const Region& reg = p_.map.regions[static_cast<size_t>(r)];
    if (last >= (reg.offset + reg.bytes) / 2) {
      problem(i, std::string(a.field) + " runs past the end of region '" + reg.name + "'");
      return -1;
    }
    *base = first - reg.offset / 2;
    return r;
  }

  void touch(size_t i, const Access& a) {
    if (a.rows <= 0 || a.cols <= 0) {
      problem(i, std::string(a.field) + " has an empty extent");
      return;
    }
    uint64_t base = 0;
    const int r = locate(i, a, &base);
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
      problem(i, std::string(a.field) + " reads " + std::to_string(unwritten) + " halfwords of '" +
                     p_.map.regions[static_cast<size_t>(r)].name + "' that nothing wrote before");
    }
  }

  // Reads the region at `addr` as a whole (convolution windows, col2im targets): it must be written
  // completely by then.
  void whole(size_t i, const char* field, uint32_t addr) {
    const int r = region_at(addr_channel(addr), addr_offset(addr));
    if (r < 0) {
      problem(i, std::string(field) + " address is in no region");
      return;
    }
    if (count_[static_cast<size_t>(r)] != static_cast<int64_t>(written_[static_cast<size_t>(r)].size())) {
      problem(i, std::string(field) + " reads '" + p_.map.regions[static_cast<size_t>(r)].name +
                     "' before it is completely written");
    }
  }

  // The DRAM ranges of LD_SPW: the compressed lines' values and index halfwords, or (b0) the
  // master's rows or columns the selection ranks.
  void sparse_load(std::vector<Access>& acc, const Insn& in) {
    const int64_t rows = in[f_LD_SPW::rows], groups = in[f_LD_SPW::groups], n = in[f_LD_SPW::n];
    const int64_t m = in[f_LD_SPW::m], l0 = in[f_LD_SPW::l0], g0 = in[f_LD_SPW::g0];
    if (in.flag(0)) {
      const int64_t k = in[f_LD_SPW::idx_addr];   // the master's row length, not an address
      if (in.flag(1)) {
        acc.push_back({"val_addr", false, advance(in[f_LD_SPW::val_addr], (g0 * m * k + l0) * 2), groups * m, rows, k,
                       1, 2});
      } else {
        acc.push_back({"val_addr", false, advance(in[f_LD_SPW::val_addr], (l0 * k + g0 * m) * 2), rows, groups * m, k,
                       1, 2});
      }
      return;
    }
    const int64_t lg = in[f_LD_SPW::line_groups];
    const int64_t first = (l0 * lg + g0) * n, last = ((l0 + rows - 1) * lg + g0 + groups) * n - 1;
    acc.push_back({"val_addr", false, advance(in[f_LD_SPW::val_addr], first), rows, groups * n, lg * n, 1, 1});
    acc.push_back(flat("idx_addr", false, advance(in[f_LD_SPW::idx_addr], first / 4), last / 4 - first / 4 + 1, false));
  }

  void step(size_t i, const Insn& in) {
    std::vector<Access> acc;
    const auto op = static_cast<Opcode>(in.opcode());
    const bool b0 = in.flag(0), b1 = in.flag(1), b2 = in.flag(2);
    switch (op) {
      case OP_LD_2D:
        acc.push_back({"addr", false, in[f_LD_2D::addr], in[f_LD_2D::rows], in[f_LD_2D::cols], in[f_LD_2D::row_stride],
                       in[f_LD_2D::col_stride], 1});
        break;
      case OP_LD_CONV: whole(i, "addr", in[f_LD_CONV::addr]); break;
      case OP_LD_SPW: sparse_load(acc, in); break;
      case OP_ST_2D: {
        const Access w{"addr", true, in[f_ST_2D::addr], in[f_ST_2D::rows], in[f_ST_2D::cols], in[f_ST_2D::row_stride],
                       in[f_ST_2D::col_stride], b0 ? 2 : 1};
        if (b1) {
          Access r = w;
          r.write = false;
          acc.push_back(r);
        }
        if (b2) acc.push_back(flat("bias_addr", false, in[f_ST_2D::bias_addr], in[f_ST_2D::cols], true));
        acc.push_back(w);
        break;
      }
      case OP_ST_COL2IM: whole(i, "addr", in[f_ST_COL2IM::addr]); break;
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
        acc.push_back(flat("x", false, in[f_V_RELU::x], in[f_V_RELU::count], false));
        acc.push_back(flat("y", true, in[f_V_RELU::y], in[f_V_RELU::count], false));
        break;
      case OP_V_RELU_BWD:
      case OP_V_GELU_BWD:
        acc.push_back(flat("x", false, in[f_V_RELU_BWD::x], in[f_V_RELU_BWD::count], false));
        acc.push_back(flat("dy", false, in[f_V_RELU_BWD::dy], in[f_V_RELU_BWD::count], false));
        acc.push_back(flat("dx", true, in[f_V_RELU_BWD::dx], in[f_V_RELU_BWD::count], false));
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
        const int64_t yn = b * in[f_V_POOL_BWD::oh] * in[f_V_POOL_BWD::ow] * c;
        acc.push_back(flat("dy", false, in[f_V_POOL_BWD::dy], yn, false));
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
      case OP_V_PERMUTE: {
        const int64_t n = int64_t{in[f_V_PERMUTE::outer]} * in[f_V_PERMUTE::rows] * in[f_V_PERMUTE::cols];
        acc.push_back(flat("x", false, in[f_V_PERMUTE::x], n, false));
        acc.push_back(flat("y", true, in[f_V_PERMUTE::y], n, false));
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
      case OP_PGEN: {
        const int64_t elems = int64_t{in[f_PGEN::cout]} * in[f_PGEN::k];
        const int64_t n = in[f_PGEN::n], m = in[f_PGEN::m];
        acc.push_back(flat("w", false, in[f_PGEN::w], elems, true));
        if (b1 && m > 0) {
          const int64_t entries = elems / m * n;
          acc.push_back(flat("val_addr", true, in[f_PGEN::val_addr], entries, false));
          acc.push_back(flat("idx_addr", true, in[f_PGEN::idx_addr], (entries + 3) / 4, false));
        }
        if (b2) acc.push_back(flat("dense_addr", true, in[f_PGEN::dense_addr], elems, false));
        break;
      }
      default:
        break;   // GEMM and FINISH touch no DRAM
    }
    for (const Access& a : acc) touch(i, a);
  }

  // The framework zero-fills a gradient no instruction wrote (Lowering::update_param); with every
  // parameter reaching the loss, such a fill means a lowering forgot a gradient.
  void gradients_written_by_their_layers() {
    std::map<uint32_t, const ParamBinding*> by_addr;
    for (const auto& pb : p_.params)
      if (pb.grad >= 0) by_addr[p_.map.regions[static_cast<size_t>(pb.grad)].addr()] = &pb;
    for (size_t i = 0; i < p_.insns.size(); ++i) {
      const Insn& in = p_.insns[i];
      if (in.opcode() != OP_V_FILL) continue;
      const auto it = by_addr.find(in[f_V_FILL::y]);
      if (it != by_addr.end()) problem(i, "gradient of " + it->second->param->name + " is never written by its layer");
    }
  }

  const Program& p_;
  std::vector<std::vector<uint8_t>> written_;   // per region, per halfword
  std::vector<int64_t> count_;                  // written halfwords per region
  std::vector<std::string> problems_;
};

}  // namespace

std::vector<std::string> check_tokens(const Program& p) {
  std::vector<std::string> out;
  pair_tokens(p, out);
  run_units(p, out);
  return out;
}

std::vector<std::string> check_data_flow(const Program& p) { return DataFlow(p).run(); }

std::vector<std::string> check_stream(const Program& p) {
  std::vector<std::string> out = check_tokens(p);
  for (std::string& s : check_data_flow(p)) out.push_back(std::move(s));
  return out;
}

}  // namespace sat::test
