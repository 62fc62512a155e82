// cpu::spmm_nm against its plain oracle cpu::spmm_nm_reference. The fast kernel accumulates every
// output element in the reference's order (entries in order g, j, starting at 0 or at `out`) with
// one fused multiply-add per entry, as the reference's std::fma does, so the comparison is
// bitwise whatever the tiling, the thread count and the SIMD path (simd_paths_test.cpp runs these
// cases on every path this CPU has).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "sat/cpu_kernels.hpp"
#include "sat/nm.hpp"

using namespace sat;

namespace {

struct Case {
  NM nm;
  Axis axis;
  int64_t cout, k, cols, ld_in_pad, ld_out_pad;
  bool accumulate;
};

std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b, size_t* first) {
  for (size_t i = 0; i < a.size(); ++i) {
    uint32_t x, y;
    std::memcpy(&x, &a[i], 4);
    std::memcpy(&y, &b[i], 4);
    if (x != y) {
      *first = i;
      return false;
    }
  }
  return true;
}

}  // namespace

// Each entry is one fused multiply-add: one line, two entries -(1 + 2^-11) * 1 and
// (1 + 2^-12)^2, whose sum is 2^-24 when the second multiply-add is fused and 0 when the product
// is rounded first.
TEST(Spmm, EachEntryIsOneFusedMultiplyAdd) {
  NMCompressed w;
  w.nm = {1, 2};
  w.axis = Axis::K;
  w.cout = 1;
  w.k = 4;
  w.values = {-(1.0f + 0x1p-11f), 1.0f + 0x1p-12f};
  w.index = {0, 0};
  const float in[4] = {1.0f, 0.0f, 1.0f + 0x1p-12f, 0.0f};
  float fast = 7, ref = 7;
  cpu::spmm_nm(w, in, 1, 1, &fast, 1);
  cpu::spmm_nm_reference(w, in, 1, 1, &ref, 1);
  EXPECT_EQ(fast, 0x1p-24f);
  EXPECT_EQ(ref, 0x1p-24f);
}

namespace {

// Runs spmm_nm and the reference on one case and compares them bitwise; returns the fast result
// (whole out buffer, padding included, so writes past `cols` are caught too).
std::vector<float> check_case(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const auto w = random_vec(c.cout * c.k, rng);
  const NMCompressed cw = nm_compress(w.data(), c.cout, c.k, c.nm, c.axis);
  const int64_t in_rows = cw.line_length(), out_rows = cw.lines();
  const int64_t ld_in = c.cols + c.ld_in_pad, ld_out = c.cols + c.ld_out_pad;
  const auto in = random_vec(in_rows * ld_in, rng);
  const auto init = random_vec(out_rows * ld_out, rng);
  std::vector<float> fast = init, ref = init;
  cpu::spmm_nm(cw, in.data(), ld_in, c.cols, fast.data(), ld_out, c.accumulate);
  cpu::spmm_nm_reference(cw, in.data(), ld_in, c.cols, ref.data(), ld_out, c.accumulate);
  const auto describe = [&] {
    return c.nm.str() + " axis " + axis_name(c.axis) + " cout " + std::to_string(c.cout) + " k " +
           std::to_string(c.k) + " cols " + std::to_string(c.cols) + " ld_in " +
           std::to_string(ld_in) + " ld_out " + std::to_string(ld_out) + " acc " +
           std::to_string(c.accumulate);
  };
  size_t i = 0;
  EXPECT_TRUE(bitwise_equal(fast, ref, &i))
      << describe() << ": first difference at line " << i / ld_out << " col " << i % ld_out
      << ": " << fast[i] << " vs " << ref[i];
  return fast;
}

std::vector<Case> all_cases() {
  const NM nms[] = {{1, 2}, {2, 4}, {1, 8}, {2, 8}, {4, 8}, {3, 16}};
  const int64_t col_list[] = {1, 7, 17, 100, 1000};
  std::vector<Case> cases;
  int variant = 0;
  for (NM nm : nms) {
    for (Axis axis : {Axis::K, Axis::Cout}) {
      for (int64_t cols : col_list) {
        ++variant;
        // Both dimensions divide by M (all M here divide 16); the line counts 16*a + b hit
        // partial register blocks (the kernel blocks 6 lines), and the long lines (k up to 1024)
        // span several K-chunks.
        const int64_t cout = 16 * (1 + variant % 3) + (nm.m <= 4 ? nm.m * (variant % 5) : 0);
        const int64_t k = variant % 4 == 0 ? 1024 : 16 * (2 + variant % 7);
        for (bool acc : {false, true})
          cases.push_back({nm, axis, cout, k, cols, variant % 2 ? 3 : 0, variant % 3 ? 0 : 5, acc});
      }
    }
  }
  return cases;
}

}  // namespace

TEST(Spmm, MatchesReference) {
  uint32_t seed = 1;
  for (const Case& c : all_cases()) check_case(c, seed++);
}

