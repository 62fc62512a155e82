// `sat replay TRACE --backend sim --report R.json` as a user runs it: the trace recorded on hls
// replays on the SystemC model with every region equal, and the report holds the documented keys
// (docs/sim.md) with counts that add up.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "run_cli.hpp"
#include "sat/arch/config.hpp"
#include "sat/io.hpp"
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
