// The SystemC model of the accelerator (accelerator.hpp, docs/sim.md).
#include "accelerator.hpp"

#include <algorithm>

#include "sat/arch/timing.hpp"

namespace sat::sim {

using namespace sc_core;

namespace {

constexpr uint32_t bit(int u) { return 1u << u; }

// The DRAM settings whose change rebuilds the channels (their open rows are kept otherwise).
nlohmann::json dram_key(const SimConfig& c) {
  return {c.clock_mhz, c.dram_timing, c.dram_mapping, c.dram_queue_depth, c.dram_ctrl_latency};
}

}  // namespace

Accelerator::Accelerator(const sc_module_name& name) : sc_module(name), rtl_(make_rtl_gemm("rtl_gemm")) {
  configure(SimConfig{});
  SC_THREAD(fetch_process);
  for (int u = 0; u < kExec; ++u) {
    sc_spawn_options opt;
    sc_spawn(sc_bind(&Accelerator::unit_process, this, u), sc_gen_unique_name("unit"), &opt);
  }
}

void Accelerator::configure(const SimConfig& cfg, bool cold) {
  cfg_ = cfg;
  cycle_ = sc_time(1e6 / cfg.clock_mhz, SC_PS);
  const nlohmann::json key = dram_key(cfg);
  if (dram_.empty() || key != dram_key_ || cold) {
    dram_.clear();
    for (int c = 0; c < arch::kDdrChannels; ++c) dram_.push_back(std::make_unique<DramPort>(c, cfg));
    dram_key_ = key;
    dram_origin_ = static_cast<uint64_t>(sc_time_stamp().value() / cycle_.value());
  }
}

uint64_t Accelerator::now_cycle() const {
  return static_cast<uint64_t>((sc_time_stamp() - start_time_).value() / cycle_.value());
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
      int64_t gate = -1;
      while (queue_[unit].size() >= static_cast<size_t>(cfg_.insn_queue_depth) && !aborted_) {
        wait(popped_[unit] | abort_);
        gate = unit_popped_[unit];
      }
      if (aborted_) break;
      queue_[unit].push_back(Entry{in, fetch_pc_++, now_cycle(), gate});
      pushed_[unit].notify(SC_ZERO_TIME);
      if ((fetch_pc_ & 255) == 0 && past_deadline()) break;
    }
    fetch_done_ = true;
  }
}

bool Accelerator::claim_ports(const isa::BankAccess* acc, int n, uint64_t now, Port** claimed, uint64_t* free_at,
                              uint32_t* owner) {
  for (int i = 0; i < n; ++i) {
    const auto& a = acc[i];
    auto& ports = (a.write ? write_ports_ : read_ports_)[a.buffer][a.bank % arch::kBanks];
    const int count = a.write ? cfg_.bank_write_ports : cfg_.bank_read_ports;
    Port* best = nullptr;
    for (int p = 0; p < count; ++p) {
      bool taken = false;   // an access of this same instruction already holds it
      for (int j = 0; j < i; ++j) taken |= claimed[j] == &ports[p];
      if (!taken && (!best || ports[p].free < best->free)) best = &ports[p];
    }
    if (!best) best = &ports[0];   // more accesses than ports: they share it in turn (counted as work)
    if (best->free > now) {
      *free_at = best->free;
      *owner = best->owner;
      return false;
    }
    claimed[i] = best;
  }
  return true;
}

// The DMA engine of a load: the DDR channel of its first access (a load that reads no DRAM, a held
// patch, its tensor's), folded onto the engines there are.
int Accelerator::load_engine(const isa::Insn& in) const {
  isa::DramAccess acc[isa::kMaxDramAccesses];
  const int n = isa::dram_accesses(in, acc, cfg_.conv_patch, cfg_.vec_scratch);
  const int ch = static_cast<int>(isa::addr_channel(n > 0 ? acc[0].addr : in[isa::f_LD_CONV::addr]));
  return (ch < arch::kDdrChannels ? ch : 0) % cfg_.load_engines;
}

