// The SAT kernel's top function: fetch/decode, the per-unit instruction queues, the dependency
// tokens, the watchdog, and the two ways of running the units:
//  - C-simulation (g++, !__SYNTHESIS__): the units are stepped cooperatively, round-robin, one
//    instruction per unit per round; deterministic, and any stall the hardware would have (empty
//    instruction queue, missing token, full token FIFO, full instruction queue) stalls here too.
//  - Synthesis (__SYNTHESIS__): a DATAFLOW region of one process per unit, connected by
//    hls::stream instruction queues and token FIFOs of the depths in config.hpp.
// Both run the same per-unit execute functions (load_unit.cpp, gemm_unit.cpp, ...).
#include <type_traits>

#include "kernel.hpp"

namespace sat::kernel {

uint16_t* region(Ctx& cx, const Insn& in, int field, uint64_t halfwords) {
  const uint32_t a = in[field];
  const uint32_t ch = isa::addr_channel(a);
  const uint64_t off = isa::addr_offset(a);
  if (ch >= static_cast<uint32_t>(arch::kDdrChannels) || cx.ddr.gmem[ch] == nullptr ||
      off + halfwords > cx.ddr.halfwords[ch]) {
    const uint64_t span = halfwords > 0xffffffffu ? 0xffffffffu : halfwords;
    cx.fail(isa::STATUS_BAD_ADDRESS, static_cast<uint32_t>(field), a, static_cast<uint32_t>(span));
    return nullptr;
  }
  return cx.ddr.gmem[ch] + off;
}

bool decode_geom(Ctx& cx, const Insn& in, int c_field, ConvGeom& g) {
  // Field order after c: h w kh_kw stride_pad oh ow.
  g.c = in[c_field];
  g.h = in[c_field + 1];
  g.w = in[c_field + 2];
  g.kh = isa::lo16(in[c_field + 3]);
  g.kw = isa::hi16(in[c_field + 3]);
  g.stride = isa::lo16(in[c_field + 4]);
  g.pad = isa::hi16(in[c_field + 4]);
  g.oh = in[c_field + 5];
  g.ow = in[c_field + 6];
  if (g.c == 0) return cx.bad_field(in, c_field);
  if (g.h == 0) return cx.bad_field(in, c_field + 1);
  if (g.w == 0) return cx.bad_field(in, c_field + 2);
  if (g.kh == 0 || g.kw == 0) return cx.bad_field(in, c_field + 3);
  if (g.stride == 0 || g.pad >= g.kh || g.pad >= g.kw) return cx.bad_field(in, c_field + 4);
  if (g.oh == 0) return cx.bad_field(in, c_field + 5);
  if (g.ow == 0) return cx.bad_field(in, c_field + 6);
  return true;
}

namespace {

// An entry of a unit's instruction queue: the decoded instruction and its index in the stream.
struct QEntry {
  Insn in;
  uint32_t index;
};

Insn decode(const ap_uint<512>& word) {
  Insn in;
  for (int i = 0; i < arch::kInsnWords; ++i) {
#pragma HLS UNROLL
    in.w[i] = static_cast<uint32_t>(word.range(32 * i + 31, 32 * i).to_uint());
  }
  return in;
}

}  // namespace

bool exec_unit(int unit, Ctx& cx, const Insn& in) {
  switch (unit) {
    case isa::UNIT_LOAD: return exec_load(cx, in);
    case isa::UNIT_GEMM: return exec_gemm(cx, in);
    case isa::UNIT_VEC: return exec_vec(cx, in);
    case isa::UNIT_STORE: return exec_store(cx, in);
    case isa::UNIT_UPD: return exec_upd(cx, in);
    case isa::UNIT_PGEN: return exec_pgen(cx, in);
    default: return cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
  }
}

namespace {
constexpr uint32_t kExecMask = (1u << isa::kNumExecUnits) - 1;
}  // namespace

// Checks the header of a fetched instruction: known opcode, masks naming only units with token
// queues, FINISH without masks. Returns the unit, or -1 after recording the error.
int check_header(Ctx& cx, const Insn& in) {
  const int unit = isa::opcode_unit(in.opcode());
  if (unit < 0) {
    cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
    return -1;
  }
  const uint32_t masks = in.wait() | in.signal();
  if (unit == isa::UNIT_CTRL ? masks != 0 : (masks & ~kExecMask) != 0) {
    cx.fail(isa::STATUS_BAD_FIELD, 0, in.w[0], masks);
    return -1;
  }
  return unit;
}

void write_status(uint32_t status[isa::kStatusWords], const Ctx& cx, uint32_t index, uint32_t opcode,
                  uint32_t executed) {
  status[isa::STW_CODE] = cx.err.code;
  status[isa::STW_INDEX] = index;
  status[isa::STW_EXECUTED] = executed;
  status[isa::STW_NONFINITE] = cx.nonfinite;
  status[isa::STW_OPCODE] = opcode;
  status[isa::STW_FIELD] = cx.err.field;
  status[isa::STW_VALUE] = cx.err.value;
  status[isa::STW_DETAIL] = cx.err.extra;
  status[isa::STW_INTERFACE] = arch::kInterfaceVersion;
  for (int i = isa::STW_INTERFACE + 1; i < isa::kStatusWords; ++i) {
#pragma HLS UNROLL
    status[i] = 0;
  }
}

namespace {

#ifndef __SYNTHESIS__
// ---- C-simulation: cooperative round-robin ----------------------------------------------------------
bool (*g_should_stop)(void*) = nullptr;
void* g_should_stop_arg = nullptr;
bool g_stopped = false;

struct InsnQueue {
  QEntry e[arch::kInsnQueueDepth];
  int head = 0, count = 0;
  bool full() const { return count == arch::kInsnQueueDepth; }
  bool empty() const { return count == 0; }
  const QEntry& front() const { return e[head]; }
  void push(const QEntry& q) {
    e[(head + count) % arch::kInsnQueueDepth] = q;
    ++count;
  }
  void pop() {
    head = (head + 1) % arch::kInsnQueueDepth;
    --count;
  }
};

void run_csim(const ap_uint<512>* insns, uint32_t count, Ctx& cx, uint32_t status[isa::kStatusWords]) {
  static InsnQueue queue[isa::kNumExecUnits];
  for (auto& q : queue) q = InsnQueue{};
  int tokens[isa::kNumExecUnits][isa::kNumExecUnits] = {};   // [producer][consumer]
  uint32_t pc = 0, executed = 0;
  bool fetch_done = false, finish_seen = false;
  uint32_t finish_index = 0;
  int idle_rounds = 0;

  auto end = [&](uint32_t index, uint32_t opcode) { write_status(status, cx, index, opcode, executed); };

  g_stopped = false;
  for (uint64_t round = 0;; ++round) {
    if (g_should_stop && (round & 1023) == 0 && g_should_stop(g_should_stop_arg)) {
      g_stopped = true;
      return end(pc, kNoOpcode);
    }
    bool progress = false;
    // Fetch/decode: dispatch in order until a queue is full, FINISH, the end, or a bad header.
    while (!fetch_done && pc < count) {
      const Insn in = decode(insns[pc]);
      const int unit = check_header(cx, in);
      if (unit < 0) return end(pc, in.opcode());
      if (unit == isa::UNIT_CTRL) {   // FINISH: stop fetching; the run ends when the units drain
        finish_seen = true;
        finish_index = pc++;
        fetch_done = true;
        progress = true;
        break;
      }
      if (queue[unit].full()) break;
      queue[unit].push(QEntry{in, pc++});
      progress = true;
    }
    if (pc >= count) fetch_done = true;

    // Units, one instruction each per round.
    for (int u = 0; u < isa::kNumExecUnits; ++u) {
      if (queue[u].empty()) continue;
      const QEntry& q = queue[u].front();
      const uint8_t wait = q.in.wait(), signal = q.in.signal();
      bool ready = true;
      for (int p = 0; p < isa::kNumExecUnits; ++p) {
        if (((wait >> p) & 1u) && tokens[p][u] == 0) ready = false;
        const int after = tokens[u][p] - (((wait >> p) & 1u) && p == u ? 1 : 0);
        if (((signal >> p) & 1u) && after >= arch::kTokenDepth) ready = false;
      }
      if (!ready) continue;
      for (int p = 0; p < isa::kNumExecUnits; ++p)
        if ((wait >> p) & 1u) --tokens[p][u];
      const QEntry e = q;
      queue[u].pop();
      if (!exec_unit(u, cx, e.in)) return end(e.index, e.in.opcode());
      for (int c = 0; c < isa::kNumExecUnits; ++c)
        if ((signal >> c) & 1u) ++tokens[u][c];
      ++executed;
      progress = true;
    }

    bool drained = fetch_done;
    for (int u = 0; u < isa::kNumExecUnits; ++u) drained = drained && queue[u].empty();
    if (drained) {
      if (!finish_seen) {
        cx.fail(isa::STATUS_NO_FINISH, 0, count);
        return end(count, kNoOpcode);
      }
      for (int p = 0; p < isa::kNumExecUnits; ++p) {
        for (int c = 0; c < isa::kNumExecUnits; ++c) {
          if (tokens[p][c] != 0) {
            cx.fail(isa::STATUS_TOKEN_LEFT, 0, static_cast<uint32_t>(p << 8 | c),
                    static_cast<uint32_t>(tokens[p][c]));
            return end(finish_index, isa::OP_FINISH);
          }
        }
      }
      return end(finish_index, isa::OP_FINISH);
    }

    if (progress) {
      idle_rounds = 0;
      continue;
    }
    if (++idle_rounds < arch::kDeadlockRounds) continue;
    // Token deadlock: report the blocked instruction earliest in the stream.
    int blocked = -1;
    for (int u = 0; u < isa::kNumExecUnits; ++u) {
      if (!queue[u].empty() && (blocked < 0 || queue[u].front().index < queue[blocked].front().index))
        blocked = u;
    }
    const QEntry& q = queue[blocked].front();
    uint32_t missing = 0, full = 0;
    for (int p = 0; p < isa::kNumExecUnits; ++p) {
      if (((q.in.wait() >> p) & 1u) && tokens[p][blocked] == 0) missing |= 1u << p;
      if (((q.in.signal() >> p) & 1u) && tokens[blocked][p] >= arch::kTokenDepth) full |= 1u << p;
    }
    cx.fail(isa::STATUS_DEADLOCK, 0, missing, full);
    return end(q.index, q.in.opcode());
  }
}
#endif  // !__SYNTHESIS__

}  // namespace

#ifndef __SYNTHESIS__
void csim_set_stop(bool (*should_stop)(void*), void* arg) {
  g_should_stop = should_stop;
  g_should_stop_arg = arg;
}
bool csim_stopped() { return g_stopped; }
#endif

namespace {

// ---- Synthesis: one dataflow process per unit ------------------------------------------------------
// An instruction queue entry with `stop` set ends a unit's loop (fetch sends it at FINISH or on an
// error). A unit that saw an error keeps consuming and producing tokens without executing
// ("poisoned"), so no FIFO is left blocked and the region drains; the first error wins.
struct UnitMsg {
  QEntry q;
  bool stop;
};
using InsnStream = ::hls::stream<UnitMsg, arch::kInsnQueueDepth>;
using TokenStream = ::hls::stream<ap_uint<1>, arch::kTokenDepth>;
struct UnitReport {
  Error err;
  uint32_t index;
  uint32_t opcode;
  uint32_t executed;
  uint32_t nonfinite;
};

[[maybe_unused]] void fetch_proc(const ap_uint<512>* insns, uint32_t count, InsnStream queue[isa::kNumExecUnits],
                                 ::hls::stream<UnitReport>& report) {
  Ctx cx{};
  uint32_t pc = 0;
  uint32_t bad_index = 0, bad_op = kNoOpcode;
  bool finish_seen = false;
FETCH:
  for (pc = 0; pc < count; ++pc) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    const Insn in = decode(insns[pc]);
    const int unit = check_header(cx, in);
    if (unit < 0) {
      bad_index = pc;
      bad_op = in.opcode();
      break;
    }
    if (unit == isa::UNIT_CTRL) {
      finish_seen = true;
      break;
    }
    queue[unit].write(UnitMsg{QEntry{in, pc}, false});
  }
  for (int u = 0; u < isa::kNumExecUnits; ++u) {
#pragma HLS UNROLL
    queue[u].write(UnitMsg{QEntry{Insn{}, pc}, true});
  }
  if (!cx.failed() && !finish_seen) cx.fail(isa::STATUS_NO_FINISH, 0, count);
  report.write(UnitReport{cx.err, cx.failed() ? bad_index : pc, bad_op, 0, 0});
}

template <int kUnit>
void unit_proc(InsnStream& queue, TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits], Ctx cx,
               ::hls::stream<UnitReport>& report) {
  UnitReport r{Error{}, 0, kNoOpcode, 0, 0};
UNIT_LOOP:
  for (;;) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    const UnitMsg m = queue.read();
    if (m.stop) break;
    for (int p = 0; p < isa::kNumExecUnits; ++p) {
#pragma HLS UNROLL
      if ((m.q.in.wait() >> p) & 1u) tokens[p][kUnit].read();
    }
    if (!cx.failed()) {
      if (!exec_unit(kUnit, cx, m.q.in)) {
        r.index = m.q.index;
        r.opcode = m.q.in.opcode();
      } else {
        ++r.executed;
      }
    }
    for (int c = 0; c < isa::kNumExecUnits; ++c) {
#pragma HLS UNROLL
      if ((m.q.in.signal() >> c) & 1u) tokens[kUnit][c].write(1);
    }
  }
  r.err = cx.err;
  r.nonfinite = cx.nonfinite;
  report.write(r);
}

