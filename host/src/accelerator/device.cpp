// The device-independent pieces of sat/device.hpp: transfer checks, the host-RAM channel memories
// and the run result's message.
#include "sat/device.hpp"

#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "sat/arch/status_text.hpp"
#include "sat/error.hpp"

namespace sat {

std::string RunResult::message() const {
  if (timed_out) {
    return "the run did not finish before the timeout (" + std::to_string(status[isa::STW_EXECUTED]) +
           " instructions executed; raise SAT_DEVICE_TIMEOUT_S for a long stream)";
  }
  return isa::status_message(status);
}

DeviceCounters counters_from_status(const StatusWords& st, bool has_cycles) {
  DeviceCounters c;
  c.source = DeviceCounters::Source::kernel;
  c.has_cycles = has_cycles;
  c.cycles = has_cycles ? isa::status_u64(st.data(), isa::STW_CYCLES_LO) : 0;
  c.busy[isa::UNIT_GEMM] = st[isa::STW_GEMM_CYCLES];
  c.dram_bytes_read = isa::status_u64(st.data(), isa::STW_DRAM_READ_LO);
  c.dram_bytes_written = isa::status_u64(st.data(), isa::STW_DRAM_WRITE_LO);
  return c;
}

std::string counters_json(const DeviceCounters& c) {
  const bool sim = c.source == DeviceCounters::Source::simulator;
  nlohmann::ordered_json j;
  j["source"] = sim ? "simulator" : "kernel status words";
  // What a source does not measure is left out rather than written as 0.
  if (c.has_cycles) {
    j["cycles"] = c.cycles;
    j["clock_mhz"] = arch::kClockMHz;
    j["seconds"] = static_cast<double>(c.cycles) / (arch::kClockMHz * 1e6);
  }
  if (sim) j["macs"] = c.macs;
  j["dram_bytes_read"] = c.dram_bytes_read;
  j["dram_bytes_written"] = c.dram_bytes_written;
  if (sim) {
    j["dram_bytes_read_per_channel"] = c.dram_read_bytes;
    j["dram_bytes_written_per_channel"] = c.dram_write_bytes;
  }
  for (const char* what : {"busy", "stall"}) {
    if (!sim && std::string(what) == "stall") continue;
    nlohmann::ordered_json units;
    for (int u = 0; u < isa::kNumExecUnits; ++u) {
      if (!sim && u != isa::UNIT_GEMM) continue;
      units[isa::unit_name(u)] = std::string(what) == "busy" ? c.busy[u] : c.stall[u];
    }
    j[std::string(what)] = units;
  }
  return j.dump(2) + "\n";
}

std::string counters_summary(const DeviceCounters& c) {
  char buf[320];
  std::string s;
  if (c.has_cycles) {
    std::snprintf(buf, sizeof buf, "%llu cycles (%.3f ms at %d MHz), ", static_cast<unsigned long long>(c.cycles),
                  c.cycles / (arch::kClockMHz * 1e3), arch::kClockMHz);
    s += buf;
  } else {
    s += "no clock (cycles not counted), ";
  }
  if (c.source == DeviceCounters::Source::simulator) {
    const double peak = double(c.cycles) * arch::kPeRows * arch::kPeCols * arch::kPeLanes;
    std::snprintf(buf, sizeof buf, "%.1f%% of the PE array's peak, ", c.cycles ? 100.0 * c.macs / peak : 0.0);
  } else {
    std::snprintf(buf, sizeof buf, "PE array busy %llu cycles, ", static_cast<unsigned long long>(c.busy[isa::UNIT_GEMM]));
  }
  s += buf;
  std::snprintf(buf, sizeof buf, "%.1f MB read, %.1f MB written", c.dram_bytes_read / 1e6, c.dram_bytes_written / 1e6);
  return s + buf;
}

namespace {
// A run that was over before start() returned.
class FinishedRun final : public DeviceRun {
 public:
  explicit FinishedRun(RunResult r) : r_(std::move(r)) {}
  RunResult wait() override { return r_; }

 private:
  RunResult r_;
};
}  // namespace

std::unique_ptr<DeviceRun> Device::start(DeviceStream& stream, DeviceMemory& mem, std::chrono::milliseconds timeout) {
  return std::make_unique<FinishedRun>(run(stream, mem, timeout));
}

void check_transfer(const std::string& device, int channel, uint64_t offset, uint64_t n, uint64_t channel_bytes) {
  if (channel < 0 || channel >= arch::kDdrChannels) {
    throw Error("device '" + device + "': DDR channel " + std::to_string(channel) + " does not exist (0.." +
                std::to_string(arch::kDdrChannels - 1) + ")");
  }
  if (offset > channel_bytes || n > channel_bytes - offset) {
    throw Error("device '" + device + "': a transfer of " + std::to_string(n) + " bytes at offset " +
                std::to_string(offset) + " leaves channel " + std::to_string(channel) + " (" +
                std::to_string(channel_bytes) + " bytes)");
  }
}

HostDeviceMemory::HostDeviceMemory(std::string device, const ChannelBytes& bytes)
    : device_(std::move(device)), bytes_(bytes) {
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    if (bytes[c] > arch::kChannelWindowBytes) {
      throw Error("device '" + device_ + "': channel " + std::to_string(c) + " of " + std::to_string(bytes[c]) +
                  " bytes is larger than the " + std::to_string(arch::kChannelWindowBytes) +
                  "-byte window an address reaches");
    }
    ch_[c].assign((bytes[c] + 1) / 2, 0);
  }
}

uint64_t HostDeviceMemory::bytes(int channel) const { return bytes_.at(static_cast<size_t>(channel)); }

void HostDeviceMemory::write(int channel, uint64_t offset, const void* src, uint64_t n) {
  check_transfer(device_, channel, offset, n, channel >= 0 && channel < arch::kDdrChannels ? bytes_[channel] : 0);
  if (n) std::memcpy(reinterpret_cast<uint8_t*>(ch_[channel].data()) + offset, src, n);
}

void HostDeviceMemory::read(int channel, uint64_t offset, void* dst, uint64_t n) {
  check_transfer(device_, channel, offset, n, channel >= 0 && channel < arch::kDdrChannels ? bytes_[channel] : 0);
  if (n) std::memcpy(dst, reinterpret_cast<const uint8_t*>(ch_[channel].data()) + offset, n);
}

}  // namespace sat
