// The SystemC model of the accelerator (accelerator.hpp, docs/sim.md).
#include "accelerator.hpp"

#include <algorithm>

#include "sat/arch/access.hpp"
#include "sat/arch/timing.hpp"

namespace sat::sim {

using namespace sc_core;

namespace {

constexpr uint32_t bit(int u) { return 1u << u; }

}  // namespace

Accelerator::Accelerator(const sc_module_name& name)
    : sc_module(name), dram_{DramPort(0), DramPort(1), DramPort(2), DramPort(3)}, cycle_(1e6 / arch::kClockMHz, SC_PS) {
  static_assert(arch::kDdrChannels == 4, "one DramPort per channel in the initialiser above");
  SC_THREAD(fetch_process);
  for (int u = 0; u < kExec; ++u) {
    sc_spawn_options opt;
    sc_spawn(sc_bind(&Accelerator::unit_process, this, u), sc_gen_unique_name("unit"), &opt);
  }
}

uint64_t Accelerator::now_cycle() const {
  return static_cast<uint64_t>(sc_time_stamp().value() / cycle_.value());
}

void Accelerator::wait_cycles(uint64_t n) {
  if (n) wait(cycle_ * static_cast<double>(n));
}

bool Accelerator::past_deadline() {
  if (!has_deadline_ || stopped_) return stopped_;
  if (std::chrono::steady_clock::now() >= deadline_) {
    stopped_ = true;
    stop_run();
  }
  return stopped_;
}

void Accelerator::stop_run() {
  aborted_ = true;
  abort_.notify(SC_ZERO_TIME);
}

// Fetch/decode: one 512-bit instruction word per cycle, in stream order, into the queue of its
// unit; it waits while that queue is full, stops at FINISH, at the end of the stream, or at a
// header error.
void Accelerator::fetch_process() {
  for (;;) {
    wait(start_);
    const auto& s = *insns_;
    while (fetch_pc_ < s.size() && !aborted_) {
      const isa::Insn& in = s[fetch_pc_];
      wait_cycles(1);
      const int unit = datapath_.decode(in);
      if (unit < 0) {
        end_index_ = fetch_pc_;
        end_opcode_ = in.opcode();
        stop_run();
        break;
      }
      if (unit == isa::UNIT_CTRL) {
        finish_seen_ = true;
        finish_index_ = fetch_pc_++;
        break;
      }
      while (queue_[unit].size() >= static_cast<size_t>(arch::kInsnQueueDepth) && !aborted_) {
        wait(popped_[unit] | abort_);
      }
      if (aborted_) break;
      queue_[unit].push_back(Entry{in, fetch_pc_++});
      pushed_[unit].notify(SC_ZERO_TIME);
      if ((fetch_pc_ & 255) == 0 && past_deadline()) break;
    }
    fetch_done_ = true;
  }
}

// One execution unit: in order, each instruction waits for a token from every unit in its wait
// mask and for room in every token FIFO it signals, executes on the kernel's datapath, occupies
// the unit for its cycles, then signals.
void Accelerator::unit_process(int u) {
  for (;;) {
    while (queue_[u].empty()) wait(pushed_[u]);
    if (aborted_) {
      queue_[u].clear();
      popped_[u].notify(SC_ZERO_TIME);
      continue;
    }
    const Entry e = queue_[u].front();
    const uint8_t waits = e.in.wait(), signals = e.in.signal();
    const uint64_t ready = now_cycle();
    bool blocked = true;
    while (blocked && !aborted_) {
      blocked = false;
      for (int p = 0; p < kExec && !blocked; ++p) {
        if ((waits & bit(p)) && tokens_[p][u] == 0) {
          blocked = true;
          wait(token_in_[p][u] | abort_);
        }
      }
      for (int c = 0; c < kExec && !blocked; ++c) {
        if ((signals & bit(c)) && tokens_[u][c] >= arch::kTokenDepth) {
          blocked = true;
          wait(token_out_[u][c] | abort_);
        }
      }
    }
    if (aborted_) continue;
    const uint64_t start = now_cycle();
    counters_.stall[u] += start - ready;
    queue_[u].pop_front();
    popped_[u].notify(SC_ZERO_TIME);
    for (int p = 0; p < kExec; ++p) {
      if (!(waits & bit(p))) continue;
      --tokens_[p][u];
      token_out_[p][u].notify(SC_ZERO_TIME);
    }
    if (!datapath_.execute(u, e.in)) {
      end_index_ = e.index;
      end_opcode_ = e.in.opcode();
      stop_run();
      continue;
    }
    ++executed_;
    uint64_t compute = 0;
    const uint64_t cycles = duration(u, e.in, start, &compute);
    wait_cycles(cycles);
    counters_.busy[u] += compute;
    counters_.stall[u] += cycles - compute;   // waiting on DRAM beyond its own work
    last_cycle_ = std::max(last_cycle_, now_cycle());
    for (int c = 0; c < kExec; ++c) {
      if (!(signals & bit(c))) continue;
      ++tokens_[u][c];
      token_in_[u][c].notify(SC_ZERO_TIME);
    }
    if ((executed_ & 63) == 0) past_deadline();
  }
}

uint64_t Accelerator::duration(int unit, const isa::Insn& in, uint64_t start, uint64_t* compute) {
  if (unit == isa::UNIT_GEMM) {
    const uint32_t mt = in[isa::f_GEMM::mt], nt = in[isa::f_GEMM::nt], kt = in[isa::f_GEMM::kt];
    const uint32_t n = in[isa::f_GEMM::n], m = in[isa::f_GEMM::m];
    *compute = arch::gemm_cycles(mt, nt, kt, in.flag(1), n, m);
    counters_.macs += arch::gemm_macs(mt, nt, kt, in.flag(1), n, m);
    return *compute;
  }
  isa::DramAccess acc[isa::kMaxDramAccesses];
  const int n = isa::dram_accesses(in, acc);
  uint64_t work = 0, done = start;
  for (int i = 0; i < n; ++i) {
    const uint64_t bytes = acc[i].bytes();
    // The units stream one element per cycle (II = 1 in the kernel), LOAD and STORE one bus beat.
    constexpr uint64_t kBeat = arch::kDdrBusBits / 8;
    const uint64_t per_access = unit == isa::UNIT_LOAD || unit == isa::UNIT_STORE
                                    ? (bytes + kBeat - 1) / kBeat
                                    : static_cast<uint64_t>(acc[i].elements());
    work = std::max(work, per_access);
    const int ch = static_cast<int>(isa::addr_channel(acc[i].addr));
    if (ch < arch::kDdrChannels) {
      done = std::max(done, dram_[ch].transfer(start, acc[i]));
      (acc[i].write ? counters_.dram_write_bytes[ch] : counters_.dram_read_bytes[ch]) += bytes;
    }
  }
  if (in.opcode() == isa::OP_PGEN && in[isa::f_PGEN::m] > 0) work /= in[isa::f_PGEN::m];   // a group a cycle
  *compute = std::max<uint64_t>(work, 1);
  return std::max(*compute, done - start);
}

RunOutcome Accelerator::run(const std::vector<isa::Insn>& insns, HostDeviceMemory& mem, bool has_deadline,
                            std::chrono::steady_clock::time_point deadline) {
  uint16_t* ddr[arch::kDdrChannels];
  uint64_t halfwords[arch::kDdrChannels];
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    ddr[c] = mem.halfwords(c);
    halfwords[c] = mem.halfword_count(c);
  }
  datapath_.attach(ddr, halfwords);
  insns_ = &insns;
  has_deadline_ = has_deadline;
  deadline_ = deadline;
  stopped_ = aborted_ = fetch_done_ = finish_seen_ = false;
  executed_ = fetch_pc_ = finish_index_ = 0;
  end_index_ = 0;
  end_opcode_ = isa::kNoOpcode;
  for (auto& q : queue_) q.clear();
  for (auto& row : tokens_) row.fill(0);
  counters_ = DeviceCounters{};
  if (!sc_is_running() && sc_get_status() == SC_ELABORATION) sc_start(SC_ZERO_TIME);
  start_cycle_ = last_cycle_ = now_cycle();
  for (auto& d : dram_) d.reset_stats();   // the banks keep their open rows, as the DIMMs do
  start_.notify(SC_ZERO_TIME);
  sc_start();   // until no process has anything left to do