// One execution unit: in order, each instruction waits for a token from every unit in its wait
// mask, for room in every token FIFO it signals and for its bank ports; executes on the kernel's
// datapath, occupies the unit for its cycles, then signals. Each wait is charged to its cause.
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
    InsnRecord rec;
    rec.index = e.index;
    rec.unit = static_cast<uint8_t>(u);
    rec.enqueue = e.enqueue;
    rec.fetch_gate = e.gate;
    // Starved: the unit finished its last instruction before fetch could hand it this one.
    if (unit_last_[u] >= 0 && e.enqueue > unit_free_[u]) rec.stall[kStallQueue] = static_cast<uint32_t>(e.enqueue - unit_free_[u]);
    // What released it: the latest of its unit, its fetch, its tokens, FIFO room and bank ports.
    uint64_t release_at = e.enqueue;
    auto released = [&](Release why, int64_t by, uint64_t at) {
      if (at >= release_at) {
        release_at = at;
        rec.release = why;
        rec.released_by = by;
      }
    };
    // The load unit issues in order but runs each load on the DMA engine of its channel, so a load
    // waits for its engine's last one, not for the unit's (load_engines = 1: the unit's).
    const bool engines = u == isa::UNIT_LOAD && cfg_.load_engines > 1;
    const int engine = engines ? load_engine(e.in) : 0;
    if (engines) {
      if (engine_last_[engine] >= 0) released(Release::unit, engine_last_[engine], engine_free_[engine]);
    } else if (unit_last_[u] >= 0) {
      released(Release::unit, unit_last_[u], unit_free_[u]);
    }
    isa::BankAccess banks[isa::kMaxBankAccesses];
    const int nbanks = isa::bank_accesses(e.in, banks);
    Port* claimed[isa::kMaxBankAccesses] = {};
    bool blocked = true;
    while (blocked && !aborted_) {
      blocked = false;
      const uint64_t t0 = now_cycle();
      int cause = -1;
      for (int p = 0; p < kExec && !blocked; ++p) {
        if (!(waits & bit(p))) continue;
        if (tokens_[p][u].empty()) {
          blocked = true;
          cause = kStallTokenFirst + p;
          wait(token_in_[p][u] | abort_);
        } else if (tokens_[p][u].front().cycle > t0) {   // pushed ahead by a load still running
          blocked = true;
          cause = kStallTokenFirst + p;
          wait(cycle_ * static_cast<double>(tokens_[p][u].front().cycle - t0), abort_);
        }
      }
      if (!blocked && engines && engine_free_[engine] > t0) {
        blocked = true;   // the engine is busy: work, not a stall
        wait(cycle_ * static_cast<double>(engine_free_[engine] - t0), abort_);
      }
      for (int c = 0; c < kExec && !blocked; ++c) {
        if ((signals & bit(c)) && tokens_[u][c].size() >= static_cast<size_t>(cfg_.token_depth)) {
          blocked = true;
          cause = kStallTokenFull;
          wait(token_out_[u][c] | abort_);
          if (!aborted_) released(Release::token_room, last_pop_[u][c].producer, last_pop_[u][c].cycle);
        }
      }
      if (!blocked) {
        uint64_t free_at = 0;
        uint32_t owner = 0;
        if (!claim_ports(banks, nbanks, t0, claimed, &free_at, &owner)) {
          blocked = true;
          cause = kStallBank;
          wait(cycle_ * static_cast<double>(free_at - t0), abort_);
          if (!aborted_) released(Release::bank, owner, free_at);
        }
      }
      if (blocked && cause >= 0) rec.stall[cause] += static_cast<uint32_t>(now_cycle() - t0);
    }
    if (aborted_) continue;
    const uint64_t start = now_cycle();
    rec.start = start;
    for (int c = kStallTokenFirst; c <= kStallBank; ++c)
      if (c != kStallQueue) counters_.stall[u] += rec.stall[c];
    queue_[u].pop_front();
    unit_popped_[u] = e.index;
    popped_[u].notify(SC_ZERO_TIME);
    for (int p = 0; p < kExec; ++p) {
      if (!(waits & bit(p))) continue;
      const Token t = tokens_[p][u].front();
      tokens_[p][u].pop_front();
      released(Release::token, t.producer, t.cycle);
      last_pop_[p][u] = Token{e.index, start};
      token_out_[p][u].notify(SC_ZERO_TIME);
    }
    bool executed;
    if (u == isa::UNIT_GEMM && use_rtl_) {
      // The RTL array computes the tile in the datapath's banks; its cycles pass here.
      kernel::GemmTile tile;
      executed = datapath_.gemm_tile(e.in, &tile);
      if (executed) {
        try {
          gemm_rtl_cycles_ = rtl_->run(tile, cycle_);
        } catch (const std::exception& x) {
          rtl_error_ = std::string(x.what()) + " at instruction " + std::to_string(e.index);
          stop_run();
          continue;
        }
      }
    } else {
      executed = datapath_.execute(u, e.in);
    }
    if (!executed) {
      end_index_ = e.index;
      end_opcode_ = e.in.opcode();
      stop_run();
      continue;
    }
    ++executed_;
    const uint64_t cycles = duration(u, e.in, start, rec);   // may have streamed over time already
    const uint64_t end = start + cycles;
    for (int i = 0; i < nbanks; ++i) *claimed[i] = Port{end, e.index};
    unit_free_[u] = end;
    unit_last_[u] = e.index;
    uint64_t retire = end;
    if (engines) {
      // Issue the next load a cycle later; this one's tokens leave when it and every earlier load
      // have finished.
      engine_free_[engine] = end;
      engine_last_[engine] = e.index;
      retire = load_retire_ = std::max(end, load_retire_);
      wait_cycles(1);
      rec.end = retire;   // visible to the other units only when every earlier load is done
    } else {
      if (end > now_cycle()) wait_cycles(end - now_cycle());
      rec.end = now_cycle();
    }
    counters_.busy[u] += rec.compute;
    counters_.stall[u] += cycles - rec.compute;   // waiting on DRAM beyond its own work
    rec.stall[kStallDram] = static_cast<uint32_t>(cycles - rec.compute);
    last_cycle_ = std::max(last_cycle_, rec.end);
    for (int c = 0; c < kExec; ++c) {
      if (!(signals & bit(c))) continue;
      tokens_[u][c].push_back(Token{e.index, retire});
      token_in_[u][c].notify(SC_ZERO_TIME);
    }
    if (records_) records_->push_back(rec);
    if ((executed_ & 63) == 0) past_deadline();
    if (progress_ && (executed_ & 4095) == 0) (*progress_)(executed_, insns_->size());
  }
}

