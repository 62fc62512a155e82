// estimate_timing(): a first-order timing model of a compiled stream (docs/dataflow.md). Units run
// their instructions in order and wait for their tokens; GEMMs take the PE array's cycles; DRAM
// instructions occupy the channels they touch at the channel's bandwidth, scaled by how long the
// contiguous runs of their access pattern are. Meant for comparing schedules (the three switches),
// not for absolute figures: the cycle-accurate model is sim/.
#include <algorithm>
#include <array>
#include <cmath>
#include <deque>

#include "sat/arch/timing.hpp"
#include "sat/compiler.hpp"

namespace sat {

namespace {

using namespace sat::isa;

constexpr double kBytesPerCycle = arch::kDdrChannelGBs * 1e9 / (arch::kClockMHz * 1e6);
constexpr double kDramLatency = 40;   // cycles from a DRAM instruction's issue to its first data
constexpr double kBurstBytes = 64;    // one AXI beat: shorter contiguous runs waste the rest


// Fraction of the bus a pattern uses: runs of `run` contiguous elements of `elem` bytes.
double efficiency(double run, double elem) { return std::min(1.0, run * elem / kBurstBytes); }

double pattern_efficiency(const Insn& in) {
  switch (in.opcode()) {
    case OP_LD_2D:
      if (in[f_LD_2D::col_stride] == 1) return efficiency(in[f_LD_2D::cols], 2);
      if (in[f_LD_2D::row_stride] == 1) return efficiency(in[f_LD_2D::rows], 2);
      return efficiency(1, 2);
    case OP_LD_CONV:   // a window row (kw pixels of c channels) is contiguous in NHWC
      return efficiency(static_cast<double>(in[f_LD_CONV::c]) * hi16(in[f_LD_CONV::kh_kw]), 2);
    case OP_ST_2D: {
      const double elem = in.flag(0) ? 4 : 2;
      if (in[f_ST_2D::col_stride] == 1) return efficiency(in[f_ST_2D::cols], elem);
      if (in[f_ST_2D::row_stride] == 1) return efficiency(in[f_ST_2D::rows], elem);
      return efficiency(1, elem);
    }
    case OP_ST_COL2IM:
      return efficiency(in[f_ST_COL2IM::c], 4);
    case OP_LD_SPW:   // on the fly (b0): FP32 master runs of a line's groups (K) or of the lines (Cout)
      if (!in.flag(0)) return 1.0;
      return in.flag(1) ? efficiency(in[f_LD_SPW::rows], 4)
                        : efficiency(static_cast<double>(in[f_LD_SPW::groups]) * in[f_LD_SPW::m], 4);
    default:
      return 1.0;
  }
}

}  // namespace

TimingEstimate estimate_timing(const Program& p) {
  TimingEstimate est;
  std::array<double, kNumUnits> unit_free{};
  std::array<double, arch::kDdrChannels> chan_free{};
  std::array<std::array<std::deque<double>, kNumExecUnits>, kNumExecUnits> tokens;
  // The fetch unit dispatches in stream order, one instruction a cycle, into per-unit queues of
  // kInsnQueueDepth: an instruction enters its queue once the one kInsnQueueDepth places ahead of it
  // in that queue has started.
  std::array<std::vector<double>, kNumExecUnits> started;
  double fetch = 0;
  for (size_t j = 0; j < p.insns.size(); ++j) {
    const Insn& in = p.insns[j];
    const int v = opcode_unit(in.opcode());
    if (v < 0 || v >= kNumExecUnits) continue;   // FINISH: the end of the slowest unit
    auto& st = started[static_cast<size_t>(v)];
    fetch += 1;
    if (st.size() >= static_cast<size_t>(arch::kInsnQueueDepth)) {
      fetch = std::max(fetch, st[st.size() - arch::kInsnQueueDepth]);
    }
    double start = std::max(unit_free[static_cast<size_t>(v)], fetch);
    for (int u = 0; u < kNumExecUnits; ++u) {
      if (!(in.wait() & (1u << u))) continue;
      auto& q = tokens[static_cast<size_t>(u)][static_cast<size_t>(v)];
      if (!q.empty()) {
        start = std::max(start, q.front());
        q.pop_front();
      }
    }
    double end = start;
    st.push_back(start);
    if (in.opcode() == OP_GEMM) {   // the PE array's closed form (sat/arch/timing.hpp), as sim/ uses it
      end = start + static_cast<double>(arch::gemm_cycles(in[f_GEMM::mt], in[f_GEMM::nt], in[f_GEMM::kt], in.flag(1),
                                                          in[f_GEMM::n], in[f_GEMM::m]));
    } else if (j < p.traffic.size()) {
      const InsnTraffic& t = p.traffic[j];
      const double eff = pattern_efficiency(in);
      end = start + kDramLatency;
      auto transfer = [&](int64_t bytes, uint8_t mask) {
        const int n = __builtin_popcount(mask);
        if (!n || bytes <= 0) return;
        for (int c = 0; c < arch::kDdrChannels; ++c) {
          if (!(mask & (1u << c))) continue;
          const double cycles = static_cast<double>(bytes) / n / (kBytesPerCycle * eff);
          const double s = std::max(start, chan_free[static_cast<size_t>(c)]);
          chan_free[static_cast<size_t>(c)] = s + cycles;
          est.channel_busy[c] += cycles;
          end = std::max(end, s + cycles + kDramLatency);
        }
      };
      transfer(t.loaded, t.read_channels);
      transfer(t.stored, t.write_channels);
    }
    est.unit_busy[v] += end - start;
    unit_free[static_cast<size_t>(v)] = end;
    for (int w = 0; w < kNumExecUnits; ++w)
      if (in.signal() & (1u << w)) tokens[static_cast<size_t>(v)][static_cast<size_t>(w)].push_back(end);
  }
  est.cycles = *std::max_element(unit_free.begin(), unit_free.end());
  return est;
}

}  // namespace sat
