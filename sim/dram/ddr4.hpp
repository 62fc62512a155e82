#pragma once
// A DDR4 channel timing model for the cycle-accurate simulator (sim/): one DDR4-2400 RDIMM behind
// the kernel's 512-bit AXI port, as on the VCU1525. Plain C++20 with no SystemC dependency, so the
// SystemC model calls it from its processes and tests run it alone. The caller speaks kernel clock
// cycles (the simulator's time base, arch::kClockMHz); the DRAM state machine runs in DRAM clock
// cycles (tCK = 0.833 ns) inside. The model is analytic: each 64-byte burst is placed on the DRAM's
// command and data timelines in O(1), and long runs of provably identical row hits are advanced in
// closed form. Parameters, sources and simplifications: docs/sim-dram.md.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sat/arch/config.hpp"

namespace sat::sim {

// DDR4 timing and geometry, in DRAM clock cycles unless named otherwise. Field names follow the
// JEDEC parameter names (JESD79-4), lower-cased. vcu1525() is the default; every value, with its
// source, is in docs/sim-dram.md.
struct Ddr4Timing {
  int dram_mhz = 1200;   // DDR4-2400: 2400 MT/s on a 1200 MHz clock, tCK = 0.833 ns
  int cl = 17;           // READ to first data (VCU1525 controller; the JEDEC 2400R bin is 16)
  int cwl = 12;          // WRITE to first data
  int trcd = 16;         // ACT to READ/WRITE
  int trp = 16;          // PRE to ACT, same bank
  int tras = 39;         // ACT to PRE, same bank
  int trc = 55;          // ACT to ACT, same bank (tRAS + tRP)
  int tbl = 4;           // one BL8 burst on the data bus: 8 beats at double data rate
  int tccd_s = 4;        // column command to column command, different bank group
  int tccd_l = 6;        // same bank group
  int trrd_s = 4;        // ACT to ACT, different bank group
  int trrd_l = 6;        // same bank group
  int tfaw = 16;         // window holding at most four ACTs (x4 device, 512 B page)
  int twr = 18;          // end of write data to PRE (write recovery)
  int trtp = 9;          // READ to PRE
  int twtr_s = 3;        // end of write data to READ, different bank group
  int twtr_l = 9;        // same bank group
  int trfc = 420;        // REF to ACT: tRFC1 = 350 ns for an 8 Gb device
  int trefi = 9360;      // average REF interval: 7.8 us (0 to 85 C)
  int bank_groups = 4;
  int banks_per_group = 4;
  int row_bytes = 8192;  // one rank-row: 16 x4 devices x 512 B page each
  int64_t rows = int64_t{1} << 17;   // per bank (8 Gb x4: A0-A16)

  // DDR4-2400 RDIMM of 8 Gb x4 devices as the VCU1525's memory controller runs it (CL17).
  static Ddr4Timing vcu1525();
  // The JEDEC DDR4-2400R speed bin (16-16-16) with the same device.
  static Ddr4Timing jedec_2400r();

  int banks() const { return bank_groups * banks_per_group; }
  double tck_ns() const { return 1000.0 / dram_mhz; }
  // Throws sat::Error naming the first impossible value.
  void validate() const;
};

// How a byte address inside the channel picks the DRAM's bank group, bank, row and column. The names
// are the Xilinx DDR4 controller's (PG150 MEM_ADDR_ORDER) and so are the bit layouts, with the
// controller's 8-byte app_addr unit turned into bytes. For the default geometry (16 GiB):
//   kRowColumnBank  row[33:17] column[16:10] bank[9:8] group[7:6] byte[5:0]   (the VCU1525 default)
//   kRowBankColumn  row[33:17] group[16:15] bank[14:13] column[12:6] byte[5:0]
//   kBankRowColumn  group[33:32] bank[31:30] row[29:13] column[12:6] byte[5:0]
// `column` counts 64-byte bursts inside the row (the DRAM column address divided by 8).
enum class AddressMapping { kRowColumnBank, kRowBankColumn, kBankRowColumn };

struct DramAddress {
  int bank_group = 0;
  int bank = 0;          // inside the group
  int64_t row = 0;
  int64_t column = 0;    // in bursts
  bool operator==(const DramAddress&) const = default;
};

class AddressMap {
 public:
  AddressMap(AddressMapping order, const Ddr4Timing& timing);

