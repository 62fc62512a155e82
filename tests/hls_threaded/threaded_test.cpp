// The kernel's synthesis path executed: every process of the DATAFLOW region on a thread, every
// hls::stream a blocking FIFO of its depth (docs/hls-dataflow.md, "Threaded execution"). This binary
// also runs every test of tests/hls/hls_isa_test.cpp; the observer of threaded_harness.cpp replays
// each of their C-simulation runs on the threaded path and compares DRAM and status bit for bit.
// Here: whole training steps, the watchdog on a token cycle, and the threaded stream itself.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "sat/arch/status_text.hpp"
#include "sat/backend.hpp"
#include "sat/bf16.hpp"
#include "sat/model.hpp"
#include "sat/trace.hpp"
#include "sat_shim/threaded.hpp"
#include "threaded_harness.hpp"

using namespace sat;

namespace {

// One training step of `model_name` on the hls device: each run_kernel call of it (the step, and
// what make_program_trace runs before it) is replayed threaded and compared by the observer.
void step_matches(const std::string& model_name, Method method, const char* nm_text, int batch) {
  SCOPED_TRACE(model_name + " " + method_name(method) + " " + nm_text);
  Model m = Model::load(std::string(SAT_SOURCE_DIR) + "/models/" + model_name + ".json", NM::parse(nm_text));
  m.regenerate(method);
  ScheduleOptions opt;
  opt.batch = batch;
  opt.method = method;
  const auto hls = open_device("hls");
  const int before = test::differential_counts().compared;
  const Trace t = make_program_trace(m, opt, *hls, 5);
  EXPECT_EQ(t.expected_status[0], isa::STATUS_OK) << isa::status_message(t.expected_status);
  EXPECT_GT(test::differential_counts().compared, before) << "no run reached the comparison";
}

isa::Insn fill(uint32_t y, uint8_t wait, uint8_t signal) {
  isa::Insn in = isa::make_insn(isa::OP_V_FILL, 0);
  in.w[isa::f_V_FILL::y] = y;
  in.w[isa::f_V_FILL::count] = 1;
  isa::set_wait(in, wait);
  isa::set_signal(in, signal);
  return in;
}

}  // namespace

// Small batches: every process hands over each item through a lock, so a step costs seconds here.
TEST(HlsThreaded, MlpStepSparse) { step_matches("mlp", Method::bdwp, "2:8", 4); }
TEST(HlsThreaded, MlpStepDense) { step_matches("mlp", Method::dense, "2:8", 4); }
TEST(HlsThreaded, LeNet5StepSparse) { step_matches("lenet5", Method::bdwp, "2:8", 1); }

