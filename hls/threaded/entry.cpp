// The exported entry of sat_hls_threaded (hls/include/sat_hls/threaded.hpp): the stream in the
// 512-bit words of the instruction port, then sat_top as the host would call the synthesised kernel.
#include <vector>

#include "kernel.hpp"
#include "sat_hls/threaded.hpp"

namespace sat::hls::threaded {

void run(const isa::Insn* insns, size_t count, uint16_t* const ddr[arch::kDdrChannels],
         const uint64_t halfwords[arch::kDdrChannels], uint32_t status[isa::kStatusWords]) {
  std::vector<ap_uint<512>> words(count);
  for (size_t i = 0; i < count; ++i) {
    for (int j = 0; j < arch::kInsnWords; ++j) words[i].range(32 * j + 31, 32 * j) = insns[i].w[j];
  }
  const uint32_t n = count > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(count);
  sat_top(words.data(), n, ddr[0], ddr[1], ddr[2], ddr[3], halfwords[0], halfwords[1], halfwords[2], halfwords[3],
          status);
}

void set_watchdog(double quiet_s, double stall_s, void (*on_deadlock)(const char* report)) {
  ::hls::threaded::set_watchdog(quiet_s, stall_s, on_deadlock);
}

}  // namespace sat::hls::threaded
