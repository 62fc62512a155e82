// `sat replay TRACE --backend sim --report R.json` as a user runs it: the trace recorded on hls
// replays on the SystemC model with every region equal, and the report holds the documented keys
// (docs/sim.md) with counts that add up.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "run_cli.hpp"
#include "sat/arch/config.hpp"
#include "sat/io.hpp"
#include "sat/npy.hpp"
#include "temp_dir.hpp"

using namespace sat::test;

TEST(SimCli, ReplayOnSimWritesTheReport) {
  TempDir dir;
  const std::string trace = dir.file("lenet5.sattrace"), report = dir.file("r.json");
  ASSERT_EQ(run_sat("compile --model lenet5 --batch 4 --emit '" + trace + "'").status, 0);
  const CliRun r = run_sat("replay '" + trace + "' --backend sim --report '" + report + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("the device matches the trace"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("simulated cycles per wall second"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(sat::read_file(report));
  for (const char* key : {"cycles", "clock_mhz", "seconds", "macs", "dram_bytes_read", "dram_bytes_written", "busy",
                          "stall", "dram_bytes_read_per_channel", "dram_bytes_written_per_channel"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["clock_mhz"], sat::arch::kClockMHz);
  const uint64_t cycles = j["cycles"];
  EXPECT_GT(cycles, 0u);
  EXPECT_GT(j["macs"].get<uint64_t>(), 0u);
  // No unit is busy longer than the run; the PE array never beats its peak.
  for (const char* unit : {"LOAD", "GEMM", "VEC", "STORE", "UPD", "PGEN"}) {
    EXPECT_LE(j["busy"][unit].get<uint64_t>(), cycles) << unit;
  }
  EXPECT_LE(j["macs"].get<double>(),
            double(cycles) * sat::arch::kPeRows * sat::arch::kPeCols * sat::arch::kPeLanes * sat::arch::kSelectWindowRatio);
  uint64_t sum = 0;
  for (const auto& v : j["dram_bytes_read_per_channel"]) sum += v.get<uint64_t>();
  EXPECT_EQ(sum, j["dram_bytes_read"].get<uint64_t>());
}

// `sat sim` as an architect runs it: the report, the per-layer table and the plots land in --out
// with the documented keys; a bad configuration is refused with the reason; a sweep and an
// ablation write one table each.
TEST(SimCli, SimWritesReportTableAndPlots) {
  TempDir dir;
  const std::string out = dir.file("lenet");
  const CliRun r = run_sat("sim --model lenet5 --nm 2:8 --batch 8 --quiet --out '" + out + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("critical path"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cycles per wall second"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(sat::read_file(out + "/report.json"));
  for (const char* key : {"cycles", "clock_mhz", "macs", "pe_utilisation", "dram_bytes_read", "dram_bytes_written",
                          "dram_gbs_per_channel", "buffer_bytes_read", "busy", "stall_by_cause", "bounds",
                          "critical_path", "energy", "phases", "layers", "config"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  uint64_t sum = 0;
  for (const auto& l : j["layers"]) sum += l["cycles"].get<uint64_t>();
  EXPECT_EQ(sum, j["cycles"].get<uint64_t>());
  const std::string csv = sat::read_file(out + "/layers.csv");
  EXPECT_EQ(csv.rfind("layer,type,phase,first_insn,instructions,start,end,cycles,macs", 0), 0u);
  for (const char* svg : {"/cycles.svg", "/roofline.svg"}) {
    const std::string s = sat::read_file(out + svg);
    EXPECT_NE(s.find("<svg"), std::string::npos) << svg;
    EXPECT_NE(s.find("</svg>"), std::string::npos) << svg;
  }

  sat::atomic_write_file(dir.file("bad.json"), R"({"pe": {"rows": 64, "cols": 64, "lanes": 8}})");
  CliRun bad = run_sat("sim --model lenet5 --batch 8 --quiet --config '" + dir.file("bad.json") + "' --out '" + out + "'");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("DSP48E2"), std::string::npos) << bad.out;
  bad = run_sat("sim --model lenet5 --sweep 'speed=1,2' --quiet --out '" + out + "'");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("unknown setting 'speed'"), std::string::npos) << bad.out;

  const CliRun sw = run_sat("sim --model lenet5 --batch 8 --sweep 'nm=2:8,dense;clock=200,250' --quiet --out '" + out + "'");
  ASSERT_EQ(sw.status, 0) << sw.out;
  const auto rows = nlohmann::json::parse(sat::read_file(out + "/sweep.json"));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0]["point"], "nm=2:8 clock=200");
  EXPECT_EQ(rows[1]["point"], "nm=2:8 clock=250");
  EXPECT_EQ(rows[1]["cycles"].get<uint64_t>() > 0, true);
  EXPECT_NE(sat::read_file(out + "/sweep.svg").find("</svg>"), std::string::npos);

  const CliRun ab = run_sat("sim --model lenet5 --batch 8 --ablate --quiet --out '" + out + "'");
  ASSERT_EQ(ab.status, 0) << ab.out;
  const auto ablation = nlohmann::json::parse(sat::read_file(out + "/ablation.json"));
  // All on, the ten scheduling switches, then the five hardware levers at their plain values.
  ASSERT_EQ(ablation.size(), 16u);
  EXPECT_EQ(ablation[0]["point"], "all on");
  EXPECT_DOUBLE_EQ(ablation[0]["relative_to_first"].get<double>(), 1.0);
  EXPECT_EQ(ablation[4]["point"], "BP convolution off");
  EXPECT_EQ(ablation[5]["point"], "update overlap off");
  EXPECT_EQ(ablation[6]["point"], "balanced K tiles off");
  EXPECT_EQ(ablation[7]["point"], "patch reuse off");
  EXPECT_EQ(ablation[8]["point"], "ReLU fusion off");
  EXPECT_EQ(ablation[9]["point"], "fused pre-generation off");
  EXPECT_EQ(ablation[10]["point"], "phase BP off");
  EXPECT_EQ(ablation[11]["point"], "vector lanes 1");
  EXPECT_EQ(ablation[13]["point"], "vec scratch off");
  EXPECT_EQ(ablation[15]["point"], "bank fill 1 beat");
  // LeNet-5's step is bound by its element-wise work: one lane is far slower than 32.
  EXPECT_GT(ablation[11]["relative_to_first"].get<double>(), 1.5);
  // Two PGENs per weight read the master twice: the fused one is faster.
  EXPECT_GT(ablation[9]["relative_to_first"].get<double>(), 1.0);
}

// `sat op gemm --backend sim --report R.json`: the product's counters.
TEST(SimCli, OpGemmOnSimWritesTheReport) {
  TempDir dir;
  std::vector<float> a(32 * 64, 0.5f), b(16 * 64, 0.25f);
  sat::npy_write(dir.file("a.npy"), {32, 64}, a);
  sat::npy_write(dir.file("b.npy"), {16, 64}, b);
  const std::string args = "op gemm --mode ff --nm 2:8 --a '" + dir.file("a.npy") + "' --b '" + dir.file("b.npy") +
                           "' --out '" + dir.file("c.npy") + "'";
  const CliRun r = run_sat(args + " --backend sim --report '" + dir.file("r.json") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(sat::read_file(dir.file("r.json")));
  EXPECT_EQ(j["macs"].get<uint64_t>(), 32u * 16u * 64u * 2u / 8u);
  EXPECT_GT(j["cycles"].get<uint64_t>(), 0u);
  const CliRun cpu = run_sat(args + " --report '" + dir.file("r2.json") + "'");
  EXPECT_NE(cpu.status, 0);
  EXPECT_NE(cpu.out.find("runs no accelerator device and has no counters"), std::string::npos) << cpu.out;
  // The C-simulation's report: the kernel's counters, no clock. The PE array's busy cycles are the
  // simulator's GEMM busy cycles (both arch::gemm_cycles).
  const CliRun h = run_sat(args + " --backend hls --report '" + dir.file("r3.json") + "'");
  ASSERT_EQ(h.status, 0) << h.out;
  const auto k = nlohmann::json::parse(sat::read_file(dir.file("r3.json")));
  EXPECT_EQ(k["source"], "kernel status words");
  EXPECT_FALSE(k.contains("cycles"));
  EXPECT_EQ(k["busy"]["GEMM"], j["busy"]["GEMM"]);
  EXPECT_EQ(k["dram_bytes_read"], j["dram_bytes_read"]);
  EXPECT_EQ(k["dram_bytes_written"], j["dram_bytes_written"]);
}

// `sat sim --evaluate` takes --set as every other mode does, and its document names the overrides.
TEST(SimCli, EvaluateAppliesSetAndSaysSo) {
  TempDir dir;
  const std::string doc = dir.file("eval.md");
  const CliRun r = run_sat("sim --evaluate '" + doc + "' --batch 1 --set vector_lanes=8 --quiet --out '" +
                           dir.file("runs") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string md = sat::read_file(doc);
  EXPECT_NE(md.find("with the overrides vector_lanes = 8"), std::string::npos) << md.substr(0, 600);
  EXPECT_NE(md.find("8 vector lanes"), std::string::npos) << md.substr(0, 600);
  const auto run = nlohmann::json::parse(sat::read_file(dir.file("runs") + "/lenet5_dense.json"));
  EXPECT_EQ(run["config"]["vector_lanes"], 8);
}
