// The DDR4 channel model (sim/dram/ddr4.hpp) against timings worked out by hand from the JEDEC
// parameters (docs/sim-dram.md), the bandwidth bounds of the AXI port and the DIMM, and the
// closed-form advance against burst-by-burst stepping.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "ddr4.hpp"
#include "sat/error.hpp"

using namespace sat::sim;

namespace {

// One kernel cycle = one DRAM cycle and no synchroniser stages: returned cycles are DRAM cycles,
// so the JEDEC sums show up unchanged.
Ddr4ChannelConfig exact() {
  Ddr4ChannelConfig c;
  c.kernel_mhz = c.timing.dram_mhz;
  c.cdc_stages = 0;
  return c;
}

uint64_t at(const Ddr4Channel& ch, int group, int bank, int64_t row, int64_t column = 0) {
  return ch.address_map().encode(DramAddress{group, bank, row, column});
}

}  // namespace

// ---- Single bursts -----------------------------------------------------------------------------------

TEST(Ddr4, ReadToClosedBankTakesRcdPlusClPlusBurst) {
  Ddr4Channel ch(exact());
  std::vector<Ddr4Command> log;
  ch.set_command_log(&log);
  // ACT at 0, READ at tRCD = 16, data on the bus from 16 + CL = 33 to 33 + tBL = 37.
  EXPECT_EQ(ch.access(0, 0, 64, false), 16u + 17u + 4u);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].outcome, RowOutcome::kMiss);
  EXPECT_EQ(log[0].activate, 0);
  EXPECT_EQ(log[0].column, 16);
  EXPECT_EQ(log[0].data_end, 37);
  EXPECT_EQ(ch.stats().row_misses, 1u);
  EXPECT_EQ(ch.stats().activates, 1u);
}

TEST(Ddr4, ReadToClosedBankThroughTheClockCrossing) {
  Ddr4Channel ch;   // the VCU1525 default: 200 MHz kernel, 6 DRAM cycles per kernel cycle
  // Issued at kernel cycle 0 = DRAM cycle 0; two synchroniser stages: the controller has it at
  // DRAM 2. ACT 2, READ 18, data ends 18 + 17 + 4 = 39; the next kernel edge is ceil(39 / 6) = 7,
  // two stages back: the beat passes at kernel cycle 9 (45 ns).
  EXPECT_EQ(ch.access(0, 0, 64, false), 9u);
  // Row open: issued at 100 = DRAM 600, at the controller 602, READ 602, data ends 623,
  // ceil(623 / 6) = 104, + 2 = 106.
  EXPECT_EQ(ch.access(100, 0, 64, false), 106u);
}

TEST(Ddr4, ReadToOpenRowTakesClPlusBurst) {
  Ddr4Channel ch(exact());
  ch.access(0, 0, 64, false);   // opens row 0 of bank 0 (READ at 16)
  // READ at 100 (tCCD and tRCD long met), data ends 100 + 17 + 4.
  EXPECT_EQ(ch.access(100, 0, 64, false), 100u + 17u + 4u);
  EXPECT_EQ(ch.stats().row_hits, 1u);
  EXPECT_EQ(ch.stats().activates, 1u);
}

TEST(Ddr4, RowConflictTakesRpPlusRcdPlusClPlusBurst) {
  Ddr4Channel ch(exact());
  ch.access(0, 0, 64, false);   // ACT 0, READ 16: PRE allowed from max(0 + tRAS, 16 + tRTP) = 39
  // PRE at 200, ACT at 216, READ at 232, data ends 253: 53 = tRP + tRCD + CL + tBL.
  EXPECT_EQ(ch.access(200, at(ch, 0, 0, 1), 64, false), 200u + 16u + 16u + 17u + 4u);
  // Right away instead: PRE waits for tRAS (39), ACT for tRC after the first ACT (55 = 39 + tRP),
  // READ at 71, data ends 92.
  Ddr4Channel ch2(exact());
  std::vector<Ddr4Command> log;
  ch2.set_command_log(&log);
  ch2.access(0, 0, 64, false);
  EXPECT_EQ(ch2.access(0, at(ch2, 0, 0, 1), 64, false), 92u);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].outcome, RowOutcome::kConflict);
  EXPECT_EQ(log[1].precharge, 39);
  EXPECT_EQ(log[1].activate, 55);
  EXPECT_EQ(ch2.stats().row_conflicts, 1u);
  EXPECT_EQ(ch2.stats().precharges, 1u);
}

