// The device-independent pieces of sat/device.hpp: transfer checks, the host-RAM channel memories
// and the run result's message.
#include "sat/device.hpp"

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

std::string counters_json(const DeviceCounters& c) {
  nlohmann::ordered_json j;
  j["cycles"] = c.cycles;
  j["clock_mhz"] = arch::kClockMHz;
  j["seconds"] = static_cast<double>(c.cycles) / (arch::kClockMHz * 1e6);
  j["macs"] = c.macs;
  uint64_t rd = 0, wr = 0;
  for (int ch = 0; ch < arch::kDdrChannels; ++ch) {
    rd += c.dram_read_bytes[ch];
    wr += c.dram_write_bytes[ch];
  }
  j["dram_bytes_read"] = rd;
  j["dram_bytes_written"] = wr;
  j["dram_bytes_read_per_channel"] = c.dram_read_bytes;
  j["dram_bytes_written_per_channel"] = c.dram_write_bytes;
  for (const char* what : {"busy", "stall"}) {
    nlohmann::ordered_json units;
    for (int u = 0; u < isa::kNumExecUnits; ++u) {
      units[isa::unit_name(u)] = std::string(what) == "busy" ? c.busy[u] : c.stall[u];
    }
    j[std::string(what)] = units;
  }
  return j.dump(2) + "\n";
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
