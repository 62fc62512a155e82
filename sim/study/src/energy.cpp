// The simulator's energy model (energy.hpp; sources and limits in docs/sim-energy.md).
#include "sat_sim_study/energy.hpp"

#include <array>
#include <cmath>
#include <string>
#include <utility>

#include "sat/error.hpp"

namespace sat::sim {

namespace {

// The fields by their JSON names, in one place for apply_json and to_json.
using Field = std::pair<const char*, double EnergyModel::*>;
constexpr std::array<Field, 10> kFields = {{
    {"pj_mac_dense", &EnergyModel::pj_mac_dense},
    {"pj_mac_sparse", &EnergyModel::pj_mac_sparse},
    {"pj_buffer_read_byte", &EnergyModel::pj_buffer_read_byte},
    {"pj_buffer_write_byte", &EnergyModel::pj_buffer_write_byte},
    {"pj_dram_read_byte", &EnergyModel::pj_dram_read_byte},
    {"pj_dram_write_byte", &EnergyModel::pj_dram_write_byte},
    {"pj_activate", &EnergyModel::pj_activate},
    {"pj_precharge", &EnergyModel::pj_precharge},
    {"pj_vector_op", &EnergyModel::pj_vector_op},
    {"static_watts", &EnergyModel::static_watts},
}};

[[noreturn]] void refuse(const std::string& why) { throw Error("energy model: " + why); }

}  // namespace

// The member initialisers carry the cited values (energy.hpp).
EnergyModel EnergyModel::defaults() { return EnergyModel{}; }

void EnergyModel::apply_json(const nlohmann::json& j) {
  if (!j.is_object()) refuse("\"energy\" must be an object of per-event energies, got " + j.dump());
  for (const auto& [key, value] : j.items()) {
    const Field* field = nullptr;
    for (const auto& f : kFields)
      if (key == f.first) field = &f;
    if (!field) {
      std::string known;
      for (const auto& f : kFields) known += (known.empty() ? "" : ", ") + std::string(f.first);
      refuse("unknown key energy." + key + " (known: " + known + ")");
    }
    // A negative price would let a configuration earn energy back; JSON has no NaN, but a double from
    // an API caller might.
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0) {
      refuse("energy." + key + " must be a number >= 0, got " + value.dump());
    }
    this->*(field->second) = value.get<double>();
  }
}

nlohmann::json EnergyModel::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : kFields) j[f.first] = this->*(f.second);
  return j;
}

double EnergyBreakdown::dynamic() const { return mac + buffer + dram + dram_rows + vector; }

double EnergyBreakdown::total() const { return dynamic() + static_; }

nlohmann::json EnergyBreakdown::to_json() const {
  return {{"mac_j", mac},         {"buffer_j", buffer}, {"dram_j", dram},        {"dram_rows_j", dram_rows},
          {"vector_j", vector},   {"static_j", static_}, {"dynamic_j", dynamic()}, {"total_j", total()}};
}

EnergyBreakdown energy(const EnergyEvents& e, const EnergyModel& m) {
  constexpr double kPj = 1e-12;
  EnergyBreakdown b;
  b.mac = (e.macs_dense * m.pj_mac_dense + e.macs_sparse * m.pj_mac_sparse) * kPj;
  b.buffer = (e.buffer_bytes_read * m.pj_buffer_read_byte + e.buffer_bytes_written * m.pj_buffer_write_byte) * kPj;
  b.dram = (e.dram_bytes_read * m.pj_dram_read_byte + e.dram_bytes_written * m.pj_dram_write_byte) * kPj;
  b.dram_rows = (e.activates * m.pj_activate + e.precharges * m.pj_precharge) * kPj;
  b.vector = e.vector_ops * m.pj_vector_op * kPj;
  b.static_ = m.static_watts * e.seconds;
  return b;
}

double gflops_per_watt(double flops, double joules) { return joules > 0 ? flops / joules / 1e9 : 0.0; }

}  // namespace sat::sim