TEST(Ddr4, WriteCompletesWhenItsBeatsAreTaken) {
  // One beat per kernel cycle, the first in the issue cycle: 64 B at 1, 4 KiB (64 beats) at 64.
  Ddr4Channel ch;
  EXPECT_EQ(ch.access(0, 0, 64, true), 1u);
  Ddr4Channel ch2;
  EXPECT_EQ(ch2.access(0, 0, 4096, true), 64u);
  // Two queue slots: bursts 0 and 1 pass at edges 1 and 2 and reach the controller at DRAM
  // 6 + 2 = 8 and 14. Burst 0: ACT 2, WRITE 18 (tRCD), data written by 18 + CWL + tBL = 34;
  // burst 1 (group 1): ACT 6 (tRRD_S), WRITE 22, written by 38. The kernel sees those slots free
  // at ceil(34 / 6) + 2 = 8 and ceil(38 / 6) + 2 = 9: bursts 2 and 3 pass at edges 9 and 10.
  Ddr4ChannelConfig c;
  c.queue_depth = 2;
  Ddr4Channel ch3(c);
  EXPECT_EQ(ch3.access(0, 0, 256, true), 10u);
}

// ---- Streams ---------------------------------------------------------------------------------------

TEST(Ddr4, SequentialReadStreamApproachesThePortBound) {
  Ddr4Channel ch;
  const double bound = std::min(ch.port_peak_gbs(), ch.dram_peak_gbs());
  EXPECT_DOUBLE_EQ(ch.port_peak_gbs(), 12.8);    // 64 B x 200 MHz
  EXPECT_DOUBLE_EQ(ch.dram_peak_gbs(), 19.2);    // 64 B per 4 x 0.833 ns
  // 64 MiB in 16 KiB transactions, all issued at once: the queue keeps the port busy.
  const uint64_t tx = 16384, total = uint64_t{64} << 20;
  uint64_t done = 0;
  for (uint64_t a = 0; a < total; a += tx) done = ch.access(0, a, tx, false);
  const Ddr4Stats& s = ch.stats();
  EXPECT_EQ(s.bytes_read, total);
  EXPECT_EQ(s.bursts, total / 64);
  // 64 B per kernel cycle at most: never faster than the port.
  EXPECT_GE(done, total / 64);
  EXPECT_LE(ch.achieved_gbs(), bound);
  // The loss is the refresh: every tREFI (1560 kernel cycles) the DRAM stops for tRP + tRFC +
  // tRCD = 452 DRAM cycles (75 kernel cycles), of which the 32 queued bursts cover about 26 (the
  // rest of the slots are in flight): ~3% lost.
  EXPECT_GT(ch.achieved_gbs(), 0.95 * bound);
  EXPECT_GT(static_cast<double>(s.row_hits), 0.98 * static_cast<double>(s.bursts));
  EXPECT_GT(s.bulk_bursts, s.bursts / 2);   // the closed form carried most of it
}

TEST(Ddr4, SequentialWriteStreamApproachesThePortBound) {
  Ddr4Channel ch;
  const uint64_t tx = 4096, total = uint64_t{16} << 20;
  uint64_t done = 0;
  for (uint64_t a = 0; a < total; a += tx) done = ch.access(0, a, tx, true);
  EXPECT_GE(done, total / 64);
  EXPECT_LE(ch.achieved_gbs(), 12.8);
  EXPECT_GT(ch.achieved_gbs(), 0.95 * 12.8);
  EXPECT_EQ(ch.stats().bytes_written, total);
}

TEST(Ddr4, FastKernelClockMakesTheDimmTheBound) {
  // A 400 MHz port carries 25.6 GB/s: now the DIMM's 19.2 GB/s bounds. Bursts alternate bank
  // groups (tCCD_S = tBL), so only refresh costs: 452 of every 9360 DRAM cycles, ~4.8%.
  Ddr4ChannelConfig c;
  c.kernel_mhz = 400;
  c.queue_depth = 64;
  Ddr4Channel ch(c);
  for (uint64_t a = 0; a < (uint64_t{64} << 20); a += 16384) ch.access(0, a, 16384, false);
  EXPECT_LE(ch.achieved_gbs(), 19.2);
  EXPECT_GT(ch.achieved_gbs(), 0.93 * 19.2);
}

