// The CPU kernels on every SIMD path this machine can run (cpu::force_simd_path): the N:M product,
// pre-generation, the optimizer's update and the BF16 conversions must give the same bits on each
// path, and the product the same bits as its plain reference, for 1 and 3 threads. A machine
// without AVX-512 or AVX2 tests the paths it has; `sat info` says which those are.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "random.hpp"
#include "run_cli.hpp"
#include "sat/backend.hpp"
#include "sat/bf16.hpp"
#include "sat/cpu_kernels.hpp"
#include "sat/model.hpp"
#include "sat/nm.hpp"

using namespace sat;

namespace {

std::vector<std::string> paths() {
  std::vector<std::string> out;
  std::stringstream list(cpu::simd_paths_available());
  std::string p;
  while (std::getline(list, p, ',')) out.push_back(p.substr(p.find_first_not_of(' ')));
  return out;
}

// Lifts the restriction at the end of each test, whatever it asserted.
struct PathGuard {
  ~PathGuard() { cpu::force_simd_path("best"); }
};


bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Product {
  NM nm;
  Axis axis;
  int64_t cout, k, cols;
  bool accumulate;
};

// The spmm result of one case on the current path, checked bitwise against the reference.
std::vector<float> product(const Product& c, uint32_t seed) {
  const auto w = test::randn(c.cout * c.k, seed);
  const NMCompressed cw = nm_compress(w.data(), c.cout, c.k, c.nm, c.axis);
  const int64_t ld = c.cols + 3;   // a leading dimension that is not the width
  const auto in = test::randn(cw.line_length() * ld, seed + 1);
  std::vector<float> fast = test::randn(cw.lines() * ld, seed + 2), ref = fast;
  cpu::spmm_nm(cw, in.data(), ld, c.cols, fast.data(), ld, c.accumulate);
  cpu::spmm_nm_reference(cw, in.data(), ld, c.cols, ref.data(), ld, c.accumulate);
  EXPECT_TRUE(same_bits(fast, ref)) << cpu::simd_path() << " " << c.nm.str() << " axis "
                                    << axis_name(c.axis) << " cols " << c.cols;
  return fast;
}

const std::vector<Product> kProducts = {
    {{2, 8}, Axis::K, 64, 288, 1000, false},     // LeNet's conv2, a slice of its columns
    {{2, 8}, Axis::Cout, 64, 288, 333, true},
    {{1, 4}, Axis::K, 20, 64, 37, false},        // partial register blocks, ragged panels
    {{4, 8}, Axis::Cout, 40, 48, 9, false},
    {{3, 16}, Axis::K, 17 * 16, 1024, 70, true},  // several K-chunks, the general N
    {{1, 2}, Axis::Cout, 34, 6, 129, false},
};

}  // namespace

TEST(SimdPaths, TheChosenPathIsListed) {
  const auto all = paths();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), cpu::simd_path()) << "the best path runs unless restricted";
  EXPECT_EQ(all.back(), "portable") << "every build and CPU has the portable path";
  EXPECT_FALSE(cpu::force_simd_path("no-such-path"));
  EXPECT_EQ(all.front(), cpu::simd_path()) << "a refused path changes nothing";
}

// SAT_SIMD below AVX-512 caps oneDNN too (its sums' order follows its ISA), unless oneDNN's own
// variable is set; `sat info` names the ISA oneDNN runs. Each run is its own process, since oneDNN
// fixes its ISA once.
TEST(SimdPaths, SatSimdCapsOneDnnUnlessItsOwnVariableIsSet) {
  const auto all = paths();
  const auto info = [](const std::string& env) {
    const test::CliRun r = test::run_command("env -u SAT_SIMD -u ONEDNN_MAX_CPU_ISA -u DNNL_MAX_CPU_ISA " + env + " '" +
                                              SAT_BINARY_DIR + "/sat' info");
    EXPECT_EQ(r.status, 0) << r.out;
    const size_t at = r.out.find("oneDNN, ISA ");
    return at == std::string::npos ? std::string("(no oneDNN line)\n" + r.out)
                                   : r.out.substr(at + 12, r.out.find('\n', at) - at - 12);
  };
  EXPECT_EQ(info("SAT_SIMD=portable"), "sse41");
  if (std::find(all.begin(), all.end(), "avx2") != all.end()) {
    EXPECT_EQ(info("SAT_SIMD=avx2"), "avx2");
    EXPECT_EQ(info("SAT_SIMD=avx2 ONEDNN_MAX_CPU_ISA=SSE41"), "sse41") << "oneDNN's own variable wins";
  }
  if (all.front() == "avx512") {
    EXPECT_EQ(info("").rfind("avx512", 0), 0u) << "no cap without SAT_SIMD";
  }
}

