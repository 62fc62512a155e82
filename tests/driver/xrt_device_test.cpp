// The `fpga` device on real XRT under its no-op shim (noop_env.hpp): the xclbin the tests write
// (sat_xclbin), opening, loading and checking it, the buffers' banks, sizes and offsets, partial
// transfers, and every error path, each of which must leave no XRT object held. Running the kernel
// is where the shim stops: its wait() returns at once and its registers cannot be read, so the run
// tests check that a run says so and inject the wait of a kernel that never completes.
#include <gtest/gtest.h>

#include <xrt/xclbin.h>
#include <experimental/xrt_xclbin.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "expect_error.hpp"
#include "noop_env.hpp"
#include "sat/accelerator.hpp"
#include "sat/arch/interface.hpp"
#include "sat/backend.hpp"
#include "sat_driver/xclbin_writer.hpp"
#include "sat_driver/xrt_device.hpp"
#include "temp_dir.hpp"

using namespace sat;
using sat::driver::LiveHandles;
using sat::driver::live_xrt_handles;
using sat::test::expect_error;
using sat::test::TempDir;

namespace {

const auto* const g_noop = ::testing::AddGlobalTestEnvironment(new sat::test::NoopEnvironment);

constexpr uint64_t kBank = 64ull << 20;   // 64 MiB banks: small enough for any CI machine

std::string write_spec(const TempDir& dir, const driver::XclbinSpec& spec, const std::string& name = "sat.xclbin") {
  const std::string path = dir.file(name);
  driver::write_xclbin_file(path, spec);
  return path;
}

std::unique_ptr<Device> open(const std::string& xclbin, const std::string& device = "0") {
  driver::XrtOptions o;
  o.xclbin = xclbin;
  o.device = device;
  return driver::open_xrt_device(o);
}

// Expects opening `xclbin` on `device` to fail naming every one of `parts`, with nothing held.
void expect_open_error(const std::string& xclbin, std::initializer_list<std::string> parts,
                       const std::string& device = "0") {
  expect_error([&] { open(xclbin, device); }, parts);
  EXPECT_EQ(live_xrt_handles().total(), 0) << "an XRT object outlived the error";
}

}  // namespace

