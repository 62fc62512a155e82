// The SAT kernel's top function: fetch/decode, the per-unit instruction queues, the dependency
// tokens, the watchdog, and the two ways of running the units:
//  - C-simulation (g++, !__SYNTHESIS__): the units are stepped cooperatively, round-robin, one
//    instruction per unit per round; deterministic, and any stall the hardware would have (empty
//    instruction queue, missing token, full token FIFO, full instruction queue) stalls here too.
//  - Synthesis (__SYNTHESIS__): a DATAFLOW region in which every array and port belongs to one
//    process: the GEMM process owns (and partitions, where it declares them) every bank, one
//    arbiter per DDR channel owns its m_axi port, and the load unit is a dispatcher, one engine
//    per channel and an in-order retire. Instruction queues, token FIFOs, fill words, drains and
//    arbiter requests are hls::streams (docs/hls-dataflow.md).
// Both run the same per-unit execute functions (load_unit.cpp, gemm_unit.cpp, ...); the types
// they reach DRAM and the banks through are pointers in C-simulation (kernel.hpp).
#include <type_traits>

#include "kernel.hpp"
#include "sat/arch/access.hpp"   // the DRAM counters; the load dispatcher picks an engine as the simulator does
#include "sat/arch/timing.hpp"   // the GEMM counter

