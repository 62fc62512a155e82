// `sat compile --emit` and `sat replay` as a user runs them: a LeNet-5 training-step trace replays on
// hls with every region equal; damaged traces and wrong devices are refused with the reason; and
// `sat info` names the backends and the interface version.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend_built.hpp"
#include "run_cli.hpp"
#include "sat/arch/interface.hpp"
#include "sat/io.hpp"
#include "temp_dir.hpp"

using namespace sat::test;

namespace {

void write_bytes(const std::string& path, const std::string& b) { std::ofstream(path, std::ios::binary) << b; }

}  // namespace

TEST(ReplayCli, LeNet5StepTraceReplaysOnHls) {
  TempDir dir;
  const std::string trace = dir.file("lenet5.sattrace");
  const CliRun c = run_sat("compile --model lenet5 --batch 8 --emit '" + trace + "'");
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_NE(c.out.find("reference run on hls: ok"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("lenet5 bdwp 2:8 batch 8 training step"), std::string::npos) << c.out;
  const CliRun r = run_sat("replay '" + trace + "' --backend hls");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("the device matches the trace"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("MISMATCH"), std::string::npos) << r.out;

  // The same trace, damaged: every way is refused with its reason and exit status 1.
  const std::string bytes = sat::read_file(trace);
  std::string flipped = bytes;
  flipped[bytes.size() / 3] ^= 0x04;
  write_bytes(dir.file("flipped"), flipped);
  write_bytes(dir.file("cut"), bytes.substr(0, bytes.size() - 100));
  for (const auto& [file, reason] : {std::pair<std::string, std::string>{"flipped", "checksum mismatch"},
                                     {"cut", "is truncated"}}) {
    const CliRun bad = run_sat("replay '" + dir.file(file) + "'");
    EXPECT_EQ(bad.status, 1) << bad.out;
    EXPECT_NE(bad.out.find(reason), std::string::npos) << bad.out;
    EXPECT_NE(bad.out.find(dir.file(file)), std::string::npos) << "names the file: " << bad.out;
  }
}

TEST(ReplayCli, BadUsesAreRefused) {
  TempDir dir;
  const std::string trace = dir.file("mlp.sattrace");
  ASSERT_EQ(run_sat("compile --model mlp --batch 4 --inference --emit '" + trace + "'").status, 0);
  expect_cli_error("replay '" + trace + "' --backend cpu", "does not run instruction streams");
  expect_cli_error("replay '" + trace + "' --backend fpga", sat::test::fpga_unopened_error());
  {
    // The C-simulation reports the kernel's counters, without cycles: it has no clock.
    const CliRun r = run_sat("replay '" + trace + "' --report " + dir.file("r.json"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("hls: no clock (cycles not counted), PE array busy "), std::string::npos) << r.out;
    const nlohmann::json j = nlohmann::json::parse(sat::read_file(dir.file("r.json")));
    EXPECT_EQ(j["source"], "kernel status words");
    EXPECT_FALSE(j.contains("cycles")) << j.dump();
    EXPECT_FALSE(j.contains("macs")) << j.dump();
    EXPECT_GT(j["busy"]["GEMM"].get<uint64_t>(), 0u);
    EXPECT_GT(j["dram_bytes_read"].get<uint64_t>(), 0u);
    EXPECT_GT(j["dram_bytes_written"].get<uint64_t>(), 0u);
  }
  expect_usage_error("replay", "the trace FILE is missing");
  expect_usage_error("replay --backend hls", "the trace FILE is missing");
  expect_cli_error("replay '" + dir.file("none.sattrace") + "'", "none.sattrace");
  expect_usage_error("replay '" + trace + "' --speed 2", "--speed");
  expect_usage_error("compile --model mlp --reference hls", "--reference needs --emit FILE");
  expect_cli_error("compile --model mlp --emit '" + dir.file("x") + "' --reference cpu",
                   "does not run instruction streams");
}

TEST(InfoCli, NamesBackendsAndTheInterfaceVersion) {
  const CliRun r = run_sat("info");
  ASSERT_EQ(r.status, 0) << r.out;
  char v[16];
  std::snprintf(v, sizeof v, "0x%08x", sat::arch::kInterfaceVersion);
  EXPECT_NE(r.out.find(v), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hls   available"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(sat::test::backend_built("fpga") ? "fpga  available" : "fpga  not built: needs"), std::string::npos)
      << r.out;
}