[[maybe_unused]] void collect_proc(::hls::stream<UnitReport> reports[isa::kNumExecUnits + 1],
                                   TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits],
                                   uint32_t status[isa::kStatusWords]) {
  UnitReport fetch = reports[isa::kNumExecUnits].read();
  Ctx cx{};
  uint32_t executed = 0, index = fetch.index, opcode = fetch.opcode;
  for (int u = 0; u < isa::kNumExecUnits; ++u) {
    const UnitReport r = reports[u].read();
    executed += r.executed;
    cx.nonfinite += r.nonfinite;
    if (!cx.failed() && r.err.code != isa::STATUS_OK) {
      cx.err = r.err;
      index = r.index;
      opcode = r.opcode;
    }
  }
  if (!cx.failed() && fetch.err.code != isa::STATUS_OK) cx.err = fetch.err;
  for (int p = 0; p < isa::kNumExecUnits; ++p) {
    for (int c = 0; c < isa::kNumExecUnits; ++c) {
      int left = 0;
      while (!tokens[p][c].empty()) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = 64
        tokens[p][c].read();
        ++left;
      }
      if (left != 0 && !cx.failed()) {
        cx.fail(isa::STATUS_TOKEN_LEFT, 0, static_cast<uint32_t>(p << 8 | c), static_cast<uint32_t>(left));
        opcode = isa::OP_FINISH;
      }
    }
  }
  write_status(status, cx, index, opcode, executed);
}