  RunOutcome out;
  out.stopped = stopped_;
  uint32_t index = end_index_, opcode = end_opcode_;
  if (!aborted_) {
    // Every process is asleep: the run ended, or the units wait for each other forever.
    int blocked = -1;
    for (int u = 0; u < kExec; ++u) {
      if (!queue_[u].empty() && (blocked < 0 || queue_[u].front().index < queue_[blocked].front().index)) blocked = u;
    }
    if (blocked >= 0) {
      const Entry& e = queue_[blocked].front();
      uint32_t missing = 0, full = 0;
      for (int p = 0; p < kExec; ++p) {
        if ((e.in.wait() & bit(p)) && tokens_[p][blocked] == 0) missing |= bit(p);
        if ((e.in.signal() & bit(p)) && tokens_[blocked][p] >= arch::kTokenDepth) full |= bit(p);
      }
      datapath_.fail(isa::STATUS_DEADLOCK, 0, missing, full);
      index = e.index;
      opcode = e.in.opcode();
    } else if (!finish_seen_) {
      datapath_.fail(isa::STATUS_NO_FINISH, 0, static_cast<uint32_t>(insns.size()), 0);
      index = static_cast<uint32_t>(insns.size());
    } else {
      index = finish_index_;
      opcode = isa::OP_FINISH;
      for (int p = 0; p < kExec && !datapath_.failed(); ++p) {
        for (int c = 0; c < kExec; ++c) {
          if (tokens_[p][c] != 0) {
            datapath_.fail(isa::STATUS_TOKEN_LEFT, 0, static_cast<uint32_t>(p << 8 | c),
                           static_cast<uint32_t>(tokens_[p][c]));
            break;
          }
        }
      }
    }
  } else if (stopped_) {
    index = fetch_pc_;
  }
  // Wake whatever still waits on a token or a queue (a deadlock, an error) so that every process
  // is back at the top of its loop for the next run.
  stop_run();
  sc_start();
  uint32_t words[isa::kStatusWords];
  datapath_.status(index, opcode, executed_, words);
  std::copy(words, words + isa::kStatusWords, out.status.begin());
  counters_.cycles = last_cycle_ - start_cycle_;
  out.counters = counters_;
  return out;
}

}  // namespace sat::sim
