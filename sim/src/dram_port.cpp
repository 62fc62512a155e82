#include "dram_port.hpp"

#include <algorithm>

namespace sat::sim {

namespace {

Ddr4ChannelConfig channel_config(int channel, const SimConfig& cfg) {
  Ddr4ChannelConfig c;
  c.timing = cfg.dram_timing == "jedec_2400r" ? Ddr4Timing::jedec_2400r() : Ddr4Timing::vcu1525();
  c.mapping = cfg.dram_mapping == "row_bank_column"   ? AddressMapping::kRowBankColumn
              : cfg.dram_mapping == "bank_row_column" ? AddressMapping::kBankRowColumn
                                                      : AddressMapping::kRowColumnBank;
  c.kernel_mhz = cfg.clock_mhz;
  c.queue_depth = cfg.dram_queue_depth;
  c.ctrl_latency = cfg.dram_ctrl_latency;
  // The four channels' refreshes are staggered by a quarter of tREFI, as independent controllers
  // drift apart, so that they do not all stall together.
  c.refresh_phase = channel * (c.timing.trefi / arch::kDdrChannels);
  return c;
}

// Above this many transactions an access is taken as one transaction per row: element-sized
// transactions of a large gather would cost the model far more than they say.
constexpr int64_t kMaxElementTransactions = 4096;

}  // namespace

DramPort::DramPort(int channel, const SimConfig& cfg) : ddr_(channel_config(channel, cfg)) {}

void DramPort::begin_run(uint64_t base) {
  base_ = base;
  ddr_.reset_stats();
}

uint64_t DramPort::transfer(uint64_t run_issue, const isa::DramAccess& a) {
  const uint64_t issue = base_ + run_issue;
  const uint64_t elem = 2u * static_cast<uint64_t>(a.elem_halfwords);
  const uint64_t base = 2u * uint64_t{isa::addr_offset(a.addr)};
  const uint64_t cap = ddr_.capacity_bytes();
  auto tx = [&](uint64_t byte_offset, uint64_t bytes) { return ddr_.access(issue, (base + byte_offset) % cap, bytes, a.write); };
  uint64_t done = issue;
  if (a.rows <= 0 || a.cols <= 0) return run_issue;
  const bool row_runs = a.window || a.col_stride == 1 || a.rows * a.cols > kMaxElementTransactions;
  if (row_runs) {
    for (int64_t r = 0; r < a.rows; ++r) {
      const int64_t at = a.window ? r * a.cols : a.row_offset(r);
      done = std::max(done, tx(static_cast<uint64_t>(at) * elem, a.cols * elem));
    }
  } else if (a.row_stride == 1 && a.line_rows <= 0) {   // contiguous along the rows: one transaction per column
    for (int64_t c = 0; c < a.cols; ++c) {
      done = std::max(done, tx(static_cast<uint64_t>(c * a.col_stride) * elem, a.rows * elem));
    }
  } else {
    for (int64_t r = 0; r < a.rows; ++r)
      for (int64_t c = 0; c < a.cols; ++c)
        done = std::max(done, tx(static_cast<uint64_t>(a.row_offset(r) + c * a.col_stride) * elem, elem));
  }
  return done - base_;
}

}  // namespace sat::sim