TEST(Ddr4, RowMissesInOneBankAreBoundByRc) {
  // Distinct rows of bank 0, all issued at once. The first is a miss (ACT 0, data 37); each next one
  // is a conflict whose PRE waits for tRAS (39, later than READ + tRTP = 25) and whose ACT follows
  // tRP later: one ACT every tRAS + tRP = tRC = 55 cycles, burst k completes at 37 + 55 k.
  std::vector<int64_t> rows(100);
  std::iota(rows.begin(), rows.end(), 1);
  std::shuffle(rows.begin(), rows.end(), std::mt19937(7));
  Ddr4Channel ch(exact());
  for (size_t k = 0; k < rows.size(); ++k)
    ASSERT_EQ(ch.access(0, at(ch, 0, 0, rows[k]), 64, false), 37u + 55u * k) << k;
  EXPECT_EQ(ch.stats().row_misses, 1u);
  EXPECT_EQ(ch.stats().row_conflicts, 99u);
  EXPECT_EQ(ch.stats().activates, 100u);
  EXPECT_EQ(ch.stats().precharges, 99u);
  // Through the port at 200 MHz: data ends at DRAM 2 + 37 + 55 k, then ceil(/6) + 2. 1.40 GB/s.
  Ddr4Channel d;
  for (size_t k = 0; k < rows.size(); ++k) {
    const uint64_t dram_end = 2 + 37 + 55 * k;
    ASSERT_EQ(d.access(0, at(d, 0, 0, rows[k]), 64, false), (dram_end + 5) / 6 + 2) << k;
  }
}

// ---- Refresh -----------------------------------------------------------------------------------------

TEST(Ddr4, RefreshStallsOncePerRefreshInterval) {
  // Reads of one open row every 500 cycles. A hit takes CL + tBL = 21. REF k is due at 9360 k; the
  // first read after it finds it due: all banks precharge at 9360 k (the row's tRAS and tRTP are
  // long met), REF at + tRP = 16, the bank may activate at + tRFC = 436; the read activates at
  // max(arrival, 9360 k + 436) and completes tRCD + CL + tBL = 37 later.
  Ddr4Channel ch(exact());
  const int64_t refi = 9360, ready = 16 + 420, miss = 16 + 17 + 4;
  int stalls = 0;
  int64_t next_due = refi;
  for (int64_t j = 0; j < 400; ++j) {
    const int64_t t = 500 * j;
    const auto latency = static_cast<int64_t>(ch.access(static_cast<uint64_t>(t), 0, 64, false)) - t;
    if (j == 0) {
      EXPECT_EQ(latency, miss);
    } else if (t >= next_due) {
      EXPECT_EQ(latency, std::max(t, next_due + ready) + miss - t) << "read " << j;
      ++stalls;
      next_due += refi;
    } else {
      EXPECT_EQ(latency, 21) << "read " << j;
    }
  }
  EXPECT_EQ(stalls, 199500 / refi);   // 21 refreshes fell due, one stall each
  EXPECT_EQ(ch.stats().refreshes, static_cast<uint64_t>(stalls));
}

TEST(Ddr4, IdleRefreshesAreSkippedInClosedForm) {
  Ddr4Channel ch;
  ch.access(0, 0, 64, false);
  // Issued at kernel cycle 1e6 = DRAM 6e6, at the controller 6,000,002. REFs fell due at 9360 n for
  // n = 1..641 (641 x 9360 = 5,999,760); the last still holds the banks until + tRFC = 6,000,180.
  // ACT 6,000,180, READ 6,000,196, data ends 6,000,217, kernel edge 1,000,037, + 2 = 1,000,039.
  EXPECT_EQ(ch.access(1000000, 0, 64, false), 1000039u);
  EXPECT_EQ(ch.stats().refreshes, 641u);
  EXPECT_EQ(ch.stats().precharges, 1u);   // only the first REF found a row open
  EXPECT_EQ(ch.stats().row_misses, 2u);
}

// ---- Turnarounds -------------------------------------------------------------------------------------

