// The simulator's study layer: per-instruction records worked out by hand (a token stall, a full
// queue, a bank conflict), the configuration's validation, the physical bounds on single GEMMs of
// many shapes with the gap's cause, and a model step's per-layer report adding up to its total.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "sat/arch/timing.hpp"
#include "sat/compiler.hpp"
#include "sat/error.hpp"
#include "sat/ops.hpp"
#include "sat/backend.hpp"
#include "sat/trace.hpp"
#include "sat/accelerator.hpp"
#include "sat_sim/device.hpp"
#include "sat_sim/study.hpp"

using namespace sat;
using namespace sat::sim;

namespace {

isa::Insn gemm(uint32_t mt, uint32_t nt, uint32_t kt, uint32_t c_bank = 0, bool accumulate = false) {
  isa::Insn in = isa::make_insn(isa::OP_GEMM, accumulate ? 1 : 0);
  in.w[isa::f_GEMM::c_bank] = c_bank;
  in.w[isa::f_GEMM::mt] = mt;
  in.w[isa::f_GEMM::nt] = nt;
  in.w[isa::f_GEMM::kt] = kt;
  in.w[isa::f_GEMM::n] = 1;
  in.w[isa::f_GEMM::m] = 1;
  return in;
}

isa::Insn load(uint32_t rows, uint32_t cols) {
  isa::Insn in = isa::make_insn(isa::OP_LD_2D);
  in.w[isa::f_LD_2D::rows] = rows;
  in.w[isa::f_LD_2D::cols] = cols;
  in.w[isa::f_LD_2D::addr] = isa::make_addr(0, 0);
  in.w[isa::f_LD_2D::row_stride] = cols;
  in.w[isa::f_LD_2D::col_stride] = 1;
  return in;
}

isa::Insn store(uint32_t rows, uint32_t cols, uint32_t c_bank = 0) {
  isa::Insn in = isa::make_insn(isa::OP_ST_2D, 1);   // FP32
  in.w[isa::f_ST_2D::c_bank] = c_bank;
  in.w[isa::f_ST_2D::rows] = rows;
  in.w[isa::f_ST_2D::cols] = cols;
  in.w[isa::f_ST_2D::addr] = isa::make_addr(1, 0);
  in.w[isa::f_ST_2D::row_stride] = cols;
  in.w[isa::f_ST_2D::col_stride] = 1;
  return in;
}

struct Recorded {
  RunResult result;
  std::vector<InsnRecord> records;
  const InsnRecord& at(uint32_t index) const {
    for (const auto& r : records)
      if (r.index == index) return r;
    throw std::runtime_error("no record of instruction " + std::to_string(index));
  }
};

Recorded run(std::vector<isa::Insn> s, const SimConfig& cfg = SimConfig{}) {
  auto dev = make_sim_device(cfg);
  Recorded out;
  dev->record(&out.records);
  auto mem = dev->allocate({1 << 20, 1 << 20, 4096, 4096});
  auto stream = dev->load(s);
  out.result = dev->run(*stream, *mem, std::chrono::milliseconds(0));
  return out;
}

}  // namespace

// GEMM waits for LOAD's token: it stalls on token_LOAD from its enqueue to LOAD's end, starts the
// cycle LOAD ends, and names LOAD as what released it.
TEST(SimRecords, TokenStallByHand) {
  isa::Insn ld = load(128, 512);   // 128 KiB: 2,048 bus beats at least
  isa::set_signal(ld, 1u << isa::UNIT_GEMM);
  isa::Insn g = gemm(128, 128, 512);
  isa::set_wait(g, 1u << isa::UNIT_LOAD);
  const Recorded r = run({ld, g, isa::make_insn(isa::OP_FINISH)});
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  const InsnRecord &l = r.at(0), &m = r.at(1);
  EXPECT_EQ(l.enqueue, 1u);   // fetch: one instruction a cycle
  EXPECT_EQ(m.enqueue, 2u);
  EXPECT_GE(l.end - l.start, 2048u);
  EXPECT_EQ(m.start, l.end);
  EXPECT_EQ(m.stall[static_cast<int>(kStallTokenFirst) + static_cast<int>(isa::UNIT_LOAD)], l.end - m.enqueue);
  EXPECT_EQ(m.release, Release::token);
  EXPECT_EQ(m.released_by, 0);
  EXPECT_EQ(m.end - m.start, arch::gemm_cycles(128, 128, 512, false, 1, 1));
  EXPECT_EQ(r.result.counters->cycles, m.end);
  // The critical path: LOAD then GEMM, and fetch's first cycle.
  const CriticalPath cp = critical_path(r.records);
  EXPECT_EQ(cp.unit[isa::UNIT_LOAD], l.end - l.start);
  EXPECT_EQ(cp.unit[isa::UNIT_GEMM], m.end - m.start);
  EXPECT_EQ(cp.unit[isa::UNIT_LOAD] + cp.unit[isa::UNIT_GEMM] + cp.fetch, m.end);
}