[[maybe_unused]] void run_dataflow(const ap_uint<512>* insns, uint32_t count, const Ddr& ddr, Buffers* buf,
                                   uint32_t status[isa::kStatusWords]) {
#pragma HLS DATAFLOW
  static InsnStream queue[isa::kNumExecUnits];
  static TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits];
  static ::hls::stream<UnitReport> reports[isa::kNumExecUnits + 1];
  Ctx cx{};
  cx.ddr = ddr;
  cx.buf = buf;
  fetch_proc(insns, count, queue, reports[isa::kNumExecUnits]);
  unit_proc<isa::UNIT_LOAD>(queue[isa::UNIT_LOAD], tokens, cx, reports[isa::UNIT_LOAD]);
  unit_proc<isa::UNIT_GEMM>(queue[isa::UNIT_GEMM], tokens, cx, reports[isa::UNIT_GEMM]);
  unit_proc<isa::UNIT_VEC>(queue[isa::UNIT_VEC], tokens, cx, reports[isa::UNIT_VEC]);
  unit_proc<isa::UNIT_STORE>(queue[isa::UNIT_STORE], tokens, cx, reports[isa::UNIT_STORE]);
  unit_proc<isa::UNIT_UPD>(queue[isa::UNIT_UPD], tokens, cx, reports[isa::UNIT_UPD]);
  unit_proc<isa::UNIT_PGEN>(queue[isa::UNIT_PGEN], tokens, cx, reports[isa::UNIT_PGEN]);
  collect_proc(reports, tokens, status);
}

}  // namespace
}  // namespace sat::kernel