namespace sat::kernel {

DdrOut region(Ctx& cx, const Insn& in, int field, uint64_t halfwords) {
  const uint32_t a = in[field];
  const uint32_t ch = isa::addr_channel(a);
  const uint64_t off = isa::addr_offset(a);
#ifdef __SYNTHESIS__
  const bool attached = true;   // an absent channel has size 0 (the host passes 0 for it)
#else
  const bool attached = cx.ddr.gmem[ch < static_cast<uint32_t>(arch::kDdrChannels) ? ch : 0] != nullptr;
#endif
  if (ch >= static_cast<uint32_t>(arch::kDdrChannels) || !attached || off + halfwords > cx.ddr.halfwords[ch]) {
    const uint64_t span = halfwords > 0xffffffffu ? 0xffffffffu : halfwords;
    cx.fail(isa::STATUS_BAD_ADDRESS, static_cast<uint32_t>(field), a, static_cast<uint32_t>(span));
    return nullptr;
  }
#ifdef __SYNTHESIS__
  return DdrPtr(cx.client, ch, off);
#else
  return cx.ddr.gmem[ch] + off;
#endif
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

void count_executed(Ctx& cx, const Insn& in) {
  if (in.opcode() == isa::OP_GEMM) {
    cx.count.gemm_cycles += arch::gemm_cycles(in[isa::f_GEMM::mt], in[isa::f_GEMM::nt], in[isa::f_GEMM::kt],
                                              in.flag(1), in[isa::f_GEMM::n], in[isa::f_GEMM::m]);
    return;
  }
  isa::DramAccess acc[isa::kMaxDramAccesses];
  const int n = isa::dram_accesses(in, acc);
  for (int i = 0; i < n; ++i) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = 16
    (acc[i].write ? cx.count.dram_write : cx.count.dram_read) += acc[i].bytes();
  }
}

bool exec_unit(int unit, Ctx& cx, const Insn& in) {
  bool ok;
  switch (unit) {
    case isa::UNIT_LOAD: ok = exec_load(cx, in); break;
    case isa::UNIT_GEMM: ok = exec_gemm(cx, in); break;
    case isa::UNIT_VEC: ok = exec_vec(cx, in); break;
    case isa::UNIT_STORE: ok = exec_store(cx, in); break;
    case isa::UNIT_UPD: ok = exec_upd(cx, in); break;
    case isa::UNIT_PGEN: ok = exec_pgen(cx, in); break;
    default: return cx.fail(isa::STATUS_BAD_OPCODE, 0, in.opcode());
  }
  if (ok) count_executed(cx, in);
  return ok;
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
                  uint32_t executed, uint64_t cycles) {
  status[isa::STW_CODE] = cx.err.code;
  status[isa::STW_INDEX] = index;
  status[isa::STW_EXECUTED] = executed;
  status[isa::STW_NONFINITE] = cx.nonfinite;
  status[isa::STW_OPCODE] = opcode;
  status[isa::STW_FIELD] = cx.err.field;
  status[isa::STW_VALUE] = cx.err.value;
  status[isa::STW_DETAIL] = cx.err.extra;
  status[isa::STW_INTERFACE] = arch::kInterfaceVersion;
  isa::set_status_u64(status, isa::STW_CYCLES_LO, cycles);
  status[isa::STW_GEMM_CYCLES] =
      cx.count.gemm_cycles > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(cx.count.gemm_cycles);
  isa::set_status_u64(status, isa::STW_DRAM_READ_LO, cx.count.dram_read);
  isa::set_status_u64(status, isa::STW_DRAM_WRITE_LO, cx.count.dram_write);
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

  // C-simulation has no clock: the cycle words stay 0.
  auto end = [&](uint32_t index, uint32_t opcode) { write_status(status, cx, index, opcode, executed, 0); };

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

#ifdef __SYNTHESIS__
// An instruction queue entry with `stop` set ends a unit's loop (fetch sends it at FINISH or on an
// error).
struct UnitMsg {
  QEntry q;
  bool stop;
};

// ---- Synthesis: the dataflow region (docs/hls-dataflow.md) --------------------------------------------
// Every array belongs to one process and every stream has one writer and one reader:
//  - fetch reads the instruction port and fills one instruction queue per unit;
//  - LOAD is a dispatcher (tokens in, in stream order), kLoadEngines engines (one per DDR channel,
//    each owning its datapath and its fill link) and a retire process (tokens out, in stream order);
//  - GEMM owns every operand and accumulator bank: the engines' fill words and the store unit's
//    drains are served by it, between and during its instructions (BankOwner::step);
//  - VEC, STORE, UPD, PGEN run their execute functions; their DRAM goes through the arbiters;
//  - one arbiter per DDR channel owns that channel's m_axi port;
//  - collect merges the reports into the status block.
// A unit that saw an error keeps consuming and producing tokens without executing, so no FIFO is
// left blocked and the region drains; the first error in collect's order wins. Its tokens carry
// kTokenPoison, and a unit that takes a poisoned token executes nothing from then on and poisons
// its own tokens: no instruction that depends on a failed one, directly or through others,
// executes (docs/hls-dataflow.md, "Errors in the region").
using InsnStream = ::hls::stream<UnitMsg, arch::kInsnQueueDepth>;
using TokenStream = ::hls::stream<uint32_t, arch::kTokenDepth>;
// A token's payload: from LOAD, how many loads each engine has finished when the token leaves, in
// kLoadCountBits bits per engine (GEMM waits until it has taken that many end-of-load markers from
// every engine); from the other units, 0. kTokenEnd: the producer has ended.
// Every engine, not only the signalling load's: a LOAD token stands for all earlier loads too (the
// A tile loaded without a signal before the B tile that signals), and those ran on other engines.
// The counts are modulo 2^kLoadCountBits: GEMM's marker count lags the retire's by at most the
// markers in flight in one fill link, far below half the modulus.
constexpr uint32_t kTokenEnd = 0xffffffffu;
constexpr uint32_t kTokenPoison = 1u << 31;   // the producer failed or depends on a failure
constexpr int kLoadCountBits = 7;
constexpr uint32_t kLoadCountMask = (1u << kLoadCountBits) - 1;
static_assert(arch::kLoadEngines * kLoadCountBits < 31, "a LOAD token's counts never reach the poison bit or read as kTokenEnd");
inline bool poisoned_token(uint32_t t) { return t != kTokenEnd && (t & kTokenPoison) != 0; }
static_assert(arch::kFillLinkDepth < (1 << (kLoadCountBits - 1)), "marker counts compare modulo 2^kLoadCountBits");
inline uint32_t load_count(uint32_t payload, int engine) { return (payload >> (kLoadCountBits * engine)) & kLoadCountMask; }
inline bool markers_reached(uint16_t taken, uint32_t needed) {
  return ((taken - needed) & kLoadCountMask) < (1u << (kLoadCountBits - 1));
}
constexpr int kReports = isa::kNumExecUnits + 2;   // the units, fetch, the load dispatcher
constexpr int kFetchReport = isa::kNumExecUnits, kDispatchReport = isa::kNumExecUnits + 1;
struct UnitReport {
  Error err;
  uint32_t index;
  uint32_t opcode;
  uint32_t executed;
  uint32_t nonfinite;
  Counts count;
  uint32_t left[isa::kNumExecUnits];   // tokens from each producer that no instruction took
};
using ReportStream = ::hls::stream<UnitReport, 2>;

// A load handed to an engine, and the order the retire process follows.
struct EngineMsg {
  QEntry q;
  bool stop;
  bool skip = false;   // poisoned: end the load (its marker) without executing it
};
using EngineStream = ::hls::stream<EngineMsg, 2>;
struct OrderMsg {
  uint32_t index, opcode;
  uint8_t engine, signal;
  bool stop;
  bool poison = false;   // the load depends on a failure: its tokens carry kTokenPoison
};
using OrderStream = ::hls::stream<OrderMsg, arch::kInsnQueueDepth>;
struct DoneMsg {
  Error err;
  bool executed = false;
  Counts count;   // what this load counted (count_executed)
};
using DoneStream = ::hls::stream<DoneMsg, 2>;

// Elements of one wide bank word (the reshape factor), the widest of what a cycle reads or writes:
// the PE rows' activation windows or a fill word (A); the PE columns' lanes or a fill word (B and
// its indices); one PE row's sums (C). sim/study/src/resources.cpp sizes the banks by the same
// widths (buffer_specs).
constexpr int kMax(int x, int y) { return x > y ? x : y; }
constexpr int kAWord = kMax(arch::kPeRows * arch::kPeLanes * arch::kSelectWindowRatio, kFillElems);
constexpr int kBWord = kMax(arch::kPeCols * arch::kPeLanes, kFillElems);
constexpr int kCWord = arch::kPeRows;

}  // namespace

// The GEMM process's service of its banks: one fill word (round-robin over the engines) and one
// drained accumulator a cycle. Loads and GEMMs touch different banks whenever both run (the ISA's
// tokens order every reuse), so the writes never meet the array's reads.
struct BankOwner {
  Buffers* banks;
  FillStream* fill;          // [kLoadEngines]
  DrainReqStream* drain_req;
  DrainStream* drain;
  uint16_t ends[arch::kLoadEngines];   // end-of-load markers taken, per engine
  bool engine_stopped[arch::kLoadEngines];
  bool store_stopped;
  uint32_t drain_left, drain_next;
  uint8_t drain_bank;
  int rr;

