#pragma once
// The simulator's energy model (docs/sim-energy.md): a price per counted event plus a static power,
// turning the events a run or a layer counted into joules. Every default is derived below from a
// published figure or, where marked, an estimate; docs/sim-energy.md gives the sources, the
// scaling to 16 nm and what the model leaves out (it is a lower bound: FPGA fabric overheads and
// the FPGA's own static power are not in the defaults). All fields can be overridden from the
// simulator's --config file ("energy": {...}).
#include <nlohmann/json.hpp>

#include "sat/arch/config.hpp"

namespace sat::sim {

// The published figures the defaults are built from, kept as numbers so the arithmetic is visible.
namespace energy_source {

// Horowitz, "Computing's energy problem", ISSCC 2014, Fig. 1.1.9 (45 nm, 0.9 V), pJ per operation.
inline constexpr double kFp16Mul = 1.1;
inline constexpr double kFp32Add = 0.9;
inline constexpr double kFp32Mul = 3.7;
inline constexpr double kInt32Add = 0.1;
inline constexpr double kSram8KBRead64 = 10.0;   // one 64-bit read of an 8 KB SRAM

// Stillmaker & Baas 2017, energy fit a*V^2 + b*V + c of the PTM high-performance models: energy at
// 16 nm, 0.85 V (VCCINT of UltraScale+) over energy at 45 nm, 0.9 V (Horowitz's corner) = 0.198.
constexpr double energy_fit(double a, double b, double c, double v) { return a * v * v + b * v + c; }
inline constexpr double kNode45To16 =
    energy_fit(0.2958, -0.1241, 0.03024, 0.85) / energy_fit(1.018, -0.3107, 0.1539, 0.9);

// The N:M activation select: one window-wide BF16 multiplexer per lane (docs/isa.md §6), a tree of
// window - 1 two-input muxes per bit. Estimate: a 2:1 mux bit costs one bit of Horowitz's 32-bit add.
inline constexpr int kSelectInputs = arch::kPeLanes * arch::kSelectWindowRatio;   // 32
inline constexpr double kSelectMux45 = (kSelectInputs - 1) * 16 * (kInt32Add / 32);

// Micron 8 Gb x4 DDR4-2400 (MT40A2G4) data sheet IDD/IPP limits, mA (as transcribed by gem5's
// DDR4_2400_16x4 and DRAMsim3's DDR4_8Gb_x4_2400); supplies, V; JESD79-4 timings, ns.
inline constexpr double kIdd0 = 43, kIdd2n = 34, kIdd3n = 38, kIdd4r = 110, kIdd4w = 103, kIdd5b = 250;
inline constexpr double kIpp3n = 3;
inline constexpr double kVdd = 1.2, kVpp = 2.5;
inline constexpr double kTras = 32, kTrp = 13.32, kTburst = 4 / 1.2, kTrfc = 350, kTrefi = 7800;
inline constexpr int kDevicesPerRank = 18;   // 16 data + 2 ECC x4 devices: every command reaches all
inline constexpr int kChannels = arch::kDdrChannels;
// mA * ns * V = pJ. DRAMPower's split: ACT over active standby for tRAS, PRE over precharge standby
// for tRP; a burst over active standby for 4 tCK (Micron TN-40-07 does the same per unit time).
inline constexpr double kActRank = (kIdd0 - kIdd3n) * kTras * kVdd * kDevicesPerRank;     // 3456 pJ
inline constexpr double kPreRank = (kIdd0 - kIdd2n) * kTrp * kVdd * kDevicesPerRank;      // 2589 pJ
inline constexpr double kReadCoreByte = (kIdd4r - kIdd3n) * kTburst * kVdd * kDevicesPerRank / 64;
inline constexpr double kWriteCoreByte = (kIdd4w - kIdd3n) * kTburst * kVdd * kDevicesPerRank / 64;
// Estimate of the data-bus termination (POD12: current flows while a line is low): 34 ohm driver into
// 48 ohm termination at VDDQ = 1.2 V for one 2400 MT/s bit time; half the DQ bits low, plus one line
// of each x4 device's DQS pair low all the time, over 72 bus bits per 64 data bits.
inline constexpr double kLineLow = kVdd * kVdd / (34.0 + 48.0) * (1e3 / 2400.0) * 1e3;   // 7.32 pJ
inline constexpr double kIoByte = 8 * (0.5 * kLineLow + kLineLow / 4) * 72 / 64;          // 49.4 pJ
// Background: every device in active standby (VDD and VPP) plus refresh, all channels, always.
inline constexpr double kBackgroundWatts =
    ((kIdd3n * kVdd + kIpp3n * kVpp) + (kIdd5b - kIdd3n) * kVdd * kTrfc / kTrefi) * 1e-3 *
    kDevicesPerRank * kChannels;   // 4.65 W

}  // namespace energy_source

// What the simulator counts over a run or a layer.
struct EnergyEvents {
  double macs_dense = 0;         // PE multiply-accumulates in dense mode (BF16 x BF16 -> FP32 accumulate)
  double macs_sparse = 0;        // in N:M mode (each also pays the activation-select multiplexer)
  double buffer_bytes_read = 0;  // on-chip buffer (BRAM/URAM) bytes read
  double buffer_bytes_written = 0;
  double dram_bytes_read = 0;    // DDR4 bytes moved (I/O + array access), per direction
  double dram_bytes_written = 0;
  double activates = 0;          // DDR4 row activations (each paired with a precharge at some point)
  double precharges = 0;
  double vector_ops = 0;         // element operations of the vector/update/pre-generation units (FP32)
  double seconds = 0;            // wall time the events span (static power)
};

// Picojoules per event, watts static. The initialisers are the defaults (docs/sim-energy.md, table).
struct EnergyModel {
  // 45 nm FP16 multiply + FP32 add (Horowitz), x 0.198 to 16 nm (Stillmaker & Baas): 0.396 pJ.
  double pj_mac_dense = (energy_source::kFp16Mul + energy_source::kFp32Add) * energy_source::kNode45To16;
  // The dense MAC plus a 32:1 x 16-bit select mux (estimate from Horowitz's 32-bit add): 0.703 pJ.
  double pj_mac_sparse = pj_mac_dense + energy_source::kSelectMux45 * energy_source::kNode45To16;
  // Horowitz's 8 KB SRAM, 10 pJ per 64-bit read, x 0.198: 0.248 pJ/B; writes assumed equal.
  double pj_buffer_read_byte = energy_source::kSram8KBRead64 / 8 * energy_source::kNode45To16;
  double pj_buffer_write_byte = pj_buffer_read_byte;
  // Micron IDD4R/IDD4W over IDD3N for a burst, 18 devices per 64 B (81.0 / 73.1 pJ/B), plus the
  // termination estimate (49.4 pJ/B): 130.4 / 122.5 pJ/B.
  double pj_dram_read_byte = energy_source::kReadCoreByte + energy_source::kIoByte;
  double pj_dram_write_byte = energy_source::kWriteCoreByte + energy_source::kIoByte;
  // Micron IDD0 against IDD3N (tRAS) and IDD2N (tRP), 18 devices: 3456 / 2589 pJ per rank command.
  double pj_activate = energy_source::kActRank;
  double pj_precharge = energy_source::kPreRank;
  // One FP32 multiply + add per element (Horowitz 3.7 + 0.9 pJ) x 0.198: 0.911 pJ.
  double pj_vector_op = (energy_source::kFp32Mul + energy_source::kFp32Add) * energy_source::kNode45To16;
  // The four DIMMs' standby and refresh power from Micron IDD3N/IPP3N/IDD5B: 4.65 W. The FPGA's own
  // static power is NOT included (no verified figure; add Vivado's report_power via --config).
  double static_watts = energy_source::kBackgroundWatts;

  static EnergyModel defaults();
  // Overrides from a JSON object with these same field names; an unknown key, a value that is not a
  // number or a negative value throws sat::Error("energy model: ...") naming the key.
  void apply_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

struct EnergyBreakdown {   // joules
  double mac = 0, buffer = 0, dram = 0, dram_rows = 0, vector = 0, static_ = 0;
  double dynamic() const;   // all but static
  double total() const;
  nlohmann::json to_json() const;   // mac_j, buffer_j, dram_j, dram_rows_j, vector_j, static_j, dynamic_j, total_j
};

EnergyBreakdown energy(const EnergyEvents& e, const EnergyModel& m = EnergyModel::defaults());

// GFLOPS per watt of `flops` operations (2 per MAC) done with energy `joules`: the seconds cancel,
// (flops / s / 1e9) / (joules / s) = flops / joules / 1e9. 0 when no energy was spent.
double gflops_per_watt(double flops, double joules);

}  // namespace sat::sim