// A full queue holds fetch: with GEMM's queue 2 deep, the fourth GEMM enters only when the second
// leaves the queue (the first ends), and the LOAD behind it starves on `queue` meanwhile.
TEST(SimRecords, FullQueueByHand) {
  SimConfig cfg;
  cfg.insn_queue_depth = 2;
  const uint64_t g = arch::gemm_cycles(16, 16, 128, false, 1, 1);   // 16 steps + 2 cycles
  const Recorded r = run({load(1, 32), gemm(16, 16, 128), gemm(16, 16, 128), gemm(16, 16, 128), gemm(16, 16, 128),
                          load(1, 32), isa::make_insn(isa::OP_FINISH)},
                         cfg);
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  const InsnRecord &g1 = r.at(1), &g4 = r.at(4), &l1 = r.at(0), &l2 = r.at(5);
  EXPECT_EQ(g1.start, 2u);
  EXPECT_EQ(g1.end, 2u + g);
  EXPECT_EQ(g4.enqueue, g1.end);   // the GEMM queue had room again when GEMM 2 started
  EXPECT_EQ(l2.enqueue, g1.end + 1);
  EXPECT_LT(l1.end, g1.end);
  EXPECT_EQ(l2.stall[kStallQueue], l2.enqueue - l1.end);
  EXPECT_EQ(g4.end, 2u + 4 * g);
}

// GEMM accumulating into C bank 0 holds its read port; a STORE of the same bank (no token between
// them, so nothing orders them) waits for the port: a bank conflict. A bank has two ports in all.
TEST(SimRecords, BankConflictByHand) {
  const std::vector<isa::Insn> s = {gemm(128, 128, 512, 0, true), store(16, 16, 0), isa::make_insn(isa::OP_FINISH)};
  Recorded r = run(s);
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  const InsnRecord &m = r.at(0), &st = r.at(1);
  EXPECT_EQ(st.start, m.end);
  EXPECT_EQ(st.stall[kStallBank], m.end - st.enqueue);
  EXPECT_EQ(st.release, Release::bank);
  EXPECT_EQ(st.released_by, 0);
}

// Kept apart from the simulated tests: under AddressSanitizer an exception thrown after SystemC has
// switched coroutine stacks is reported as a stack-use-after-scope (a false positive of ASan's
// stack bookkeeping), so no test throws after it has run the kernel.
TEST(SimConfigFile, BankPortsWithinABramsTwo) {
  SimConfig bad;
  bad.bank_read_ports = 2;
  EXPECT_THROW(bad.validate(), Error) << "two read ports and one write port exceed a BRAM's two ports";
  SimConfig none;
  none.bank_write_ports = 0;
  EXPECT_THROW(none.validate(), Error) << "a bank without a write port cannot be filled";
}