TEST(Ddr4, ReadToWriteAndWriteToReadTurnaround) {
  Ddr4Channel ch(exact());
  std::vector<Ddr4Command> log;
  ch.set_command_log(&log);
  ch.access(0, 0, 64, false);   // ACT 0, READ 16
  // The write's single beat passes at cycle 1; its WRITE waits for READ + CL + tBL + 2 - CWL =
  // 16 + 17 + 4 + 2 - 12 = 27 (the read data must clear the bus, two cycles of turnaround).
  EXPECT_EQ(ch.access(0, 0, 64, true), 1u);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].outcome, RowOutcome::kHit);
  EXPECT_EQ(log[1].column, 27);
  EXPECT_EQ(log[1].data_end, 27 + 12 + 4);
  // Read after it, same bank group: write data ends at 43, + tWTR_L = 9: READ at 52, data ends 73.
  EXPECT_EQ(ch.access(0, 0, 64, false), 73u);
  EXPECT_EQ(log[2].column, 52);
}

TEST(Ddr4, WriteToReadUsesTheShortValueAcrossBankGroups) {
  // WRITE to group 0 at 16 (ACT 0 + tRCD), its data ends 16 + CWL + tBL = 32.
  // Group 1: ACT at 0 + tRRD_S = 4, READ at max(4 + tRCD, 32 + tWTR_S = 35) = 35, data ends 56.
  // Group 0, another bank: ACT at 0 + tRRD_L = 6, READ at max(22, 32 + tWTR_L = 41) = 41, ends 62.
  Ddr4Channel a(exact());
  a.access(0, 0, 64, true);
  EXPECT_EQ(a.access(0, at(a, 1, 0, 0), 64, false), 56u);
  Ddr4Channel b(exact());
  b.access(0, 0, 64, true);
  EXPECT_EQ(b.access(0, at(b, 0, 1, 0), 64, false), 62u);
}

// ---- Activate window ---------------------------------------------------------------------------------

TEST(Ddr4, FourActivateWindowLimitsActivatesAcrossBanks) {
  // Eight closed banks, groups 0,1,2,3,0,1,2,3, issued at once. ACT_i = max(ACT_{i-1} + tRRD_S,
  // ACT_{i-4} + tFAW). With the x8 device's tFAW = 26: 0, 4, 8, 12, 26, 30, 34, 38. READ_i =
  // max(ACT_i + tRCD, READ_{i-1} + tCCD_S): 16, 20, 24, 28, 42, 46, 50, 54.
  Ddr4ChannelConfig c = exact();
  c.timing.tfaw = 26;
  Ddr4Channel ch(c);
  std::vector<Ddr4Command> log;
  ch.set_command_log(&log);
  for (int i = 0; i < 8; ++i) ch.access(0, at(ch, i % 4, i / 4, 0), 64, false);
  const std::vector<int64_t> act = {0, 4, 8, 12, 26, 30, 34, 38}, rd = {16, 20, 24, 28, 42, 46, 50, 54};
  ASSERT_EQ(log.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(log[i].activate, act[i]) << i;
    EXPECT_EQ(log[i].column, rd[i]) << i;
  }
  // The VCU1525's x4 devices: tFAW = 16 = 4 tRRD_S, so tRRD_S alone spaces them: 0, 4, ..., 28.
  Ddr4Channel x4(exact());
  log.clear();
  x4.set_command_log(&log);
  for (int i = 0; i < 8; ++i) x4.access(0, at(x4, i % 4, i / 4, 0), 64, false);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(log[i].activate, static_cast<int64_t>(4 * i)) << i;
}

// ---- Address mapping ---------------------------------------------------------------------------------