// A token cycle (VEC waits for PGEN, PGEN for VEC) hangs the synthesised region, which has no
// watchdog; the threaded model's watchdog names both processes and the token FIFOs they poll.
TEST(HlsThreaded, WatchdogNamesTheProcessesOfATokenCycle) {
  const char* inproc = std::getenv("SAT_HLS_THREADED_INPROCESS");
  if (inproc && *inproc == '1') GTEST_SKIP() << "a deadlock aborts an in-process run";
  std::array<std::vector<uint16_t>, arch::kDdrChannels> ddr;
  for (auto& c : ddr) c.assign(4096, 0);
  const uint8_t vec = 1u << isa::UNIT_VEC, pgen = 1u << isa::UNIT_PGEN;
  isa::Insn copy = isa::make_insn(isa::OP_PGEN, 4);
  copy.w[isa::f_PGEN::w] = isa::make_addr(0, 0);
  copy.w[isa::f_PGEN::dense_addr] = isa::make_addr(1, 0);
  copy.w[isa::f_PGEN::cout] = copy.w[isa::f_PGEN::k] = copy.w[isa::f_PGEN::n] = copy.w[isa::f_PGEN::m] = 1;
  isa::set_wait(copy, vec);
  const std::vector<isa::Insn> s = {fill(isa::make_addr(0, 0), pgen, 0), copy, isa::make_insn(isa::OP_FINISH)};
  const auto start = std::chrono::steady_clock::now();
  const test::ThreadedRun r = test::run_threaded(s, ddr, {true, true, true, true});
  ASSERT_EQ(r.outcome, test::ThreadedRun::deadlock) << r.report;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
  EXPECT_NE(r.report.find("every live process waits"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("dram_unit_proc<isa::UNIT_VEC>: idle, polling"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("tokens[5][2]"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("dram_unit_proc<isa::UNIT_PGEN>: idle, polling"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("tokens[2][5]"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("arbiter_proc#3"), std::string::npos) << r.report;
}

// A failing instruction poisons the tokens of its unit: what depends on it, directly (the V_FILL
// waiting for the failing LD_2D) or through another unit (the PGEN waiting for that V_FILL), does
// not execute, as in C-simulation, where nothing after the failing instruction runs. The same
// stream with a valid LD_2D executes both.
TEST(HlsThreaded, NothingThatDependsOnAFailedInstructionExecutes) {
  const uint8_t load = 1u << isa::UNIT_LOAD, vec = 1u << isa::UNIT_VEC, pgen = 1u << isa::UNIT_PGEN;
  auto stream = [&](uint32_t rows) {
    isa::Insn ld = isa::make_insn(isa::OP_LD_2D, 0);
    ld.w[isa::f_LD_2D::rows] = rows;   // 0 is a bad field
    ld.w[isa::f_LD_2D::cols] = 1;
    ld.w[isa::f_LD_2D::addr] = isa::make_addr(3, 0);
    ld.w[isa::f_LD_2D::row_stride] = ld.w[isa::f_LD_2D::col_stride] = 1;
    isa::set_signal(ld, vec);
    isa::Insn fl = fill(isa::make_addr(2, 0), load, pgen);
    fl.w[isa::f_V_FILL::value] = 0x40e00000u;   // 7.0
    isa::Insn copy = isa::make_insn(isa::OP_PGEN, 4);
    copy.w[isa::f_PGEN::w] = isa::make_addr(0, 0);
    copy.w[isa::f_PGEN::dense_addr] = isa::make_addr(1, 0);
    copy.w[isa::f_PGEN::cout] = copy.w[isa::f_PGEN::k] = copy.w[isa::f_PGEN::n] = copy.w[isa::f_PGEN::m] = 1;
    isa::set_wait(copy, vec);
    return std::vector<isa::Insn>{ld, fl, copy, isa::make_insn(isa::OP_FINISH)};
  };
  std::array<std::vector<uint16_t>, arch::kDdrChannels> ddr;
  for (auto& c : ddr) c.assign(4096, 0);
  ddr[0][1] = 0x3f80;   // the FP32 master 1.0 the PGEN would copy as BF16
  const test::ThreadedRun bad = test::run_threaded(stream(0), ddr, {true, true, true, true});
  ASSERT_EQ(bad.outcome, test::ThreadedRun::finished) << bad.report;
  EXPECT_EQ(bad.status[0], isa::STATUS_BAD_FIELD) << isa::status_message(bad.status.data());
  EXPECT_EQ(bad.status[isa::STW_INDEX], 0u);
  EXPECT_EQ(bad.ddr[2][0], 0u) << "the V_FILL after the failing load ran";
  EXPECT_EQ(bad.ddr[1][0], 0u) << "the PGEN after that V_FILL ran";
  const test::ThreadedRun good = test::run_threaded(stream(1), ddr, {true, true, true, true});
  ASSERT_EQ(good.outcome, test::ThreadedRun::finished) << good.report;
  EXPECT_EQ(good.status[0], isa::STATUS_OK) << isa::status_message(good.status.data());
  EXPECT_EQ(good.ddr[2][0], 0x40e0u);
  EXPECT_EQ(good.ddr[1][0], 0x3f80u);
}

// The threaded stream as Vitis documents hls::stream: a blocking write waits while Depth items are
// held, a blocking read while none are; the _nb forms never wait.
TEST(HlsThreadedStream, DepthIsHonouredAndBlockingCallsWait) {
  struct Item {
    int v;
  };
  hls::stream<Item, 3> s;
  s.set_name("s");
  Item x{};
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.read_nb(x));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(s.write_nb(Item{i}));
  EXPECT_TRUE(s.full());
  EXPECT_FALSE(s.write_nb(Item{9}));
  std::atomic<bool> written{false};
  std::thread producer([&] {
    s.write(Item{3});   // waits: the FIFO holds its depth
    written = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(written.load());
  EXPECT_EQ(s.read().v, 0);
  producer.join();
  EXPECT_TRUE(written.load());
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(s.read().v, i);
  std::thread consumer([&] { x = s.read(); });   // waits: the FIFO is empty
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  s.write(Item{7});
  consumer.join();
  EXPECT_EQ(x.v, 7);
  hls::stream<Item> dflt;   // Depth 0: Vitis's default FIFO depth, 2
  EXPECT_EQ(dflt.capacity(), 2);
}
