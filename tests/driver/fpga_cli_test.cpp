// `sat devices` and the fpga backend through the CLI, with and without XRT's no-op shim. Each
// `sat` runs in a child process, so each picks its XRT shim from the environment the test sets.
#include <gtest/gtest.h>

#include <filesystem>

#include "noop_env.hpp"
#include "run_cli.hpp"
#include "sat/npy.hpp"
#include "sat_driver/xclbin_writer.hpp"
#include "temp_dir.hpp"

using namespace sat::test;

namespace {

std::string sat_xclbin(const TempDir& dir, const std::string& name = "sat.xclbin",
                       const std::string& version = "") {
  sat::driver::XclbinSpec spec = sat::driver::sat_xclbin_spec(64ull << 20);
  if (!version.empty()) spec.interface_version = version;
  sat::driver::write_xclbin_file(dir.file(name), spec);
  return dir.file(name);
}

// XILINX_XRT staged over the real (PCIe) shim: what a machine with XRT and no card has.
class NoShim {
 public:
  NoShim() : mode_("XCL_EMULATION_MODE", nullptr) {
    std::filesystem::create_directory_symlink(std::filesystem::path(noop_library()).parent_path(), dir_.file("lib"));
    xrt_ = std::make_unique<ScopedEnv>("XILINX_XRT", dir_.path().c_str());
  }

 private:
  TempDir dir_;
  ScopedEnv mode_;
  std::unique_ptr<ScopedEnv> xrt_;
};

}  // namespace

TEST(DevicesCli, SaysWhyItSeesNoCardWithoutTheShim) {
  SAT_REQUIRE_NOOP_SHIM();
  {
    ScopedEnv x("XILINX_XRT", nullptr), m("XCL_EMULATION_MODE", nullptr);
    const CliRun r = run_sat("devices");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("no FPGA card: XILINX_XRT is not set"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("source /opt/xilinx/xrt/setup.sh"), std::string::npos) << r.out;
  }
  {
    NoShim real;
    const CliRun r = run_sat("devices");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("no FPGA card: XRT finds no card"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("xocl"), std::string::npos) << r.out;
  }
}

