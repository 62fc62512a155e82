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
// The load unit's convolution patch buffer (BF16 elements): LD_CONV reads the input pixels and
// channels its tile's windows reach once, in bursts, and builds the im2col tile on chip from them,
// instead of fetching every window element from DRAM (a 3x3 window reads each pixel up to 9 times).
// A tile whose patch is larger falls back to the window gather. 0 turns the patch off.
inline constexpr int kConvPatchElems = 65536;
inline constexpr int kVecChunk = 4096;        // elements the vector/update/pre-generation units
                                              // stream per burst
inline constexpr int kMaxVecRow = 8192;
// The vector unit's scratch (BF16 elements, URAM): BatchNorm's statistics run over every row, so its
// FF reads x three times and its BP reads x and dy twice; when they fit here the first pass keeps
// them and the later passes read the scratch instead of DRAM (docs/isa.md, V_BN). 0 turns it off.
// 4 Mi elements (8 MiB) hold BP's x and dy of the largest BatchNorm of ResNet-18 at batch 32.
inline constexpr int kVecScratchElems = 1 << 22;       // longest row a row-wise vector op (softmax, norm) holds
// Elements a cycle of the VEC, UPD and PGEN units' streams (PGEN: groups of M a cycle): one 512-bit
// beat of BF16. Lanes take independent elements (the channels of an NHWC row, the rows of a
// row-wise operation, the weights of an update), so every accumulator keeps the CPU reference's
// order. At 1 lane the element-wise work of a ResNet-18 step is 74% of its critical path
// (docs/dataflow.md, "Vector lanes").
inline constexpr int kVectorLanes = 32;
// The pre-generation unit's block buffer (FP32 elements): PGEN b4 reads M rows of the master into it
// once and writes both W_F (groups along K) and W_B (groups along Cout) from it, so BDWP's two
// forms cost one read of the master, not two (docs/isa.md, PGEN). M * K must fit.
inline constexpr int kPgenBlockElems = 1 << 17;

// ---- Instruction fetch and synchronisation ---------------------------------------------------------
inline constexpr int kInsnWords = 16;         // 32-bit words per instruction: 512 bits, one AXI beat
inline constexpr int kInsnQueueDepth = 64;    // per-unit decoded-instruction FIFO; the stream itself
                                              // stays in DDR and is fetched as it runs (any length)
inline constexpr int kTokenDepth = 64;        // dependency-token FIFO depth per (producer, consumer)

// ---- Memory system --------------------------------------------------------------------------------
inline constexpr int kDdrChannels = 4;        // one m_axi bundle per DDR4 channel
// The load unit's DMA engines, one per channel: loads issue in stream order and each runs on the
// engine of its channel, so an A tile and a B tile on two channels stream at once; their tokens
// still leave in stream order. 1 is a load unit that runs one load at a time.
inline constexpr int kLoadEngines = kDdrChannels;
// 64-byte beats a cycle the load unit writes into an A or B bank (the banks are partitioned for the
// PE array, which reads far wider). A DRAM load is bounded by its channel's 64 bytes a cycle anyway;
// a convolution tile built from the patch buffer is bounded by this.
inline constexpr int kLoadFillBeats = 4;
inline constexpr int kAddrChannelShift = 30;  // address = channel << 30 | offset in 2-byte units
inline constexpr uint64_t kChannelWindowBytes = uint64_t{2} << 30;   // 2 GiB addressable per channel
inline constexpr int kDdrBusBits = 512;       // m_axi data width
inline constexpr double kDdrChannelGBs = 19.2;   // DDR4-2400 x64: 2400 MT/s * 8 B
// Which figure bounds what: a channel's DIMM moves at most kDdrChannelGBs (19.2 GB/s); the kernel's
// port to it at most kDdrBusBits / 8 bytes a kernel cycle (12.8 GB/s at 200 MHz). At the default
// clock the AXI port is the lower and bounds every unit's DRAM stream; the DIMM bounds only above
// 300 MHz. The simulator's DRAM bound takes the lower of the two (docs/sim.md, "Bounds").

// ---- Links inside the synthesised kernel (hls/src/links.hpp, docs/hls-dataflow.md) ----------------
// Internal to the kernel's dataflow region: the host, the simulator's timing and the interface
// version do not depend on them (they are not in interface.hpp's contract hash).
// AXI4 forbids a burst to cross a 4 KiB address boundary.
inline constexpr int kAxiBoundaryBytes = 4096;
// Beats one request to a channel's arbiter covers at most. A unit's run of consecutive halfwords is
// cut at multiples of this many beats, so no request crosses the AXI boundary, and a read request
// never asks for more than its data link can take (see kArbLinkDepth). 16 beats (1 KiB) keep the
// arbiter's one cycle per request header to 1 in 17 and the per-link buffering small.
inline constexpr int kDdrRunBeats = 16;
// Depth in beats of each read-data and write-data link between a unit and an arbiter, and of the
// request link: two runs, so that a reader has its next run requested while it consumes the current
// one, and a writer fills its next run while the arbiter drains the last. The arbiter never waits
// on a unit: a read is requested only when the link has room for all its beats, a write only once
// all its beats are in the link. Each entry is kDdrBusBits wide (LUTRAM at this depth).
inline constexpr int kArbLinkDepth = 2 * kDdrRunBeats;
// Data links per (channel, unit): one for single accesses plus the sequential readers (writers) a
// unit keeps open at once. The most is SGD: w, v, g and the index nibbles read, w and v written.
inline constexpr int kDdrReadSlots = 5;
inline constexpr int kDdrWriteSlots = 3;
// Fill words in flight from a load engine to the GEMM process, which takes one a cycle whenever it
// serves its banks; the depth covers the few cycles between its service calls (instruction start,
// the PE pipeline's fill and flush) so an engine does not stall. An entry is kLoadFillBeats beats
// wide, so depth is expensive.
inline constexpr int kFillLinkDepth = 8;
// Accumulators in flight from the GEMM process to the store unit: one C tile row, so the GEMM can
// run a row ahead while the store unit restarts its pipelined loop and waits on its write links.
inline constexpr int kDrainLinkDepth = kMaxTileCols;
static_assert(kAxiBoundaryBytes % (kDdrRunBeats * kDdrBusBits / 8) == 0,
              "an aligned run must not cross the AXI 4 KiB boundary");

// ---- Clock and target -----------------------------------------------------------------------------
inline constexpr int kClockMHz = 200;
inline constexpr const char* kPart = "xcvu9p-fsgd2104-2L-e";
inline constexpr const char* kDefaultPlatform = "xilinx_u200_gen3x16_xdma_2_202110_1";

// ---- Dataflow optimisations (docs/dataflow.md); the scheduler's defaults -------------------------
inline constexpr bool kInterleaveMapping = true;
inline constexpr bool kPregeneration = true;
inline constexpr bool kOfflineScheduling = true;
inline constexpr bool kTransposedConvBp = true;   // BP of stride-1 convolutions as convolutions of dY
inline constexpr bool kPhaseBp = true;            // BP of stride-2 convolutions as four phase convolutions
inline constexpr bool kOverlapUpdate = true;       // each layer's update right after its backward
inline constexpr bool kBalancedKTiles = true;      // a product's K tiles of equal size, not 512 + rest
inline constexpr bool kPatchReuse = true;          // LD_CONV b3: reuse the patch the buffer holds
inline constexpr bool kFuseRelu = true;            // a ReLU after a BatchNorm runs inside V_BN/V_BN_BWD
inline constexpr bool kFusedPregen = true;         // W_F and W_B from one read of the master (PGEN b4)

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