  void step() {
#pragma HLS INLINE
    int pick = -1;
    for (int k = 0; k < arch::kLoadEngines; ++k) {
#pragma HLS UNROLL
      const int e = (rr + k) % arch::kLoadEngines;
      if (pick < 0 && !fill[e].empty()) pick = e;
    }
    if (pick >= 0) {
      FillWord w{};
      for (int e = 0; e < arch::kLoadEngines; ++e) {
#pragma HLS UNROLL
        if (e == pick) w = fill[e].read();
      }
      if (w.stop) {
        engine_stopped[pick] = true;
      } else if (w.end_load) {
        ++ends[pick];
      } else {
        for (int i = 0; i < kFillElems; ++i) {
#pragma HLS UNROLL
          if (i >= w.count) continue;
          const uint32_t at = w.base + static_cast<uint32_t>(i);
          if (w.target == kFillA) banks->a[w.bank][at] = w.data[i];
          else if (w.target == kFillB) banks->b[w.bank][at] = w.data[i];
          else banks->bidx[w.bank][at] = static_cast<uint8_t>(w.data[i]);
        }
      }
      rr = (pick + 1) % arch::kLoadEngines;
    }
    if (drain_left == 0 && !store_stopped) {
      DrainReq r;
      if (drain_req->read_nb(r)) {
        if (r.stop) {
          store_stopped = true;
        } else {
          drain_left = r.count;
          drain_next = 0;
          drain_bank = r.bank;
        }
      }
    }
    if (drain_left != 0 && !drain->full()) {
      drain->write(banks->c[drain_bank][drain_next]);
      ++drain_next;
      --drain_left;
    }
  }
  // Every engine's fill words and the store unit's drains are over.
  bool done() const {
    bool all = store_stopped;
    for (int e = 0; e < arch::kLoadEngines; ++e) all = all && engine_stopped[e];
    return all;
  }
};

Buffers& gemm_banks(Ctx& cx) { return *cx.own; }
CTileIn c_tile(Ctx& cx, uint32_t bank, uint32_t rows, uint32_t cols) {
  cx.client->drain_req->write(DrainReq{rows * cols, static_cast<uint8_t>(bank), false});
  return CTileIn(cx.client->drain);
}
void bank_service(Ctx& cx) {
  if (cx.owner != nullptr) cx.owner->step();
}

namespace {

void client_stop(Client& c) {
  for (int ch = 0; ch < arch::kDdrChannels; ++ch) {
#pragma HLS UNROLL
    c.ddr[ch].req->write(DdrReq{0, 0, kReqStop, 0});
  }
}

// Every channel's DRAM links, as the region declares them ([channel][client][slot]); a process
// receives the whole arrays and uses its own client's elements.
#define SAT_DDR_LINK_PARAMS                                                                              \
  DdrReqStream req[arch::kDdrChannels][kDdrClients],                                                    \
      DdrBeatStream rsp[arch::kDdrChannels][kDdrClients][arch::kDdrReadSlots],                          \
      DdrWBeatStream wdata[arch::kDdrChannels][kDdrClients][arch::kDdrWriteSlots],                      \
      DdrAckStream ack[arch::kDdrChannels][kDdrClients]

// Links client k of every channel's arbiter into `c`.
void link_client(Client& c, int k, SAT_DDR_LINK_PARAMS) {
  for (int ch = 0; ch < arch::kDdrChannels; ++ch) {
    c.ddr[ch].req = &req[ch][k];
    c.ddr[ch].rsp = rsp[ch][k];
    c.ddr[ch].wdata = wdata[ch][k];
    c.ddr[ch].ack = &ack[ch][k];
    c.ddr[ch].acks_due = 0;
  }
}

Ctx unit_ctx(const uint64_t halfwords[arch::kDdrChannels]) {
  Ctx cx{};
  for (int ch = 0; ch < arch::kDdrChannels; ++ch) cx.ddr.halfwords[ch] = halfwords[ch];
  return cx;
}

void fetch_proc(const ap_uint<512>* insns, uint32_t count, InsnStream queue[isa::kNumExecUnits], ReportStream& report) {
  Ctx cx{};
  uint32_t pc = 0;
  uint32_t end_op = kNoOpcode;
  bool finish_seen = false;
FETCH:
  for (pc = 0; pc < count; ++pc) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    const Insn in = decode(insns[pc]);
    const int unit = check_header(cx, in);
    if (unit < 0) {
      end_op = in.opcode();
      break;
    }
    if (unit == isa::UNIT_CTRL) {
      // A run that drains reports FINISH's index and opcode, as C-simulation does.
      finish_seen = true;
      end_op = isa::OP_FINISH;
      break;
    }
    for (int u = 0; u < isa::kNumExecUnits; ++u) {
#pragma HLS UNROLL
      if (u == unit) queue[u].write(UnitMsg{QEntry{in, pc}, false});
    }
  }
  for (int u = 0; u < isa::kNumExecUnits; ++u) {
#pragma HLS UNROLL
    queue[u].write(UnitMsg{QEntry{Insn{}, pc}, true});
  }
  if (!cx.failed() && !finish_seen) cx.fail(isa::STATUS_NO_FINISH, 0, count);
  UnitReport r{};
  r.err = cx.err;
  r.index = pc;   // the bad header, FINISH, or the stream's length when FINISH is missing
  r.opcode = end_op;
  report.write(r);
}

// Token handling shared by every unit process. Self tokens (a unit waiting for its own signal) never
// leave the process: a counter. While a wait blocks, the GEMM process keeps serving its banks.
template <int kUnit>
uint32_t take_token(Ctx& cx, TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits], int p) {
  uint32_t t = 0;
  for (int q = 0; q < isa::kNumExecUnits; ++q) {
#pragma HLS UNROLL
    if (q != p || q == kUnit) continue;
    while (!tokens[q][kUnit].read_nb(t)) {
      bank_service(cx);
      SAT_DATAFLOW_IDLE();
    }
  }
  return t;
}
template <int kUnit>
void give_token(Ctx& cx, TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits], int c, uint32_t t) {
  for (int q = 0; q < isa::kNumExecUnits; ++q) {
#pragma HLS UNROLL
    if (q != c || q == kUnit) continue;
    while (!tokens[kUnit][q].write_nb(t)) {
      bank_service(cx);
      SAT_DATAFLOW_IDLE();
    }
  }
}
// At the end: the end marker on every FIFO out, then every FIFO in read up to its producer's marker,
// counting the tokens no instruction took. `from_self`: the producer of tokens[kUnit][kUnit] is
// another process (LOAD's retire), so that FIFO is read too.
template <int kUnit>
void end_tokens(Ctx& cx, TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits], bool send, bool receive,
                bool from_self, uint32_t left[isa::kNumExecUnits]) {
  for (int c = 0; c < isa::kNumExecUnits; ++c) {
    if (send && (c != kUnit || from_self)) give_token<kUnit>(cx, tokens, c == kUnit ? -1 : c, kTokenEnd);
  }
  if (send && from_self) {
    while (!tokens[kUnit][kUnit].write_nb(kTokenEnd)) {
      bank_service(cx);
      SAT_DATAFLOW_IDLE();
    }
  }
  for (int p = 0; p < isa::kNumExecUnits; ++p) {
    if (!receive || (p == kUnit && !from_self)) continue;
  END_DRAIN:
    for (;;) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65
      uint32_t t = 0;
      if (!tokens[p][kUnit].read_nb(t)) {
        bank_service(cx);
        SAT_DATAFLOW_IDLE();
        continue;
      }
      if (t == kTokenEnd) break;
      ++left[p];
    }
  }
}