TEST(Ddr4, AddressMappingLayouts) {
  const Ddr4Timing t = Ddr4Timing::vcu1525();
  const AddressMap rcb(AddressMapping::kRowColumnBank, t);
  EXPECT_EQ(rcb.describe(), "row[33:17] column[16:10] bank[9:8] group[7:6] byte[5:0]");
  EXPECT_EQ(rcb.capacity_bytes(), uint64_t{16} << 30);   // 16 GiB: one rank of 16 x 8 Gb
  EXPECT_EQ(rcb.decode(0x40), (DramAddress{1, 0, 0, 0}));
  EXPECT_EQ(rcb.decode(0x100), (DramAddress{0, 1, 0, 0}));
  EXPECT_EQ(rcb.decode(0x400), (DramAddress{0, 0, 0, 1}));
  EXPECT_EQ(rcb.decode(0x20000), (DramAddress{0, 0, 1, 0}));
  const AddressMap rbc(AddressMapping::kRowBankColumn, t);
  EXPECT_EQ(rbc.describe(), "row[33:17] group[16:15] bank[14:13] column[12:6] byte[5:0]");
  EXPECT_EQ(rbc.decode(0x40), (DramAddress{0, 0, 0, 1}));
  EXPECT_EQ(rbc.decode(0x2000), (DramAddress{0, 1, 0, 0}));
  EXPECT_EQ(rbc.decode(0x8000), (DramAddress{1, 0, 0, 0}));
  const AddressMap brc(AddressMapping::kBankRowColumn, t);
  EXPECT_EQ(brc.describe(), "group[33:32] bank[31:30] row[29:13] column[12:6] byte[5:0]");
  std::mt19937_64 rng(3);
  for (const AddressMap* m : {&rcb, &rbc, &brc}) {
    for (int i = 0; i < 1000; ++i) {
      const uint64_t a = (rng() % m->capacity_bytes()) & ~uint64_t{63};
      EXPECT_EQ(m->encode(m->decode(a)), a);
    }
  }
  // Sequential 4 KiB from a fresh channel, row-column-bank: the first 16 bursts open one row in
  // each of the 16 banks, the other 48 hit them.
  Ddr4Channel ch;
  ch.access(0, 0, 4096, false);
  EXPECT_EQ(ch.stats().row_misses, 16u);
  EXPECT_EQ(ch.stats().row_hits, 48u);
}

// ---- Physical bounds ---------------------------------------------------------------------------------

TEST(Ddr4, NoTransactionBeatsThePeak) {
  Ddr4Channel ch;
  std::mt19937_64 rng(11);
  uint64_t now = 0;
  for (int i = 0; i < 5000; ++i) {
    const uint64_t bytes = 1 + rng() % 20000;
    const uint64_t addr = rng() % (ch.capacity_bytes() - bytes);
    const bool write = rng() % 3 == 0;
    now += rng() % 50;
    const uint64_t done = ch.access(now, addr, bytes, write);
    const uint64_t beats = (addr % 64 + bytes + 63) / 64;   // 64-byte beats through the port
    // The port: one beat per kernel cycle. The DIMM: 64 bytes per 4 DRAM cycles = 2/3 kernel cycle.
    ASSERT_GE(done - now, beats) << i;
    ASSERT_GE((done - now) * 6, beats * 4) << i;
    ASSERT_GE(static_cast<double>(done - now) * 5e-9, static_cast<double>(bytes) / 12.8e9) << i;
  }
}

TEST(Ddr4, ShallowQueueCannotCoverTheLatency) {
  // A read hit holds its slot for a round trip of 6 kernel cycles: it enters at DRAM cycle 6x + 2
  // (a slot seen free through two stages), READ at once, data ends 21 later (6x + 23), the next
  // kernel edge is x + 4, two stages: the beat at x + 6, the slot seen free at DRAM 6(x + 6) + 2.
  // Four slots carry at most 4 bursts per 6 cycles: 8.53 GB/s; refresh takes its ~5% on top.
  auto gbs = [](int depth) {
    Ddr4ChannelConfig c;
    c.queue_depth = depth;
    Ddr4Channel ch(c);
    for (uint64_t a = 0; a < (uint64_t{4} << 20); a += 4096) ch.access(0, a, 4096, false);
    return ch.achieved_gbs();
  };
  const double four = 4.0 / 6.0 * 12.8;
  EXPECT_LE(gbs(4), four);
  EXPECT_GT(gbs(4), 0.9 * four);
  // Six slots cover a hit's round trip; what is lost then is the refresh (452 of every 9360 DRAM
  // cycles, no longer hidden by queued data) and the row changes every 128 KiB.
  EXPECT_GT(gbs(6), 0.92 * 12.8);
}

// ---- Closed form against stepping --------------------------------------------------------------------

