// SimConfig: the simulator's overridable configuration (sim_config.hpp, docs/sim.md).
#include "sat_sim_study/sim_config.hpp"

#include <cstdlib>
#include <functional>
#include <map>
#include <vector>

#include "sat/error.hpp"
#include "sat/io.hpp"

namespace sat::sim {

namespace {

// The XCVU9P's DSP48E2 slices (Xilinx DS923, Virtex UltraScale+ data sheet, device table): one
// BF16 multiplier each.
constexpr int kDeviceDsps = 6840;

[[noreturn]] void refuse(const std::string& why) { throw Error("simulator configuration: " + why); }

void in_range(const char* key, long v, long lo, long hi) {
  if (v < lo || v > hi) {
    refuse(std::string(key) + " = " + std::to_string(v) + " is outside " + std::to_string(lo) + ".." +
           std::to_string(hi));
  }
}

bool pow2(long v) { return v > 0 && (v & (v - 1)) == 0; }

// "32x16x8" -> {32, 16, 8}; throws naming the key when malformed.
std::vector<int> dims(const std::string& key, const std::string& text, size_t min_n, size_t max_n) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t x = text.find('x', pos);
    const std::string part = text.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
    char* end = nullptr;
    const long v = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0') refuse(key + "=" + text + ": '" + part + "' is not a whole number");
    out.push_back(static_cast<int>(v));
    if (x == std::string::npos) break;
    pos = x + 1;
  }
  if (out.size() < min_n || out.size() > max_n) {
    refuse(key + "=" + text + ": expected " + std::to_string(min_n) +
           (max_n > min_n ? " to " + std::to_string(max_n) : std::string()) + " numbers joined by 'x'");
  }
  return out;
}

int whole(const std::string& key, const std::string& text) { return dims(key, text, 1, 1)[0]; }

}  // namespace

void SimConfig::validate() const {
  in_range("clock_mhz", clock_mhz, 10, 1000);
  in_range("pe.rows", pe.rows, 1, 256);
  in_range("pe.cols", pe.cols, 1, 256);
  in_range("pe.lanes", pe.lanes, 1, 64);
  in_range("pe.select_window", pe.window, 1, 16);
  in_range("tile.rows", tile_rows, 1, arch::kMaxTileRows);
  in_range("tile.cols", tile_cols, 1, arch::kMaxTileCols);
  in_range("tile.k", tile_k, 16, arch::kMaxTileK);
  in_range("queues.insn_depth", insn_queue_depth, 1, 4096);
  in_range("queues.token_depth", token_depth, 1, 4096);
  in_range("vector_lanes", vector_lanes, 1, 64);
  in_range("conv_patch", conv_patch, 0, arch::kConvPatchElems);
  in_range("vec_scratch", vec_scratch, 0, arch::kVecScratchElems);
  in_range("load_engines", load_engines, 1, arch::kDdrChannels);
  in_range("fill_beats", fill_beats, 1, 16);
  in_range("bank_ports.read", bank_read_ports, 1, 2);
  in_range("bank_ports.write", bank_write_ports, 1, 2);
  in_range("dram.queue_depth", dram_queue_depth, 1, 256);
  in_range("dram.ctrl_latency", dram_ctrl_latency, 0, 1000);
  const long dsps = long{pe.rows} * pe.cols * pe.lanes;
  if (dsps > kDeviceDsps) {
    refuse("a " + std::to_string(pe.rows) + "x" + std::to_string(pe.cols) + "x" + std::to_string(pe.lanes) +
           " PE array needs " + std::to_string(dsps) + " DSP48E2 (one per BF16 multiplier); the XCVU9P has " +
           std::to_string(kDeviceDsps));
  }
  if (!pow2(pe.window)) refuse("pe.select_window = " + std::to_string(pe.window) + " is not a power of two");
  if (!pow2(vector_lanes)) refuse("vector_lanes = " + std::to_string(vector_lanes) + " is not a power of two");
  if (tile_rows < pe.rows) {
    refuse("tile.rows " + std::to_string(tile_rows) + " is smaller than pe.rows " + std::to_string(pe.rows) +
           ": PE rows would never work");
  }
  if (tile_cols < pe.cols) {
    refuse("tile.cols " + std::to_string(tile_cols) + " is smaller than pe.cols " + std::to_string(pe.cols) +
           ": PE columns would never work");
  }
  if (tile_k % 16 != 0) {
    refuse("tile.k " + std::to_string(tile_k) + " is not a multiple of 16 (whole groups of every supported M)");
  }
  if (tile_k < pe.lanes * pe.window) {
    refuse("tile.k " + std::to_string(tile_k) + " is shorter than one N:M window of the array (" +
           std::to_string(pe.lanes * pe.window) + " elements)");
  }
  if (bank_read_ports + bank_write_ports > 2) {
    refuse("bank_ports: " + std::to_string(bank_read_ports) + " read + " + std::to_string(bank_write_ports) +
           " write ports; a BRAM/URAM block has two ports in all");
  }
  if (gemm_core != "model" && gemm_core != "rtl") refuse("gemm_core '" + gemm_core + "' is not one of model, rtl");
  if (dram_timing != "vcu1525" && dram_timing != "jedec_2400r") {
    refuse("dram.timing '" + dram_timing + "' is not one of vcu1525, jedec_2400r");
  }
  if (dram_mapping != "row_column_bank" && dram_mapping != "row_bank_column" && dram_mapping != "bank_row_column") {
    refuse("dram.mapping '" + dram_mapping + "' is not one of row_column_bank, row_bank_column, bank_row_column");
  }
}

