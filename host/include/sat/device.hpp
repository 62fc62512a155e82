#pragma once
// Device: everything that executes a SAT instruction stream over the four DDR channel memories. The
// HLS C-simulation (`hls`), the cycle-accurate SystemC model (`sim`) and the board through XRT
// (`fpga`) are devices; one AcceleratorBackend (sat/accelerator.hpp) trains on any of them, and
// `sat replay` runs trace files on any of them. A new target implements the three classes below
// and nothing else: the compiler, the memory map, the transfers of parameters and batches, and the
// checks are shared. The contract a device runs is arch/include/sat/arch (docs/isa.md).
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"

namespace sat {

using StatusWords = std::array<uint32_t, isa::kStatusWords>;
using ChannelBytes = std::array<uint64_t, arch::kDdrChannels>;

// What a device measured during one run. Units are kernel clock cycles at arch::kClockMHz and
// bytes. The cycle-accurate model fills every field; a device that runs the kernel itself (the
// C-simulation, the board) has only what the kernel counts in its status words 9-15
// (counters_from_status): `source` says which, and reports leave out what a source lacks.
struct DeviceCounters {
  enum class Source {
    simulator,   // every field
    kernel,      // cycles (where has_cycles), busy[GEMM], the DRAM totals; nothing else
  };
  Source source = Source::simulator;
  bool has_cycles = true;                                       // false: C-simulation, no clock
  uint64_t cycles = 0;                                          // start to FINISH
  uint64_t macs = 0;                                            // PE-array multiply-accumulates
                                                                // (kept weights only in N:M mode)
  std::array<uint64_t, isa::kNumUnits> busy{};                  // cycles each unit executed
  std::array<uint64_t, isa::kNumUnits> stall{};                 // cycles each unit waited (tokens,
                                                                // queues, memory) with work queued
  std::array<uint64_t, arch::kDdrChannels> dram_read_bytes{};   // per DDR channel
  std::array<uint64_t, arch::kDdrChannels> dram_write_bytes{};
  uint64_t dram_bytes_read = 0, dram_bytes_written = 0;         // all channels
};

// The counters of the kernel's status words (sat/arch/status.hpp, words 9-15); `has_cycles`: the
// target has a clock (the board; not the C-simulation, whose cycle words are 0).
DeviceCounters counters_from_status(const StatusWords& st, bool has_cycles);

struct RunResult {
  StatusWords status{};
  std::optional<DeviceCounters> counters;
  double seconds = 0;         // host wall time of the run
  bool timed_out = false;     // the device stopped the run at the timeout; status is partial

  bool ok() const { return !timed_out && status[isa::STW_CODE] == isa::STATUS_OK; }
  // The status in clear text (sat/arch/status_text.hpp), or the timeout.
  std::string message() const;
};

// The four DDR channel memories one program runs over, each `bytes(c)` long and zero-filled when
// allocated. Offsets are bytes from the channel's start; a transfer outside the channel throws
// sat::Error naming the channel, the range and the size.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual uint64_t bytes(int channel) const = 0;
  virtual void write(int channel, uint64_t offset, const void* src, uint64_t n) = 0;
  virtual void read(int channel, uint64_t offset, void* dst, uint64_t n) = 0;
};

// An instruction stream made ready to run (on a board: a buffer in DDR bank 0, written once).
class DeviceStream {
 public:
  virtual ~DeviceStream() = default;
  virtual size_t size() const = 0;   // instructions
};

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;          // the backend name: "hls", "sim", "fpga"
  virtual std::string description() const = 0;   // one line for `sat info` and error messages
  // Channel memories of the given sizes (a program's MemoryMap::channel_bytes).
  virtual std::unique_ptr<DeviceMemory> allocate(const ChannelBytes& bytes) = 0;
  virtual std::unique_ptr<DeviceStream> load(const std::vector<isa::Insn>& insns) = 0;
  // Runs `stream` over `mem` until FINISH, an error the kernel reports in its status words, or
  // `timeout` (zero: none). Throws sat::Error only for failures of the device itself (a lost
  // board, a memory or stream from another device); the kernel's own errors are in the result.
  virtual RunResult run(DeviceStream& stream, DeviceMemory& mem, std::chrono::milliseconds timeout) = 0;
  // Starts the same run and returns while it is in flight, where the device can run asynchronously
  // (the board): until wait() returns, the caller may write regions of `mem` that the stream does
  // not touch, and nothing else (AcceleratorBackend uploads the next batch so). The default runs
  // to completion before returning (hls, sim). The timeout counts from the start.
  virtual std::unique_ptr<class DeviceRun> start(DeviceStream& stream, DeviceMemory& mem,
                                                 std::chrono::milliseconds timeout);
};

// A run in flight. wait() returns its result once (it throws as Device::run does); a run destroyed
// without wait() is waited for first, so that no memory it writes is released under it.
class DeviceRun {
 public:
  virtual ~DeviceRun() = default;
  virtual RunResult wait() = 0;
};

// The counters as a JSON object with the report keys of docs/sim.md: cycles, clock_mhz, seconds
// (at the clock), macs, dram_bytes_read, dram_bytes_written (totals and per channel), and busy and
// stall cycles per unit (by unit name).
std::string counters_json(const DeviceCounters& c);
// One line of what the counters say (cycles and time where measured, the PE array's share of its
// peak or its busy cycles, DRAM megabytes), for the CLI.
std::string counters_summary(const DeviceCounters& c);

// Checks a transfer against a channel's size; throws sat::Error naming the device and the range.
void check_transfer(const std::string& device, int channel, uint64_t offset, uint64_t n, uint64_t channel_bytes);

// A DeviceMemory in host RAM (vectors of halfwords, the ISA's address unit): the C-simulation and
// the SystemC model run over it directly.
class HostDeviceMemory final : public DeviceMemory {
 public:
  HostDeviceMemory(std::string device, const ChannelBytes& bytes);
  uint64_t bytes(int channel) const override;
  void write(int channel, uint64_t offset, const void* src, uint64_t n) override;
  void read(int channel, uint64_t offset, void* dst, uint64_t n) override;
  uint16_t* halfwords(int channel) { return ch_.at(static_cast<size_t>(channel)).data(); }
  uint64_t halfword_count(int channel) const { return ch_.at(static_cast<size_t>(channel)).size(); }

 private:
  std::string device_;
  ChannelBytes bytes_{};
  std::array<std::vector<uint16_t>, arch::kDdrChannels> ch_;
};

}  // namespace sat