namespace {

void expect_same_stats(const Ddr4Stats& a, const Ddr4Stats& b, const std::string& what) {
  EXPECT_EQ(a.transactions, b.transactions) << what;
  EXPECT_EQ(a.bytes_read, b.bytes_read) << what;
  EXPECT_EQ(a.bytes_written, b.bytes_written) << what;
  EXPECT_EQ(a.bursts, b.bursts) << what;
  EXPECT_EQ(a.read_bursts, b.read_bursts) << what;
  EXPECT_EQ(a.write_bursts, b.write_bursts) << what;
  EXPECT_EQ(a.row_hits, b.row_hits) << what;
  EXPECT_EQ(a.row_misses, b.row_misses) << what;
  EXPECT_EQ(a.row_conflicts, b.row_conflicts) << what;
  EXPECT_EQ(a.activates, b.activates) << what;
  EXPECT_EQ(a.precharges, b.precharges) << what;
  EXPECT_EQ(a.refreshes, b.refreshes) << what;
  EXPECT_EQ(a.busy_kernel_cycles, b.busy_kernel_cycles) << what;
}

// A mix of long sequential streams (reads and writes, several at once, back to back or blocking),
// short random transactions and idle gaps; every completion must match.
void compare_bulk_and_steps(const Ddr4ChannelConfig& base, uint64_t seed, const std::string& what) {
  Ddr4ChannelConfig on = base, off = base;
  on.bulk_advance = true;
  off.bulk_advance = false;
  Ddr4Channel fast(on), slow(off);
  std::mt19937_64 rng(seed);
  const uint64_t cap = fast.capacity_bytes();
  uint64_t now = 0, last_done = 0;
  uint64_t stream[3] = {0, cap / 3 + 4096, cap / 2 + 64 * 7};
  for (int i = 0; i < 3000; ++i) {
    const int kind = static_cast<int>(rng() % 10);
    uint64_t addr, bytes;
    bool write;
    if (kind < 6) {   // a stream's next transaction
      const int s = static_cast<int>(rng() % 3);
      bytes = (rng() % 4 == 0) ? 1 + rng() % 40000 : 64 * (1 + rng() % 256);
      addr = stream[s] % (cap - bytes);
      stream[s] = addr + bytes;
      write = s == 2 || (s == 1 && rng() % 5 == 0);
    } else {          // anywhere
      bytes = 1 + rng() % 512;
      addr = rng() % (cap - bytes);
      write = rng() % 2 == 0;
    }
    const int timing = static_cast<int>(rng() % 8);
    if (timing == 0) now = last_done;                        // blocking
    else if (timing == 1) now += rng() % 20000;              // idle
    else if (timing == 2) now += rng() % 200;
    const uint64_t a = fast.access(now, addr, bytes, write);
    const uint64_t b = slow.access(now, addr, bytes, write);
    ASSERT_EQ(a, b) << what << ": transaction " << i;
    last_done = a;
  }
  expect_same_stats(fast.stats(), slow.stats(), what);
  EXPECT_GT(fast.stats().bulk_bursts, 0u) << what;
  EXPECT_EQ(slow.stats().bulk_bursts, 0u) << what;
}

}  // namespace

TEST(Ddr4, BulkAdvanceEqualsSteppingOnSequentialStreams) {
  // Pure streams, where nearly everything goes through the closed form.
  for (bool write : {false, true}) {
    for (AddressMapping m :
         {AddressMapping::kRowColumnBank, AddressMapping::kRowBankColumn, AddressMapping::kBankRowColumn}) {
      Ddr4ChannelConfig on, off;
      on.mapping = off.mapping = m;
      off.bulk_advance = false;
      Ddr4Channel fast(on), slow(off);
      for (uint64_t a = 0; a < (uint64_t{32} << 20); a += 65536)
        ASSERT_EQ(fast.access(0, a, 65536, write), slow.access(0, a, 65536, write)) << a;
      expect_same_stats(fast.stats(), slow.stats(), "stream");
      EXPECT_GT(fast.stats().bulk_bursts, fast.stats().bursts / 2) << static_cast<int>(m) << " " << write;
    }
  }
}

