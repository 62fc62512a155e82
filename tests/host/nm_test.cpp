#include <gtest/gtest.h>

#include <random>

#include "sat/error.hpp"
#include "sat/nm.hpp"

using namespace sat;

TEST(NM, ParseAndValidate) {
  EXPECT_EQ(NM::parse("2:8"), (NM{2, 8}));
  EXPECT_TRUE(NM::parse("dense").dense());
  EXPECT_TRUE(NM::parse("8:8").dense());
  EXPECT_THROW(NM::parse("2-8"), Error);
  EXPECT_THROW(NM::parse("9:8"), Error);
  EXPECT_THROW(NM::parse("0:8"), Error);
  EXPECT_THROW(NM::parse("2:6"), Error);     // M not supported
  try {
    NM::parse("2:6");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("supported set"), std::string::npos) << e.what();
  }
}

TEST(NM, TiesGoToLowerIndex) {
  const float g[8] = {1, -3, 3, 0, 3, -1, 2, 3};
  uint8_t idx[2];
  nm_select_group(g, 1, 8, 2, idx);
  EXPECT_EQ(idx[0], 1);
  EXPECT_EQ(idx[1], 2);
}

TEST(NM, MaskAlongBothAxes) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  const int64_t cout = 16, k = 24;
  std::vector<float> w(cout * k);
  for (auto& v : w) v = d(rng);
  const auto mk = nm_mask(w.data(), cout, k, {2, 8}, Axis::K);
  for (int64_t r = 0; r < cout; ++r)
    for (int64_t g = 0; g < k / 8; ++g) {
      int kept = 0;
      float min_kept = 1e9, max_dropped = 0;
      for (int j = 0; j < 8; ++j) {
        const int64_t i = r * k + g * 8 + j;
        kept += mk[i];
        if (mk[i]) min_kept = std::min(min_kept, std::fabs(w[i]));
        else max_dropped = std::max(max_dropped, std::fabs(w[i]));
      }
      EXPECT_EQ(kept, 2);
      EXPECT_GE(min_kept, max_dropped);
    }
  const auto mc = nm_mask(w.data(), cout, k, {2, 8}, Axis::Cout);
  for (int64_t c = 0; c < k; ++c)
    for (int64_t g = 0; g < cout / 8; ++g) {
      int kept = 0;
      for (int j = 0; j < 8; ++j) kept += mc[(g * 8 + j) * k + c];
      EXPECT_EQ(kept, 2);
    }
  EXPECT_THROW(nm_mask(w.data(), cout, k, {2, 16}, Axis::K), Error);  // 24 % 16
}

TEST(NM, CompressRoundTrip) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  for (NM nm : {NM{1, 2}, NM{2, 4}, NM{1, 8}, NM{2, 8}, NM{4, 8}, NM{3, 16}}) {
    for (Axis axis : {Axis::K, Axis::Cout}) {
      const int64_t cout = 32, k = 48;
      std::vector<float> w(cout * k);
      for (auto& v : w) v = d(rng);
      const auto c = nm_compress(w.data(), cout, k, nm, axis);
      EXPECT_EQ(c.nnz(), cout * k * nm.n / nm.m);
      std::vector<float> back(w.size());
      nm_decompress(c, back.data());
      const auto pruned = nm_prune(w.data(), cout, k, nm, axis);
      for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(back[i], round_bf16(pruned[i]));
      EXPECT_EQ(nm_mask_of(c), nm_mask(w.data(), cout, k, nm, axis));
      EXPECT_EQ(nm_unpack_indices(nm_pack_indices(c.index), c.nnz()), c.index);
    }
  }
}

TEST(NM, NaNNeverMakesAGroupKeepMoreThanN) {
  const float g[8] = {1, NAN, 3, 0, NAN, -1, 2, 5};
  uint8_t idx[2];
  nm_select_group(g, 1, 8, 2, idx);
  EXPECT_EQ(idx[0], 1);    // NaN ranks above every number; two NaNs tie -> lower index
  EXPECT_EQ(idx[1], 4);
  const float h[4] = {-0.0f, 0.0f, 0.0f, -0.0f};
  nm_select_group<4>(h, 1, 4, 2, idx);
  EXPECT_EQ(idx[0], 0);    // signed zeros tie
  EXPECT_EQ(idx[1], 1);
}

