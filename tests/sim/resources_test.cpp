// The analytic resource estimate (sat_sim_study/resources.hpp, docs/resources.md): the default
// configuration fits the XCVU9P by the verdict's resources, the counts follow the configuration as
// the model says, an oversized array is refused by name, and `sat sim --resources` writes the
// documented JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "run_cli.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"
#include "sat_sim_study/resources.hpp"
#include "temp_dir.hpp"

using namespace sat::test;
using sat::sim::estimate_resources;
using sat::sim::LogicItem;
using sat::sim::Memory;
using sat::sim::ResourceEstimate;
using sat::sim::SimConfig;

namespace {

int64_t unit_dsp(const ResourceEstimate& e, const std::string& unit) {
  for (const auto& [name, r] : e.by_unit())
    if (name == unit) return r.dsp;
  ADD_FAILURE() << "no unit " << unit;
  return -1;
}

}  // namespace

TEST(Resources, DefaultConfigurationFitsTheXcvu9p) {
  const ResourceEstimate e = estimate_resources(SimConfig{});
  EXPECT_TRUE(e.fits()) << e.verdict();
  EXPECT_LE(e.share_dsp(), 0.80);
  EXPECT_LE(e.share_bram(), 0.80);
  EXPECT_LE(e.share_uram(), 0.80);
  EXPECT_EQ(e.verdict().rfind("fits: DSP ", 0), 0u) << e.verdict();
  // Not trivially empty: the PE array alone is 2,048 multipliers.
  EXPECT_GT(e.total.dsp, 2048);
  EXPECT_GT(e.total.bram + e.total.uram, 0);
  // Units and buffers add up to the totals.
  sat::sim::Resources sum;
  for (const auto& [name, r] : e.by_unit()) sum += r;
  EXPECT_EQ(sum.dsp, e.total.dsp);
  EXPECT_EQ(sum.lut, e.total.lut);
  EXPECT_EQ(sum.ff, e.total.ff);
  EXPECT_EQ(sum.bram, e.total.bram);
  EXPECT_EQ(sum.uram, e.total.uram);
}

TEST(Resources, PeArrayDspsAreMultipliersPlusTheAddersModelled) {
  SimConfig cfg;
  const ResourceEstimate e = estimate_resources(cfg);
  const int64_t pes = int64_t(cfg.pe.rows) * cfg.pe.cols, lanes = cfg.pe.lanes;
  namespace rf = sat::sim::resource_figures;
  // Per PE: `lanes` BF16 multipliers of one DSP48E2 each, lanes/2 lane accumulators as full-DSP
  // FP32 adders, the other lanes in fabric; the drain trees are fabric adders.
  const int64_t expected = pes * lanes * 1 + pes * (lanes / 2) * rf::fp32_add_dsp().dsp;
  EXPECT_EQ(rf::bf16_mul().dsp, 1);
  EXPECT_EQ(rf::fp32_add_dsp().dsp, 2);
  EXPECT_EQ(rf::fp32_add_fabric().dsp, 0);
  EXPECT_EQ(unit_dsp(e, "GEMM"), expected);
  EXPECT_EQ(expected, 4096);
  // Every lane has one accumulator, in DSPs or in fabric.
  int64_t accumulators = 0, multipliers = 0;
  for (const LogicItem& it : e.logic) {
    if (it.unit != "GEMM") continue;
    if (it.what.find("lane accumulators") != std::string::npos) accumulators += it.count;
    if (it.what.find("BF16 multipliers") != std::string::npos) multipliers += it.count;
  }
  EXPECT_EQ(accumulators, pes * lanes);
  EXPECT_EQ(multipliers, pes * lanes);
  // The UPD unit's SGD rule is four fused multiply-adds per lane (arch/sgd_rule.hpp).
  EXPECT_EQ(unit_dsp(e, "UPD"), int64_t(cfg.vector_lanes) * 4 * rf::fp32_fma().dsp);
}

TEST(Resources, MoreColumnsMoreDsps) {
  SimConfig cfg;
  const ResourceEstimate base = estimate_resources(cfg);
  cfg.pe.cols *= 2;
  const ResourceEstimate wide = estimate_resources(cfg);
  EXPECT_GT(wide.total.dsp, base.total.dsp);
  EXPECT_EQ(unit_dsp(wide, "GEMM"), 2 * unit_dsp(base, "GEMM"));
  EXPECT_GT(wide.total.lut, base.total.lut);
}

TEST(Resources, LargerTileMoreBlockMemory) {
  SimConfig cfg;
  const ResourceEstimate base = estimate_resources(cfg);
  cfg.tile_rows *= 2;
  cfg.tile_cols *= 2;
  cfg.tile_k *= 2;
  const ResourceEstimate large = estimate_resources(cfg);
  EXPECT_GT(large.share_bram() + large.share_uram(), base.share_bram() + base.share_uram());
  EXPECT_EQ(large.total.dsp, base.total.dsp);
}

TEST(Resources, OversizedArrayDoesNotFitAndSaysDsp) {
  SimConfig cfg;
  cfg.pe.rows = 32;
  cfg.pe.cols = 32;
  cfg.pe.lanes = 8;
  const ResourceEstimate e = estimate_resources(cfg);   // not validated: the estimate says why
  EXPECT_FALSE(e.fits());
  ASSERT_FALSE(e.over().empty());
  EXPECT_EQ(e.over()[0], "DSP");
  EXPECT_EQ(e.verdict().rfind("does not fit: DSP ", 0), 0u) << e.verdict();
  EXPECT_GT(e.share_dsp(), 1.0);
}