TEST(XclbinWriter, WritesTheContractsArgumentsAndXrtReadsThemBack) {
  const driver::XclbinSpec spec = driver::sat_xclbin_spec(kBank);
  ASSERT_EQ(static_cast<int>(spec.args.size()), arch::kNumTopArgs);
  const std::vector<char> bytes = driver::write_xclbin(spec);
  ASSERT_GE(bytes.size(), sizeof(axlf));
  EXPECT_EQ(std::memcmp(bytes.data(), "xclbin2", 8), 0);
  axlf top;
  std::memcpy(&top, bytes.data(), sizeof top);
  EXPECT_EQ(top.m_header.m_length, bytes.size());
  EXPECT_EQ(top.m_header.m_numSections, 5u);

  // XRT's own parser is the judge of the file.
  const xrt::xclbin x(bytes);
  const xrt::xclbin::kernel k = x.get_kernel(arch::kTopName);
  const std::vector<xrt::xclbin::arg> args = k.get_args();
  ASSERT_EQ(static_cast<int>(args.size()), arch::kNumTopArgs);
  uint64_t last_end = 0x10;   // after the block-level control registers
  for (int i = 0; i < arch::kNumTopArgs; ++i) {
    const arch::TopArg& t = arch::kTopArgs[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(args[i].get_name(), t.name);
    EXPECT_GE(args[i].get_offset(), last_end) << "registers overlap";
    last_end = args[i].get_offset() + args[i].get_size();
    const bool pointer = t.kind == arch::TopArgKind::ddr || t.kind == arch::TopArgKind::insn_stream;
    ASSERT_EQ(args[i].get_mems().size(), pointer ? 1u : 0u);
    if (pointer) {
      EXPECT_EQ(args[i].get_mems()[0].get_index(), t.channel < 0 ? 0 : t.channel);
    }
  }
  EXPECT_EQ(args[arch::kNumTopArgs - 1].get_size(), 4u * isa::kStatusWords);
  EXPECT_LE(last_end, 0x1000u) << "outside the control space the metadata declares";
  ASSERT_EQ(static_cast<int>(x.get_mems().size()), arch::kDdrChannels);
  for (const auto& m : x.get_mems()) EXPECT_EQ(m.get_size_kb() * 1024, kBank);

  // The same spec gives the same bytes (and UUID); another spec another UUID.
  EXPECT_EQ(driver::write_xclbin(spec), bytes);
  driver::XclbinSpec other = spec;
  other.interface_version = "0x00000001";
  EXPECT_NE(xrt::xclbin(driver::write_xclbin(other)).get_uuid(), x.get_uuid());

  driver::XclbinSpec bad = spec;
  bad.kernel = std::string(80, 'k');
  expect_error([&] { driver::write_xclbin(bad); }, {"longer than its field"});
}

TEST(XrtDevice, OpensLoadsAndPlacesEveryBufferInItsArgumentsBank) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  const std::string xclbin = write_spec(dir, driver::sat_xclbin_spec(kBank));
  {
    std::unique_ptr<Device> dev = open(xclbin);
    EXPECT_EQ(dev->name(), "fpga");
    EXPECT_NE(dev->description().find("no-op shim"), std::string::npos) << dev->description();
    auto& xd = dynamic_cast<driver::XrtDevice&>(*dev);
    EXPECT_EQ(xd.xclbin_uuid(), xrt::xclbin(xclbin).get_uuid().to_string());
    const LiveHandles open_handles = live_xrt_handles();
    EXPECT_EQ(open_handles.devices, 1);
    EXPECT_EQ(open_handles.kernels, 1);
    EXPECT_EQ(open_handles.buffers, 0);

    // The placement is what XRT's group_id says, which the xclbin's connectivity set.
    const auto& p = xd.placement();
    ASSERT_EQ(static_cast<int>(p.size()), arch::kNumTopArgs);
    for (int i = 0; i < arch::kNumTopArgs; ++i) {
      const arch::TopArg& t = arch::kTopArgs[i];
      SCOPED_TRACE(t.name);
      EXPECT_EQ(p[i].name, t.name);
      if (t.kind == arch::TopArgKind::ddr) {
        EXPECT_EQ(p[i].bank, t.channel);
        EXPECT_EQ(p[i].bank_tag, "DDR[" + std::to_string(t.channel) + "]");
        EXPECT_EQ(p[i].bank_bytes, kBank);
      } else if (t.kind == arch::TopArgKind::insn_stream) {
        EXPECT_EQ(p[i].bank, 0);
      } else {
        EXPECT_EQ(p[i].bank, -1);
      }
    }
    const driver::XclbinSpec spec = driver::sat_xclbin_spec(kBank);
    for (int i = 0; i < arch::kNumTopArgs; ++i) EXPECT_EQ(p[i].offset, spec.args[i].offset) << p[i].name;

    // One buffer per channel, in that channel's bank, at least the size asked for; a channel the
    // program leaves empty still gets a (minimal) buffer, and reports the 0 bytes it was given.
    const ChannelBytes sizes = {1u << 20, (3u << 19) + 100, 4096, 0};
    std::unique_ptr<DeviceMemory> mem = dev->allocate(sizes);
    auto& xm = dynamic_cast<driver::XrtMemory&>(*mem);
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      SCOPED_TRACE(c);
      EXPECT_EQ(xm.bank(c), c);
      EXPECT_EQ(mem->bytes(c), sizes[c]);
      EXPECT_GE(xm.buffer_bytes(c), sizes[c]);
      EXPECT_GT(xm.buffer_bytes(c), 0u);
      EXPECT_EQ(xm.buffer_bytes(c) % 4096, 0u) << "whole pages";
      EXPECT_EQ(xm.device_address(c), 0xdeadbeefu) << "the no-op shim's fake address; a card gives a real one";
    }
    EXPECT_EQ(live_xrt_handles().buffers, arch::kDdrChannels);

    // Partial transfers land at their offsets and touch nothing else; a new memory reads as zero.
    std::vector<uint8_t> pattern(1000);
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 1);
    mem->write(1, 12345, pattern.data(), pattern.size());
    std::vector<uint8_t> back(1200, 0xaa);
    mem->read(1, 12345 - 100, back.data(), back.size());
    for (size_t i = 0; i < 100; ++i) ASSERT_EQ(back[i], 0) << "byte before the region at " << i;
    for (size_t i = 0; i < pattern.size(); ++i) ASSERT_EQ(back[100 + i], pattern[i]) << "at " << i;
    for (size_t i = 1100; i < back.size(); ++i) ASSERT_EQ(back[i], 0) << "byte after the region at " << i;
    mem->write(0, sizes[0] - 4, pattern.data(), 4);   // the last bytes of a channel
    uint32_t last = 0;
    mem->read(0, sizes[0] - 4, &last, 4);
    EXPECT_EQ(std::memcmp(&last, pattern.data(), 4), 0);
    uint8_t buf[64] = {};
    expect_error([&] { mem->write(0, sizes[0] - 8, buf, 64); }, {"device 'fpga'", "channel 0"});
    expect_error([&] { mem->read(3, 0, buf, 1); }, {"channel 3 (0 bytes)"});
    expect_error([&] { mem->read(9, 0, buf, 1); }, {"DDR channel 9 does not exist"});
    expect_error([&] { dev->allocate({kBank + 64, 0, 0, 0}); }, {"needs " + std::to_string(kBank + 64) + " bytes on DDR channel 0", "DDR[0]"});
    EXPECT_EQ(live_xrt_handles().buffers, arch::kDdrChannels) << "the refused allocation holds nothing";

    std::vector<isa::Insn> insns(3, isa::make_insn(isa::OP_FINISH));
    std::unique_ptr<DeviceStream> stream = dev->load(insns);
    EXPECT_EQ(stream->size(), 3u);
    EXPECT_EQ(live_xrt_handles().buffers, arch::kDdrChannels + 1);

    // The memory and the stream keep the card open after the device goes, and release it last.
    dev.reset();
    EXPECT_EQ(live_xrt_handles().devices, 1);
    mem->write(2, 0, pattern.data(), 16);
    stream.reset();
    mem.reset();
  }
  EXPECT_EQ(live_xrt_handles().total(), 0);
}