namespace {
// Part j of `pieces` of an access: a run of its columns (one row) or of its rows.
isa::DramAccess chunk_of(const isa::DramAccess& a, int64_t j, int64_t pieces) {
  isa::DramAccess c = a;
  const bool by_cols = a.rows == 1;
  const int64_t total = by_cols ? a.cols : a.rows;
  const int64_t lo = total * j / pieces, hi = total * (j + 1) / pieces;
  const int64_t step = by_cols ? a.col_stride : a.row_stride;
  if (hi <= lo) {
    c.rows = 0;   // nothing of this access in this part
    return c;
  }
  if (!by_cols && a.line_rows > 0) {   // rows in lines: the part starts lo rows further into them
    c.row0 = a.row0 + lo;
    c.rows = hi - lo;
    return c;
  }
  const int64_t off = a.window ? lo * a.cols : lo * step;   // halfword units of elements
  c.addr = isa::make_addr(isa::addr_channel(a.addr),
                          static_cast<uint32_t>(isa::addr_offset(a.addr) + off * a.elem_halfwords));
  (by_cols ? c.cols : c.rows) = hi - lo;
  return c;
}
}  // namespace

uint64_t Accelerator::duration(int unit, const isa::Insn& in, uint64_t start, InsnRecord& rec) {
  isa::BankAccess banks[isa::kMaxBankAccesses];
  const int nbanks = isa::bank_accesses(in, banks);
  if (unit == isa::UNIT_GEMM) {
    const uint32_t mt = in[isa::f_GEMM::mt], nt = in[isa::f_GEMM::nt], kt = in[isa::f_GEMM::kt];
    const uint32_t n = in[isa::f_GEMM::n], m = in[isa::f_GEMM::m];
    const bool sparse = in.flag(1);
    rec.compute = arch::gemm_cycles(cfg_.pe, mt, nt, kt, sparse, n, m);
    if (use_rtl_) {   // the array's own count, which should be the formula's
      ++rtl_tally_.instructions;
      rtl_tally_.cycles += gemm_rtl_cycles_;
      rtl_tally_.differ += gemm_rtl_cycles_ != rec.compute;
      rec.compute = gemm_rtl_cycles_;
    }
    rec.macs = arch::gemm_macs(mt, nt, kt, sparse, n, m);
    rec.sparse = sparse;
    counters_.macs += rec.macs;
    // The array streams A once per block of PE columns and B once per block of PE rows; C once.
    const uint64_t col_passes = arch::ceil_div_u64(nt, cfg_.pe.cols), row_passes = arch::ceil_div_u64(mt, cfg_.pe.rows);
    for (int i = 0; i < nbanks; ++i) {
      const auto& a = banks[i];
      const uint64_t reuse = a.write || a.buffer == isa::BUF_C ? 1 : a.buffer == isa::BUF_A ? col_passes : row_passes;
      (a.write ? rec.buffer_written : rec.buffer_read) += static_cast<uint64_t>(a.bytes()) * reuse;
    }
    return rec.compute;
  }
  constexpr uint64_t kBeat = arch::kDdrBusBits / 8;
  uint64_t work = 0, done = start;
  for (int i = 0; i < nbanks; ++i) {
    (banks[i].write ? rec.buffer_written : rec.buffer_read) += banks[i].bytes();
    // The load unit fills a bank fill_beats beats a cycle, however few bytes DRAM moved (a patch).
    const uint64_t fill = kBeat * static_cast<uint64_t>(cfg_.fill_beats);
    if (unit == isa::UNIT_LOAD && banks[i].write)
      work = std::max(work, (static_cast<uint64_t>(banks[i].bytes()) + fill - 1) / fill);
  }
  isa::DramAccess acc[isa::kMaxDramAccesses];
  const int n = isa::dram_accesses(in, acc, cfg_.conv_patch, cfg_.vec_scratch);
  // The units stream one element per cycle per vector lane (II = 1 in the kernel), LOAD and STORE
  // one bus beat.
  const bool mover = unit == isa::UNIT_LOAD || unit == isa::UNIT_STORE;
  int64_t longest = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t per_access = mover ? (acc[i].bytes() + kBeat - 1) / kBeat : static_cast<uint64_t>(acc[i].elements());
    work = std::max(work, per_access);
    longest = std::max(longest, acc[i].elements());
  }
  if (!mover) {
    rec.vector_ops = static_cast<uint64_t>(longest);
    if (in.opcode() == isa::OP_PGEN && in[isa::f_PGEN::m] > 0) work /= in[isa::f_PGEN::m];   // a group a cycle
    work = arch::ceil_div_u64(work, static_cast<uint64_t>(cfg_.vector_lanes));
  }
  rec.compute = std::max<uint64_t>(work, 1);
  auto transfer = [&](uint64_t at, const isa::DramAccess& a) {
    const int ch = static_cast<int>(isa::addr_channel(a.addr));
    if (ch >= arch::kDdrChannels) return;
    DramPort& port = *dram_[ch];
    const uint64_t act0 = port.stats().activates, pre0 = port.stats().precharges;
    done = std::max(done, port.transfer(at, a));
    rec.activates += static_cast<uint32_t>(port.stats().activates - act0);
    rec.precharges += static_cast<uint32_t>(port.stats().precharges - pre0);
    (a.write ? counters_.dram_write_bytes[ch] : counters_.dram_read_bytes[ch]) += a.bytes();
    (a.write ? rec.dram_written[ch] : rec.dram_read[ch]) += a.bytes();
  };
  if (mover || longest <= arch::kVecChunk) {
    for (int i = 0; i < n; ++i) transfer(start, acc[i]);
    return std::max(rec.compute, done - start);
  }
  // The vector, update and pre-generation units stream their operands a chunk (kVecChunk elements of
  // the longest operand) at a time, each chunk's requests issued when the previous chunk is in and
  // its lanes are through, so that the channel serves other units' bursts between the chunks as the
  // AXI interconnect does, instead of reserving the whole stream up front.
  const int64_t pieces = (longest + arch::kVecChunk - 1) / arch::kVecChunk;
  for (int64_t j = 0; j < pieces; ++j) {
    const uint64_t at = now_cycle();
    for (int i = 0; i < n; ++i) transfer(at, chunk_of(acc[i], j, pieces));
    const uint64_t paced = start + rec.compute * static_cast<uint64_t>(j + 1) / static_cast<uint64_t>(pieces);
    const uint64_t next = std::max(done, paced);
    if (next > now_cycle()) wait_cycles(next - now_cycle());
  }
  return std::max(rec.compute, done - start);
}