  DramAddress decode(uint64_t byte_address) const;
  uint64_t encode(const DramAddress& a) const;   // the first byte of that burst
  int bank_index(uint64_t byte_address) const;   // bank_group * banks_per_group + bank
  int bank_group(uint64_t byte_address) const;
  int64_t row(uint64_t byte_address) const;
  uint64_t capacity_bytes() const { return capacity_; }
  AddressMapping order() const { return order_; }
  // "row[33:17] column[16:10] bank[9:8] group[7:6] byte[5:0]" for this geometry.
  std::string describe() const;

  // The aligned span inside which the bank (group and bank) is constant, and the one inside which
  // the row is constant; consecutive bank spans inside a row span visit the banks cyclically. The
  // closed-form advance relies on both.
  uint64_t bank_span() const { return uint64_t{1} << bank_shift_; }
  uint64_t row_span() const { return uint64_t{1} << row_shift_; }

 private:
  AddressMapping order_;
  int banks_per_group_;
  int group_shift_, group_bits_, bank_shift_in_, bank_bits_;   // bank_shift_in_: bank inside group
  int col_shift_, col_bits_, row_shift_, row_bits_;
  int bank_shift_;   // lowest bit of the combined group/bank field
  uint64_t capacity_;
};

// The channel and its AXI side.
struct Ddr4ChannelConfig {
  Ddr4Timing timing = Ddr4Timing::vcu1525();
  AddressMapping mapping = AddressMapping::kRowColumnBank;
  int kernel_mhz = arch::kClockMHz;          // the caller's clock
  int port_bytes = arch::kDdrBusBits / 8;    // AXI data width: one beat per kernel cycle
  int queue_depth = 32;     // bursts the controller side holds between the AXI port and the DRAM
  int cdc_stages = 2;       // synchroniser stages of each clock crossing, in the receiving clock
  int ctrl_latency = 0;     // extra controller/PHY pipeline on the request path, DRAM cycles
  int refresh_phase = 0;    // the first REF is due at tREFI - refresh_phase (0 <= phase < tREFI)
  bool bulk_advance = true; // closed-form runs of row hits (same results; false: burst by burst)

  // Throws sat::Error naming the first impossible value (the timing's included).
  void validate() const;
};

struct Ddr4Stats {
  uint64_t transactions = 0;
  uint64_t bytes_read = 0;       // as requested (a partial burst counts its bytes only)
  uint64_t bytes_written = 0;
  uint64_t bursts = 0;           // 64-byte DRAM bursts, read and write
  uint64_t read_bursts = 0;
  uint64_t write_bursts = 0;
  uint64_t row_hits = 0;         // the row was open
  uint64_t row_misses = 0;       // the bank was closed: ACT
  uint64_t row_conflicts = 0;    // another row was open: PRE + ACT
  uint64_t activates = 0;
  uint64_t precharges = 0;       // rows closed, by a conflict or by a refresh
  uint64_t refreshes = 0;
  uint64_t busy_kernel_cycles = 0;   // kernel cycles with at least one transaction in flight
  uint64_t bulk_bursts = 0;      // bursts advanced in closed form (a subset of `bursts`)
};

enum class RowOutcome : uint8_t { kHit, kMiss, kConflict };

// One burst's DRAM commands, in DRAM cycles (-1: not issued). Recorded only while a log is set.
struct Ddr4Command {
  uint64_t byte_address = 0;
  bool write = false;
  RowOutcome outcome = RowOutcome::kHit;
  int64_t precharge = -1;
  int64_t activate = -1;
  int64_t column = 0;     // READ or WRITE
  int64_t data_end = 0;   // the burst's last data on the DRAM bus ends
  int64_t refresh = -1;   // a REF issued just before this burst (the last one, if several)
};

// One DDR4 channel: open-page policy, in-order service. Requests are served in the order of the
// calls; row commands (PRE, ACT) of a queued request may go ahead of earlier requests' column
// commands (the controller's bank machines), column commands and data stay in order.
class Ddr4Channel {
 public:
  explicit Ddr4Channel(const Ddr4ChannelConfig& config = {});

  // One AXI transaction of `bytes` bytes at `byte_address` (channel offset), issued (address
  // handshake) at kernel cycle `kernel_cycle_issue`. Returns the kernel cycle at which it is
  // complete: the clock edge that ends its last data beat through the AXI port (R for a read, W for
  // a write). A write completes when its data has been taken; the DRAM writes it later, in order,
  // before any later request is served. Issue cycles are expected in non-decreasing order (the
  // order of the calls is the order of service either way).
  uint64_t access(uint64_t kernel_cycle_issue, uint64_t byte_address, uint64_t bytes, bool write);