TEST(XrtDevice, ARunNeedsACardTheNoopShimRunsNothing) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  const std::string xclbin = write_spec(dir, driver::sat_xclbin_spec(kBank));
  {
    std::unique_ptr<Device> dev = open(xclbin);
    std::unique_ptr<DeviceMemory> mem = dev->allocate({4096, 4096, 4096, 4096});
    std::unique_ptr<DeviceStream> stream = dev->load({isa::make_insn(isa::OP_FINISH)});
    // The shim's wait() completes at once without running; the status words then cannot be read.
    expect_error([&] { dev->run(*stream, *mem, std::chrono::milliseconds(1000)); },
                 {"reading the status words of sat_top", "no-op shim runs no kernel", "a run needs a card"});
    EXPECT_EQ(live_xrt_handles().runs, 0) << "the failed run was released";
    // A stream or memory of another device is refused before XRT sees it.
    std::unique_ptr<Device> other = open(xclbin);
    std::unique_ptr<DeviceStream> foreign = other->load({isa::make_insn(isa::OP_FINISH)});
    expect_error([&] { dev->run(*foreign, *mem, std::chrono::milliseconds(0)); }, {"made by another device"});
    HostDeviceMemory host("hls", {64, 64, 64, 64});
    expect_error([&] { dev->run(*stream, host, std::chrono::milliseconds(0)); }, {"made by another device"});
  }
  EXPECT_EQ(live_xrt_handles().total(), 0);
}