RunOutcome Accelerator::run(const std::vector<isa::Insn>& insns, HostDeviceMemory& mem, const SimConfig& cfg,
                            std::vector<InsnRecord>* records,
                            const std::function<void(uint64_t, uint64_t)>& progress, bool has_deadline,
                            std::chrono::steady_clock::time_point deadline, bool cold) {
  uint16_t* ddr[arch::kDdrChannels];
  uint64_t halfwords[arch::kDdrChannels];
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    ddr[c] = mem.halfwords(c);
    halfwords[c] = mem.halfword_count(c);
  }
  if (!sc_is_running() && sc_get_status() == SC_ELABORATION) sc_start(SC_ZERO_TIME);
  configure(cfg, cold);
  use_rtl_ = cfg.gemm_core == "rtl" && rtl_;
  rtl_tally_ = RtlGemmTally{};
  rtl_error_.clear();
  datapath_.attach(ddr, halfwords);
  insns_ = &insns;
  records_ = records;
  progress_ = progress ? &progress : nullptr;
  if (records_) {
    records_->clear();
    records_->reserve(insns.size());
  }
  has_deadline_ = has_deadline;
  deadline_ = deadline;
  stopped_ = aborted_ = fetch_done_ = finish_seen_ = false;
  executed_ = fetch_pc_ = finish_index_ = 0;
  end_index_ = 0;
  end_opcode_ = isa::kNoOpcode;
  for (auto& q : queue_) q.clear();
  for (auto& row : tokens_)
    for (auto& q : row) q.clear();
  unit_free_.fill(0);
  unit_last_.fill(-1);
  engine_free_.fill(0);
  engine_last_.fill(-1);
  load_retire_ = 0;
  unit_popped_.fill(-1);
  read_ports_ = {};
  write_ports_ = {};
  counters_ = DeviceCounters{};
  start_time_ = sc_time_stamp();
  last_cycle_ = 0;
  // The channels' time runs on from their origin (open rows stay open from the last run).
  for (auto& d : dram_) d->begin_run(start_time_.value() / cycle_.value() - dram_origin_);
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
        if ((e.in.wait() & bit(p)) && tokens_[p][blocked].empty()) missing |= bit(p);
        if ((e.in.signal() & bit(p)) && tokens_[blocked][p].size() >= static_cast<size_t>(cfg_.token_depth)) full |= bit(p);
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
          if (!tokens_[p][c].empty()) {
            datapath_.fail(isa::STATUS_TOKEN_LEFT, 0, static_cast<uint32_t>(p << 8 | c),
                           static_cast<uint32_t>(tokens_[p][c].size()));
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
  counters_.cycles = last_cycle_;
  // The counter words are this model's own figures, as a board's are its kernel's: the simulated
  // cycles, the GEMM unit's busy cycles (the RTL array's where it runs) and the DRAM traffic of the
  // channel model, which under the default configuration equals the kernel's access count.
  uint64_t rd = 0, wr = 0;
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    rd += counters_.dram_read_bytes[c];
    wr += counters_.dram_write_bytes[c];
  }
  counters_.dram_bytes_read = rd;
  counters_.dram_bytes_written = wr;
  isa::set_status_u64(words, isa::STW_CYCLES_LO, counters_.cycles);
  words[isa::STW_GEMM_CYCLES] = static_cast<uint32_t>(std::min<uint64_t>(counters_.busy[isa::UNIT_GEMM], 0xffffffffu));
  isa::set_status_u64(words, isa::STW_DRAM_READ_LO, rd);
  isa::set_status_u64(words, isa::STW_DRAM_WRITE_LO, wr);
  std::copy(words, words + isa::kStatusWords, out.status.begin());
  out.counters = counters_;
  out.rtl = rtl_tally_;
  out.error = rtl_error_;
  records_ = nullptr;
  progress_ = nullptr;
  return out;
}

}  // namespace sat::sim
