// run_kernel: the host side of the C-simulated kernel (hls/include/sat_hls/kernel.hpp).
#include <mutex>
#include <vector>

#include "kernel.hpp"
#include "sat_hls/kernel.hpp"

namespace sat::hls {

namespace {

// The kernel's on-chip buffers are static state, as in hardware: one run at a time.
std::mutex g_run_mu;
RunObserver* g_observer = nullptr;

bool deadline_passed(void* arg) {
  return std::chrono::steady_clock::now() >= *static_cast<const std::chrono::steady_clock::time_point*>(arg);
}

}  // namespace

std::array<uint32_t, isa::kStatusWords> run_kernel(const isa::Insn* insns, size_t count,
                                                   uint16_t* const ddr[arch::kDdrChannels],
                                                   const uint64_t halfwords[arch::kDdrChannels],
                                                   const RunLimit& limit, bool* stopped) {
  std::lock_guard<std::mutex> lock(g_run_mu);
  std::vector<ap_uint<512>> words(count);
  for (size_t i = 0; i < count; ++i) {
    for (int j = 0; j < arch::kInsnWords; ++j) words[i].range(32 * j + 31, 32 * j) = insns[i].w[j];
  }
  const uint32_t n = count > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(count);
  uint32_t status[isa::kStatusWords] = {};
  uint64_t sizes[arch::kDdrChannels];
  for (int c = 0; c < arch::kDdrChannels; ++c) sizes[c] = ddr[c] ? halfwords[c] : 0;
  uint16_t* attached[arch::kDdrChannels];
  for (int c = 0; c < arch::kDdrChannels; ++c) attached[c] = sizes[c] ? ddr[c] : nullptr;
  if (g_observer) g_observer->before(insns, count, attached, sizes);
  std::chrono::steady_clock::time_point deadline = limit.deadline;
  kernel::csim_set_stop(limit.has_deadline ? &deadline_passed : nullptr, &deadline);
  sat_top(words.data(), n, ddr[0], ddr[1], ddr[2], ddr[3], sizes[0], sizes[1], sizes[2], sizes[3], status);
  kernel::csim_set_stop(nullptr, nullptr);
  if (stopped) *stopped = kernel::csim_stopped();
  std::array<uint32_t, isa::kStatusWords> out{};
  for (int i = 0; i < isa::kStatusWords; ++i) out[i] = status[i];
  if (g_observer) g_observer->after(out, kernel::csim_stopped());
  return out;
}

void set_reference_pe(bool on) { kernel::set_reference_pe(on); }

void set_run_observer(RunObserver* observer) {
  std::lock_guard<std::mutex> lock(g_run_mu);
  g_observer = observer;
}

}  // namespace sat::hls