// VEC, STORE, UPD, PGEN and GEMM: in order, wait, execute (unless poisoned), signal.
template <int kUnit>
void unit_proc(InsnStream& queue, TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits], Ctx cx,
               ReportStream& report) {
  UnitReport r{};
  r.opcode = kNoOpcode;
  int self = 0;            // tokens this unit gave itself
  bool poisoned = false;   // took a poisoned token: executes nothing from then on
UNIT_LOOP:
  for (;;) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    UnitMsg m;
    while (!queue.read_nb(m)) {
      bank_service(cx);
      SAT_DATAFLOW_IDLE();
    }
    if (m.stop) break;
    for (int p = 0; p < isa::kNumExecUnits; ++p) {
      if (!((m.q.in.wait() >> p) & 1u)) continue;
      if (p == kUnit) {
        if (self == 0 && !cx.failed()) cx.fail(isa::STATUS_DEADLOCK, 0, 1u << p, 0);
        if (self > 0) --self;
        continue;
      }
      const uint32_t t = take_token<kUnit>(cx, tokens, p);
      poisoned = poisoned || poisoned_token(t);
      if (kUnit == isa::UNIT_GEMM && p == isa::UNIT_LOAD) {
        // Every load before the token has its fill words in the banks once each engine's end
        // markers reach the count the token carries.
        for (int e = 0; e < arch::kLoadEngines; ++e) {
        LOAD_MARKERS:
          while (!markers_reached(cx.owner->ends[e], load_count(t, e))) {
            bank_service(cx);
            SAT_DATAFLOW_IDLE();
          }
        }
      }
    }
    if (!cx.failed() && !poisoned) {
      if (!exec_unit(kUnit, cx, m.q.in)) {
        r.index = m.q.index;
        r.opcode = m.q.in.opcode();
      } else {
        ++r.executed;
      }
    }
    // The instruction's writes are in DRAM before any token says so.
    if (cx.client != nullptr) ddr_fence(*cx.client);
    const uint32_t out = cx.failed() || poisoned ? kTokenPoison : 0;
    for (int c = 0; c < isa::kNumExecUnits; ++c) {
      if (!((m.q.in.signal() >> c) & 1u)) continue;
      if (c == kUnit) {
        if (self >= arch::kTokenDepth && !cx.failed()) cx.fail(isa::STATUS_DEADLOCK, 0, 0, 1u << c);
        ++self;
        continue;
      }
      give_token<kUnit>(cx, tokens, c, out);
    }
  }
  if (cx.client != nullptr) {
    client_stop(*cx.client);
    if (cx.client->drain_req != nullptr) cx.client->drain_req->write(DrainReq{0, 0, true});
  }
  end_tokens<kUnit>(cx, tokens, true, true, false, r.left);
  r.left[kUnit] += static_cast<uint32_t>(self);
  if (cx.owner != nullptr) {
  OWNER_DRAIN:
    while (!cx.owner->done()) {
      cx.owner->step();
      SAT_DATAFLOW_IDLE();
    }
  }
  r.err = cx.err;
  r.nonfinite = cx.nonfinite;
  r.count = cx.count;
  report.write(r);
}