  const Ddr4Stats& stats() const { return stats_; }
  void reset_stats();
  // Bytes moved per busy second, in GB/s (1e9 bytes/s); 0 before any transaction.
  double achieved_gbs() const;
  double port_peak_gbs() const;   // port_bytes per kernel cycle: 12.8 GB/s by default
  double dram_peak_gbs() const;   // 64 bytes per tBL: 19.2 GB/s for DDR4-2400

  const Ddr4ChannelConfig& config() const { return cfg_; }
  const AddressMap& address_map() const { return map_; }
  uint64_t capacity_bytes() const { return map_.capacity_bytes(); }

  // Kernel cycle <-> DRAM cycle: the first edge of the other clock at or after the given edge.
  int64_t to_dram(int64_t kernel_cycle) const;
  int64_t to_kernel(int64_t dram_cycle) const;

  // Appends every later burst's commands to `log` (nullptr: stop). Logging steps burst by burst.
  void set_command_log(std::vector<Ddr4Command>* log) { log_ = log; }

 private:
  static constexpr int64_t kNever = -(int64_t{1} << 50);   // "long ago": any bound from it is met

  struct Bank {
    int64_t row = -1;      // open row, -1: precharged
    int64_t rcd_ok = 0;    // earliest READ/WRITE (ACT + tRCD)
    int64_t pre_ok = 0;    // earliest PRE (tRAS, tRTP, write recovery)
    int64_t act_ok = 0;    // earliest ACT (tRC, tRP, tRFC)
  };

  void step(int64_t issue, int64_t arrive, uint64_t address, int beats, bool full, bool write);
  int64_t try_bulk(int64_t issue, int64_t arrive, uint64_t address, int64_t max_bursts, bool write);
  int64_t refresh_until(int64_t now);

  Ddr4ChannelConfig cfg_;
  Ddr4Timing t_;
  AddressMap map_;
  int64_t num_ = 1, den_ = 1;   // DRAM cycles per kernel cycle = num_ / den_ (reduced)
  int64_t rtw_ = 0;             // READ to WRITE command spacing (bus turnaround)

  std::vector<Bank> banks_;
  std::vector<int64_t> ring_;   // queue slots: when the slot of each of the last Q bursts frees
  size_t ring_pos_ = 0;         // the oldest entry: the slot the next burst waits for
  int64_t e_last_ = 0;          // DRAM cycle the last burst could have its column command
  int64_t r_last_ = 0;          // DRAM cycle the last burst could have its row commands
  int64_t free_last_ = 0;       // slots free in order (the queue is a FIFO)
  int64_t col_last_ = kNever;   // last READ/WRITE command and its bank group
  int col_group_ = -1;
  int64_t rd_last_ = kNever;    // last READ command
  std::vector<int64_t> wr_last_;   // last WRITE command per bank group
  int64_t wr_any_ = kNever;     // the latest of them
  int64_t act_last_ = kNever;   // last ACT and its bank group
  int act_group_ = -1;
  std::array<int64_t, 4> faw_{};   // the last four ACTs, oldest at faw_pos_
  int faw_pos_ = 0;
  int64_t ref_due_ = 0;
  int64_t r_edge_ = 0, w_edge_ = 0;   // kernel cycle ending the last R / W beat

  // Closed-form advance (try_bulk). The pipeline times of the last kHist steps, newest at lag 0,
  // and for each period p the run of steps whose free time moved by the same amount over p steps.
  static constexpr int kMaxPeriod = 8;
  static constexpr int kHist = 16;
  struct Times {
    int64_t e, r, c, free, edge;
  };
  std::array<Times, kHist> hist_{};
  int hist_pos_ = 0;     // where the next step goes
  int hist_valid_ = 0;   // lags 0 .. hist_valid_ - 1 hold real steps
  std::array<int64_t, kMaxPeriod + 1> lag_diff_{};
  std::array<int64_t, kMaxPeriod + 1> lag_run_{};
  int64_t plain_run_ = 0;   // consecutive plain steps (see step)
  int64_t type_run_ = 0;    // consecutive steps of the last step's direction
  int64_t rel_run_ = 0;     // consecutive steps with the last step's tCCD case
  bool last_write_ = false;
  bool last_same_group_ = false;
  const Times& lag(int l) const { return hist_[static_cast<size_t>((hist_pos_ - 1 - l) & (kHist - 1))]; }
  void record(bool plain, bool write, bool same_group, int64_t edge);

  Ddr4Stats stats_;
  int64_t busy_until_ = 0;
  std::vector<Ddr4Command>* log_ = nullptr;
};

}  // namespace sat::sim
