#pragma once
// The accelerator configuration: the single source of truth for the HLS kernel's constants, the RTL
// parameters (the RTL generates them from this file), the cycle-accurate simulator and the host's
// offline scheduler. Plain constexpr C++ with no dependencies, so that Vitis HLS, g++ and nvcc all
// include it unchanged. Defaults fit the VCU1525 (XCVU9P: 6,840 DSP48E2, ~1.18M LUTs, 2,160 BRAM36,
// 960 URAM, four DDR4-2400 channels); the reasoning is in docs/isa.md and docs/dataflow.md.
#include <cstdint>

namespace sat::arch {

// ---- PE array -------------------------------------------------------------------------------------
// kPeRows x kPeCols processing elements; each PE is a kPeLanes-wide dot-product unit (kPeLanes BF16
// multipliers feeding an FP32 adder tree and accumulator). Rows take activation rows (the GEMM's M),
// columns take weight lines (the GEMM's N). In dense mode a PE consumes kPeLanes consecutive K
// elements per cycle; in N:M mode it consumes kPeLanes kept weights, i.e. kPeLanes * M / N elements
// of K, selecting the matching activations by the weights' in-group indices.
inline constexpr int kPeRows = 16;
inline constexpr int kPeCols = 16;
inline constexpr int kPeLanes = 8;
// The activation window of a PE row in N:M mode spans kPeLanes * min(M/N, kSelectWindowRatio)
// elements of K per cycle (docs/isa.md §6): settings sparser than M/N = 4 run at 4x dense.
inline constexpr int kSelectWindowRatio = 4;

// ---- N:M support ----------------------------------------------------------------------------------
inline constexpr int kNumSupportedM = 4;
inline constexpr int kSupportedM[kNumSupportedM] = {2, 4, 8, 16};
inline constexpr int kIndexBits = 4;          // in-group index width: M <= 1 << kIndexBits

// ---- On-chip buffers (each double-buffered: two banks) ---------------------------------------------
inline constexpr int kBanks = 2;
inline constexpr int kMaxTileRows = 128;      // GEMM M per tile (activation rows)
inline constexpr int kMaxTileCols = 128;      // GEMM N per tile (weight lines / output columns)
inline constexpr int kMaxTileK = 512;         // GEMM K per tile, dense elements
inline constexpr int kAbufElems = kMaxTileRows * kMaxTileK;   // A operand bank, BF16
inline constexpr int kBbufElems = kMaxTileCols * kMaxTileK;   // B operand bank, BF16 values
inline constexpr int kCbufElems = kMaxTileRows * kMaxTileCols;   // accumulator bank, FP32
inline constexpr int kVecChunk = 4096;        // elements the vector/update/pre-generation units
                                              // stream per burst
inline constexpr int kMaxVecRow = 8192;       // longest row a row-wise vector op (softmax, norm) holds

// ---- Instruction fetch and synchronisation ---------------------------------------------------------
inline constexpr int kInsnWords = 16;         // 32-bit words per instruction: 512 bits, one AXI beat
inline constexpr int kInsnQueueDepth = 64;    // per-unit decoded-instruction FIFO; the stream itself
                                              // stays in DDR and is fetched as it runs (any length)
inline constexpr int kTokenDepth = 64;        // dependency-token FIFO depth per (producer, consumer)

// ---- Memory system --------------------------------------------------------------------------------
inline constexpr int kDdrChannels = 4;        // one m_axi bundle per DDR4 channel
inline constexpr int kAddrChannelShift = 30;  // address = channel << 30 | offset in 2-byte units
inline constexpr uint64_t kChannelWindowBytes = uint64_t{2} << 30;   // 2 GiB addressable per channel
inline constexpr int kDdrBusBits = 512;       // m_axi data width
inline constexpr double kDdrChannelGBs = 19.2;   // DDR4-2400 x64: 2400 MT/s * 8 B
// Which figure bounds what: a channel's DIMM moves at most kDdrChannelGBs (19.2 GB/s); the kernel's
// port to it at most kDdrBusBits / 8 bytes a kernel cycle (12.8 GB/s at 200 MHz). At the default
// clock the AXI port is the lower and bounds every unit's DRAM stream; the DIMM bounds only above
// 300 MHz. The simulator's DRAM bound takes the lower of the two (docs/sim.md, "Bounds").

// ---- Clock and target -----------------------------------------------------------------------------
inline constexpr int kClockMHz = 200;
inline constexpr const char* kPart = "xcvu9p-fsgd2104-2L-e";
inline constexpr const char* kDefaultPlatform = "xilinx_u200_gen3x16_xdma_2_202110_1";

// ---- Dataflow optimisations (docs/dataflow.md); the scheduler's defaults -------------------------
inline constexpr bool kInterleaveMapping = true;
inline constexpr bool kPregeneration = true;
inline constexpr bool kOfflineScheduling = true;

// ---- Watchdog (C-simulation and hardware) ---------------------------------------------------------
// Scheduler rounds in which no unit made progress before the kernel declares a token deadlock.
inline constexpr int kDeadlockRounds = 4;

constexpr bool supported_m(int m) {
  for (int i = 0; i < kNumSupportedM; ++i)
    if (kSupportedM[i] == m) return true;
  return false;
}
static_assert(kSupportedM[kNumSupportedM - 1] <= (1 << kIndexBits), "indices must hold every M");
static_assert(kMaxTileK % 16 == 0, "a K tile must hold whole groups of every supported M");

}  // namespace sat::arch
