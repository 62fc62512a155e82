// The `sim` device and backend: the conformance suite every accelerator backend passes (the same
// bits as hls), and the model's time: a GEMM takes the PE array's closed form, no run finishes
// below its DRAM bound, and malformed streams end with the kernel's status, never a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <tuple>

#include "conformance.hpp"
#include "sat/arch/interface.hpp"
#include "sat/arch/timing.hpp"
#include "sat/backend.hpp"
#include "sat/device.hpp"
#include "sat/model.hpp"
#include "sat/trace.hpp"
#include "sat_sim/device.hpp"

using namespace sat;

namespace sat::test {
SAT_BACKEND_CONFORMANCE(sim);
}

namespace {

isa::Insn gemm(uint32_t mt, uint32_t nt, uint32_t kt, bool sparse, uint32_t n, uint32_t m) {
  isa::Insn in = isa::make_insn(isa::OP_GEMM, sparse ? 2 : 0);
  in.w[isa::f_GEMM::mt] = mt;
  in.w[isa::f_GEMM::nt] = nt;
  in.w[isa::f_GEMM::kt] = kt;
  in.w[isa::f_GEMM::n] = n;
  in.w[isa::f_GEMM::m] = m;
  return in;
}

RunResult run(Device& dev, const std::vector<isa::Insn>& s, ChannelBytes bytes = {4096, 4096, 4096, 4096}) {
  auto mem = dev.allocate(bytes);
  auto stream = dev.load(s);
  return dev.run(*stream, *mem, std::chrono::milliseconds(0));
}

}  // namespace

// One GEMM: the array's steps plus its drain, nothing else on the critical path.
TEST(SimTiming, OneGemmTakesTheArraysClosedForm) {
  auto dev = sim::make_sim_device();
  // By hand: (128/16) * (128/16) * (512/8) = 4,096 step cycles, plus the finish and write-back.
  EXPECT_EQ(arch::gemm_cycles(128, 128, 512, false, 1, 1), 4096u + 2u);
  for (const auto& [mt, nt, kt] : {std::tuple{128u, 128u, 512u}, {16u, 16u, 8u}, {37u, 100u, 300u}}) {
    const RunResult r = run(*dev, {gemm(mt, nt, kt, false, 1, 1), isa::make_insn(isa::OP_FINISH)});
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_TRUE(r.counters.has_value());
    const uint64_t want = arch::gemm_cycles(mt, nt, kt, false, 1, 1);
    EXPECT_EQ(r.counters->busy[isa::UNIT_GEMM], want);
    EXPECT_GE(r.counters->cycles, want);
    EXPECT_LE(r.counters->cycles, want + 2) << "fetch and decode add a cycle or two";
  }
}

// In N:M mode a PE row covers M/N times more of K per cycle, up to the activation window (4x).
TEST(SimTiming, SparseGemmIsFasterUpToTheWindow) {
  auto dev = sim::make_sim_device();
  auto cycles = [&](bool sparse, uint32_t n, uint32_t m) {
    const RunResult r = run(*dev, {gemm(128, 128, 512, sparse, n, m), isa::make_insn(isa::OP_FINISH)});
    EXPECT_TRUE(r.ok()) << r.message();
    return r.counters ? r.counters->busy[isa::UNIT_GEMM] : 0;
  };
  EXPECT_EQ(cycles(false, 1, 1), 4096u + 2u);
  EXPECT_EQ(cycles(true, 2, 8), 4096u / 4 + 2u);   // 2:8: 32 elements of K per cycle
  EXPECT_EQ(cycles(true, 2, 4), 4096u / 2 + 2u);   // 2:4: 16
  EXPECT_EQ(cycles(true, 1, 8), 4096u / 4 + 2u);   // 1:8 would be 64: the window holds it to 32
  // 3:16 and 5:16: some steps touch three or four groups of 16 where the window holds two, and take
  // two sub-steps (the RTL sequencer's split): 2 and 1.4 cycles a step on average, not 8m/n / 32.
  EXPECT_EQ(cycles(true, 3, 16), 64u * 24u + 2u);   // E = 96: 12 steps, 24 cycles a block
  EXPECT_EQ(cycles(true, 5, 16), 64u * 28u + 2u);   // E = 160: 20 steps, 28 cycles a block
}

