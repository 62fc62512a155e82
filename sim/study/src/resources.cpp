// The analytic FPGA resource estimate (resources.hpp, docs/resources.md).
#include "sat_sim_study/resources.hpp"

#include <algorithm>
#include <cstdio>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/error.hpp"

namespace sat::sim {

namespace resource_figures {

namespace {

const std::string kHlsReport = "Vitis HLS C-synthesis estimate in a public report";

}  // namespace

const Primitive& fp32_add_dsp() {
  static const Primitive p{"FP32 add, Floating-Point Operator (PG060), full DSP usage", 2, 226, 177,
                           kHlsReport + " (fadd_32ns_32ns_32_3_full_dsp, Alveo U280, UltraScale+)"};
  return p;
}

const Primitive& fp32_add_fabric() {
  static const Primitive p{"FP32 add, Floating-Point Operator (PG060), no DSP usage", 0, 338, 243,
                           kHlsReport + " (fadd_32ns_32ns_32_5_no_dsp)"};
  return p;
}

const Primitive& fp32_mul() {
  static const Primitive p{"FP32 multiply, Floating-Point Operator (PG060), max DSP usage", 3, 120, 170,
                           "assumption: HLS binds fmul to max_dsp on UltraScale+ (module names in public reports); "
                           "3 DSP48E2 for the 24x24-bit significand product and rounding, LUT/FF assumed"};
  return p;
}

const Primitive& fp32_fma() {
  static const Primitive p{"FP32 fused multiply-add", fp32_mul().dsp + fp32_add_dsp().dsp,
                           fp32_mul().lut + fp32_add_dsp().lut, fp32_mul().ff + fp32_add_dsp().ff,
                           "assumption: costed as the multiply feeding a full-DSP adder (one rounding; "
                           "no published FMA figure for UltraScale+ found)"};
  return p;
}

const Primitive& bf16_mul() {
  static const Primitive p{"BF16 multiply", 1, 40, 30,
                           "1 DSP48E2: the 8x8-bit significand product fits its 27x18 multiplier (UG579); "
                           "exponent add, sign, zero/Inf/NaN in LUTs: assumption"};
  return p;
}

const Primitive& bf16_round() {
  static const Primitive p{"FP32 to BF16 round-to-nearest-even", 0, 20, 16,
                           "assumption: a 16-bit increment on the carry chain and the tie/NaN logic"};
  return p;
}

const Primitive& maxi_adapter_64() {
  static const Primitive p{"m_axi adapter, 64-bit", 0, 1052, 881, kHlsReport + " (its FIFOs are counted as buffers)"};
  return p;
}

const Primitive& saxi_control() {
  static const Primitive p{"s_axilite control adapter", 0, 490, 291, kHlsReport};
  return p;
}

int64_t mux_luts_per_bit(int64_t inputs) {
  if (inputs <= 1) return 0;
  if (inputs <= 4) return 1;
  if (inputs <= 32) return (inputs + 3) / 4;
  const int64_t groups = (inputs + 31) / 32;
  return groups * 8 + mux_luts_per_bit(groups);
}

int64_t comparator_luts(int bits) { return (bits + 1) / 2; }

}  // namespace resource_figures

namespace {

namespace rf = resource_figures;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Block geometry (UG573: RAMB36E2 36 Kb, 512 x 72 in simple dual-port mode; UG949: URAM288 4K x 72;
// UG574: SLICEM LUTs as simple dual-port RAM, 32 x 14 or 64 x 7 bits per eight LUTs).
constexpr int64_t kBramBits = 36 * 1024, kUramBits = 288 * 1024, kPortBits = 72;
constexpr int64_t kLutramMaxDepth = 64;

// The m_axi adapters' data FIFOs: num_*_outstanding x max_*_burst_length beats (UG1399; both 16 by
// default). The instruction port reads bursts of 64 (hls/src/top.cpp).
constexpr int64_t kMaxiOutstanding = 16, kMaxiBurst = 16, kInsnBurst = 64;
// Widths of the synthesised kernel's link headers as declared in hls/src/links.hpp (Vitis keeps a
// struct member's declared width): DdrReq is offset 64 + length 32 + kind 8 + slot 8 bits; a
// FillWord's header is base 32 + count 16 + target 8 + bank 8 + two flags.
constexpr int64_t kDdrRequestBits = 112, kFillHeaderBits = 66;

const char* const kUnits[] = {"fetch/decode", "LOAD", "GEMM", "VEC", "STORE", "UPD", "PGEN", "AXI", "control"};

int max_m() { return arch::kSupportedM[arch::kNumSupportedM - 1]; }

Primitive maxi_adapter(int bits) {
  const Primitive& b = rf::maxi_adapter_64();
  const int64_t extra = bits - 64;
  return {"m_axi adapter, " + std::to_string(bits) + "-bit", 0, b.lut + 2 * extra, b.ff + 4 * extra,
          "assumption: the 64-bit figure (" + b.source +
              ") plus 2 LUT and 4 FF per further data bit (read and write data, each registered twice)"};
}

Primitive strided_addr() {
  return {"strided address generator", 0, 600, 500,
          "assumption: two 64-bit address counters and a row counter with compares, ~1 LUT per bit on the "
          "carry chain (UG574), plus control"};
}

Primitive conv_addr() {
  return {"convolution-window address generator", 8, 1500, 1500,
          "assumption: (iy*w + ix)*c + ci per element: two 32x32-bit products of 4 DSP48E2 each "
          "(27x18 tiles, UG579), window clipping compares"};
}

Primitive stream_addr() {
  return {"stream address generator", 0, 200, 200, "assumption: a 64-bit address counter and a length compare"};
}

// Top-n of one group of m FP32 magnitudes per cycle: every pair compared as 31-bit integers, each
// element's rank the count of the comparisons it loses.
Primitive topn_network(int m) {
  const int64_t pairs = int64_t(m) * (m - 1) / 2;
  return {"top-n selection of a group of " + std::to_string(m), 0,
          pairs * rf::comparator_luts(31) + int64_t(m) * ceil_div(m - 1, 2), int64_t(m) * 32,
          "every pair compared (31-bit magnitude, " + std::to_string(rf::comparator_luts(31)) +
              " LUT each on the carry chain, UG574), a rank per element (~1 LUT per two compare bits): "
              "assumption"};
}

}  // namespace

Resources& Resources::operator+=(const Resources& o) {
  dsp += o.dsp;
  lut += o.lut;
  ff += o.ff;
  bram += o.bram;
  uram += o.uram;
  return *this;
}

Resources LogicItem::use() const {
  Resources r;
  r.dsp = count * each.dsp;
  r.lut = count * each.lut;
  r.ff = count * each.ff;
  return r;
}

const char* memory_name(Memory m) {
  switch (m) {
    case Memory::bram: return "BRAM36";
    case Memory::uram: return "URAM288";
    case Memory::lutram: return "LUTRAM";
  }
  return "?";
}

std::vector<BufferSpec> buffer_specs(const SimConfig& c) {
  const int64_t rows = c.pe.rows, cols = c.pe.cols, lanes = c.pe.lanes;
  const int64_t window = lanes * c.pe.window;   // activations a PE row takes per cycle in N:M mode
  const int64_t vl = c.vector_lanes, groups = vl * max_m();
  const int64_t beat = arch::kDdrBusBits / 16;   // BF16 elements of one bus beat
  const int64_t fill = int64_t(c.fill_beats) * beat;   // elements LOAD writes into an operand bank a cycle
  const int64_t units = isa::kNumExecUnits;
  const int64_t ddr_clients = int64_t(c.load_engines) + 4;   // the engines, VEC, STORE, UPD, PGEN
  // One line per buffer: name, unit, copies, elements per copy, bits per element, elements read
  // per cycle (or written, where that is wider): the width the partitioning must deliver.
  std::vector<BufferSpec> v = {
      {"A operand bank", "GEMM", arch::kBanks, int64_t(c.tile_rows) * c.tile_k, 16, std::max(rows * window, fill)},
      {"B operand bank, values", "GEMM", arch::kBanks, int64_t(c.tile_cols) * c.tile_k, 16,
       std::max(cols * lanes, fill)},
      {"B operand bank, indices", "GEMM", arch::kBanks, int64_t(c.tile_cols) * c.tile_k, arch::kIndexBits,
       std::max(cols * lanes, fill)},
      // Drained one PE row per cycle through that row's lane tree (read for accumulation, written).
      {"C accumulator bank", "GEMM", arch::kBanks, int64_t(c.tile_rows) * c.tile_cols, 32, rows},
      // Filled from DRAM a beat a cycle, read into an operand bank fill_beats beats a cycle.
      {"convolution patch", "LOAD", 1, c.conv_patch, 16, fill},
      {"VEC chunk (a, b, y)", "VEC", 3, arch::kVecChunk, 32, vl},
      // BatchNorm's x (and dy) between its passes: written a chunk-lane a cycle, read likewise.
      {"VEC scratch", "VEC", 1, c.vec_scratch, 16, vl},
      {"VEC row buffer", "VEC", 1, arch::kMaxVecRow, 32, vl},
      {"VEC statistics (FP64)", "VEC", 2, arch::kMaxVecRow, 64, vl},
      {"UPD chunk (w, v, g)", "UPD", 3, arch::kVecChunk, 32, vl},
      {"PGEN chunk in (FP32)", "PGEN", 1, arch::kVecChunk, 32, groups},
      // PGEN b4: M rows of the master, read once, both forms selected from it.
      {"PGEN block (FP32)", "PGEN", 1, arch::kPgenBlockElems, 32, groups},
      {"PGEN chunk out, values", "PGEN", 1, arch::kVecChunk, 16, groups},
      {"PGEN chunk out, indices", "PGEN", 1, arch::kVecChunk, arch::kIndexBits, groups},
      {"instruction queue", "fetch/decode", units, c.insn_queue_depth, arch::kInsnWords * 32, 1},
      {"token FIFO", "control", units * units, c.token_depth, 1, 1},
      {"AXI read data FIFO, instructions", "AXI", 1, kMaxiOutstanding * kInsnBurst, arch::kDdrBusBits, 1},
      {"AXI read data FIFO", "AXI", arch::kDdrChannels, kMaxiOutstanding * kMaxiBurst, arch::kDdrBusBits, 1},
      {"AXI write data FIFO", "AXI", arch::kDdrChannels, kMaxiOutstanding * kMaxiBurst, arch::kDdrBusBits, 1},
      // The synthesised kernel's burst links (docs/hls-dataflow.md): every DRAM client (the load
      // engines, VEC, STORE, UPD, PGEN) has its own read and write data links to every channel's
      // arbiter, a beat wide (the write beats carry a halfword mask), and request links.
      {"DDR read data link", "DDR links", ddr_clients * arch::kDdrChannels * arch::kDdrReadSlots, arch::kArbLinkDepth,
       arch::kDdrBusBits, 1},
      {"DDR write data link", "DDR links", ddr_clients * arch::kDdrChannels * arch::kDdrWriteSlots,
       arch::kArbLinkDepth, arch::kDdrBusBits + beat, 1},
      {"DDR request link", "DDR links", ddr_clients * arch::kDdrChannels, arch::kArbLinkDepth, kDdrRequestBits, 1},
      // Fill words from each load engine to the GEMM process, which owns the banks.
      {"bank fill link", "LOAD", c.load_engines, arch::kFillLinkDepth, static_cast<int>(fill * 16 + kFillHeaderBits), 1},
  };
  auto drop = [&](const char* name) {
    v.erase(std::remove_if(v.begin(), v.end(), [&](const BufferSpec& b) { return b.name == name; }), v.end());
  };
  if (c.conv_patch == 0) drop("convolution patch");   // LD_CONV gathers every window element from DRAM
  if (c.vec_scratch == 0) drop("VEC scratch");         // every BatchNorm pass reads DRAM
  return v;
}

BufferPlacement place_buffer(const BufferSpec& b) {
  if (b.copies < 1 || b.elements < 1 || b.bits < 1 || b.per_cycle < 1) {
    throw Error("resource estimate: buffer '" + b.name + "' has a non-positive size (copies " +
                std::to_string(b.copies) + ", elements " + std::to_string(b.elements) + ", bits " +
                std::to_string(b.bits) + ", per cycle " + std::to_string(b.per_cycle) + ")");
  }
  BufferPlacement p;
  p.spec = b;
  const int64_t per_cycle = std::min(b.per_cycle, b.elements);
  p.width_bits = per_cycle * b.bits;
  p.capacity_bits = b.elements * b.bits;
  p.depth = ceil_div(b.elements, per_cycle);
  const int64_t ports = ceil_div(p.width_bits, kPortBits);
  p.bram_option = std::max(ports, ceil_div(p.capacity_bits, kBramBits));
  p.uram_option = std::max(ports, ceil_div(p.capacity_bits, kUramBits));
  if (p.depth <= kLutramMaxDepth) {
    p.memory = Memory::lutram;
    const int64_t bits_per_8_luts = p.depth <= 32 ? 14 : 7;
    p.use.lut = b.copies * ceil_div(p.width_bits, bits_per_8_luts) * 8;
  } else if (p.bram_option * kXcvu9p.uram <= p.uram_option * kXcvu9p.bram) {
    p.memory = Memory::bram;
    p.use.bram = b.copies * p.bram_option;
  } else {
    p.memory = Memory::uram;
    p.use.uram = b.copies * p.uram_option;
  }
  return p;
}

std::vector<LogicItem> logic_items(const SimConfig& c) {
  const int64_t rows = c.pe.rows, cols = c.pe.cols, lanes = c.pe.lanes, pes = rows * cols;
  const int64_t window = lanes * c.pe.window;
  const int64_t vl = c.vector_lanes;
  const int m = max_m();
  const int64_t beat = arch::kDdrBusBits / 16;
  const int64_t units = isa::kNumExecUnits;
  // Half of each PE's lane accumulators in DSPs, half in fabric: all in DSPs would put the array
  // over the 80% line on DSPs alone; all in fabric adds ~110 LUTs per adder (docs/resources.md).
  const int64_t acc_in_dsp = lanes / 2, acc_in_fabric = lanes - acc_in_dsp;
  std::vector<LogicItem> v;
  auto add = [&](const char* unit, const std::string& what, int64_t count, const Primitive& p) {
    v.push_back({unit, what, count, p});
  };

  add("fetch/decode", "instruction registers, header checks, unit decode", 1,
      {"decoder", 0, 800, 1300, "assumption: the 512-bit instruction word registered at fetch and decode"});
  add("fetch/decode", "queue pointers and full/empty flags", units,
      {"queue control", 0, 20, 16, "assumption: two pointers and their compare"});

  // One DMA engine per load that runs at once (load_engines), each with its address generators and
  // the on-load selection of its beat.
  const int64_t engines = c.load_engines;
  add("LOAD", "strided address generator per engine", engines, strided_addr());
  add("LOAD", "convolution-window address generator per engine", engines, conv_addr());
  add("LOAD", "N:M selection on load (pre-generation off): a group per beat and engine", engines, topn_network(m));
  add("LOAD", "BF16 rounding of the selected weights", engines * m, rf::bf16_round());
  add("LOAD", "sparse index unpacking into the B bank", 1,
      {"index unpack", 0, 100, 100, "assumption: nibble extraction and range check"});

  add("GEMM", "BF16 multipliers (rows x cols x lanes)", pes * lanes, rf::bf16_mul());
  add("GEMM", "lane accumulators in DSPs (lanes/2 per PE)", pes * acc_in_dsp, rf::fp32_add_dsp());
  add("GEMM", "lane accumulators in fabric (the other lanes per PE)", pes * acc_in_fabric, rf::fp32_add_fabric());
  add("GEMM", "N:M activation select: one " + std::to_string(window) + ":1 BF16 mux per lane", pes * lanes,
      {"select mux", 0, 16 * rf::mux_luts_per_bit(window), 0,
       "docs/isa.md §6 (a window-wide multiplexer per lane); 16 bits x " +
           std::to_string(rf::mux_luts_per_bit(window)) + " LUT per bit (UG974, MUXF9: 32:1 in 8 LUT6)"});
  add("GEMM", "operand registers per PE (window, weights, indices passed on)", pes,
      {"PE operand registers", 0, 0, window * 16 + lanes * (16 + arch::kIndexBits),
       "assumption: each PE registers the operands it forwards along its row and column"});
  add("GEMM", "drain: lane tree of each PE row (lanes - 1 adders)", rows * (lanes - 1), rf::fp32_add_fabric());
  add("GEMM", "drain: C accumulation of each PE row", rows, rf::fp32_add_fabric());
  add("GEMM", "bank address generators (A, B, C) and block sequencer", 1,
      {"GEMM control", 0, 900, 900, "assumption: three bank address counters and the block loop"});

  add("VEC", "FP32 adder per lane", vl, rf::fp32_add_dsp());
  add("VEC", "FP32 multiplier per lane", vl, rf::fp32_mul());
  add("VEC", "compare/select per lane (ReLU, max pooling, arg-max)", vl,
      {"compare/select", 0, 48, 32, "assumption: a 16-bit compare and a 32-bit select"});
  add("VEC", "BF16 rounding per lane", vl, rf::bf16_round());
  add("VEC", "shared exp, divide, reciprocal square root", 1,
      {"special functions", 8, 3000, 3000,
       "assumption: one shared unit; the reference's double-precision steps (statistics, GELU) pass through it "
       "at reduced rate"});
  add("VEC", "stream address generators (two in, one out)", 3, stream_addr());

  add("STORE", "strided address generator", 1, strided_addr());
  add("STORE", "convolution-window address generator", 1, conv_addr());
  add("STORE", "BF16 rounding of one beat", beat, rf::bf16_round());

  add("UPD", "SGD rule per lane: 4 fused multiply-adds (arch/sgd_rule.hpp)", vl * 4, rf::fp32_fma());
  add("UPD", "SR-STE keep test and non-finite check per lane", vl,
      {"keep test", 0, 24, 8, "assumption: n 4-bit index compares and an exponent check"});
  add("UPD", "stream address generators (w, v, g)", 3, stream_addr());

  add("PGEN", "top-n selection per lane (a group of the largest M a cycle)", vl, topn_network(m));
  add("PGEN", "BF16 rounding of the group's values", vl * m, rf::bf16_round());
  add("PGEN", "compaction of the kept entries per lane", vl,
      {"compaction", 0, int64_t(m) * (16 + arch::kIndexBits) * rf::mux_luts_per_bit(m),
       int64_t(m) * (16 + arch::kIndexBits),
       "an M:1 mux per output slot for value and index (UG974), registered: assumption"});
  add("PGEN", "stream address generators (w, values, indices)", 3, stream_addr());

  add("AXI", "m_axi adapters (one per DDR channel and the instruction port)", arch::kDdrChannels + 1,
      maxi_adapter(arch::kDdrBusBits));

  add("control", "s_axilite control registers", 1, rf::saxi_control());
  add("control", "token FIFO counters and flags", units * units,
      {"token FIFO control", 0, 12, 14, "assumption: two 7-bit pointers and their compare"});
  add("control", "status block and watchdog", 1, {"status", 0, 300, 300, "assumption"});
  return v;
}

std::vector<std::pair<std::string, Resources>> ResourceEstimate::by_unit() const {
  std::vector<std::pair<std::string, Resources>> out;
  for (const char* u : kUnits) out.push_back({u, Resources{}});
  auto slot = [&](const std::string& unit) -> Resources& {
    for (auto& [name, r] : out)
      if (name == unit) return r;
    out.push_back({unit, Resources{}});
    return out.back().second;
  };
  for (const auto& item : logic) slot(item.unit) += item.use();
  for (const auto& b : buffers) slot(b.spec.unit) += b.use;
  return out;
}

bool ResourceEstimate::fits() const { return over().empty(); }

std::vector<std::string> ResourceEstimate::over() const {
  std::vector<std::string> o;
  if (share_dsp() > kFitLimit) o.push_back("DSP");
  if (share_bram() > kFitLimit) o.push_back("BRAM");
  if (share_uram() > kFitLimit) o.push_back("URAM");
  return o;
}

std::vector<std::string> ResourceEstimate::also_over() const {
  std::vector<std::string> o;
  if (share_lut() > kFitLimit) o.push_back("LUT");
  if (share_ff() > kFitLimit) o.push_back("FF");
  return o;
}

namespace {

std::string pct(double share) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * share);
  return b;
}

}  // namespace