TEST(Spmm, OddShapes) {
  // Lines 1..13 (fewer than one register block, one block plus a few), a single group, wide
  // padding, column counts around the vector and panel widths.
  uint32_t seed = 100;
  for (int64_t lines : {1, 2, 5, 6, 7, 13}) {
    for (int64_t cols : {1, 15, 16, 33, 63, 64, 65, 129}) {
      for (bool acc : {false, true}) {
        check_case({{2, 4}, Axis::K, lines, 4, cols, 11, 0, acc}, seed++);
        check_case({{1, 16}, Axis::Cout, 16, lines, cols, 0, 2, acc}, seed++);
      }
    }
  }
}

TEST(Spmm, LayerShapes) {
  // LeNet-5 conv2 at batch 8 (FF and BP), and a Linear 3136 -> 256 at batch 128.
  check_case({{2, 8}, Axis::K, 64, 288, 8 * 196, 0, 0, false}, 7);
  check_case({{2, 8}, Axis::Cout, 64, 288, 8 * 196, 0, 0, false}, 8);
  check_case({{2, 8}, Axis::K, 256, 3136, 128, 0, 0, false}, 9);
  check_case({{2, 8}, Axis::Cout, 256, 3136, 128, 0, 0, true}, 10);
}

TEST(Spmm, ChunkBoundaries) {
  // Lines long enough to be split into several K-chunks whose group counts are not multiples of
  // the groups the kernel unrolls (8 / N), with partial column panels and partial line blocks;
  // accumulate exercises the reload of partial sums across chunks.
  uint32_t seed = 300;
  for (NM nm : {NM{1, 2}, NM{2, 4}, NM{1, 8}, NM{2, 8}, NM{4, 8}, NM{3, 16}, NM{1, 16}}) {
    for (bool acc : {false, true}) {
      check_case({nm, Axis::K, 16 + 3 * (nm.m <= 4), 16 * 51, 70, 0, 0, acc}, seed++);
      check_case({nm, Axis::Cout, 16 * 23, 16 + 2 * (nm.m <= 4), 130, 1, 0, acc}, seed++);
    }
  }
}

TEST(Spmm, DenseSettingIsPlainProduct) {
  // n == m keeps everything: spmm_nm then equals a plain product with the BF16-rounded weights.
  std::mt19937 rng(5);
  const int64_t cout = 12, k = 16, cols = 37;
  const auto w = random_vec(cout * k, rng);
  const auto x = random_vec(k * cols, rng);
  const NMCompressed cw = nm_compress(w.data(), cout, k, {4, 4}, Axis::K);
  std::vector<float> wd(cout * k);
  nm_decompress(cw, wd.data());
  std::vector<float> y(cout * cols);
  cpu::spmm_nm(cw, x.data(), cols, cols, y.data(), cols);
  for (int64_t o = 0; o < cout; ++o) {
    for (int64_t p = 0; p < cols; ++p) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += static_cast<double>(wd[o * k + i]) * x[i * cols + p];
      EXPECT_NEAR(y[o * cols + p], s, 1e-4 * (1 + std::abs(s)));
    }
  }
}

TEST(Spmm, SameResultForAnyThreadCount) {
  const int saved = omp_get_max_threads();
  for (const Case& c : {Case{{2, 8}, Axis::K, 64, 288, 1000, 0, 0, false},
                        Case{{2, 8}, Axis::Cout, 64, 288, 1000, 0, 0, true},
                        Case{{1, 16}, Axis::K, 100, 512, 70, 0, 3, false},
                        Case{{4, 8}, Axis::Cout, 32, 200, 333, 1, 0, false}}) {
    omp_set_num_threads(1);
    const auto one = check_case(c, 77);
    omp_set_num_threads(2);
    const auto two = check_case(c, 77);
    omp_set_num_threads(3);
    const auto three = check_case(c, 77);
    size_t i = 0;
    EXPECT_TRUE(bitwise_equal(one, two, &i)) << "1 vs 2 threads differ at " << i;
    EXPECT_TRUE(bitwise_equal(one, three, &i)) << "1 vs 3 threads differ at " << i;
  }
  omp_set_num_threads(saved);
}

TEST(Spmm, ZeroColumnsWriteNothing) {
  std::mt19937 rng(9);
  const auto w = random_vec(8 * 8, rng);
  const NMCompressed cw = nm_compress(w.data(), 8, 8, {2, 8}, Axis::K);
  std::vector<float> x(8 * 4, 1.0f), y(8 * 4, 5.0f);
  cpu::spmm_nm(cw, x.data(), 4, 0, y.data(), 4);
  for (float v : y) EXPECT_EQ(v, 5.0f);
}

// cpu::transpose moves 4x4 blocks through SSE registers and the edges one float at a time: every
// shape class (below a block, block edges in both directions, several tiles, the threaded size)
// against the plain definition.
TEST(Transpose, EveryElementLandsAtItsMirror) {
  const int saved = omp_get_max_threads();
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {1, 7}, {3, 5}, {4, 4}, {5, 9}, {32, 256}, {33, 70}, {70, 33}, {300, 301}}) {
    for (int threads : {1, 3}) {
      omp_set_num_threads(threads);
      std::vector<float> in(rows * cols), out(rows * cols, -1.0f);
      for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
      cpu::transpose(in.data(), rows, cols, out.data());
      int64_t wrong = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) wrong += out[c * rows + r] != in[r * cols + c];
      EXPECT_EQ(wrong, 0) << rows << "x" << cols << ", " << threads << " threads";
    }
  }
  omp_set_num_threads(saved);
}