TEST(DevicesCli, ListsTheShimsCardAndTheBanksOfAnXclbin) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  const CliRun r = run_sat("devices");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("card 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("XRT's no-op shim (XCL_EMULATION_MODE=noop): no board"), std::string::npos) << r.out;
  const CliRun b = run_sat("devices --xclbin '" + sat_xclbin(dir) + "'");
  EXPECT_EQ(b.status, 0) << b.out;
  EXPECT_NE(b.out.find("gmem1       register 0x030  bank 1 DDR[1], 64 MiB"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("insns       register 0x010  bank 0 DDR[0]"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("status      register 0x0c0  64 bytes"), std::string::npos) << b.out;
  expect_usage_error("devices --device 1", "--device needs --xclbin FILE");
  expect_cli_error("devices --xclbin '" + dir.file("none.xclbin") + "'", "does not exist");
}

TEST(FpgaCli, TrainOpAndReplayReachTheCardAndStopWhereTheShimDoes) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  const std::string x = sat_xclbin(dir);
  const std::string no_kernel = "no-op shim runs no kernel";
  expect_cli_error("train --model mlp --data synthetic --train-limit 64 --test-limit 32 --epochs 1 --batch 16 "
                   "--no-progress --out '" + dir.file("run") + "' --backend fpga --xclbin '" + x + "'",
                   no_kernel);
  sat::npy_write(dir.file("a.npy"), {8, 16}, std::vector<float>(128, 0.5f));
  sat::npy_write(dir.file("w.npy"), {8, 16}, std::vector<float>(128, 0.25f));
  expect_cli_error("op gemm --mode ff --nm 2:8 --a '" + dir.file("a.npy") + "' --b '" + dir.file("w.npy") +
                   "' --out '" + dir.file("c.npy") + "' --backend fpga --xclbin '" + x + "'", no_kernel);
  EXPECT_FALSE(std::filesystem::exists(dir.file("c.npy")));
  const std::string trace = dir.file("mlp.sattrace");
  ASSERT_EQ(run_sat("compile --model mlp --batch 4 --inference --emit '" + trace + "'").status, 0);
  expect_cli_error("replay '" + trace + "' --backend fpga --xclbin '" + x + "'", no_kernel);
  // --report is no longer refused for the board: the counters come with the status words, which
  // the shim cannot give.
  expect_cli_error("replay '" + trace + "' --backend fpga --xclbin '" + x + "' --report '" + dir.file("r.json") + "'",
                   no_kernel);
  EXPECT_FALSE(std::filesystem::exists(dir.file("r.json")));
  expect_cli_error("replay '" + trace + "' --backend fpga --xclbin '" + sat_xclbin(dir, "old.xclbin", "0x01000000") + "'",
                   "was built for interface version 0x01000000");
  expect_cli_error("replay '" + trace + "' --backend fpga --xclbin '" + x + "' --device 3:", "opening the card at PCIe BDF 3:");
  {
    NoShim real;   // no card on this machine: the driver says which one it could not open
    expect_cli_error("replay '" + trace + "' --backend fpga --xclbin '" + x + "'",
                     "opening card 0 failed: Could not open device with index '0'");
  }
}

TEST(XclbinTool, WritesTheKernelsXclbinAndRefusesBadFlags) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  auto tool = [](const std::string& args) { return run_command("'" + std::string(SAT_XCLBIN_TOOL) + "' " + args); };
  const CliRun ok = tool("'" + dir.file("a.xclbin") + "' --bank-mib 256");
  ASSERT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("kernel sat_top, 4 banks of 256 MiB"), std::string::npos) << ok.out;
  const CliRun banks = run_sat("devices --xclbin '" + dir.file("a.xclbin") + "'");
  EXPECT_NE(banks.out.find("bank 3 DDR[3], 256 MiB"), std::string::npos) << banks.out;
  ASSERT_EQ(tool("'" + dir.file("v.xclbin") + "' --kernel vadd").status, 0);
  expect_cli_error("devices --xclbin '" + dir.file("v.xclbin") + "'", "has no kernel 'sat_top' (it holds: vadd)");
  ASSERT_EQ(tool("'" + dir.file("n.xclbin") + "' --interface-version none").status, 0);
  expect_cli_error("devices --xclbin '" + dir.file("n.xclbin") + "'", "carries no SAT interface version");
  EXPECT_EQ(tool("").status, 2);
  EXPECT_EQ(tool("a b").status, 2);
  const CliRun bad = tool("'" + dir.file("b.xclbin") + "' --bank-mib 0");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("--bank-mib must be between 1 and 16777216, got '0'"), std::string::npos) << bad.out;
  EXPECT_EQ(tool("--frob").status, 2);
  EXPECT_EQ(tool("'" + dir.file("none/x.xclbin") + "'").status, 1);
}

TEST(FpgaCli, BoardFlagsAreRefusedWhereTheyDoNotApply) {
  TempDir dir;
  expect_usage_error("train --model mlp --xclbin '" + dir.file("x.xclbin") + "'",
                     "--xclbin applies to --backend fpga only (the backend is 'cpu')");
  expect_usage_error("op gemm --mode wu --a a.npy --b b.npy --out c.npy --backend hls --device 0",
                     "--device applies to --backend fpga only (the backend is 'hls')");
  expect_usage_error("train --model mlp --backend fpga --xclbin ''", "--xclbin: the path is empty");
  expect_cli_error("train --model mlp --backend fpga --xclbin '" + dir.file("x.xclbin") + "'", "x.xclbin' does not exist");
  expect_cli_error("eval --checkpoint '" + dir.file("none.sat") + "' --backend fpga", "needs the SAT xclbin");
}
