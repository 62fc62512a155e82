// The RTL cosimulation (docs/rtl.md, "Cosimulation"): the sim device with gemm_core "rtl" runs every
// GEMM of a LeNet-5 training step on the Verilated PE array inside the SystemC model. Its results
// must be the hls device's bit for bit (the trace's expected regions), and every instruction must
// start and end in the same cycle as with the C++ core model (gemm_core "model"). Where the build
// has no Verilated array the tests skip, saying so.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "run_cli.hpp"
#include "sat/backend_registry.hpp"
#include "sat/compiler.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"
#include "sat/model.hpp"
#include "sat/trace.hpp"
#include "sat_sim/device.hpp"
#include "temp_dir.hpp"

using namespace sat;
using namespace sat::sim;
using namespace sat::test;

namespace {

std::string rtl_pe() {
  int rows = 0, cols = 0;
  sim_has_rtl_gemm(&rows, &cols);
  return std::to_string(rows) + "x" + std::to_string(cols);
}

}  // namespace

TEST(RtlCosim, LeNet5StepIsBitExactWithHlsAndCycleEqualWithTheCoreModel) {
  if (!sim_has_rtl_gemm()) GTEST_SKIP() << "this build has no Verilated PE array (Verilator, SAT_SIM_RTL)";
  Model model = Model::load(std::string(SAT_SOURCE_DIR) + "/models/lenet5.json");
  model.regenerate(Method::bdwp);
  ScheduleOptions opt;
  opt.batch = 2;
  auto hls = open_device("hls");
  const Trace trace = make_program_trace(model, opt, *hls, 5);

  SimConfig core;
  apply_setting(core, "pe", rtl_pe());
  SimConfig rtl = core;
  rtl.gemm_core = "rtl";
  std::vector<InsnRecord> by_core, by_rtl;
  auto a = make_sim_device(core), b = make_sim_device(rtl);
  a->record(&by_core);
  b->record(&by_rtl);
  a->cold_start();   // both from the same memory-system state (the model is one per process)
  const ReplayReport ra = replay_trace(trace, *a);
  b->cold_start();
  const ReplayReport rb = replay_trace(trace, *b);
  ASSERT_TRUE(ra.ok()) << ra.summary();
  // Every region the step writes equals the hls device's, bit for bit.
  ASSERT_TRUE(rb.ok()) << rb.summary();
  EXPECT_GT(rb.regions_checked, 0);

  const RtlGemmTally t = b->rtl_tally();
  EXPECT_GT(t.instructions, 10u);
  EXPECT_GT(t.cycles, t.instructions);
  EXPECT_EQ(t.differ, 0u) << "GEMM instructions the RTL array took other than sat/arch/timing.hpp's cycles";
  EXPECT_EQ(a->rtl_tally().instructions, 0u);

  ASSERT_EQ(by_core.size(), by_rtl.size());
  size_t differ = 0;
  for (size_t i = 0; i < by_core.size(); ++i) {
    const InsnRecord &x = by_core[i], &y = by_rtl[i];
    if (x.index != y.index || x.start != y.start || x.end != y.end) {
      if (++differ <= 5) {
        ADD_FAILURE() << "instruction " << x.index << "/" << y.index << ": core model " << x.start << ".." << x.end
                      << ", RTL " << y.start << ".." << y.end;
      }
    }
  }
  EXPECT_EQ(differ, 0u);
  ASSERT_TRUE(ra.run.counters && rb.run.counters);
  EXPECT_EQ(ra.run.counters->cycles, rb.run.counters->cycles);
  EXPECT_EQ(ra.run.counters->busy, rb.run.counters->busy);
}

TEST(RtlCosim, TheArraysShapeIsRequiredAndNamed) {
  if (!sim_has_rtl_gemm()) GTEST_SKIP() << "this build has no Verilated PE array (Verilator, SAT_SIM_RTL)";
  SimConfig cfg;
  cfg.gemm_core = "rtl";
  apply_setting(cfg, "pe", rtl_pe() + "x4");   // lanes 4: not the RTL's 8
  try {
    make_sim_device(cfg);
    FAIL() << "a 4-lane configuration was taken for the 8-lane RTL array";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pe=" + rtl_pe()), std::string::npos) << e.what();
  }
  EXPECT_THROW(apply_setting(cfg, "gemm_core", "verilog"), Error);
}

TEST(RtlCosim, SimRtlReportsTheArraysPart) {
  if (!sim_has_rtl_gemm()) GTEST_SKIP() << "this build has no Verilated PE array (Verilator, SAT_SIM_RTL)";
  TempDir dir;
  const std::string out = dir.file("rtl");
  const CliRun r = run_sat("sim --model lenet5 --nm 2:8 --batch 1 --rtl --set pe=" + rtl_pe() + " --quiet --out '" +
                           out + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("RTL PE array (gemm_core rtl)"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(read_file(out + "/report.json"));
  EXPECT_EQ(j["gemm_core"]["kind"], "rtl");
  EXPECT_GT(j["gemm_core"]["gemm_instructions"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["gemm_core"]["cycles_differ"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["config"]["gemm_core"], "rtl");
  // The default array is not the Verilated one: refused with the setting to use.
  expect_cli_error("sim --model lenet5 --batch 1 --rtl --quiet --out '" + dir.file("bad") + "'",
                   "pe=" + rtl_pe());
}
