// The DDR4 channel timing model (ddr4.hpp). Every burst is placed analytically: its row commands at
// the earliest cycle that all bank, bank-group and four-activate constraints allow, its column
// command after the previous one (in order) and after its row is open, its data through the clock
// crossing and the AXI port. Nothing loops over cycles. Derivations: docs/sim-dram.md.
#include "ddr4.hpp"

#include <algorithm>
#include <bit>
#include <numeric>

#include "sat/error.hpp"

namespace sat::sim {

namespace {

// A queue slot that has always been free. Small enough in magnitude to cross clock domains (the
// conversion multiplies by the clock ratio) without overflow, still far before any real cycle.
constexpr int64_t kFreeSince = -(int64_t{1} << 30);
constexpr uint64_t kBurstBytes = 64;              // BL8 on a 64-bit bus
constexpr int kBurstShift = 6;
constexpr int64_t kMaxIssue = int64_t{1} << 44;   // keeps every DRAM-cycle product inside int64

// ceil(a / b) for b > 0 and any sign of a.
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

void need(bool ok, const std::string& what) {
  if (!ok) throw Error("ddr4: " + what);
}

std::string num(int64_t v) { return std::to_string(v); }

bool pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

int log2i(int64_t v) { return std::countr_zero(static_cast<uint64_t>(v)); }

}  // namespace

// ---- Timing ----------------------------------------------------------------------------------------

Ddr4Timing Ddr4Timing::vcu1525() { return Ddr4Timing{}; }

Ddr4Timing Ddr4Timing::jedec_2400r() {
  Ddr4Timing t;
  t.cl = 16;
  return t;
}

void Ddr4Timing::validate() const {
  constexpr int kMax = 1 << 20;   // far above any DDR4 value, low enough that sums cannot overflow
  auto range = [&](const char* name, int64_t v, int64_t lo, int64_t hi) {
    need(v >= lo && v <= hi, std::string(name) + " = " + num(v) + " is outside [" + num(lo) + ", " + num(hi) + "]");
  };
  range("dram_mhz", dram_mhz, 1, 100000);
  range("CL", cl, 1, kMax);
  range("CWL", cwl, 1, kMax);
  range("tRCD", trcd, 1, kMax);
  range("tRP", trp, 1, kMax);
  range("tRAS", tras, 1, kMax);
  range("tRC", trc, 1, kMax);
  range("tBL", tbl, 1, kMax);
  range("tCCD_S", tccd_s, 1, kMax);
  range("tCCD_L", tccd_l, 1, kMax);
  range("tRRD_S", trrd_s, 1, kMax);
  range("tRRD_L", trrd_l, 1, kMax);
  range("tFAW", tfaw, 1, kMax);
  range("tWR", twr, 1, kMax);
  range("tRTP", trtp, 1, kMax);
  range("tWTR_S", twtr_s, 1, kMax);
  range("tWTR_L", twtr_l, 1, kMax);
  range("tRFC", trfc, 1, kMax);
  range("tREFI", trefi, 1, kMax);
  // Relations that JESD79-4 defines or that a working device cannot violate.
  need(cwl <= cl, "CWL (" + num(cwl) + ") > CL (" + num(cl) + "): DDR4 write latency never exceeds read latency");
  need(tras >= trcd, "tRAS (" + num(tras) + ") < tRCD (" + num(trcd) + "): a row must stay open until it can be read");
  need(trc >= tras + trp, "tRC (" + num(trc) + ") < tRAS + tRP (" + num(tras + trp) + ")");
  need(tccd_s >= tbl, "tCCD_S (" + num(tccd_s) + ") < tBL (" + num(tbl) + "): bursts would overlap on the data bus");
  need(tccd_l >= tccd_s, "tCCD_L (" + num(tccd_l) + ") < tCCD_S (" + num(tccd_s) + ")");
  need(trrd_l >= trrd_s, "tRRD_L (" + num(trrd_l) + ") < tRRD_S (" + num(trrd_s) + ")");
  need(twtr_l >= twtr_s, "tWTR_L (" + num(twtr_l) + ") < tWTR_S (" + num(twtr_s) + ")");
  need(trefi > trfc + trp,
       "tREFI (" + num(trefi) + ") <= tRFC + tRP (" + num(trfc + trp) + "): refresh would never end");
  need(pow2(bank_groups) && bank_groups <= 8, "bank_groups = " + num(bank_groups) + " is not a power of two <= 8");
  need(pow2(banks_per_group) && banks_per_group <= 8,
       "banks_per_group = " + num(banks_per_group) + " is not a power of two <= 8");
  need(pow2(row_bytes) && row_bytes >= static_cast<int>(kBurstBytes) && row_bytes <= (1 << 20),
       "row_bytes = " + num(row_bytes) + " is not a power of two in [64, 1 MiB]");
  need(pow2(rows) && rows <= (int64_t{1} << 24), "rows = " + num(rows) + " is not a power of two <= 2^24");
}

// ---- Address mapping -------------------------------------------------------------------------------

AddressMap::AddressMap(AddressMapping order, const Ddr4Timing& t) : order_(order) {
  t.validate();
  banks_per_group_ = t.banks_per_group;
  group_bits_ = log2i(t.bank_groups);
  bank_bits_ = log2i(t.banks_per_group);
  col_bits_ = log2i(t.row_bytes) - kBurstShift;
  row_bits_ = log2i(t.rows);
  switch (order) {
    case AddressMapping::kRowColumnBank:   // the group toggles on every burst: tCCD_S streams
      group_shift_ = kBurstShift;
      bank_shift_in_ = group_shift_ + group_bits_;
      col_shift_ = bank_shift_in_ + bank_bits_;
      row_shift_ = col_shift_ + col_bits_;
      bank_shift_ = group_shift_;
      break;
    case AddressMapping::kRowBankColumn:   // a whole row of one bank, then the next bank
      col_shift_ = kBurstShift;
      bank_shift_in_ = col_shift_ + col_bits_;
      group_shift_ = bank_shift_in_ + bank_bits_;
      row_shift_ = group_shift_ + group_bits_;
      bank_shift_ = bank_shift_in_;
      break;
    case AddressMapping::kBankRowColumn:   // every row of one bank, then the next bank
      col_shift_ = kBurstShift;
      row_shift_ = col_shift_ + col_bits_;
      bank_shift_in_ = row_shift_ + row_bits_;
      group_shift_ = bank_shift_in_ + bank_bits_;
      bank_shift_ = bank_shift_in_;
      break;
    default:
      throw Error("ddr4: unknown address mapping " + num(static_cast<int>(order)));
  }
  capacity_ = uint64_t{1} << (kBurstShift + col_bits_ + bank_bits_ + group_bits_ + row_bits_);
}

DramAddress AddressMap::decode(uint64_t a) const {
  auto field = [a](int shift, int bits) { return static_cast<int64_t>((a >> shift) & ((uint64_t{1} << bits) - 1)); };
  DramAddress d;
  d.bank_group = static_cast<int>(field(group_shift_, group_bits_));
  d.bank = static_cast<int>(field(bank_shift_in_, bank_bits_));
  d.row = field(row_shift_, row_bits_);
  d.column = field(col_shift_, col_bits_);
  return d;
}

uint64_t AddressMap::encode(const DramAddress& d) const {
  auto put = [](int64_t v, int shift, int bits) {
    return (static_cast<uint64_t>(v) & ((uint64_t{1} << bits) - 1)) << shift;
  };
  return put(d.bank_group, group_shift_, group_bits_) | put(d.bank, bank_shift_in_, bank_bits_) |
         put(d.row, row_shift_, row_bits_) | put(d.column, col_shift_, col_bits_);
}

int AddressMap::bank_group(uint64_t a) const {
  return static_cast<int>((a >> group_shift_) & ((uint64_t{1} << group_bits_) - 1));
}

int AddressMap::bank_index(uint64_t a) const {
  const int bank = static_cast<int>((a >> bank_shift_in_) & ((uint64_t{1} << bank_bits_) - 1));
  return bank_group(a) * banks_per_group_ + bank;
}

int64_t AddressMap::row(uint64_t a) const {
  return static_cast<int64_t>((a >> row_shift_) & ((uint64_t{1} << row_bits_) - 1));
}

std::string AddressMap::describe() const {
  struct F {
    const char* name;
    int shift, bits;
  };
  std::vector<F> f = {{"row", row_shift_, row_bits_},   {"column", col_shift_, col_bits_},
                      {"bank", bank_shift_in_, bank_bits_}, {"group", group_shift_, group_bits_},
                      {"byte", 0, kBurstShift}};
  std::sort(f.begin(), f.end(), [](const F& x, const F& y) { return x.shift > y.shift; });
  std::string s;
  for (const F& x : f) {
    if (x.bits == 0) continue;
    if (!s.empty()) s += ' ';
    s += std::string(x.name) + "[" + num(x.shift + x.bits - 1) + ":" + num(x.shift) + "]";
  }
  return s;
}

// ---- Channel ---------------------------------------------------------------------------------------

void Ddr4ChannelConfig::validate() const {
  timing.validate();
  need(kernel_mhz >= 1 && kernel_mhz <= 100000, "kernel_mhz = " + num(kernel_mhz) + " is outside [1, 100000]");
  need(pow2(port_bytes) && port_bytes <= static_cast<int>(kBurstBytes),
       "port_bytes = " + num(port_bytes) + " is not a power of two <= 64 (one burst)");
  need(queue_depth >= 1 && queue_depth <= 4096, "queue_depth = " + num(queue_depth) + " is outside [1, 4096]");
  need(cdc_stages >= 0 && cdc_stages <= 64, "cdc_stages = " + num(cdc_stages) + " is outside [0, 64]");
  need(ctrl_latency >= 0 && ctrl_latency <= (1 << 20),
       "ctrl_latency = " + num(ctrl_latency) + " is outside [0, 2^20]");
  need(refresh_phase >= 0 && refresh_phase < timing.trefi,
       "refresh_phase = " + num(refresh_phase) + " is outside [0, tREFI)");
}

namespace {
const Ddr4ChannelConfig& checked(const Ddr4ChannelConfig& c) {
  c.validate();
  return c;
}
}  // namespace

Ddr4Channel::Ddr4Channel(const Ddr4ChannelConfig& config)
    : cfg_(checked(config)), t_(config.timing), map_(config.mapping, config.timing) {
  const int64_t g = std::gcd(t_.dram_mhz, cfg_.kernel_mhz);
  num_ = t_.dram_mhz / g;
  den_ = cfg_.kernel_mhz / g;
  // READ to WRITE: the read's data (CL + tBL) must leave the bus, two clocks of turnaround, then
  // the write's data starts CWL after its command (JESD79-4: RL + BL/2 - WL + 2 tCK).
  rtw_ = t_.cl + t_.tbl + 2 - t_.cwl;
  banks_.assign(static_cast<size_t>(t_.banks()), Bank{});
  ring_.assign(static_cast<size_t>(cfg_.queue_depth), kFreeSince);
  free_last_ = kFreeSince;
  wr_last_.assign(static_cast<size_t>(t_.bank_groups), kNever);
  faw_.fill(kNever);
  ref_due_ = t_.trefi - cfg_.refresh_phase;
}

int64_t Ddr4Channel::to_dram(int64_t k) const { return ceil_div(k * num_, den_); }
int64_t Ddr4Channel::to_kernel(int64_t d) const { return ceil_div(d * den_, num_); }

double Ddr4Channel::port_peak_gbs() const { return cfg_.port_bytes * static_cast<double>(cfg_.kernel_mhz) / 1000.0; }
double Ddr4Channel::dram_peak_gbs() const {
  return static_cast<double>(kBurstBytes) * t_.dram_mhz / t_.tbl / 1000.0;
}

void Ddr4Channel::reset_stats() { stats_ = Ddr4Stats{}; }

double Ddr4Channel::achieved_gbs() const {
  if (stats_.busy_kernel_cycles == 0) return 0.0;
  const double bytes = static_cast<double>(stats_.bytes_read + stats_.bytes_written);
  return bytes * cfg_.kernel_mhz / static_cast<double>(stats_.busy_kernel_cycles) / 1000.0;
}

uint64_t Ddr4Channel::access(uint64_t issue_u, uint64_t address, uint64_t bytes, bool write) {
  // Checked before any message is built: this is the hot path.
  if (bytes == 0) throw Error("ddr4: a transaction of 0 bytes");
  if (address >= capacity_bytes() || bytes > capacity_bytes() - address)
    throw Error("ddr4: transaction [" + std::to_string(address) + ", +" + std::to_string(bytes) +
                ") leaves the channel's " + std::to_string(capacity_bytes()) + " bytes");
  if (issue_u > static_cast<uint64_t>(kMaxIssue))
    throw Error("ddr4: issue cycle " + std::to_string(issue_u) + " is too large");
  const int64_t issue = static_cast<int64_t>(issue_u);
  // The request reaches the controller's clock domain after the synchroniser and the controller's
  // own pipeline.
  const int64_t arrive = to_dram(issue) + cfg_.cdc_stages + cfg_.ctrl_latency;
  const uint64_t first = address >> kBurstShift;
  const uint64_t end = address + bytes;
  const int64_t n = static_cast<int64_t>(((end - 1) >> kBurstShift) - first + 1);
  const uint64_t pb = static_cast<uint64_t>(cfg_.port_bytes);
  for (int64_t j = 0; j < n;) {
    const uint64_t a = (first + static_cast<uint64_t>(j)) << kBurstShift;
    const uint64_t lo = std::max(address, a), hi = std::min(end, a + kBurstBytes);
    const bool full = lo == a && hi == a + kBurstBytes;
    if (full && cfg_.bulk_advance && log_ == nullptr) {
      // Whole bursts from here on: the last one may be partial.
      const int64_t full_left = n - j - ((end & (kBurstBytes - 1)) != 0 ? 1 : 0);
      const int64_t m = try_bulk(issue, arrive, a, full_left, write);
      if (m > 0) {
        j += m;
        continue;
      }
    }
    const int beats = static_cast<int>((hi - 1) / pb - lo / pb + 1);
    step(issue, arrive, a, beats, full, write);
    ++j;
  }
  const int64_t done = write ? w_edge_ : r_edge_;
  ++stats_.transactions;
  (write ? stats_.bytes_written : stats_.bytes_read) += bytes;
  const int64_t from = std::max(issue, busy_until_);
  if (done > from) stats_.busy_kernel_cycles += static_cast<uint64_t>(done - from);
  busy_until_ = std::max(busy_until_, done);
  return static_cast<uint64_t>(done);
}

// Performs every refresh due at or before `now` (the controller's notion of the present when it
// takes the next request): all banks are precharged (each after its own tRAS/tRTP/tWR), REF follows
// tRP later, and no bank may activate until tRFC after REF. Refreshes that fall into idle time land
// exactly on their due cycles, so a long idle gap is skipped in closed form. Returns the last REF.
int64_t Ddr4Channel::refresh_until(int64_t now) {
  int64_t last = -1;
  while (now >= ref_due_) {
    int64_t pre_all = ref_due_, ref = ref_due_;
    int open = 0;
    for (const Bank& b : banks_) {
      if (b.row >= 0) {
        pre_all = std::max(pre_all, b.pre_ok);
        ++open;
      }
      ref = std::max(ref, b.act_ok);   // tRP after an earlier PRE, tRC after an ACT, tRFC after a REF
    }
    if (open > 0) ref = std::max(ref, pre_all + t_.trp);
    const int64_t ref_end = ref + t_.trfc;
    for (Bank& b : banks_) {
      b.row = -1;
      b.act_ok = ref_end;
    }
    stats_.precharges += static_cast<uint64_t>(open);
    ++stats_.refreshes;
    last = ref;
    ref_due_ += t_.trefi;
    if (now >= ref_due_ && ref_end <= ref_due_) {
      // Every further refresh up to `now` finds the banks closed and idle: it issues on its due
      // cycle (tRFC < tREFI), and only the last one still binds the next ACT.
      const int64_t more = (now - ref_due_) / t_.trefi + 1;
      last = ref_due_ + (more - 1) * t_.trefi;
      for (Bank& b : banks_) b.act_ok = last + t_.trfc;
      stats_.refreshes += static_cast<uint64_t>(more);
      ref_due_ += more * t_.trefi;
    }
  }
  return last;
}

// One burst, burst by burst. `arrive` is the transaction's arrival in the DRAM clock domain.
void Ddr4Channel::step(int64_t issue, int64_t arrive, uint64_t a, int beats, bool full, bool write) {
  const Ddr4Timing& t = t_;
  const int g = map_.bank_group(a);
  Bank& bank = banks_[static_cast<size_t>(map_.bank_index(a))];
  const int64_t row = map_.row(a);
  const int64_t slot = ring_[ring_pos_];   // the queue slot of the burst Q places earlier frees
  const int64_t e_old = e_last_;

  // "Plain" steps are row hits whose every time is the shift-invariant pipeline map of the previous
  // state (see try_bulk); anything else (arrival, issue, tRCD or turnaround binding, a refresh, a
  // partial burst) marks the step as not plain.
  bool plain = full && arrive <= e_old;
  // Row commands may go once the request holds a slot; the FIFO keeps requests in order.
  const int64_t r = std::max({arrive, slot, e_old});
  int64_t e = r;   // column command: a read needs the request only
  if (write) {
    // The kernel sees the slot free after a crossing and then sends the burst's beats; the data
    // reaches the controller after the crossing back (the write needs its data before WRITE).
    const int64_t slot_k = to_kernel(slot) + cfg_.cdc_stages;
    plain = plain && issue <= std::max(w_edge_, slot_k);
    w_edge_ = std::max({w_edge_, issue, slot_k}) + beats;
    e = std::max(r, to_dram(w_edge_) + cfg_.cdc_stages + cfg_.ctrl_latency);
  }
  e_last_ = e;
  r_last_ = r;

  // Refresh first if one is due by the time the controller turns to this request.
  const int64_t ref = refresh_until(std::max(r, col_last_));
  if (ref >= 0) plain = false;

  RowOutcome outcome = RowOutcome::kHit;
  int64_t pre = -1, act = -1;
  if (bank.row != row) {
    plain = false;
    if (bank.row >= 0) {
      outcome = RowOutcome::kConflict;
      pre = std::max(r, bank.pre_ok);
      bank.act_ok = std::max(bank.act_ok, pre + t.trp);
      ++stats_.precharges;
      ++stats_.row_conflicts;
    } else {
      outcome = RowOutcome::kMiss;
      ++stats_.row_misses;
    }
    // ACTs issue in request order, so the previous ACT and the fourth previous bound this one.
    act = std::max({r, bank.act_ok, act_last_ + (g == act_group_ ? t.trrd_l : t.trrd_s), faw_[faw_pos_] + t.tfaw});
    faw_[faw_pos_] = act;
    faw_pos_ = (faw_pos_ + 1) & 3;
    act_last_ = act;
    act_group_ = g;
    bank.row = row;
    bank.rcd_ok = act + t.trcd;
    bank.pre_ok = act + t.tras;
    bank.act_ok = act + t.trc;
    ++stats_.activates;
  } else {
    ++stats_.row_hits;
  }

  // Column commands issue in request order.
  const bool same_group = g == col_group_;
  const int64_t c_plain = std::max(e, col_last_ + (same_group ? t.tccd_l : t.tccd_s));
  int64_t c = std::max(c_plain, bank.rcd_ok);
  if (write) {
    c = std::max(c, rd_last_ + rtw_);
  } else {
    // Write to read: tWTR from the end of the write data, the long value inside the bank group.
    // tWTR_L >= tWTR_S, so the latest write of any group with the short value covers the rest.
    const int64_t wr_end = t.cwl + t.tbl;
    c = std::max({c, wr_any_ + wr_end + t.twtr_s, wr_last_[static_cast<size_t>(g)] + wr_end + t.twtr_l});
  }
  plain = plain && c == c_plain;
  col_last_ = c;
  col_group_ = g;
  int64_t data_end, release;
  if (write) {
    wr_last_[static_cast<size_t>(g)] = c;
    wr_any_ = std::max(wr_any_, c);
    data_end = c + t.cwl + t.tbl;
    bank.pre_ok = std::max(bank.pre_ok, data_end + t.twr);
    release = data_end;   // the slot holds the data until it is on the DRAM bus
    ++stats_.write_bursts;
  } else {
    rd_last_ = c;
    data_end = c + t.cl + t.tbl;
    bank.pre_ok = std::max(bank.pre_ok, c + t.trtp);
    // The burst crosses into the kernel clock and leaves through the port, one beat per cycle, after
    // the previous burst's beats; its slot frees once the controller sees it gone.
    r_edge_ = std::max(to_kernel(data_end) + cfg_.cdc_stages + beats - 1, r_edge_ + beats);
    release = to_dram(r_edge_) + cfg_.cdc_stages;
    ++stats_.read_bursts;
  }
  ++stats_.bursts;
  free_last_ = std::max(free_last_, release);
  ring_[ring_pos_] = free_last_;
  if (++ring_pos_ == ring_.size()) ring_pos_ = 0;

  record(plain, write, same_group, write ? w_edge_ : r_edge_);
  if (log_ != nullptr) log_->push_back(Ddr4Command{a, write, outcome, pre, act, c, data_end, ref});
}

// What the closed-form advance needs to know about the step just taken.
void Ddr4Channel::record(bool plain, bool write, bool same_group, int64_t edge) {
  hist_[static_cast<size_t>(hist_pos_)] = Times{e_last_, r_last_, col_last_, free_last_, edge};
  hist_pos_ = (hist_pos_ + 1) & (kHist - 1);
  hist_valid_ = std::min(hist_valid_ + 1, kHist);
  for (int p = 1; p <= kMaxPeriod; ++p) {
    if (hist_valid_ <= p) {
      lag_run_[static_cast<size_t>(p)] = 0;
      continue;
    }
    const int64_t d = free_last_ - lag(p).free;
    auto& run = lag_run_[static_cast<size_t>(p)];
    auto& diff = lag_diff_[static_cast<size_t>(p)];
    run = (run > 0 && d == diff) ? run + 1 : 1;
    diff = d;
  }
  plain_run_ = plain ? plain_run_ + 1 : 0;
  type_run_ = (type_run_ > 0 && write == last_write_) ? type_run_ + 1 : 1;
  rel_run_ = (rel_run_ > 0 && same_group == last_same_group_) ? rel_run_ + 1 : 1;
  last_write_ = write;
  last_same_group_ = same_group;
}

// The closed-form advance of a run of row hits. Let S be the pipeline state that the plain map P
// (a full-burst row hit whose arrival, issue, tRCD, turnaround and refresh terms do not bind)
// reads and writes: the last entry, row and column times, the queue ring and the last port edge.
// P is built from max and + only, so P(S + D) = P(S) + D for any D that is a whole number of both
// clocks. If the last p steps were P (same direction, same tCCD case) and S_i = S_{i-p} + D (the
// ring included: its last Q entries each moved by D over p steps), then
//   S_{i+1} = P(S_i) = P(S_{i-p} + D) = P(S_{i-p}) + D = S_{i-p+1} + D,
// and by induction every later burst repeats the one p earlier, D later, for as long as each is
// again P. That holds while the bursts stay in rows already open (one row span; one bank span when
// a bank holds consecutive bursts, so that the tCCD case stays the same), while the terms outside
// S stay below the times (they do not move, the times only grow) and while no refresh falls due.
// p > 1 covers clock ratios where one burst is not a whole number of kernel cycles (at 400 MHz
// three 4-cycle bursts make 4 kernel cycles). The state that P only writes (the banks' precharge
// bounds, the last READ/WRITE) is set to what the last burst to each bank would have set.
// Returns the bursts advanced, a multiple of p (0: none, step instead).
int64_t Ddr4Channel::try_bulk(int64_t issue, int64_t arrive, uint64_t a, int64_t max_bursts, bool write) {
  if (plain_run_ == 0 || last_write_ != write) return 0;
  if (arrive > e_last_ || (write && issue > w_edge_)) return 0;
  const uint64_t row_span = map_.row_span(), bank_span = map_.bank_span();
  int64_t m_max = std::min<int64_t>(max_bursts, static_cast<int64_t>((row_span - (a & (row_span - 1))) >> kBurstShift));
  bool same_group;   // each burst of the run against its predecessor
  if (bank_span > kBurstBytes) {
    m_max = std::min<int64_t>(m_max, static_cast<int64_t>((bank_span - (a & (bank_span - 1))) >> kBurstShift));
    same_group = true;
  } else {
    same_group = t_.bank_groups == 1;   // the group is the low part of the bank field: it toggles
  }
  if (same_group != last_same_group_ || (map_.bank_group(a) == col_group_) != same_group) return 0;

  const auto q_depth = static_cast<int64_t>(ring_.size());
  int p = 0;
  int64_t big_d = 0;
  for (int k = 1; k <= kMaxPeriod && k <= m_max; ++k) {
    const auto kk = static_cast<size_t>(k);
    if (lag_run_[kk] < q_depth || plain_run_ < k || type_run_ < k || rel_run_ < k) continue;
    const int64_t d = lag_diff_[kk];
    const Times &now = lag(0), &then = lag(k);
    if (d > 0 && now.e - then.e == d && now.r - then.r == d && now.c - then.c == d &&
        (now.edge - then.edge) * num_ == d * den_) {
      p = k;
      big_d = d;
      break;
    }
  }
  if (p == 0) return 0;
  // Burst j of the run (from 1) takes its row time after r_i and follows a column command at or
  // after c_{i-1}; both grow by D every p bursts. The last of q periods must still see no REF due.
  int64_t q = m_max / p;
  q = std::min(q, (ref_due_ - 1 - r_last_) / big_d);
  q = std::min(q, (ref_due_ - 1 - lag(1).c) / big_d);
  if (q < 1) return 0;
  const int64_t m = q * p;
  if (write ? rd_last_ + rtw_ > col_last_ : wr_any_ + t_.cwl + t_.tbl + t_.twtr_l > col_last_) return 0;

  // The banks of the run and the last burst to each: walk the bank spans back from the end (the
  // spans inside a row span visit the banks cyclically, so at most banks() of them matter).
  const int64_t row = map_.row(a);
  const uint64_t hi = a + (static_cast<uint64_t>(m) << kBurstShift);
  std::array<uint64_t, 64> last_of{};
  std::array<int, 64> which{};
  uint64_t seen = 0;
  int found = 0;
  const int nbanks = t_.banks();
  for (uint64_t x = hi - kBurstBytes;;) {
    const int b = map_.bank_index(x);
    if (((seen >> b) & 1) == 0) {
      const Bank& bk = banks_[static_cast<size_t>(b)];
      if (bk.row != row || bk.rcd_ok > col_last_) return 0;
      seen |= uint64_t{1} << b;
      which[static_cast<size_t>(found)] = b;
      last_of[static_cast<size_t>(found)] = x;
      if (++found == nbanks) break;
    }
    const uint64_t span_start = x & ~(bank_span - 1);
    if (span_start <= a) break;
    x = span_start - kBurstBytes;
  }

  // Burst t of the run (from 1) repeats burst t - p(floor((t-1)/p) + 1) of the last period.
  auto column_of = [&](int64_t t) {
    const int64_t periods = (t - 1) / p, s = (t - 1) % p + 1;
    return lag(static_cast<int>(p - s)).c + (periods + 1) * big_d;
  };
  for (int i = 0; i < found; ++i) {
    const uint64_t x = last_of[static_cast<size_t>(i)];
    const int64_t cb = column_of(static_cast<int64_t>((x - a) >> kBurstShift) + 1);
    Bank& bk = banks_[static_cast<size_t>(which[static_cast<size_t>(i)])];
    if (write) {
      bk.pre_ok = std::max(bk.pre_ok, cb + t_.cwl + t_.tbl + t_.twr);
      int64_t& w = wr_last_[static_cast<size_t>(map_.bank_group(x))];
      w = std::max(w, cb);
      wr_any_ = std::max(wr_any_, cb);
    } else {
      bk.pre_ok = std::max(bk.pre_ok, cb + t_.trtp);
    }
  }
  const int64_t shift = q * big_d, shift_k = q * (big_d * den_ / num_);
  if (!write) rd_last_ = col_last_ + shift;
  e_last_ += shift;
  r_last_ += shift;
  col_last_ += shift;
  free_last_ += shift;
  for (int64_t& v : ring_) v += shift;   // every entry moved by D per period
  (write ? w_edge_ : r_edge_) += shift_k;
  col_group_ = map_.bank_group(hi - kBurstBytes);

  // The history as stepping would have left it: lags below p are the last period moved by q
  // periods, lag p is the last burst of the period before. Older lags are unknown: dropped.
  std::array<Times, kMaxPeriod + 1> h{};
  for (int l = 0; l < p; ++l) {
    h[static_cast<size_t>(l)] = lag(l);
    Times& x = h[static_cast<size_t>(l)];
    x.e += shift, x.r += shift, x.c += shift, x.free += shift, x.edge += shift_k;
  }
  h[static_cast<size_t>(p)] = h[0];
  {
    Times& x = h[static_cast<size_t>(p)];
    x.e -= big_d, x.r -= big_d, x.c -= big_d, x.free -= big_d, x.edge -= shift_k / q;
  }
  for (int l = p; l >= 0; --l) {
    hist_[static_cast<size_t>(hist_pos_)] = h[static_cast<size_t>(l)];
    hist_pos_ = (hist_pos_ + 1) & (kHist - 1);
  }
  hist_valid_ = p + 1;
  for (int k = 1; k <= kMaxPeriod; ++k)
    if (k != p) lag_run_[static_cast<size_t>(k)] = 0;
  lag_run_[static_cast<size_t>(p)] += m;
  plain_run_ += m;
  type_run_ += m;
  rel_run_ += m;

  stats_.bursts += static_cast<uint64_t>(m);
  (write ? stats_.write_bursts : stats_.read_bursts) += static_cast<uint64_t>(m);
  stats_.row_hits += static_cast<uint64_t>(m);
  stats_.bulk_bursts += static_cast<uint64_t>(m);
  return m;
}

}  // namespace sat::sim