TEST(Ddr4, BulkAdvanceEqualsSteppingOnMixes) {
  compare_bulk_and_steps(Ddr4ChannelConfig{}, 1, "default");
  Ddr4ChannelConfig c;
  c.mapping = AddressMapping::kRowBankColumn;
  compare_bulk_and_steps(c, 2, "row-bank-column");
  c = {};
  c.mapping = AddressMapping::kBankRowColumn;
  compare_bulk_and_steps(c, 3, "bank-row-column");
  c = {};
  c.port_bytes = 32;
  compare_bulk_and_steps(c, 4, "256-bit port");
  c = {};
  c.kernel_mhz = 300;
  compare_bulk_and_steps(c, 5, "300 MHz kernel");
  c = {};
  c.kernel_mhz = 400;
  c.queue_depth = 64;
  compare_bulk_and_steps(c, 6, "400 MHz kernel, DRAM bound");
  compare_bulk_and_steps(exact(), 7, "one clock");
  c = {};
  c.queue_depth = 8;
  c.ctrl_latency = 20;
  c.refresh_phase = 5000;
  compare_bulk_and_steps(c, 8, "shallow queue, slow controller");
  c = {};
  c.timing = Ddr4Timing::jedec_2400r();
  c.timing.tfaw = 26;
  compare_bulk_and_steps(c, 9, "CL16, x8 tFAW");
}

// ---- Validation --------------------------------------------------------------------------------------

namespace {

template <class F>
void expect_error(F&& make, const std::string& needle) {
  try {
    make();
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const sat::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Ddr4, ImpossibleParametersAreRefused) {
  auto with = [](auto change) {
    return [change] {
      Ddr4ChannelConfig c;
      change(c);
      Ddr4Channel ch(c);
    };
  };
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.trc = 50; }), "tRC");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.tras = 10; }), "tRAS");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.tccd_s = 3; }), "tCCD_S");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.tccd_l = 3; }), "tCCD_L");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.cwl = 18; }), "CWL");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.trefi = 400; }), "tREFI");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.trcd = 0; }), "tRCD");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.twtr_l = 2; }), "tWTR_L");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.bank_groups = 3; }), "bank_groups");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.row_bytes = 100; }), "row_bytes");
  expect_error(with([](Ddr4ChannelConfig& c) { c.timing.dram_mhz = 0; }), "dram_mhz");
  expect_error(with([](Ddr4ChannelConfig& c) { c.queue_depth = 0; }), "queue_depth");
  expect_error(with([](Ddr4ChannelConfig& c) { c.port_bytes = 128; }), "port_bytes");
  expect_error(with([](Ddr4ChannelConfig& c) { c.port_bytes = 48; }), "port_bytes");
  expect_error(with([](Ddr4ChannelConfig& c) { c.kernel_mhz = 0; }), "kernel_mhz");
  expect_error(with([](Ddr4ChannelConfig& c) { c.cdc_stages = -1; }), "cdc_stages");
  expect_error(with([](Ddr4ChannelConfig& c) { c.refresh_phase = 9360; }), "refresh_phase");
  EXPECT_NO_THROW(Ddr4Timing::vcu1525().validate());
  EXPECT_NO_THROW(Ddr4Timing::jedec_2400r().validate());

  Ddr4Channel ch;
  expect_error([&] { ch.access(0, 0, 0, false); }, "0 bytes");
  expect_error([&] { ch.access(0, ch.capacity_bytes() - 64, 128, false); }, "leaves the channel");
  EXPECT_EQ(ch.stats().transactions, 0u);
}

TEST(Ddr4, StatisticsAndReset) {
  Ddr4Channel ch;
  const uint64_t done = ch.access(10, 100, 1000, false);   // bursts 1..17: 17 bursts
  ch.access(done, 8192, 64, true);
  const Ddr4Stats& s = ch.stats();
  EXPECT_EQ(s.transactions, 2u);
  EXPECT_EQ(s.bytes_read, 1000u);
  EXPECT_EQ(s.bytes_written, 64u);
  EXPECT_EQ(s.read_bursts, 17u);
  EXPECT_EQ(s.write_bursts, 1u);
  EXPECT_EQ(s.row_hits + s.row_misses + s.row_conflicts, s.bursts);
  EXPECT_EQ(s.activates, s.row_misses + s.row_conflicts);
  EXPECT_GT(s.busy_kernel_cycles, 0u);
  EXPECT_GT(ch.achieved_gbs(), 0.0);
  ch.reset_stats();
  EXPECT_EQ(ch.stats().bursts, 0u);
  EXPECT_EQ(ch.achieved_gbs(), 0.0);
}