TEST(Resources, BufferPlacementFollowsWidthAndCapacity) {
  // 8,192 bits a cycle from 1 Mbit: 114 ports of 72 bits outnumber the 29 BRAM36 of capacity.
  const auto a = sat::sim::place_buffer({"A", "GEMM", 2, 128 * 512, 16, 512});
  EXPECT_EQ(a.width_bits, 8192);
  EXPECT_EQ(a.bram_option, 114);
  EXPECT_EQ(a.memory, Memory::bram);
  EXPECT_EQ(a.use.bram, 228);
  // Narrow and deep: capacity decides, and URAM's 288 Kb blocks win.
  const auto deep = sat::sim::place_buffer({"deep", "LOAD", 1, 65536, 16, 32});
  EXPECT_EQ(deep.bram_option, 29);
  EXPECT_EQ(deep.uram_option, 8);
  EXPECT_EQ(deep.memory, Memory::uram);
  EXPECT_EQ(deep.use.uram, 8);
  // At most 64 words deep: LUTRAM, 7 bits per eight LUTs at depth 64.
  const auto queue = sat::sim::place_buffer({"queue", "fetch/decode", 1, 64, 512, 1});
  EXPECT_EQ(queue.memory, Memory::lutram);
  EXPECT_EQ(queue.use.lut, (512 + 6) / 7 * 8);
  EXPECT_EQ(queue.use.bram + queue.use.uram, 0);
  EXPECT_THROW(sat::sim::place_buffer({"empty", "VEC", 1, 0, 32, 1}), sat::Error);
}

TEST(Resources, NonPositiveDimensionIsRefusedByName) {
  SimConfig cfg;
  cfg.vector_lanes = 0;
  try {
    estimate_resources(cfg);
    FAIL() << "accepted vector_lanes = 0";
  } catch (const sat::Error& e) {
    EXPECT_NE(std::string(e.what()).find("vector_lanes"), std::string::npos) << e.what();
  }
}

TEST(Resources, JsonHasTheDocumentedKeys) {
  const nlohmann::ordered_json j = estimate_resources(SimConfig{}).to_json();
  for (const char* key : {"device", "limit", "fits", "verdict", "over", "also_over", "total", "utilisation", "units",
                          "logic", "buffers", "config"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* key : {"name", "dsp", "lut", "ff", "bram36", "uram288"}) EXPECT_TRUE(j["device"].contains(key)) << key;
  EXPECT_EQ(j["device"]["name"], "XCVU9P");
  EXPECT_EQ(j["device"]["dsp"], 6840);
  EXPECT_EQ(j["device"]["bram36"], 2160);
  EXPECT_EQ(j["device"]["uram288"], 960);
  for (const char* key : {"dsp", "lut", "ff", "bram36", "uram288"}) {
    EXPECT_TRUE(j["total"].contains(key)) << key;
    EXPECT_TRUE(j["utilisation"].contains(key)) << key;
  }
  EXPECT_EQ(j["fits"], true);
  ASSERT_EQ(j["units"].size(), 10u);   // the nine units and the DDR links
  EXPECT_EQ(j["units"][0]["unit"], "fetch/decode");
  for (const char* key : {"unit", "what", "count", "primitive", "dsp_each", "lut_each", "ff_each", "dsp", "lut", "ff",
                          "source"}) {
    EXPECT_TRUE(j["logic"][0].contains(key)) << key;
  }
  for (const char* key : {"name", "unit", "copies", "elements", "bits", "per_cycle", "width_bits", "capacity_bits",
                          "depth", "bram36_option", "uram288_option", "memory", "bram36", "uram288", "lut"}) {
    EXPECT_TRUE(j["buffers"][0].contains(key)) << key;
  }
  for (const auto& item : j["logic"]) EXPECT_FALSE(item["source"].get<std::string>().empty()) << item["what"];
}

// `sat sim --resources` as an architect runs it: no model, the table, the verdict and resources.json.
TEST(ResourcesCli, SimResourcesPrintsAndWritesTheEstimate) {
  TempDir dir;
  const std::string out = dir.file("res");
  const CliRun r = run_sat("sim --resources --out '" + out + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("XCVU9P"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fits: DSP "), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(sat::read_file(out + "/resources.json"));
  EXPECT_EQ(j["fits"], true);
  EXPECT_EQ(j["device"]["name"], "XCVU9P");
}

TEST(ResourcesCli, OverridesApplyAndANonFittingArrayIsAFindingNotAnError) {
  // 32x16x8 passes the configuration's own DSP check (4,096 multipliers) but not the estimate.
  const CliRun r = run_sat("sim --resources --set pe=32x16x8");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("PE array 32x16x8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("does not fit: DSP "), std::string::npos) << r.out;
}

TEST(ResourcesCli, ResourcesDoesNotCombineWithAStudy) {
  expect_usage_error("sim --resources --sweep 'clock=200,250'", "--sweep");
  expect_usage_error("sim --resources --evaluate x.md", "--evaluate");
  expect_usage_error("sim --resources --model lenet5", "--model");
  expect_usage_error("sim --resources --set speed=2", "unknown setting 'speed'");
}
