// The `sim` device: the SystemC model of the accelerator behind the Device interface. Memory is
// host RAM (the model's DDR channels hold the data; their timing is the model's); every run drives
// the one SystemC simulation of this process (SystemC elaborates once per process), serialised.
#include <cstdlib>
#include <mutex>
#include <string>

#include "accelerator.hpp"
#include "sat/backend_registry.hpp"
#include "sat/error.hpp"
#include "sat_sim/device.hpp"

namespace sat::sim {

namespace {

class SimStream final : public DeviceStream {
 public:
  explicit SimStream(std::vector<isa::Insn> insns) : insns(std::move(insns)) {}
  size_t size() const override { return insns.size(); }
  std::vector<isa::Insn> insns;
};

std::mutex g_mutex;

Accelerator& model() {
  static Accelerator* acc = [] {
    ::setenv("SC_COPYRIGHT_MESSAGE", "DISABLE", 0);
    return new Accelerator("sat");   // lives as long as the SystemC kernel: the whole process
  }();
  return *acc;
}

class SimDeviceImpl final : public SimDevice {
 public:
  explicit SimDeviceImpl(const SimConfig& cfg) { configure(cfg); }
  void configure(const SimConfig& cfg) override {
    cfg.validate();
    if (cfg.gemm_core == "rtl") check_rtl(cfg);
    cfg_ = cfg;
  }
  RtlGemmTally rtl_tally() const override { return tally_; }
  void cold_start() override { cold_ = true; }
  const SimConfig& config() const override { return cfg_; }
  void record(std::vector<InsnRecord>* out) override { records_ = out; }
  void on_progress(std::function<void(uint64_t, uint64_t)> fn) override { progress_ = std::move(fn); }

  std::string name() const override { return "sim"; }
  std::string description() const override {
    return "the SystemC model of the SAT accelerator (sim/): the kernel's datapath with cycle timing";
  }
  std::unique_ptr<DeviceMemory> allocate(const ChannelBytes& bytes) override {
    return std::make_unique<HostDeviceMemory>("sim", bytes);
  }
  std::unique_ptr<DeviceStream> load(const std::vector<isa::Insn>& insns) override {
    return std::make_unique<SimStream>(insns);
  }
  RunResult run(DeviceStream& stream, DeviceMemory& memory, std::chrono::milliseconds timeout) override {
    auto* s = dynamic_cast<SimStream*>(&stream);
    auto* m = dynamic_cast<HostDeviceMemory*>(&memory);
    if (!s || !m) throw Error("device 'sim': the stream was made by another device, or the memory is not in host RAM");
    std::lock_guard<std::mutex> lock(g_mutex);
    const auto t0 = std::chrono::steady_clock::now();
    const RunOutcome o =
        model().run(s->insns, *m, cfg_, records_, progress_, timeout.count() > 0, t0 + timeout, cold_);
    cold_ = false;
    tally_ = o.rtl;
    if (!o.error.empty()) throw Error("device 'sim': " + o.error);
    RunResult r;
    r.status = o.status;
    r.counters = o.counters;
    r.timed_out = o.stopped;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

 private:
  // gemm_core "rtl" needs the Verilated array, and the configuration's PE array must be its shape.
  static void check_rtl(const SimConfig& cfg) {
    int rows = 0, cols = 0;
    if (!sim_has_rtl_gemm(&rows, &cols)) {
      throw Error("gemm_core rtl: this build has no Verilated PE array (it needs Verilator when CMake "
                  "configures, and SAT_SIM_RTL=ON; sanitizer builds leave it out)");
    }
    if (cfg.pe.rows != rows || cfg.pe.cols != cols || cfg.pe.lanes != arch::kPeLanes ||
        cfg.pe.window != arch::kSelectWindowRatio) {
      throw Error("gemm_core rtl: the Verilated PE array is " + std::to_string(rows) + "x" + std::to_string(cols) +
                  "x" + std::to_string(arch::kPeLanes) + " with select window " +
                  std::to_string(arch::kSelectWindowRatio) + ", the configuration's is " +
                  std::to_string(cfg.pe.rows) + "x" + std::to_string(cfg.pe.cols) + "x" +
                  std::to_string(cfg.pe.lanes) + " with window " + std::to_string(cfg.pe.window) +
                  ": set pe=" + std::to_string(rows) + "x" + std::to_string(cols) +
                  " (or rebuild with -DSAT_RTL_ARRAY_ROWS=R -DSAT_RTL_ARRAY_COLS=C)");
    }
  }

  SimConfig cfg_;
  RtlGemmTally tally_;
  bool cold_ = false;
  std::vector<InsnRecord>* records_ = nullptr;
  std::function<void(uint64_t, uint64_t)> progress_;
};

// The backend's device: arch/'s configuration, or the JSON file SAT_SIM_CONFIG names (the same keys
// as `sat sim --config`, gemm_core included), so that train, op and replay reach every setting.
std::unique_ptr<Device> make_backend_device() {
  const char* path = std::getenv("SAT_SIM_CONFIG");
  if (path == nullptr || *path == 0) return make_sim_device();
  try {
    return make_sim_device(read_sim_config(path));
  } catch (const Error& e) {
    throw Error(std::string("SAT_SIM_CONFIG: ") + e.what());
  }
}

}  // namespace

std::unique_ptr<SimDevice> make_sim_device(const SimConfig& cfg) { return std::make_unique<SimDeviceImpl>(cfg); }

bool sim_has_rtl_gemm(int* rows, int* cols) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const RtlGemm* rtl = model().rtl_gemm();
  if (rtl == nullptr) return false;
  if (rows) *rows = rtl->rows();
  if (cols) *cols = rtl->cols();
  return true;
}

}  // namespace sat::sim

SAT_DEVICE_BACKEND(sim, &sat::sim::make_backend_device,
                   "the SystemC model of the accelerator: the kernel's bits with cycles, busy and stall per unit, "
                   "DRAM bytes per channel")