std::string ResourceEstimate::verdict() const {
  const std::pair<const char*, double> shares[] = {{"DSP", share_dsp()}, {"BRAM", share_bram()}, {"URAM", share_uram()}};
  const std::string limit = std::to_string(static_cast<int>(kFitLimit * 100 + 0.5)) + "%";
  std::string over_list, under_list;
  for (const auto& [name, s] : shares) {
    std::string& list = s > kFitLimit ? over_list : under_list;
    list += std::string(list.empty() ? "" : ", ") + name + " " + pct(s);
  }
  if (over_list.empty()) return "fits: " + under_list + " <= " + limit;
  return "does not fit: " + over_list + " > " + limit + (under_list.empty() ? "" : " (" + under_list + " <= " + limit + ")");
}

nlohmann::ordered_json ResourceEstimate::to_json() const {
  auto res = [](const Resources& r) {
    return nlohmann::ordered_json{{"dsp", r.dsp}, {"lut", r.lut}, {"ff", r.ff}, {"bram36", r.bram}, {"uram288", r.uram}};
  };
  nlohmann::ordered_json j;
  j["device"] = {{"name", device.name}, {"dsp", device.dsp},   {"lut", device.lut},
                 {"ff", device.ff},     {"bram36", device.bram}, {"uram288", device.uram}};
  j["limit"] = kFitLimit;
  j["fits"] = fits();
  j["verdict"] = verdict();
  j["over"] = over();
  j["also_over"] = also_over();
  j["total"] = res(total);
  j["utilisation"] = {{"dsp", share_dsp()}, {"lut", share_lut()},   {"ff", share_ff()},
                      {"bram36", share_bram()}, {"uram288", share_uram()}};
  nlohmann::ordered_json units = nlohmann::ordered_json::array();
  for (const auto& [name, r] : by_unit()) {
    nlohmann::ordered_json u = res(r);
    u["unit"] = name;
    units.push_back(u);
  }
  j["units"] = units;
  nlohmann::ordered_json items = nlohmann::ordered_json::array();
  for (const auto& it : logic) {
    const Resources r = it.use();
    items.push_back({{"unit", it.unit},
                     {"what", it.what},
                     {"count", it.count},
                     {"primitive", it.each.name},
                     {"dsp_each", it.each.dsp},
                     {"lut_each", it.each.lut},
                     {"ff_each", it.each.ff},
                     {"dsp", r.dsp},
                     {"lut", r.lut},
                     {"ff", r.ff},
                     {"source", it.each.source}});
  }
  j["logic"] = items;
  nlohmann::ordered_json bufs = nlohmann::ordered_json::array();
  for (const auto& b : buffers) {
    bufs.push_back({{"name", b.spec.name},
                    {"unit", b.spec.unit},
                    {"copies", b.spec.copies},
                    {"elements", b.spec.elements},
                    {"bits", b.spec.bits},
                    {"per_cycle", b.spec.per_cycle},
                    {"width_bits", b.width_bits},
                    {"capacity_bits", b.capacity_bits},
                    {"depth", b.depth},
                    {"bram36_option", b.bram_option},
                    {"uram288_option", b.uram_option},
                    {"memory", memory_name(b.memory)},
                    {"bram36", b.use.bram},
                    {"uram288", b.use.uram},
                    {"lut", b.use.lut}});
  }
  j["buffers"] = bufs;
  j["config"] = config.to_json();
  return j;
}