// A run never ends below the bound of what it moved: its DRAM bytes over the AXI port's peak.
TEST(SimTiming, DramBoundHolds) {
  auto dev = sim::make_sim_device();
  isa::Insn fill = isa::make_insn(isa::OP_V_FILL, 1);
  fill.w[isa::f_V_FILL::y] = isa::make_addr(2, 0);
  fill.w[isa::f_V_FILL::count] = 65536;   // 256 KiB of FP32 into channel 2
  const RunResult r = run(*dev, {fill, isa::make_insn(isa::OP_FINISH)}, {0, 0, 1 << 20, 0});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r.counters->dram_write_bytes[2], 262144u);
  EXPECT_GE(r.counters->cycles, 262144u / (arch::kDdrBusBits / 8));
  // The status words carry the model's own counters, as a board's carry its kernel's.
  EXPECT_EQ(isa::status_u64(r.status.data(), isa::STW_CYCLES_LO), r.counters->cycles);
  EXPECT_EQ(isa::status_u64(r.status.data(), isa::STW_DRAM_WRITE_LO), 262144u);
  EXPECT_EQ(r.counters->dram_bytes_written, 262144u);
}

// Malformed streams end with the kernel's status through the model, never a hang, and the device
// runs a good stream afterwards.
TEST(SimDevice, MalformedStreamsEndWithAStatus) {
  auto dev = sim::make_sim_device();
  isa::Insn g = gemm(16, 16, 8, false, 1, 1);
  isa::set_wait(g, 1u << isa::UNIT_LOAD);   // a token no unit ever signals
  RunResult r = run(*dev, {g, isa::make_insn(isa::OP_FINISH)});
  EXPECT_EQ(r.status[isa::STW_CODE], isa::STATUS_DEADLOCK) << r.message();
  EXPECT_EQ(r.status[isa::STW_INTERFACE], arch::kInterfaceVersion);
  r = run(*dev, {gemm(16, 16, 8, false, 1, 1)});
  EXPECT_EQ(r.status[isa::STW_CODE], isa::STATUS_NO_FINISH) << r.message();
  isa::Insn s = gemm(16, 16, 8, false, 1, 1);
  isa::set_signal(s, 1u << isa::UNIT_STORE);   // signalled, never waited for
  r = run(*dev, {s, isa::make_insn(isa::OP_FINISH)});
  EXPECT_EQ(r.status[isa::STW_CODE], isa::STATUS_TOKEN_LEFT) << r.message();
  r = run(*dev, {gemm(16, 16, 8, true, 3, 5), isa::make_insn(isa::OP_FINISH)});   // M = 5 unsupported
  EXPECT_EQ(r.status[isa::STW_CODE], isa::STATUS_BAD_FIELD) << r.message();
  r = run(*dev, {gemm(16, 16, 8, false, 1, 1), isa::make_insn(isa::OP_FINISH)});
  EXPECT_TRUE(r.ok()) << r.message();
}

// The kernel's counter words (status 9-15): the C-simulation and the model compute GEMM cycles and
// DRAM bytes from the same definitions, so a LeNet-5 step gives the same words 11-15 on both under
// the default configuration; only the model has a clock.
TEST(SimDevice, CounterWordsAgreeWithTheCSimulationsOnAStep) {
  Model model = Model::load(std::string(SAT_SOURCE_DIR) + "/models/lenet5.json");
  model.regenerate(Method::bdwp);
  ScheduleOptions opt;
  opt.batch = 2;
  auto hls = open_device("hls");
  const Trace trace = make_program_trace(model, opt, *hls, 7);
  const ReplayReport h = replay_trace(trace, *hls);
  auto sim = sim::make_sim_device();
  const ReplayReport s = replay_trace(trace, *sim);
  ASSERT_TRUE(h.ok()) << h.summary();
  ASSERT_TRUE(s.ok()) << s.summary();
  EXPECT_EQ(h.run.status[isa::STW_CYCLES_LO], 0u);
  EXPECT_EQ(h.run.status[isa::STW_CYCLES_HI], 0u);
  EXPECT_GT(isa::status_u64(s.run.status.data(), isa::STW_CYCLES_LO), 0u);
  for (int w = isa::STW_GEMM_CYCLES; w < isa::kStatusWords; ++w) {
    EXPECT_EQ(h.run.status[w], s.run.status[w]) << "status word " << w;
  }
  EXPECT_GT(h.run.status[isa::STW_GEMM_CYCLES], 0u);
  EXPECT_GT(isa::status_u64(h.run.status.data(), isa::STW_DRAM_READ_LO), 0u);
  EXPECT_GT(isa::status_u64(h.run.status.data(), isa::STW_DRAM_WRITE_LO), 0u);
  ASSERT_TRUE(s.run.counters.has_value());
  EXPECT_EQ(s.run.counters->busy[isa::UNIT_GEMM], h.run.counters->busy[isa::UNIT_GEMM]);
  EXPECT_EQ(s.run.counters->dram_bytes_read, h.run.counters->dram_bytes_read);
}