// The GEMM process: owns the banks (partitioned here, where they are declared, for the PE array's
// reads and the fill words' writes) and serves the engines and the store unit.
void gemm_proc(InsnStream& queue, TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits],
               FillStream fill[arch::kLoadEngines], DrainReqStream& drain_req, DrainStream& drain,
               const uint64_t halfwords[arch::kDdrChannels], ReportStream& report) {
  static uint16_t a[arch::kBanks][arch::kAbufElems];
  static uint16_t b[arch::kBanks][arch::kBbufElems];
  static uint8_t bidx[arch::kBanks][arch::kBbufElems];
  static float c[arch::kBanks][arch::kCbufElems];
  // A bank delivers kPeRows * kPeLanes * kSelectWindowRatio activations (A) or kPeCols * kPeLanes
  // weights and indices (B) a cycle, or takes a fill word (kFillElems) where that is wider; the
  // reshape packs those elements into one wide word of block RAM, the layout the resource estimate
  // (sim/study/src/resources.cpp, buffer_specs) counts. C: one PE row's kPeCols sums a cycle.
#pragma HLS ARRAY_RESHAPE variable = a cyclic factor = kAWord dim = 2
#pragma HLS ARRAY_RESHAPE variable = b cyclic factor = kBWord dim = 2
#pragma HLS ARRAY_RESHAPE variable = bidx cyclic factor = kBWord dim = 2
#pragma HLS ARRAY_RESHAPE variable = c cyclic factor = kCWord dim = 2
#pragma HLS ARRAY_PARTITION variable = a complete dim = 1
#pragma HLS ARRAY_PARTITION variable = b complete dim = 1
#pragma HLS ARRAY_PARTITION variable = bidx complete dim = 1
#pragma HLS ARRAY_PARTITION variable = c complete dim = 1
#pragma HLS BIND_STORAGE variable = a type = ram_s2p impl = bram
#pragma HLS BIND_STORAGE variable = b type = ram_s2p impl = bram
#pragma HLS BIND_STORAGE variable = bidx type = ram_s2p impl = bram
#pragma HLS BIND_STORAGE variable = c type = ram_s2p impl = bram
  Buffers banks{a, b, bidx, c};
  BankOwner owner{};
  owner.banks = &banks;
  owner.fill = fill;
  owner.drain_req = &drain_req;
  owner.drain = &drain;
  Ctx cx = unit_ctx(halfwords);
  cx.own = &banks;
  cx.owner = &owner;
  unit_proc<isa::UNIT_GEMM>(queue, tokens, cx, report);
}

// The unit's client number on the arbiters: VEC, STORE, UPD, PGEN follow the engines in unit order.
template <int kUnit>
void dram_unit_proc(InsnStream& queue, TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits], SAT_DDR_LINK_PARAMS,
                    DrainReqStream* drain_req, DrainStream* drain, const uint64_t halfwords[arch::kDdrChannels],
                    ReportStream& report) {
  constexpr int kClient = kClientVec + (kUnit - isa::UNIT_VEC);
  static_assert(isa::UNIT_STORE - isa::UNIT_VEC == kClientStore - kClientVec &&
                    isa::UNIT_UPD - isa::UNIT_VEC == kClientUpd - kClientVec &&
                    isa::UNIT_PGEN - isa::UNIT_VEC == kClientPgen - kClientVec,
                "DRAM clients follow the unit order");
  Client client{};
  link_client(client, kClient, req, rsp, wdata, ack);
  client.drain_req = drain_req;
  client.drain = drain;
  Ctx cx = unit_ctx(halfwords);
  cx.client = &client;
  unit_proc<kUnit>(queue, tokens, cx, report);
}

// LOAD, 1 of 3: waits for each load's tokens in stream order and hands it to the engine of its DDR
// channel (the channel of its first DRAM access, as the simulator's load_engine picks it).
void load_dispatch_proc(InsnStream& queue, TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits],
                        EngineStream engines[arch::kLoadEngines], OrderStream& order, ReportStream& report) {
  constexpr int kUnit = isa::UNIT_LOAD;
  Ctx cx{};
  bool poisoned = false;   // took a poisoned token: no later load executes
DISPATCH:
  for (;;) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    const UnitMsg m = queue.read();
    if (m.stop) break;
    for (int p = 0; p < isa::kNumExecUnits; ++p) {
      if (!((m.q.in.wait() >> p) & 1u)) continue;
      uint32_t t = 0;
      if (p == kUnit) {
        tokens[kUnit][kUnit].read(t);
      } else {
        t = take_token<kUnit>(cx, tokens, p);
      }
      poisoned = poisoned || poisoned_token(t);
    }
    isa::DramAccess acc[isa::kMaxDramAccesses];
    const int n = isa::dram_accesses(m.q.in, acc, arch::kConvPatchElems);
    const uint32_t ch = isa::addr_channel(n > 0 ? acc[0].addr : m.q.in[isa::f_LD_CONV::addr]);
    const int e = static_cast<int>((ch < static_cast<uint32_t>(arch::kDdrChannels) ? ch : 0) % arch::kLoadEngines);
    for (int k = 0; k < arch::kLoadEngines; ++k) {
#pragma HLS UNROLL
      if (k == e) engines[k].write(EngineMsg{m.q, false, poisoned});
    }
    order.write(OrderMsg{m.q.index, m.q.in.opcode(), static_cast<uint8_t>(e), m.q.in.signal(), false, poisoned});
  }
  for (int k = 0; k < arch::kLoadEngines; ++k) {
#pragma HLS UNROLL
    engines[k].write(EngineMsg{QEntry{}, true});
  }
  order.write(OrderMsg{0, 0, 0, 0, true});
  UnitReport r{};
  r.opcode = kNoOpcode;
  end_tokens<kUnit>(cx, tokens, false, true, true, r.left);
  report.write(r);
}