TEST(XrtDevice, ARunThatNeverCompletesTimesOutAndIsStopped) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  driver::XrtOptions o;
  o.xclbin = write_spec(dir, driver::sat_xclbin_spec(kBank));
  std::chrono::milliseconds seen{-1};
  int runs_while_waiting = -1;
  // A kernel that never finishes: the wait sees the whole timeout pass.
  o.wait_override = [&](std::chrono::milliseconds timeout) {
    seen = timeout;
    runs_while_waiting = live_xrt_handles().runs;
    return driver::WaitOutcome::timed_out;
  };
  {
    std::unique_ptr<Device> dev = driver::open_xrt_device(o);
    std::unique_ptr<DeviceMemory> mem = dev->allocate({4096, 4096, 4096, 4096});
    std::unique_ptr<DeviceStream> stream = dev->load({isa::make_insn(isa::OP_FINISH)});
    const RunResult r = dev->run(*stream, *mem, std::chrono::milliseconds(250));
    // The wait gets what is left of the timeout after the start: all of it but the microseconds
    // between the two.
    EXPECT_LE(seen, std::chrono::milliseconds(250));
    EXPECT_GE(seen, std::chrono::milliseconds(200));
    EXPECT_EQ(runs_while_waiting, 1);
    EXPECT_TRUE(r.timed_out);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(live_xrt_handles().runs, 0);
    // What the shared host logic makes of it (the AcceleratorBackend's check of every run).
    expect_error([&] { check_run(*dev, r, "the training step"); },
                 {"device 'fpga'", "the training step", "did not finish before the timeout", "SAT_DEVICE_TIMEOUT_S"});
  }
  EXPECT_EQ(live_xrt_handles().total(), 0);
}

// start() returns with the run in flight: the memory takes partial writes before wait(), which
// waits for what is left of the timeout. Under the shim wait() would return at once, so the wait
// hook stands in for the kernel; it sees the run live and the write already on the card's buffer.
// A started run dropped without wait() is waited for before its buffers can go.
TEST(XrtDevice, AStartedRunTakesWritesBeforeItIsWaitedFor) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  driver::XrtOptions o;
  o.xclbin = write_spec(dir, driver::sat_xclbin_spec(kBank));
  std::vector<std::string> order;
  int runs_while_waiting = -1;
  o.wait_override = [&](std::chrono::milliseconds) {
    order.push_back("wait");
    runs_while_waiting = live_xrt_handles().runs;
    return driver::WaitOutcome::timed_out;   // the shim has no status words to read after a completion
  };
  {
    std::unique_ptr<Device> dev = driver::open_xrt_device(o);
    std::unique_ptr<DeviceMemory> mem = dev->allocate({4096, 4096, 4096, 4096});
    std::unique_ptr<DeviceStream> stream = dev->load({isa::make_insn(isa::OP_FINISH)});
    std::unique_ptr<DeviceRun> run = dev->start(*stream, *mem, std::chrono::milliseconds(1000));
    order.push_back("started");
    EXPECT_EQ(live_xrt_handles().runs, 1) << "the run is in flight after start()";
    const uint32_t batch[4] = {1, 2, 3, 4};
    mem->write(1, 256, batch, sizeof batch);
    order.push_back("write");
    const RunResult r = run->wait();
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(order, (std::vector<std::string>{"started", "write", "wait"}));
    EXPECT_EQ(runs_while_waiting, 1);
    EXPECT_EQ(live_xrt_handles().runs, 0);
    uint32_t back[4] = {};
    mem->read(1, 256, back, sizeof back);
    EXPECT_EQ(std::memcmp(back, batch, sizeof batch), 0);
    expect_error([&] { run->wait(); }, {"already taken"});

    order.clear();
    { std::unique_ptr<DeviceRun> dropped = dev->start(*stream, *mem, std::chrono::milliseconds(1000)); }
    EXPECT_EQ(order, (std::vector<std::string>{"wait"})) << "a dropped run is waited for";
    EXPECT_EQ(live_xrt_handles().runs, 0);
  }
  EXPECT_EQ(live_xrt_handles().total(), 0);
}