// The top function's parameters, in order and type, are the argument list of the contract
// (arch/include/sat/arch/interface.hpp): the driver, the v++ link and the trace tools rely on it.
namespace sat::kernel {
template <arch::TopArgKind K> struct TopArgType;
template <> struct TopArgType<arch::TopArgKind::insn_stream> { using type = const ap_uint<512>*; };
template <> struct TopArgType<arch::TopArgKind::ddr> { using type = uint16_t*; };
template <> struct TopArgType<arch::TopArgKind::u32> { using type = uint32_t; };
template <> struct TopArgType<arch::TopArgKind::u64> { using type = uint64_t; };
template <> struct TopArgType<arch::TopArgKind::status> { using type = uint32_t*; };
template <typename First, typename... Args> struct TopSignature { using type = void(Args...); };
#define SAT_TOP_ARG_TYPE(name, kind, bundle, channel) , typename TopArgType<arch::TopArgKind::kind>::type
using TopFunction = TopSignature<void SAT_TOP_ARGS(SAT_TOP_ARG_TYPE)>::type;
#undef SAT_TOP_ARG_TYPE
static_assert(std::is_same<decltype(sat_top), TopFunction>::value,
              "sat_top's parameters differ from SAT_TOP_ARGS in sat/arch/interface.hpp");
}  // namespace sat::kernel