// LOAD, 2 of 3: one DMA engine. Runs exec_load with its own DRAM client (every channel's arbiter)
// and its own fill link; a load ends with the marker GEMM waits for.
void load_engine_proc(int engine, EngineStream& in, SAT_DDR_LINK_PARAMS, FillStream& fill, DoneStream& done,
                      const uint64_t halfwords[arch::kDdrChannels]) {
  Client client{};
  link_client(client, engine, req, rsp, wdata, ack);
  client.fill = &fill;
  LoadView view{BankSet{&client, kFillA}, BankSet{&client, kFillB}, BankSet{&client, kFillIdx}};
  Ctx cx = unit_ctx(halfwords);
  cx.client = &client;
  cx.buf = &view;
  // This engine's own LD_CONV patch buffer: a held patch (b3) is always one its own channel's
  // tensor filled, since an LD_CONV runs on the engine of its tensor's channel.
  PatchBuffer patch;
#pragma HLS ARRAY_PARTITION variable = patch.data cyclic factor = kFillElems
  patch.valid = false;
  cx.patch = &patch;
ENGINE:
  for (;;) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    const EngineMsg m = in.read();
    if (m.stop) break;
    const bool run = !cx.failed() && !m.skip;
    if (run) exec_load(cx, m.q.in);
    ddr_fence(client);   // nothing to wait for today (loads only read), kept for the rule
    fill_end_load(&client);
    Counts c{};
    if (run && !cx.failed()) {
      cx.count = Counts{};
      count_executed(cx, m.q.in);
      c = cx.count;
    }
    done.write(DoneMsg{cx.err, run && !cx.failed(), c});
  }
  client_stop(client);
  FillWord stop{};
  stop.stop = true;
  fill.write(stop);
}

// LOAD, 3 of 3: retires the loads in stream order, each when its engine is done, and signals.
void load_retire_proc(OrderStream& order, DoneStream done[arch::kLoadEngines],
                      TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits], ReportStream& report) {
  constexpr int kUnit = isa::UNIT_LOAD;
  Ctx cx{};
  UnitReport r{};
  r.opcode = kNoOpcode;
  uint32_t finished[arch::kLoadEngines] = {};   // loads each engine has finished, modulo the count field
RETIRE:
  for (;;) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    const OrderMsg o = order.read();
    if (o.stop) break;
    DoneMsg d{};
    for (int k = 0; k < arch::kLoadEngines; ++k) {
#pragma HLS UNROLL
      if (k == o.engine) d = done[k].read();
    }
    if (!cx.failed()) {
      if (d.err.code != isa::STATUS_OK) {
        cx.err = d.err;
        r.index = o.index;
        r.opcode = o.opcode;
      } else if (d.executed) {
        ++r.executed;
        r.count.add(d.count);
      }
    }
    // Poisoned once a load failed (on any engine) or this one depends on a failure.
    uint32_t payload = cx.failed() || o.poison ? kTokenPoison : 0;
    for (int k = 0; k < arch::kLoadEngines; ++k) {
#pragma HLS UNROLL
      if (k == o.engine) finished[k] = (finished[k] + 1) & kLoadCountMask;
      payload |= finished[k] << (kLoadCountBits * k);
    }
    for (int c = 0; c < isa::kNumExecUnits; ++c) {
      if (!((o.signal >> c) & 1u)) continue;
      if (c == kUnit) {
        tokens[kUnit][kUnit].write(payload);
      } else {
        give_token<kUnit>(cx, tokens, c, payload);
      }
    }
  }
  end_tokens<kUnit>(cx, tokens, true, false, true, r.left);
  r.err = cx.err;
  report.write(r);
}

// One DDR channel's arbiter: the only process that touches the channel's m_axi port. A request
// takes one cycle; then its beats move one a cycle, aligned to the bus, to the client's read link
// or from its write link (the halfword mask becomes the write strobes), the last beat of a write
// followed by its acknowledgement. Requests are taken round-robin over the clients, each client's
// in order, and the arbiter never waits on a unit (links.hpp: credits for reads, data before the
// request for writes). It ends when every client has said stop.
void arbiter_proc(uint16_t* gmem, DdrReqStream req[kDdrClients], DdrBeatStream rsp[kDdrClients][arch::kDdrReadSlots],
                  DdrWBeatStream wdata[kDdrClients][arch::kDdrWriteSlots], DdrAckStream ack[kDdrClients]) {
  bool stopped[kDdrClients] = {};
#pragma HLS ARRAY_PARTITION variable = stopped complete
  int live = kDdrClients, rr = 0;
  int cur = 0;
  DdrReq q{};
  uint64_t beat = 0;       // the next beat's index (halfword offset / kBeatHalfwords)
  uint32_t beats_left = 0;
ARBITER:
  while (live > 0 || beats_left != 0) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    if (beats_left == 0) {
      int pick = -1;
      for (int k = 0; k < kDdrClients; ++k) {
#pragma HLS UNROLL
        const int c = (rr + k) % kDdrClients;
        if (pick < 0 && !stopped[c] && !req[c].empty()) pick = c;
      }
      if (pick < 0) {
        SAT_DATAFLOW_IDLE();
        continue;
      }
      for (int c = 0; c < kDdrClients; ++c) {
#pragma HLS UNROLL
        if (c == pick) q = req[c].read();
      }
      rr = (pick + 1) % kDdrClients;
      if (q.kind == kReqStop) {
        stopped[pick] = true;
        --live;
        continue;
      }
      cur = pick;
      beat = q.offset / kBeatHalfwords;
      beats_left = beats_of(q.offset, q.len);
      continue;
    }
    const uint64_t base = beat * kBeatHalfwords;
    if (q.kind == kReqRead) {
      DdrBeat b;
      for (int j = 0; j < kBeatHalfwords; ++j) {
#pragma HLS UNROLL
        b.h[j] = gmem[base + j];
      }
      for (int c = 0; c < kDdrClients; ++c) {
#pragma HLS UNROLL
        for (int s = 0; s < arch::kDdrReadSlots; ++s) {
#pragma HLS UNROLL
          if (c == cur && s == q.slot) rsp[c][s].write(b);
        }
      }
    } else {
      DdrWBeat w{};
      for (int c = 0; c < kDdrClients; ++c) {
#pragma HLS UNROLL
        for (int s = 0; s < arch::kDdrWriteSlots; ++s) {
#pragma HLS UNROLL
          if (c == cur && s == q.slot) w = wdata[c][s].read();
        }
      }
      for (int j = 0; j < kBeatHalfwords; ++j) {
#pragma HLS UNROLL
        if ((w.mask >> j) & 1u) gmem[base + j] = w.h[j];
      }
    }
    ++beat;
    if (--beats_left == 0 && q.kind == kReqWrite) {
      for (int c = 0; c < kDdrClients; ++c) {
#pragma HLS UNROLL
        if (c == cur) ack[c].write(1);
      }
    }
  }
}