ResourceEstimate estimate_resources(const SimConfig& cfg) {
  const std::pair<const char*, int> dims[] = {
      {"pe.rows", cfg.pe.rows},         {"pe.cols", cfg.pe.cols},         {"pe.lanes", cfg.pe.lanes},
      {"pe.select_window", cfg.pe.window}, {"tile.rows", cfg.tile_rows},   {"tile.cols", cfg.tile_cols},
      {"tile.k", cfg.tile_k},           {"vector_lanes", cfg.vector_lanes}, {"queues.insn_depth", cfg.insn_queue_depth},
      {"queues.token_depth", cfg.token_depth}, {"load_engines", cfg.load_engines}, {"fill_beats", cfg.fill_beats}};
  if (cfg.conv_patch < 0) throw Error("resource estimate: conv_patch = " + std::to_string(cfg.conv_patch) + " is negative");
  if (cfg.vec_scratch < 0) throw Error("resource estimate: vec_scratch = " + std::to_string(cfg.vec_scratch) + " is negative");
  for (const auto& [name, value] : dims) {
    if (value < 1) {
      throw Error(std::string("resource estimate: ") + name + " = " + std::to_string(value) + " must be positive");
    }
  }
  ResourceEstimate e;
  e.config = cfg;
  e.logic = logic_items(cfg);
  for (const auto& spec : buffer_specs(cfg)) e.buffers.push_back(place_buffer(spec));
  for (const auto& item : e.logic) e.total += item.use();
  for (const auto& b : e.buffers) e.total += b.use;
  return e;
}

