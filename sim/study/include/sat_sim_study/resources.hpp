#pragma once
// A first-order, analytic estimate of the FPGA resources the configured accelerator needs on the
// XCVU9P of the VCU1525 / Alveo U200 (`sat sim --resources`, docs/resources.md): DSP48E2 slices,
// LUTs and flip-flops per unit from per-operator figures, and BRAM36 / URAM288 / LUTRAM per on-chip
// buffer at the partitioning its per-cycle read width needs. Nothing is synthesised: the estimate
// says whether a configuration is plausible on the part and where its resources go, not what
// Vivado will report. Every figure below carries its source or is marked as an assumption;
// docs/resources.md explains them.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sat_sim_study/sim_config.hpp"

namespace sat::sim {

// One hardware operator: what a single instance costs, and where the figure comes from.
struct Primitive {
  std::string name;
  int64_t dsp = 0, lut = 0, ff = 0;
  std::string source;
};

// The per-operator figures the estimate multiplies (docs/resources.md, "Figures").
namespace resource_figures {

// Floating-Point Operator IP (PG060) instances as Vitis HLS binds and estimates them on
// UltraScale+ parts, read from public C-synthesis reports: `fadd ... full_dsp` (latency 3) and
// `fadd ... no_dsp` (latency 4).
const Primitive& fp32_add_dsp();
const Primitive& fp32_add_fabric();
// Assumptions (no published per-instance figure found): Vitis HLS binds fmul to the IP's "max DSP"
// configuration on UltraScale+; an FMA is costed as that multiply feeding a DSP adder.
const Primitive& fp32_mul();
const Primitive& fp32_fma();
// One DSP48E2 per BF16 product: the 8 x 8-bit significand product fits its 27 x 18 multiplier
// (UG579); exponent add, sign and special cases in LUTs (assumption).
const Primitive& bf16_mul();
const Primitive& bf16_round();   // FP32 -> BF16 round-to-nearest-even, assumption
// Vitis HLS estimates of its AXI adapters (public report): a 64-bit m_axi port and s_axilite.
const Primitive& maxi_adapter_64();
const Primitive& saxi_control();

// LUTs of an n:1 multiplexer, one bit: a LUT6 is a 4:1 mux and MUXF7/F8/F9 join eight of them into
// 32:1 within a CLB (UG974, MUXF9); wider muxes add a level of LUTs.
int64_t mux_luts_per_bit(int64_t inputs);
// LUTs of an n-bit magnitude comparator on the carry chain: one LUT per two bit pairs (UG574).
int64_t comparator_luts(int bits);

}  // namespace resource_figures

// The part the estimate is measured against: the whole XCVU9P (DS890 / DS923). On the VCU1525 or
// U200 the shell's static region takes part of it; docs/resources.md says how much.
struct DeviceBudget {
  const char* name;
  int64_t dsp, lut, ff, bram, uram;
};
inline constexpr DeviceBudget kXcvu9p{"XCVU9P", 6840, 1182240, 2364480, 2160, 960};
// Above this share of a resource placement and routing rarely close at speed; the verdict.
inline constexpr double kFitLimit = 0.80;

struct Resources {
  int64_t dsp = 0, lut = 0, ff = 0, bram = 0, uram = 0;   // bram: BRAM36 blocks, uram: URAM288
  Resources& operator+=(const Resources& o);
};

// `count` instances of a primitive in a unit.
struct LogicItem {
  std::string unit, what;
  int64_t count = 0;
  Primitive each;
  Resources use() const;
};

// One on-chip buffer: `copies` independent memories (banks, streams, queues) of `elements`
// elements of `bits` each, of which `per_cycle` are read (or written, where that is wider) every
// cycle at full rate.
struct BufferSpec {
  std::string name, unit;
  int64_t copies = 1;
  int64_t elements = 0;
  int bits = 0;
  int64_t per_cycle = 1;
};

enum class Memory { bram, uram, lutram };
const char* memory_name(Memory m);

// Where a buffer goes and what it takes. Per copy: BRAM36 and URAM288 each need
// max(ceil(width / 72), ceil(capacity / block capacity)) blocks (72-bit ports in simple dual-port
// mode, UG573 / UG949); the one with the smaller share of its device total is chosen. A buffer at
// most 64 words deep at its read width goes to LUTRAM instead (UG574), as HLS maps such shallow,
// wide partitions.
struct BufferPlacement {
  BufferSpec spec;
  int64_t width_bits = 0, capacity_bits = 0, depth = 0;   // per copy
  int64_t bram_option = 0, uram_option = 0;               // blocks per copy for each choice
  Memory memory = Memory::bram;
  Resources use;                                          // all copies
};

std::vector<BufferSpec> buffer_specs(const SimConfig& cfg);
std::vector<LogicItem> logic_items(const SimConfig& cfg);
BufferPlacement place_buffer(const BufferSpec& b);

struct ResourceEstimate {
  SimConfig config;
  std::vector<LogicItem> logic;
  std::vector<BufferPlacement> buffers;
  Resources total;
  DeviceBudget device = kXcvu9p;

  // Per unit, in the order fetch/decode, LOAD, GEMM, VEC, STORE, UPD, PGEN, AXI, control.
  std::vector<std::pair<std::string, Resources>> by_unit() const;
  double share_dsp() const { return double(total.dsp) / double(device.dsp); }
  double share_lut() const { return double(total.lut) / double(device.lut); }
  double share_ff() const { return double(total.ff) / double(device.ff); }
  double share_bram() const { return double(total.bram) / double(device.bram); }
  double share_uram() const { return double(total.uram) / double(device.uram); }
  // The verdict: DSP, BRAM and URAM each at most kFitLimit of the device.
  bool fits() const;
  std::vector<std::string> over() const;          // the verdict's resources above the limit
  std::vector<std::string> also_over() const;     // LUT, FF above the limit (outside the verdict)
  // "fits: DSP 61.0%, BRAM 30.0%, URAM 5.0% <= 80%" or "does not fit: DSP 120.0% > 80% (...)".
  std::string verdict() const;
  // Keys documented in docs/resources.md ("resources.json").
  nlohmann::ordered_json to_json() const;
};

// Throws sat::Error naming the field when a dimension the estimate needs is not positive. The
// configuration is not otherwise validated, so that oversized arrays can be estimated.
ResourceEstimate estimate_resources(const SimConfig& cfg);

// The per-unit table, the buffer table, the totals against the device and the verdict, as text.
std::string resources_table(const ResourceEstimate& e);

}  // namespace sat::sim