// Also the kernel's clock counter: the collector starts with the region and polls the reports once a
// cycle (II = 1) until the last one is in, so its iterations are the run's cycles from the region's
// start to the last report (the status writes and the block handshake after it are not counted).
void collect_proc(ReportStream reports[kReports], uint32_t status[isa::kStatusWords]) {
  UnitReport rep[kReports];
  bool got[kReports] = {};
#pragma HLS ARRAY_PARTITION variable = got complete
  int pending = kReports;
  uint64_t cycles = 0;
COLLECT_WAIT:
  while (pending > 0) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1000000
    ++cycles;
    bool any = false;
    for (int k = 0; k < kReports; ++k) {
#pragma HLS UNROLL
      if (!got[k] && reports[k].read_nb(rep[k])) {
        got[k] = true;
        --pending;
        any = true;
      }
    }
    if (!any) SAT_DATAFLOW_IDLE();
  }
#ifdef SAT_HLS_THREADED
  cycles = 0;   // the threaded host model has no clock: its polling count measures nothing
#endif
  const UnitReport& fetch = rep[kFetchReport];
  const UnitReport& dispatch = rep[kDispatchReport];
  Ctx cx{};
  uint32_t executed = 0, index = fetch.index, opcode = fetch.opcode;
  uint32_t left[isa::kNumExecUnits][isa::kNumExecUnits] = {};   // [producer][consumer]
  for (int u = 0; u < isa::kNumExecUnits; ++u) {
    const UnitReport& r = rep[u];
    executed += r.executed;
    cx.nonfinite += r.nonfinite;
    cx.count.add(r.count);
    for (int p = 0; p < isa::kNumExecUnits; ++p) left[p][u] = u == isa::UNIT_LOAD ? dispatch.left[p] : r.left[p];
    if (!cx.failed() && r.err.code != isa::STATUS_OK) {
      cx.err = r.err;
      index = r.index;
      opcode = r.opcode;
    }
  }
  if (!cx.failed() && fetch.err.code != isa::STATUS_OK) cx.err = fetch.err;
  for (int p = 0; p < isa::kNumExecUnits; ++p) {
    for (int c = 0; c < isa::kNumExecUnits; ++c) {
      if (left[p][c] != 0 && !cx.failed()) {
        cx.fail(isa::STATUS_TOKEN_LEFT, 0, static_cast<uint32_t>(p << 8 | c), left[p][c]);
        opcode = isa::OP_FINISH;
      }
    }
  }
  write_status(status, cx, index, opcode, executed, cycles);
}

// The region: processes in the order their channels flow, every channel declared here.
void run_dataflow(const ap_uint<512>* insns, uint32_t count, uint16_t* const gmem[arch::kDdrChannels],
                  const uint64_t halfwords[arch::kDdrChannels], uint32_t status[isa::kStatusWords]) {
#pragma HLS DATAFLOW
  InsnStream queue[isa::kNumExecUnits];
  TokenStream tokens[isa::kNumExecUnits][isa::kNumExecUnits];
  ReportStream reports[kReports];
  DdrReqStream req[arch::kDdrChannels][kDdrClients];
  DdrBeatStream rsp[arch::kDdrChannels][kDdrClients][arch::kDdrReadSlots];
  DdrWBeatStream wdata[arch::kDdrChannels][kDdrClients][arch::kDdrWriteSlots];
  DdrAckStream ack[arch::kDdrChannels][kDdrClients];
  EngineStream engines[arch::kLoadEngines];
  OrderStream order;
  DoneStream done[arch::kLoadEngines];
  FillStream fill[arch::kLoadEngines];
  DrainReqStream drain_req;
  DrainStream drain;
  // Declared after the channels: the threaded model joins its processes before they are destroyed.
  SAT_DATAFLOW_REGION("run_dataflow");
  SAT_DATAFLOW_NAME(queue);
  SAT_DATAFLOW_NAME(tokens);
  SAT_DATAFLOW_NAME(reports);
  SAT_DATAFLOW_NAME(req);
  SAT_DATAFLOW_NAME(rsp);
  SAT_DATAFLOW_NAME(wdata);
  SAT_DATAFLOW_NAME(ack);
  SAT_DATAFLOW_NAME(engines);
  SAT_DATAFLOW_NAME(order);
  SAT_DATAFLOW_NAME(done);
  SAT_DATAFLOW_NAME(fill);
  SAT_DATAFLOW_NAME(drain_req);
  SAT_DATAFLOW_NAME(drain);
  SAT_DATAFLOW_CALL(fetch_proc, insns, count, queue, reports[kFetchReport]);
  SAT_DATAFLOW_CALL(load_dispatch_proc, queue[isa::UNIT_LOAD], tokens, engines, order, reports[kDispatchReport]);
  for (int e = 0; e < arch::kLoadEngines; ++e) {
#pragma HLS UNROLL
    SAT_DATAFLOW_CALL(load_engine_proc, e, engines[e], req, rsp, wdata, ack, fill[e], done[e], halfwords);
  }
  SAT_DATAFLOW_CALL(load_retire_proc, order, done, tokens, reports[isa::UNIT_LOAD]);
  SAT_DATAFLOW_CALL(gemm_proc, queue[isa::UNIT_GEMM], tokens, fill, drain_req, drain, halfwords, reports[isa::UNIT_GEMM]);
  SAT_DATAFLOW_CALL(dram_unit_proc<isa::UNIT_VEC>, queue[isa::UNIT_VEC], tokens, req, rsp, wdata, ack, nullptr, nullptr,
                    halfwords, reports[isa::UNIT_VEC]);
  SAT_DATAFLOW_CALL(dram_unit_proc<isa::UNIT_STORE>, queue[isa::UNIT_STORE], tokens, req, rsp, wdata, ack, &drain_req,
                    &drain, halfwords, reports[isa::UNIT_STORE]);
  SAT_DATAFLOW_CALL(dram_unit_proc<isa::UNIT_UPD>, queue[isa::UNIT_UPD], tokens, req, rsp, wdata, ack, nullptr, nullptr,
                    halfwords, reports[isa::UNIT_UPD]);
  SAT_DATAFLOW_CALL(dram_unit_proc<isa::UNIT_PGEN>, queue[isa::UNIT_PGEN], tokens, req, rsp, wdata, ack, nullptr,
                    nullptr, halfwords, reports[isa::UNIT_PGEN]);
  for (int ch = 0; ch < arch::kDdrChannels; ++ch) {
#pragma HLS UNROLL
    SAT_DATAFLOW_CALL(arbiter_proc, gmem[ch], req[ch], rsp[ch], wdata[ch], ack[ch]);
  }
  SAT_DATAFLOW_CALL(collect_proc, reports, status);
}
#endif  // __SYNTHESIS__

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