std::string resources_table(const ResourceEstimate& e) {
  const SimConfig& c = e.config;
  std::string s;
  char line[256];
  std::snprintf(line, sizeof line,
                "Resource estimate (first-order, docs/resources.md) on the %s: PE array %dx%dx%d, select window %d, "
                "tile %dx%dx%d, %d vector lanes\n\n",
                e.device.name, c.pe.rows, c.pe.cols, c.pe.lanes, c.pe.window, c.tile_rows, c.tile_cols, c.tile_k,
                c.vector_lanes);
  s += line;
  auto row = [&](const std::string& name, const Resources& r) {
    std::snprintf(line, sizeof line, "  %-14s %9lld %10lld %10lld %8lld %8lld\n", name.c_str(), (long long)r.dsp,
                  (long long)r.lut, (long long)r.ff, (long long)r.bram, (long long)r.uram);
    s += line;
  };
  std::snprintf(line, sizeof line, "  %-14s %9s %10s %10s %8s %8s\n", "unit", "DSP48E2", "LUT", "FF", "BRAM36",
                "URAM288");
  s += line;
  for (const auto& [name, r] : e.by_unit()) row(name, r);
  row("total", e.total);
  const Resources dev{e.device.dsp, e.device.lut, e.device.ff, e.device.bram, e.device.uram};
  row(e.device.name, dev);
  std::snprintf(line, sizeof line, "  %-14s %9s %10s %10s %8s %8s\n\n", "share", pct(e.share_dsp()).c_str(),
                pct(e.share_lut()).c_str(), pct(e.share_ff()).c_str(), pct(e.share_bram()).c_str(),
                pct(e.share_uram()).c_str());
  s += line;

  std::snprintf(line, sizeof line, "  %-34s %-12s %22s %9s %7s %8s %7s\n", "buffer", "unit", "copies x elements x bits",
                "width", "depth", "memory", "blocks");
  s += line;
  for (const auto& b : e.buffers) {
    const std::string shape = std::to_string(b.spec.copies) + " x " + std::to_string(b.spec.elements) + " x " +
                              std::to_string(b.spec.bits);
    const int64_t blocks = b.memory == Memory::bram ? b.use.bram : b.memory == Memory::uram ? b.use.uram : b.use.lut;
    std::snprintf(line, sizeof line, "  %-34s %-12s %22s %9lld %7lld %8s %7lld%s\n", b.spec.name.c_str(),
                  b.spec.unit.c_str(), shape.c_str(), (long long)b.width_bits, (long long)b.depth,
                  memory_name(b.memory), (long long)blocks, b.memory == Memory::lutram ? " LUT" : "");
    s += line;
  }
  s += '\n';
  s += e.verdict();
  s += '\n';
  for (const auto& name : e.also_over()) {
    const double share = name == "LUT" ? e.share_lut() : e.share_ff();
    s += "note: " + name + " " + pct(share) + " is over 80% as well (outside the verdict; first-order figures, "
         "docs/resources.md)\n";
  }
  return s;
}

}  // namespace sat::sim
