// The `hls` device and backend: the conformance suite every accelerator backend passes, and what
// is particular to the C-simulation device (its status block, the timeout, transfers checked
// against the channel sizes).
#include <gtest/gtest.h>

#include <chrono>

#include "backend_built.hpp"
#include "conformance.hpp"
#include "expect_error.hpp"
#include "sat/arch/interface.hpp"
#include "sat/arch/status_text.hpp"
#include "sat/backend.hpp"
#include "sat/device.hpp"
#include "sat_hls/device.hpp"

using namespace sat;
using sat::test::expect_error;

namespace sat::test {
SAT_BACKEND_CONFORMANCE(hls);
}

namespace {

// A stream of `n` FINISH-free V_FILL instructions into channel 0, then FINISH.
std::vector<isa::Insn> fills(int n, uint32_t count) {
  std::vector<isa::Insn> s;
  for (int i = 0; i < n; ++i) {
    isa::Insn in = isa::make_insn(isa::OP_V_FILL, 1);
    in.w[isa::f_V_FILL::y] = isa::make_addr(0, 0);
    in.w[isa::f_V_FILL::count] = count;
    in.w[isa::f_V_FILL::value] = f32_bits(1.5f);
    s.push_back(in);
  }
  s.push_back(isa::make_insn(isa::OP_FINISH));
  return s;
}

}  // namespace

TEST(HlsDevice, RunsAStreamAndReportsItsInterfaceVersion) {
  auto dev = hls::make_hls_device();
  EXPECT_EQ(dev->name(), "hls");
  auto mem = dev->allocate({4096, 0, 0, 0});
  auto stream = dev->load(fills(3, 16));
  EXPECT_EQ(stream->size(), 4u);
  const RunResult r = dev->run(*stream, *mem, std::chrono::milliseconds(0));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r.status[isa::STW_EXECUTED], 3u);
  EXPECT_EQ(r.status[isa::STW_INTERFACE], arch::kInterfaceVersion);
  // The kernel's counters without a clock: three fills of 16 FP32 values, 192 bytes written.
  ASSERT_TRUE(r.counters.has_value());
  EXPECT_EQ(r.counters->source, DeviceCounters::Source::kernel);
  EXPECT_FALSE(r.counters->has_cycles) << "the C-simulation has no clock";
  EXPECT_EQ(r.status[isa::STW_CYCLES_LO], 0u);
  EXPECT_EQ(r.status[isa::STW_CYCLES_HI], 0u);
  EXPECT_EQ(r.status[isa::STW_DRAM_WRITE_LO], 192u);
  EXPECT_EQ(r.counters->dram_bytes_written, 192u);
  EXPECT_EQ(r.counters->dram_bytes_read, 0u);
  EXPECT_EQ(r.counters->busy[isa::UNIT_GEMM], 0u);
  float v[16];
  mem->read(0, 0, v, sizeof v);
  for (float x : v) EXPECT_EQ(x, 1.5f);
}

TEST(HlsDevice, KernelErrorsArriveInTheStatusWords) {
  auto dev = hls::make_hls_device();
  auto mem = dev->allocate({64, 0, 0, 0});
  auto stream = dev->load(fills(1, 1000));   // 4000 bytes into a 64-byte channel
  const RunResult r = dev->run(*stream, *mem, std::chrono::milliseconds(0));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status[isa::STW_CODE], isa::STATUS_BAD_ADDRESS);
  EXPECT_NE(r.message().find("out-of-range DRAM address"), std::string::npos) << r.message();
}

TEST(HlsDevice, ARunPastItsTimeoutStopsAndSaysSo) {
  auto dev = hls::make_hls_device();
  auto mem = dev->allocate({1 << 20, 0, 0, 0});
  auto stream = dev->load(fills(200000, 1 << 18));   // far more than a millisecond of C-simulation
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult r = dev->run(*stream, *mem, std::chrono::milliseconds(1));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_LT(r.status[isa::STW_EXECUTED], 200000u);
  EXPECT_NE(r.message().find("did not finish before the timeout"), std::string::npos) << r.message();
  EXPECT_LT(s, 5.0) << "the timeout did not stop the run";
}

TEST(HlsDevice, TransfersOutsideAChannelAreRefused) {
  auto dev = hls::make_hls_device();
  auto mem = dev->allocate({128, 64, 0, 0});
  char buf[256] = {};
  expect_error([&] { mem->write(0, 100, buf, 64); }, {"device 'hls'", "64 bytes at offset 100", "channel 0 (128 bytes)"});
  expect_error([&] { mem->read(2, 0, buf, 1); }, {"channel 2 (0 bytes)"});
  expect_error([&] { mem->read(7, 0, buf, 1); }, {"DDR channel 7 does not exist"});
  expect_error([&] { dev->allocate({arch::kChannelWindowBytes + 2, 0, 0, 0}); }, {"larger than", "window"});
}

TEST(HlsDevice, RegisteredAsTheHlsBackendAndDevice) {
  EXPECT_EQ(open_backend("hls")->name(), "hls");
  EXPECT_EQ(open_device("hls")->name(), "hls");
  expect_error([] { open_device("cpu"); }, {"backend 'cpu' does not run instruction streams", "hls"});
  if (sat::test::backend_built("fpga")) {
    expect_error([] { open_device("fpga"); }, {"device 'fpga' needs the SAT xclbin", "--xclbin"});
  } else {
    expect_error([] { open_device("fpga"); }, {"backend 'fpga' is not available", "XRT"});
  }
  expect_error([] { open_device("tpu"); }, {"unknown backend 'tpu'"});
}