namespace sat::kernel {
constexpr int kAxiRunBeats = arch::kDdrRunBeats;
constexpr int kAxiOutstanding = arch::kArbLinkDepth / arch::kDdrRunBeats;
}  // namespace sat::kernel

extern "C" void sat_top(const ap_uint<512>* insns, uint32_t count, uint16_t* gmem0, uint16_t* gmem1,
                        uint16_t* gmem2, uint16_t* gmem3, uint64_t halfwords0, uint64_t halfwords1,
                        uint64_t halfwords2, uint64_t halfwords3,
                        uint32_t status[sat::isa::kStatusWords]) {
  // One AXI master for the instruction stream (512-bit beats, one instruction each) and one bundle
  // per DDR channel; the sizes, the count and the status words on the control interface. A DDR
  // channel's arbiter moves runs of at most kDdrRunBeats beats (links.hpp) and keeps at most a
  // data link's depth of them in flight.
#pragma HLS INTERFACE m_axi port = insns bundle = ginsn offset = slave depth = 4096 max_read_burst_length = 64
#pragma HLS INTERFACE m_axi port = gmem0 bundle = gmem0 offset = slave depth = 1048576 \
    max_read_burst_length = kAxiRunBeats max_write_burst_length = kAxiRunBeats \
    num_read_outstanding = kAxiOutstanding num_write_outstanding = kAxiOutstanding
#pragma HLS INTERFACE m_axi port = gmem1 bundle = gmem1 offset = slave depth = 1048576 \
    max_read_burst_length = kAxiRunBeats max_write_burst_length = kAxiRunBeats \
    num_read_outstanding = kAxiOutstanding num_write_outstanding = kAxiOutstanding
#pragma HLS INTERFACE m_axi port = gmem2 bundle = gmem2 offset = slave depth = 1048576 \
    max_read_burst_length = kAxiRunBeats max_write_burst_length = kAxiRunBeats \
    num_read_outstanding = kAxiOutstanding num_write_outstanding = kAxiOutstanding
#pragma HLS INTERFACE m_axi port = gmem3 bundle = gmem3 offset = slave depth = 1048576 \
    max_read_burst_length = kAxiRunBeats max_write_burst_length = kAxiRunBeats \
    num_read_outstanding = kAxiOutstanding num_write_outstanding = kAxiOutstanding
#pragma HLS INTERFACE s_axilite port = count
#pragma HLS INTERFACE s_axilite port = halfwords0
#pragma HLS INTERFACE s_axilite port = halfwords1
#pragma HLS INTERFACE s_axilite port = halfwords2
#pragma HLS INTERFACE s_axilite port = halfwords3
#pragma HLS INTERFACE s_axilite port = status
#pragma HLS INTERFACE s_axilite port = return
  using namespace sat;
  using namespace sat::kernel;
#ifndef __SYNTHESIS__
  // C-simulation: one set of banks that every unit reaches through cx.buf, the units stepped in
  // turn. The synthesised kernel declares the banks in the GEMM process, which owns them
  // (run_dataflow, gemm_proc; docs/hls-dataflow.md).
  static Buffers buffers;
  static PatchBuffer patch;   // nothing is held when a run starts
  patch.valid = false;
  Ctx cx{};
  cx.patch = &patch;
  cx.ddr.gmem[0] = gmem0;
  cx.ddr.gmem[1] = gmem1;
  cx.ddr.gmem[2] = gmem2;
  cx.ddr.gmem[3] = gmem3;
  cx.ddr.halfwords[0] = halfwords0;
  cx.ddr.halfwords[1] = halfwords1;
  cx.ddr.halfwords[2] = halfwords2;
  cx.ddr.halfwords[3] = halfwords3;
  cx.buf = &buffers;
  run_csim(insns, count, cx, status);
#else
  uint16_t* const gmem[arch::kDdrChannels] = {gmem0, gmem1, gmem2, gmem3};
  const uint64_t halfwords[arch::kDdrChannels] = {halfwords0, halfwords1, halfwords2, halfwords3};
  run_dataflow(insns, count, gmem, halfwords, status);
#endif
}