nlohmann::json SimConfig::to_json() const {
  nlohmann::ordered_json j;
  j["clock_mhz"] = clock_mhz;
  j["pe"] = {{"rows", pe.rows}, {"cols", pe.cols}, {"lanes", pe.lanes}, {"select_window", pe.window}};
  j["tile"] = {{"rows", tile_rows}, {"cols", tile_cols}, {"k", tile_k}};
  j["queues"] = {{"insn_depth", insn_queue_depth}, {"token_depth", token_depth}};
  j["vector_lanes"] = vector_lanes;
  j["conv_patch"] = conv_patch;
  j["vec_scratch"] = vec_scratch;
  j["load_engines"] = load_engines;
  j["fill_beats"] = fill_beats;
  j["bank_ports"] = {{"read", bank_read_ports}, {"write", bank_write_ports}};
  j["dram"] = {{"timing", dram_timing},
               {"mapping", dram_mapping},
               {"queue_depth", dram_queue_depth},
               {"ctrl_latency", dram_ctrl_latency}};
  j["energy"] = energy.to_json();
  j["gemm_core"] = gemm_core;
  return nlohmann::json(j);
}

bool SimConfig::is_default() const { return to_json() == SimConfig{}.to_json(); }

void SimConfig::apply_json(const nlohmann::json& j, const std::string& source) {
  const std::string where = source.empty() ? std::string("configuration") : source;
  if (!j.is_object()) throw Error(where + ": the configuration must be a JSON object");
  auto integer = [&](const nlohmann::json& v, const std::string& key) {
    if (!v.is_number_integer()) throw Error(where + ": " + key + " must be a whole number, got " + v.dump());
    return v.get<int>();
  };
  auto text = [&](const nlohmann::json& v, const std::string& key) {
    if (!v.is_string()) throw Error(where + ": " + key + " must be a string, got " + v.dump());
    return v.get<std::string>();
  };
  auto object = [&](const nlohmann::json& v, const std::string& key,
                    const std::map<std::string, std::function<void(const nlohmann::json&)>>& fields) {
    if (!v.is_object()) throw Error(where + ": " + key + " must be an object");
    for (const auto& [k, val] : v.items()) {
      auto it = fields.find(k);
      if (it == fields.end()) {
        std::string known;
        for (const auto& f : fields) known += (known.empty() ? "" : ", ") + f.first;
        throw Error(where + ": unknown key " + key + "." + k + " (known: " + known + ")");
      }
      it->second(val);
    }
  };
  std::map<std::string, std::function<void(const nlohmann::json&)>> top = {
      {"clock_mhz", [&](const nlohmann::json& v) { clock_mhz = integer(v, "clock_mhz"); }},
      {"pe",
       [&](const nlohmann::json& v) {
         object(v, "pe",
                {{"rows", [&](const nlohmann::json& x) { pe.rows = integer(x, "pe.rows"); }},
                 {"cols", [&](const nlohmann::json& x) { pe.cols = integer(x, "pe.cols"); }},
                 {"lanes", [&](const nlohmann::json& x) { pe.lanes = integer(x, "pe.lanes"); }},
                 {"select_window", [&](const nlohmann::json& x) { pe.window = integer(x, "pe.select_window"); }}});
       }},
      {"tile",
       [&](const nlohmann::json& v) {
         object(v, "tile",
                {{"rows", [&](const nlohmann::json& x) { tile_rows = integer(x, "tile.rows"); }},
                 {"cols", [&](const nlohmann::json& x) { tile_cols = integer(x, "tile.cols"); }},
                 {"k", [&](const nlohmann::json& x) { tile_k = integer(x, "tile.k"); }}});
       }},
      {"queues",
       [&](const nlohmann::json& v) {
         object(v, "queues",
                {{"insn_depth", [&](const nlohmann::json& x) { insn_queue_depth = integer(x, "queues.insn_depth"); }},
                 {"token_depth", [&](const nlohmann::json& x) { token_depth = integer(x, "queues.token_depth"); }}});
       }},
      {"vector_lanes", [&](const nlohmann::json& v) { vector_lanes = integer(v, "vector_lanes"); }},
      {"conv_patch", [&](const nlohmann::json& v) { conv_patch = integer(v, "conv_patch"); }},
      {"vec_scratch", [&](const nlohmann::json& v) { vec_scratch = integer(v, "vec_scratch"); }},
      {"load_engines", [&](const nlohmann::json& v) { load_engines = integer(v, "load_engines"); }},
      {"fill_beats", [&](const nlohmann::json& v) { fill_beats = integer(v, "fill_beats"); }},
      {"bank_ports",
       [&](const nlohmann::json& v) {
         object(v, "bank_ports",
                {{"read", [&](const nlohmann::json& x) { bank_read_ports = integer(x, "bank_ports.read"); }},
                 {"write", [&](const nlohmann::json& x) { bank_write_ports = integer(x, "bank_ports.write"); }}});
       }},
      {"dram",
       [&](const nlohmann::json& v) {
         object(v, "dram",
                {{"timing", [&](const nlohmann::json& x) { dram_timing = text(x, "dram.timing"); }},
                 {"mapping", [&](const nlohmann::json& x) { dram_mapping = text(x, "dram.mapping"); }},
                 {"queue_depth", [&](const nlohmann::json& x) { dram_queue_depth = integer(x, "dram.queue_depth"); }},
                 {"ctrl_latency",
                  [&](const nlohmann::json& x) { dram_ctrl_latency = integer(x, "dram.ctrl_latency"); }}});
       }},
      {"gemm_core", [&](const nlohmann::json& v) { gemm_core = text(v, "gemm_core"); }},
      {"energy",
       [&](const nlohmann::json& v) {
         try {
           energy.apply_json(v);
         } catch (const Error& e) {
           throw Error(where + ": " + e.what());
         }
       }},
  };
  object(j, "(top level)", top);
  try {
    validate();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

void SimConfig::apply_to(ScheduleOptions& opt) const {
  opt.tile_rows = tile_rows;
  opt.tile_cols = tile_cols;
  opt.tile_k = tile_k;
}

double SimConfig::peak_gflops(bool sparse) const {
  return 2.0 * static_cast<double>(pe.peak_macs_per_cycle(sparse)) * clock_mhz / 1e3;
}

double SimConfig::port_peak_gbs() const {
  return static_cast<double>(arch::kDdrChannels) * (arch::kDdrBusBits / 8) * clock_mhz / 1e3;
}

SimConfig read_sim_config(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  SimConfig cfg;
  cfg.apply_json(j, path);
  return cfg;
}

void apply_setting(SimConfig& cfg, const std::string& key, const std::string& value) {
  if (key == "pe") {
    const auto d = dims(key, value, 2, 3);
    cfg.pe.rows = d[0];
    cfg.pe.cols = d[1];
    if (d.size() > 2) cfg.pe.lanes = d[2];
  } else if (key == "tile") {
    const auto d = dims(key, value, 3, 3);
    cfg.tile_rows = d[0];
    cfg.tile_cols = d[1];
    cfg.tile_k = d[2];
  } else if (key == "clock") {
    cfg.clock_mhz = whole(key, value);
  } else if (key == "vector_lanes") {
    cfg.vector_lanes = whole(key, value);
  } else if (key == "conv_patch") {
    cfg.conv_patch = whole(key, value);
  } else if (key == "vec_scratch") {
    cfg.vec_scratch = whole(key, value);
  } else if (key == "load_engines") {
    cfg.load_engines = whole(key, value);
  } else if (key == "fill_beats") {
    cfg.fill_beats = whole(key, value);
  } else if (key == "window") {
    cfg.pe.window = whole(key, value);
  } else if (key == "queue") {
    cfg.insn_queue_depth = whole(key, value);
  } else if (key == "tokens") {
    cfg.token_depth = whole(key, value);
  } else if (key == "dram_queue") {
    cfg.dram_queue_depth = whole(key, value);
  } else if (key == "gemm_core") {
    cfg.gemm_core = value;
  } else {
    refuse("unknown setting '" + key +
           "' (settings: pe=RxC[xL], tile=RxCxK, clock=MHz, window=W, vector_lanes=L, conv_patch=E, vec_scratch=E, "
           "load_engines=N, "
           "fill_beats=B, queue=D, tokens=D, dram_queue=D, gemm_core=model|rtl; nm=N:M is a sweep axis of its own)");
  }
  cfg.validate();
}

}  // namespace sat::sim