extern "C" void sat_top(const ap_uint<512>* insns, uint32_t count, uint16_t* gmem0, uint16_t* gmem1,
                        uint16_t* gmem2, uint16_t* gmem3, uint64_t halfwords0, uint64_t halfwords1,
                        uint64_t halfwords2, uint64_t halfwords3,
                        uint32_t status[sat::isa::kStatusWords]) {
  // One AXI master for the instruction stream (512-bit beats, one instruction each) and one bundle
  // per DDR channel; the sizes, the count and the status words on the control interface.
#pragma HLS INTERFACE m_axi port = insns bundle = ginsn offset = slave depth = 4096 max_read_burst_length = 64
#pragma HLS INTERFACE m_axi port = gmem0 bundle = gmem0 offset = slave depth = 1048576
#pragma HLS INTERFACE m_axi port = gmem1 bundle = gmem1 offset = slave depth = 1048576
#pragma HLS INTERFACE m_axi port = gmem2 bundle = gmem2 offset = slave depth = 1048576
#pragma HLS INTERFACE m_axi port = gmem3 bundle = gmem3 offset = slave depth = 1048576
#pragma HLS INTERFACE s_axilite port = count
#pragma HLS INTERFACE s_axilite port = halfwords0
#pragma HLS INTERFACE s_axilite port = halfwords1
#pragma HLS INTERFACE s_axilite port = halfwords2
#pragma HLS INTERFACE s_axilite port = halfwords3
#pragma HLS INTERFACE s_axilite port = status
#pragma HLS INTERFACE s_axilite port = return
  using namespace sat;
  using namespace sat::kernel;
  // The on-chip buffers: double-banked A/B operands (partitioned for the PE array in gemm_unit.cpp)
  // and the C accumulators.
  static Buffers buffers;
  Ctx cx{};
  cx.ddr.gmem[0] = gmem0;
  cx.ddr.gmem[1] = gmem1;
  cx.ddr.gmem[2] = gmem2;
  cx.ddr.gmem[3] = gmem3;
  cx.ddr.halfwords[0] = halfwords0;
  cx.ddr.halfwords[1] = halfwords1;
  cx.ddr.halfwords[2] = halfwords2;
  cx.ddr.halfwords[3] = halfwords3;
  cx.buf = &buffers;
#ifndef __SYNTHESIS__
  run_csim(insns, count, cx, status);
#else
  run_dataflow(insns, count, cx.ddr, cx.buf, status);
#endif
}
