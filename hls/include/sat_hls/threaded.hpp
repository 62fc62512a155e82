#pragma once
// The synthesis path of the kernel (the DATAFLOW region of hls/src/top.cpp) run on the host with
// every process on its own thread and every hls::stream a bounded blocking FIFO of its depth
// (library sat_hls_threaded; docs/hls-dataflow.md, "Threaded execution"). The library is a shared
// object that exports only what this header declares, so that it links next to the C-simulated
// kernel (sat_hls_kernel), which defines the same functions.
#include <cstddef>
#include <cstdint>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"

#define SAT_HLS_THREADED_API __attribute__((visibility("default")))

namespace sat::hls::threaded {

// Runs `count` instructions through the synthesised sat_top over the four DDR channels (null with
// size 0 where absent) and writes its status words. A deadlock does not return: the watchdog calls
// its handler (below), whose default prints which process waits on which stream and aborts.
SAT_HLS_THREADED_API void run(const isa::Insn* insns, size_t count, uint16_t* const ddr[arch::kDdrChannels],
                              const uint64_t halfwords[arch::kDdrChannels], uint32_t status[isa::kStatusWords]);

// The watchdog of the runs that follow: a deadlock is `quiet_s` seconds without any stream moving
// while every live process waits, or `stall_s` without any moving at all (<= 0: keep the current
// value). `on_deadlock` gets the report; null restores the default.
SAT_HLS_THREADED_API void set_watchdog(double quiet_s, double stall_s, void (*on_deadlock)(const char* report));

}  // namespace sat::hls::threaded