TEST(SimdPaths, ProductIsTheSameOnEveryPathAndThreadCount) {
  PathGuard guard;
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> first;
  for (const std::string& p : paths()) {
    ASSERT_TRUE(cpu::force_simd_path(p)) << p;
    ASSERT_EQ(cpu::simd_path(), p);
    for (int threads : {1, 3}) {
      omp_set_num_threads(threads);
      for (size_t i = 0; i < kProducts.size(); ++i) {
        const auto y = product(kProducts[i], 100 + static_cast<uint32_t>(i));
        if (first.size() <= i) first.push_back(y);
        else EXPECT_TRUE(same_bits(first[i], y)) << p << ", " << threads << " threads, case " << i;
      }
    }
  }
  omp_set_num_threads(saved);
}

TEST(SimdPaths, PregenerationIsTheSameOnEveryPath) {
  PathGuard guard;
  // Ties and a NaN among the weights exercise the selection rule's corner cases on every path.
  auto w = test::randn(64 * 96, 5);
  for (size_t i = 0; i < w.size(); i += 7) w[i] = w[i + 1 < w.size() ? i + 1 : 0];
  w[13] = std::numeric_limits<float>::quiet_NaN();
  std::vector<NMCompressed> first;
  for (const std::string& p : paths()) {
    ASSERT_TRUE(cpu::force_simd_path(p)) << p;
    size_t i = 0;
    for (NM nm : {NM{2, 8}, NM{1, 4}, NM{4, 16}, NM{3, 8}}) {
      for (Axis axis : {Axis::K, Axis::Cout}) {
        const NMCompressed c = nm_compress(w.data(), 64, 96, nm, axis);
        if (first.size() <= i) {
          first.push_back(c);
        } else {
          EXPECT_EQ(c.index, first[i].index) << p << " " << nm.str() << " " << axis_name(axis);
          EXPECT_TRUE(same_bits(c.values, first[i].values)) << p << " " << nm.str();
        }
        ++i;
      }
    }
  }
}

TEST(SimdPaths, UpdateAndConversionsAreTheSameOnEveryPath) {
  PathGuard guard;
  std::vector<float> first_w, first_v, first_round;
  std::vector<uint16_t> first_bits;
  auto x = test::randn(70001, 9);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  x[6] = 1e-40f;                       // subnormal: flushed
  x[7] = std::numeric_limits<float>::infinity();
  x[8] = 1.00390625f;                  // halfway between two BF16 numbers: to even
  for (const std::string& p : paths()) {
    ASSERT_TRUE(cpu::force_simd_path(p)) << p;
    // The update of a pruned layer (SR-STE term on) after a step's worth of gradients.
    Model m = Model::from_json_text(
        R"({"name": "t", "input": [64], "classes": 16, "nm": "2:8",
            "layers": [{"type": "linear", "out": 64}, {"type": "linear", "out": 16}]})",
        "test");
    m.regenerate(Method::bdwp);
    uint32_t seed = 20;
    for (Param* q : m.params()) q->grad = test::randn(q->grad.size(), seed++);
    sgd_update(m, UpdateConfig{Method::bdwp, 0.05, 0.9, 5e-4, 2e-4});
    sgd_update(m, UpdateConfig{Method::bdwp, 0.05, 0.9, 5e-4, 2e-4});
    const std::vector<float> w = m.params()[0]->value, v = m.params()[0]->momentum;

    std::vector<bf16> b(x.size());
    to_bf16(x.data(), b.data(), x.size());
    std::vector<uint16_t> bits(x.size());
    for (size_t i = 0; i < x.size(); ++i) bits[i] = b[i].bits;
    std::vector<float> back(x.size()), round = x;
    to_f32(b.data(), back.data(), b.size());
    round_bf16_inplace(round.data(), round.size());
    EXPECT_TRUE(same_bits(back, round)) << p << ": to_f32(to_bf16(x)) != round_bf16(x)";
    EXPECT_EQ(bits[8], 0x3f80) << p << ": halfway rounds to even";
    EXPECT_EQ(bits[6], 0) << p << ": subnormal flushed";

    if (first_w.empty()) {
      first_w = w;
      first_v = v;
      first_bits = bits;
      first_round = round;
      continue;
    }
    EXPECT_TRUE(same_bits(w, first_w)) << p << ": weights after the update differ";
    EXPECT_TRUE(same_bits(v, first_v)) << p << ": momentum after the update differs";
    EXPECT_EQ(bits, first_bits) << p << ": to_bf16 differs";
    EXPECT_TRUE(same_bits(round, first_round)) << p << ": round_bf16 differs";
  }
}