TEST(NM, FixedAndRuntimeGroupSizesAgree) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> d(-3, 3);   // many ties
  for (int t = 0; t < 200; ++t) {
    float g[16];
    for (auto& v : g) v = static_cast<float>(d(rng));
    uint8_t a[16], b[16];
    nm_select_group<16>(g, 1, 16, 5, a);
    nm_select_group(g, 1, 16, 5, b);
    EXPECT_TRUE(std::equal(a, a + 5, b));
    nm_select_group<8>(g, 2, 8, 3, a);
    nm_select_group(g, 2, 8, 3, b);
    EXPECT_TRUE(std::equal(a, a + 3, b));
  }
}

// nm_select_group against the rule written out literally (keep i when fewer than n others beat
// it), on groups full of ties, signed zeros and NaNs, for every supported M and every N.
TEST(NM, SelectionMatchesTheRankRule) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> d(-4, 4);
  for (int m : {2, 4, 8, 16}) {
    for (int n = 1; n < m; ++n) {
      for (int t = 0; t < 300; ++t) {
        float g[16];
        for (int i = 0; i < m; ++i) {
          const int r = d(rng);
          g[i] = r == 4 ? NAN : r == -4 ? -0.0f : static_cast<float>(r);
        }
        auto mag = [](float x) { return std::isnan(x) ? INFINITY : std::fabs(x); };
        std::vector<uint8_t> want;
        for (int i = 0; i < m; ++i) {
          int beaten = 0;
          for (int j = 0; j < m; ++j) {
            beaten += mag(g[j]) > mag(g[i]) ||
                      (mag(g[j]) == mag(g[i]) && j < i) ||
                      (std::isnan(g[j]) && std::isnan(g[i]) && j < i);
          }
          if (beaten < n) want.push_back(static_cast<uint8_t>(i));
        }
        uint8_t got[16];
        nm_select_group(g, 1, m, n, got);
        ASSERT_EQ(std::vector<uint8_t>(got, got + n), want) << "m " << m << " n " << n << " trial " << t;
      }
    }
  }
}

// nm_compress selects many groups at once (SIMD lanes across lines); its masks must equal the
// group-by-group selection, for both axes, line counts off the lane width, and many ties.
TEST(NM, CompressEqualsGroupByGroupSelection) {
  std::mt19937 rng(23);
  std::uniform_int_distribution<int> d(-3, 3);
  for (NM nm : {NM{1, 4}, NM{2, 8}, NM{4, 8}, NM{5, 16}, NM{1, 2}}) {
    for (auto [cout, k] : {std::pair<int64_t, int64_t>{16, 48}, {48, 16}, {40, 48}, {80, 40}}) {
      if (cout % nm.m || k % nm.m) continue;
      std::vector<float> w(static_cast<size_t>(cout * k));
      for (auto& v : w) v = static_cast<float>(d(rng));
      for (Axis axis : {Axis::K, Axis::Cout}) {
        std::vector<uint8_t> want(w.size(), 0);
        const int64_t lines = axis == Axis::K ? cout : k, len = axis == Axis::K ? k : cout;
        for (int64_t l = 0; l < lines; ++l) {
          for (int64_t g = 0; g < len / nm.m; ++g) {
            float group[16];
            for (int i = 0; i < nm.m; ++i) {
              const int64_t pos = g * nm.m + i;
              group[i] = w[axis == Axis::K ? l * k + pos : pos * k + l];
            }
            uint8_t idx[16];
            nm_select_group(group, 1, nm.m, nm.n, idx);
            for (int j = 0; j < nm.n; ++j) {
              const int64_t pos = g * nm.m + idx[j];
              want[axis == Axis::K ? l * k + pos : pos * k + l] = 1;
            }
          }
        }
        EXPECT_EQ(nm_mask(w.data(), cout, k, nm, axis), want)
            << nm.str() << " " << axis_name(axis) << " " << cout << "x" << k;
      }
    }
  }
}