TEST(XrtDevice, EveryBadXclbinIsRefusedByNameWithNothingHeld) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  const driver::XclbinSpec good = driver::sat_xclbin_spec(kBank);
  const std::string ok = write_spec(dir, good, "ok.xclbin");

  expect_open_error("", {"needs the SAT xclbin", "--xclbin FILE", "SAT_XCLBIN"});
  expect_open_error(dir.file("none.xclbin"), {"none.xclbin", "does not exist"});
  expect_open_error(dir.path(), {"is not a file"});

  // Malformed: not an xclbin, cut short, a section table past the end, bad metadata JSON.
  {
    std::ofstream(dir.file("text.xclbin")) << "this is not an xclbin\n";
    expect_open_error(dir.file("text.xclbin"), {"text.xclbin", "malformed", "axlf magic"});
    std::vector<char> bytes = driver::write_xclbin(good);
    std::ofstream(dir.file("cut.xclbin"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    expect_open_error(dir.file("cut.xclbin"), {"cut.xclbin", "malformed", "truncated"});
    std::vector<char> far = bytes;
    axlf_section_header h;
    std::memcpy(&h, far.data() + offsetof(axlf, m_sections), sizeof h);
    h.m_sectionSize = far.size();
    std::memcpy(far.data() + offsetof(axlf, m_sections), &h, sizeof h);
    std::ofstream(dir.file("far.xclbin"), std::ios::binary).write(far.data(), static_cast<std::streamsize>(far.size()));
    expect_open_error(dir.file("far.xclbin"), {"far.xclbin", "malformed", "outside the file"});
  }

  driver::XclbinSpec s = good;
  s.kernel = "vadd";
  expect_open_error(write_spec(dir, s, "vadd.xclbin"), {"vadd.xclbin", "has no kernel 'sat_top'", "it holds: vadd"});

  s = good;
  s.interface_version = "0x01abcdef";
  expect_open_error(write_spec(dir, s, "old.xclbin"),
                    {"old.xclbin", "interface version 0x01abcdef", "rebuild the bitstream and the host"});
  s.interface_version = "";
  expect_open_error(write_spec(dir, s, "unstamped.xclbin"),
                    {"carries no SAT interface version", "xclbinutil --key-value USER:sat_interface_version:"});

  s = good;
  s.args.pop_back();   // no status words
  expect_open_error(write_spec(dir, s, "short.xclbin"), {"with 10 arguments", "the contract has 11"});
  s = good;
  std::swap(s.args[2].name, s.args[3].name);
  expect_open_error(write_spec(dir, s, "swapped.xclbin"), {"argument 2 'gmem1'", "the contract has 'gmem0'"});
  s = good;
  s.args[1].size = 8;   // count as a 64-bit register
  expect_open_error(write_spec(dir, s, "wide.xclbin"), {"'count'", "of 8 bytes", "a 32-bit register"});

  // A good xclbin on a card the shim does not have, or not a card at all.
  expect_open_error(ok, {"opening the card at PCIe BDF 0000:65:00.1", "no-op shim", "use an index"}, "0000:65:00.1");
  expect_open_error(ok, {"'card-one' is neither a card index", "PCIe BDF"}, "card-one");

  // And after all of that, the good one still opens.
  EXPECT_NO_THROW(open(ok));
  EXPECT_EQ(live_xrt_handles().total(), 0);
}

TEST(FpgaBackend, IsTheAcceleratorBackendOverTheXrtDevice) {
  SAT_REQUIRE_NOOP_SHIM();
  TempDir dir;
  const std::string xclbin = write_spec(dir, driver::sat_xclbin_spec(kBank));
  {
    sat::test::ScopedEnv env("SAT_XCLBIN", xclbin.c_str());
    std::unique_ptr<Device> dev = open_device("fpga");
    EXPECT_EQ(dev->name(), "fpga");
    EXPECT_NE(dynamic_cast<driver::XrtDevice*>(dev.get()), nullptr);
    std::unique_ptr<Backend> b = open_backend("fpga");
    EXPECT_EQ(b->name(), "fpga");
    // The backend's gemm runs the shared host logic up to the run, which the shim cannot do.
    const std::vector<float> a(8 * 16, 0.5f), w(8 * 16, 0.25f);
    expect_error([&] { b->gemm(GemmMode::ff, NM{2, 8}, a, {8, 16}, w, {8, 16}, nullptr); },
                 {"device 'fpga'", "no-op shim runs no kernel"});
  }
  {
    sat::test::ScopedEnv env("SAT_XCLBIN", nullptr);
    expect_error([] { open_device("fpga"); }, {"needs the SAT xclbin", "--xclbin"});
  }
  EXPECT_EQ(live_xrt_handles().total(), 0);
}