TEST(SimConfigFile, OverridesAndRefusals) {
  SimConfig cfg;
  cfg.apply_json(nlohmann::json::parse(R"({"pe": {"rows": 32}, "clock_mhz": 250, "tile": {"k": 256}})"), "c.json");
  EXPECT_EQ(cfg.pe.rows, 32);
  EXPECT_EQ(cfg.pe.cols, arch::kPeCols);
  EXPECT_EQ(cfg.clock_mhz, 250);
  EXPECT_EQ(cfg.tile_k, 256);
  EXPECT_FALSE(cfg.is_default());
  auto refused = [](const char* text) {
    SimConfig c;
    try {
      c.apply_json(nlohmann::json::parse(text), "c.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(refused(R"({"pe": {"rowz": 8}})").find("unknown key pe.rowz"), std::string::npos);
  EXPECT_NE(refused(R"({"clock": 8})").find("unknown key"), std::string::npos);
  EXPECT_NE(refused(R"({"pe": {"rows": "a"}})").find("pe.rows must be a whole number"), std::string::npos);
  EXPECT_NE(refused(R"({"pe": {"rows": 64, "cols": 64, "lanes": 8}})").find("DSP48E2"), std::string::npos);
  EXPECT_NE(refused(R"({"pe": {"rows": 32}, "tile": {"rows": 16}})").find("smaller than pe.rows"), std::string::npos);
  EXPECT_NE(refused(R"({"tile": {"rows": 256}})").find("outside"), std::string::npos);
  EXPECT_NE(refused(R"({"tile": {"k": 100}})").find("multiple of 16"), std::string::npos);
  EXPECT_NE(refused(R"({"dram": {"timing": "ddr5"}})").find("dram.timing"), std::string::npos);
  EXPECT_NE(refused(R"({"energy": {"pj_bogus": 1}})").find("pj_bogus"), std::string::npos);
  EXPECT_NE(refused(R"([1, 2])").find("JSON object"), std::string::npos);
  SimConfig s;
  apply_setting(s, "pe", "32x16x8");
  EXPECT_EQ(s.pe.rows, 32);
  EXPECT_THROW(apply_setting(s, "pe", "32xx"), Error);
  EXPECT_THROW(apply_setting(s, "speed", "3"), Error);
}

// Physically sound on single products of many shapes: never below the compute bound (MACs over the
// array's MACs a cycle) or the DRAM bound (the busiest channel's bytes over its peak), and the
// report names what takes the gap above the larger one.
TEST(SimBounds, SingleGemmsOfManyShapes) {
  const std::vector<std::tuple<GemmMode, const char*, int64_t, int64_t, int64_t>> shapes = {
      {GemmMode::ff, "dense", 16, 16, 16},   {GemmMode::ff, "dense", 256, 256, 512}, {GemmMode::ff, "2:8", 256, 256, 512},
      {GemmMode::ff, "2:4", 64, 300, 1024},  {GemmMode::ff, "1:8", 128, 64, 2048},   {GemmMode::bp, "2:8", 128, 256, 512},
      {GemmMode::bp, "dense", 33, 100, 64},  {GemmMode::wu, "dense", 64, 128, 576},  {GemmMode::ff, "4:8", 512, 128, 1152},
      {GemmMode::wu, "dense", 512, 64, 64}};
  auto dev = make_sim_device();
  for (const auto& [mode, nm_text, batch, cout, k] : shapes) {
    SCOPED_TRACE(std::string(gemm_mode_name(mode)) + " " + nm_text + " " + std::to_string(batch) + "x" +
                 std::to_string(cout) + "x" + std::to_string(k));
    const NM nm = NM::parse(nm_text);
    std::vector<float> a, b;
    Shape as, bs;
    if (mode == GemmMode::wu) {
      as = {batch, cout};
      bs = {batch, k};
    } else {
      as = {batch, mode == GemmMode::ff ? k : cout};
      bs = {cout, k};
    }
    a.assign(static_cast<size_t>(as[0] * as[1]), 0.5f);
    b.assign(static_cast<size_t>(bs[0] * bs[1]), 0.25f);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 7919) % 13) - 6.0f;
    auto pr = make_gemm_problem(mode, nm, a, as, b, bs);
    GemmProgram gp = compile_gemm(*pr);
    ProgramImage im(*dev, std::move(gp.program));
    upload_state(im, false);
    std::vector<InsnRecord> recs;
    dev->record(&recs);
    const RunResult r = im.run(std::chrono::milliseconds(0));
    dev->record(nullptr);
    ASSERT_TRUE(r.ok()) << r.message();
    const StepReport rep = build_step_report(im.program(), recs, *r.counters, dev->config(), "gemm", r.seconds);
    EXPECT_GT(rep.total.macs, 0u);
    EXPECT_GE(rep.cycles, rep.bounds.compute);
    EXPECT_GE(rep.cycles, rep.bounds.dram);
    EXPECT_FALSE(rep.gap_cause.empty());
    const auto j = report_json(rep);
    EXPECT_GE(j["bounds"]["above_bound"].get<double>(), 1.0);
    // The critical path accounts for every cycle.
    uint64_t path = rep.critical.fetch;
    for (uint64_t u : rep.critical.unit) path += u;
    EXPECT_EQ(path, rep.cycles);
  }
}

// One model step: the per-layer rows add up to the step (cycles, MACs, DRAM bytes), every pass of
// a training step appears, and each unit's busy plus stalled time fits in the step.
TEST(SimStudy, LenetStepReportAddsUp) {
  StepSpec spec;
  spec.model_path = std::string(SAT_SOURCE_DIR) + "/models/lenet5.json";
  spec.nm = NM::parse("2:8");
  spec.batch = 8;
  const StepReport r = simulate_step(spec, SimConfig{});
  ASSERT_GT(r.cycles, 0u);
  uint64_t cycles = 0, macs = 0, bytes = 0;
  std::set<std::string> phases;
  for (const auto& row : r.layers) {
    cycles += row.cycles;
    macs += row.tally.macs;
    bytes += row.tally.dram_bytes();
    phases.insert(row.phase);
  }
  EXPECT_EQ(cycles, r.cycles);
  EXPECT_EQ(macs, r.total.macs);
  EXPECT_EQ(bytes, r.total.dram_bytes());
  for (const char* p : {"ff", "loss", "bp", "wu", "update", "pregen"}) EXPECT_TRUE(phases.count(p)) << p;
  for (int u = 0; u < isa::kNumExecUnits; ++u) EXPECT_LE(r.total.busy[u], r.cycles) << isa::unit_name(u);
  EXPECT_GE(r.cycles, r.bounds.larger());
  EXPECT_GT(r.energy.total(), 0.0);
  EXPECT_GT(r.energy.dynamic(), 0.0);
  const auto j = report_json(r);
  EXPECT_EQ(j["cycles"].get<uint64_t>(), r.cycles);
  EXPECT_EQ(j["layers"].size(), r.layers.size());
  // Over its own span no row, and no pass, can use more of the array than it has.
  for (const auto& l : j["layers"]) {
    EXPECT_LE(l["pe_utilisation"].get<double>(), 1.0) << l["layer"] << " " << l["phase"];
  }
  uint64_t wu_span = 0;
  for (const auto& p : j["phases"]) {
    EXPECT_LE(p["pe_utilisation"].get<double>(), 1.0) << p["phase"];
    EXPECT_LE(p["span_cycles"].get<uint64_t>(), r.cycles) << p["phase"];
    if (p["phase"] == "wu") wu_span = p["span_cycles"].get<uint64_t>();
  }
  EXPECT_EQ(wu_span, phase_span(r, "wu"));
  EXPECT_GT(wu_span, 0u);
  const std::string csv = layers_csv(r);
  EXPECT_EQ(static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')), r.layers.size() + 1);
}

// Another configuration changes the time, never the bits: a bigger array is faster on the same
// stream, and a trace recorded on hls replays bit for bit on the reconfigured model.
TEST(SimStudy, ConfigurationChangesTimeNotBits) {
  StepSpec spec;
  spec.model_path = std::string(SAT_SOURCE_DIR) + "/models/mlp.json";
  spec.batch = 16;
  SimConfig big;
  apply_setting(big, "pe", "32x16x8");
  apply_setting(big, "clock", "250");
  const StepReport a = simulate_step(spec, SimConfig{}), b = simulate_step(spec, big);
  EXPECT_EQ(a.total.macs, b.total.macs);
  EXPECT_LT(b.total.busy[isa::UNIT_GEMM], a.total.busy[isa::UNIT_GEMM]);

  Model model = Model::load(spec.model_path);
  model.regenerate(Method::bdwp);
  ScheduleOptions opt;
  opt.batch = 16;
  auto hls = open_device("hls");
  const Trace t = make_program_trace(model, opt, *hls, 3);
  auto dev = make_sim_device(big);
  const ReplayReport rep = replay_trace(t, *dev);
  EXPECT_TRUE(rep.ok()) << rep.summary();
}
