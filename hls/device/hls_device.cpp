// The `hls` device: the SAT kernel compiled for the CPU (C-simulation, hls/src/) behind the Device
// interface, over channel memories in host RAM. The `hls` backend is the AcceleratorBackend over
// it. Its counters are the kernel's status words without the cycles: the C-simulation has no clock.
#include <chrono>

#include "sat/accelerator.hpp"
#include "sat/backend_registry.hpp"
#include "sat/error.hpp"
#include "sat_hls/device.hpp"
#include "sat_hls/kernel.hpp"

namespace sat::hls {

namespace {

class HlsStream final : public DeviceStream {
 public:
  explicit HlsStream(std::vector<isa::Insn> insns) : insns(std::move(insns)) {}
  size_t size() const override { return insns.size(); }
  std::vector<isa::Insn> insns;
};

class HlsDevice final : public Device {
 public:
  std::string name() const override { return "hls"; }
  std::string description() const override {
    return "C-simulation of the SAT HLS kernel (hls/src/, compiled for this CPU; bit-exact, no timing)";
  }
  std::unique_ptr<DeviceMemory> allocate(const ChannelBytes& bytes) override {
    return std::make_unique<HostDeviceMemory>("hls", bytes);
  }
  std::unique_ptr<DeviceStream> load(const std::vector<isa::Insn>& insns) override {
    return std::make_unique<HlsStream>(insns);
  }
  RunResult run(DeviceStream& stream, DeviceMemory& memory, std::chrono::milliseconds timeout) override {
    auto* s = dynamic_cast<HlsStream*>(&stream);
    auto* m = dynamic_cast<HostDeviceMemory*>(&memory);
    if (!s || !m) throw Error("device 'hls': the stream was made by another device, or the memory is not in host RAM");
    uint16_t* ddr[arch::kDdrChannels];
    uint64_t halfwords[arch::kDdrChannels];
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      ddr[c] = m->halfwords(c);
      halfwords[c] = m->halfword_count(c);
    }
    RunLimit limit;
    const auto t0 = std::chrono::steady_clock::now();
    if (timeout.count() > 0) {
      limit.has_deadline = true;
      limit.deadline = t0 + timeout;
    }
    RunResult r;
    bool stopped = false;
    r.status = run_kernel(s->insns.data(), s->insns.size(), ddr, halfwords, limit, &stopped);
    r.timed_out = stopped;
    if (!stopped) r.counters = counters_from_status(r.status, false);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }
};

}  // namespace

std::unique_ptr<Device> make_hls_device() { return std::make_unique<HlsDevice>(); }

}  // namespace sat::hls

SAT_DEVICE_BACKEND(hls, &sat::hls::make_hls_device,
                   "the accelerator's HLS kernel in C-simulation (bit-exact with the hardware, no timing)")
