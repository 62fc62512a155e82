// The simulator's energy model (sim/study energy.hpp, docs/sim-energy.md): linearity of every
// component in its event count, static power, the defaults' arithmetic against the cited figures,
// JSON overrides and their refusals, and GFLOPS/W on a hand-worked example.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "sat/error.hpp"
#include "sat_sim_study/energy.hpp"

using namespace sat::sim;

namespace {

// A model with round prices, so expected joules are exact by hand.
EnergyModel round_model() {
  EnergyModel m;
  m.pj_mac_dense = 1;
  m.pj_mac_sparse = 2;
  m.pj_buffer_read_byte = 3;
  m.pj_buffer_write_byte = 4;
  m.pj_dram_read_byte = 100;
  m.pj_dram_write_byte = 200;
  m.pj_activate = 1000;
  m.pj_precharge = 500;
  m.pj_vector_op = 5;
  m.static_watts = 10;
  return m;
}

std::string refusal(const std::string& json) {
  EnergyModel m;
  try {
    m.apply_json(nlohmann::json::parse(json));
  } catch (const sat::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Energy, ZeroEventsAndZeroSecondsGiveZero) {
  const EnergyBreakdown b = energy(EnergyEvents{});   // the cited defaults: nothing counted costs nothing
  EXPECT_EQ(b.mac, 0.0);
  EXPECT_EQ(b.buffer, 0.0);
  EXPECT_EQ(b.dram, 0.0);
  EXPECT_EQ(b.dram_rows, 0.0);
  EXPECT_EQ(b.vector, 0.0);
  EXPECT_EQ(b.static_, 0.0);
  EXPECT_EQ(b.dynamic(), 0.0);
  EXPECT_EQ(b.total(), 0.0);
}

TEST(Energy, EachComponentScalesLinearlyWithItsEventCount) {
  struct Case {
    const char* name;
    std::function<void(EnergyEvents&, double)> set;
    std::function<double(const EnergyBreakdown&)> get;
  };
  const std::vector<Case> cases = {
      {"macs_dense", [](EnergyEvents& e, double n) { e.macs_dense = n; }, [](const EnergyBreakdown& b) { return b.mac; }},
      {"macs_sparse", [](EnergyEvents& e, double n) { e.macs_sparse = n; }, [](const EnergyBreakdown& b) { return b.mac; }},
      {"buffer_bytes_read", [](EnergyEvents& e, double n) { e.buffer_bytes_read = n; },
       [](const EnergyBreakdown& b) { return b.buffer; }},
      {"buffer_bytes_written", [](EnergyEvents& e, double n) { e.buffer_bytes_written = n; },
       [](const EnergyBreakdown& b) { return b.buffer; }},
      {"dram_bytes_read", [](EnergyEvents& e, double n) { e.dram_bytes_read = n; },
       [](const EnergyBreakdown& b) { return b.dram; }},
      {"dram_bytes_written", [](EnergyEvents& e, double n) { e.dram_bytes_written = n; },
       [](const EnergyBreakdown& b) { return b.dram; }},
      {"activates", [](EnergyEvents& e, double n) { e.activates = n; }, [](const EnergyBreakdown& b) { return b.dram_rows; }},
      {"precharges", [](EnergyEvents& e, double n) { e.precharges = n; },
       [](const EnergyBreakdown& b) { return b.dram_rows; }},
      {"vector_ops", [](EnergyEvents& e, double n) { e.vector_ops = n; }, [](const EnergyBreakdown& b) { return b.vector; }},
      {"seconds", [](EnergyEvents& e, double n) { e.seconds = n; }, [](const EnergyBreakdown& b) { return b.static_; }},
  };
  for (const EnergyModel& m : {EnergyModel::defaults(), round_model()}) {
    for (const auto& c : cases) {
      EnergyEvents one, three;
      c.set(one, 1e6);
      c.set(three, 3e6);
      const EnergyBreakdown b1 = energy(one, m), b3 = energy(three, m);
      EXPECT_GT(c.get(b1), 0.0) << c.name;
      EXPECT_DOUBLE_EQ(c.get(b3), 3 * c.get(b1)) << c.name;
      // Only its own component moves: the total is that component alone.
      EXPECT_DOUBLE_EQ(b1.total(), c.get(b1)) << c.name;
    }
  }
}

TEST(Energy, StaticIsWattsTimesSecondsAndNotDynamic) {
  EnergyModel m = round_model();
  m.static_watts = 7.5;
  EnergyEvents e;
  e.seconds = 2;
  const EnergyBreakdown b = energy(e, m);
  EXPECT_DOUBLE_EQ(b.static_, 15.0);
  EXPECT_EQ(b.dynamic(), 0.0);
  EXPECT_DOUBLE_EQ(b.total(), 15.0);
  e.macs_dense = 1e6;   // 1e6 x 1 pJ = 1 uJ of dynamic energy; static unchanged
  EXPECT_DOUBLE_EQ(energy(e, m).static_, 15.0);
  EXPECT_DOUBLE_EQ(energy(e, m).dynamic(), 1e-6);
}

TEST(Energy, HandWorkedBreakdown) {
  EnergyEvents e;
  e.macs_dense = 1e9;              // 1e9 x 1 pJ = 1 mJ
  e.macs_sparse = 5e8;             // 5e8 x 2 pJ = 1 mJ
  e.buffer_bytes_read = 1e9;       // 3 mJ
  e.buffer_bytes_written = 5e8;    // 2 mJ
  e.dram_bytes_read = 1e8;         // 10 mJ
  e.dram_bytes_written = 5e7;      // 10 mJ
  e.activates = 1e6;               // 1 mJ
  e.precharges = 2e6;              // 1 mJ
  e.vector_ops = 2e8;              // 1 mJ
  e.seconds = 1e-3;                // 10 W x 1 ms = 10 mJ
  const EnergyBreakdown b = energy(e, round_model());
  EXPECT_DOUBLE_EQ(b.mac, 2e-3);
  EXPECT_DOUBLE_EQ(b.buffer, 5e-3);
  EXPECT_DOUBLE_EQ(b.dram, 20e-3);
  EXPECT_DOUBLE_EQ(b.dram_rows, 2e-3);
  EXPECT_DOUBLE_EQ(b.vector, 1e-3);
  EXPECT_DOUBLE_EQ(b.static_, 10e-3);
  EXPECT_DOUBLE_EQ(b.dynamic(), 30e-3);
  EXPECT_DOUBLE_EQ(b.total(), 40e-3);

  const nlohmann::json j = b.to_json();
  for (const char* key : {"mac_j", "buffer_j", "dram_j", "dram_rows_j", "vector_j", "static_j", "dynamic_j", "total_j"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.size(), 8u);
  EXPECT_DOUBLE_EQ(j["dram_j"].get<double>(), 20e-3);
  EXPECT_DOUBLE_EQ(j["total_j"].get<double>(), 40e-3);
}

TEST(Energy, SparseMacCostsAtLeastADenseOne) {
  const EnergyModel m = EnergyModel::defaults();
  EXPECT_GE(m.pj_mac_sparse, m.pj_mac_dense);
  EnergyEvents dense, sparse;
  dense.macs_dense = 1e9;
  sparse.macs_sparse = 1e9;
  EXPECT_GE(energy(sparse).mac, energy(dense).mac);
}

TEST(Energy, DefaultsFollowTheirSources) {
  // docs/sim-energy.md, "Parameters": the values worked out by hand from the cited figures.
  EXPECT_NEAR(energy_source::kNode45To16, 0.198, 0.001);   // Stillmaker & Baas, HP 45 nm 0.9 V -> 16 nm 0.85 V
  const EnergyModel m = EnergyModel::defaults();
  EXPECT_NEAR(m.pj_mac_dense, (1.1 + 0.9) * 0.19814, 1e-4);
  EXPECT_NEAR(m.pj_mac_sparse, 0.396 + 31 * 16 * (0.1 / 32) * 0.19814, 2e-3);   // + the 32:1 select mux
  EXPECT_NEAR(m.pj_buffer_read_byte, 10.0 / 8 * 0.19814, 1e-4);
  EXPECT_EQ(m.pj_buffer_write_byte, m.pj_buffer_read_byte);
  EXPECT_NEAR(m.pj_vector_op, (3.7 + 0.9) * 0.19814, 1e-4);
  // Micron 8 Gb x4 IDD values, 18 devices: (43-38) mA x 32 ns x 1.2 V x 18 = 3456 pJ, and so on.
  EXPECT_NEAR(m.pj_activate, 3456.0, 1e-9);
  EXPECT_NEAR(m.pj_precharge, 9 * 13.32 * 1.2 * 18, 1e-9);
  EXPECT_NEAR(energy_source::kReadCoreByte, 81.0, 1e-9);     // (110-38) mA x 3.33 ns x 1.2 V x 18 / 64 B
  EXPECT_NEAR(energy_source::kWriteCoreByte, 73.125, 1e-9);
  EXPECT_NEAR(energy_source::kIoByte, 49.39, 0.01);
  EXPECT_NEAR(m.pj_dram_read_byte, 130.39, 0.01);
  EXPECT_NEAR(m.pj_dram_write_byte, 122.52, 0.01);
  EXPECT_NEAR(m.static_watts, 4.645, 0.001);
  // Writing costs less than reading on the DRAM (IDD4W < IDD4R); a DRAM byte dwarfs an SRAM byte.
  EXPECT_LT(m.pj_dram_write_byte, m.pj_dram_read_byte);
  EXPECT_GT(m.pj_dram_read_byte, 100 * m.pj_buffer_read_byte);
}

TEST(Energy, ApplyJsonOverridesAndRoundTrips) {
  EnergyModel m;
  m.apply_json(nlohmann::json::parse(R"({"pj_mac_dense": 2.5, "static_watts": 0})"));
  EXPECT_EQ(m.pj_mac_dense, 2.5);
  EXPECT_EQ(m.static_watts, 0.0);
  EXPECT_EQ(m.pj_activate, EnergyModel::defaults().pj_activate);   // the others stay

  const nlohmann::json j = m.to_json();
  EXPECT_EQ(j.size(), 10u);
  EXPECT_EQ(j["pj_mac_dense"].get<double>(), 2.5);
  EnergyModel back;
  back.apply_json(j);   // to_json's keys are apply_json's keys
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(EnergyModel::defaults().to_json(), EnergyModel{}.to_json());

  m.apply_json(nlohmann::json::object());   // nothing to override
  EXPECT_EQ(m.to_json(), j);
}

TEST(Energy, ApplyJsonRefusesUnknownKeysNamingThem) {
  const std::string why = refusal(R"({"pj_mac_dense": 1, "pj_bogus": 1})");
  EXPECT_EQ(why.rfind("energy model: ", 0), 0u) << why;
  EXPECT_NE(why.find("pj_bogus"), std::string::npos) << why;
  EXPECT_NE(why.find("pj_mac_sparse"), std::string::npos) << why;   // the known keys are listed
}

TEST(Energy, ApplyJsonRefusesNegativeAndNonNumericValuesNamingTheKey) {
  for (const char* json : {R"({"pj_precharge": -1})", R"({"pj_precharge": "5"})", R"({"pj_precharge": null})",
                           R"({"pj_precharge": [1]})"}) {
    const std::string why = refusal(json);
    EXPECT_EQ(why.rfind("energy model: ", 0), 0u) << json << ": " << why;
    EXPECT_NE(why.find("pj_precharge"), std::string::npos) << json << ": " << why;
  }
  EXPECT_EQ(refusal(R"({"static_watts": -0.5})").find("static_watts") != std::string::npos, true);
  EXPECT_EQ(refusal("[1, 2]").rfind("energy model: ", 0), 0u);   // not an object
  EXPECT_EQ(refusal(R"({"pj_precharge": 0})"), "");              // zero is allowed
}

TEST(Energy, GflopsPerWattHandWorked) {
  // 1e9 MACs = 2e9 flops for 0.1 J: 20 GFLOP per joule = 20 GFLOPS/W, whatever the time taken
  // (at 10 ms that is 200 GFLOPS drawing 10 W).
  EXPECT_DOUBLE_EQ(gflops_per_watt(2e9, 0.1), 20.0);
  EXPECT_DOUBLE_EQ(gflops_per_watt(2 * 409.6e9, 20.0), 40.96);   // one second of the dense peak at 20 W
  EXPECT_EQ(gflops_per_watt(2e9, 0.0), 0.0);                  // no energy spent: no figure
  EXPECT_EQ(gflops_per_watt(0.0, 1.0), 0.0);

  // Through the model: 1e9 dense MACs at 1 pJ plus 10 W for 0.1 s = 1 mJ + 1 J.
  EnergyEvents e;
  e.macs_dense = 1e9;
  e.seconds = 0.1;
  const EnergyBreakdown b = energy(e, round_model());
  EXPECT_DOUBLE_EQ(b.total(), 1.001);
  EXPECT_NEAR(gflops_per_watt(2 * e.macs_dense, b.total()), 2.0 / 1.001, 1e-12);
}
