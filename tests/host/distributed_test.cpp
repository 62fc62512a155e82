// The data-parallel code path without MPI (docs/distributed.md): shards of a batch, and the step
// on the single-rank communicator, which must give the CPU's train_step bit for bit. The multi-rank
// runs are tests/mpi (mpirun).
#include <gtest/gtest.h>

#include "sat/backend.hpp"
#include "sat/data.hpp"
#include "sat/distributed.hpp"
#include "backend_compare.hpp"
#include "expect_error.hpp"

#include <cstdlib>

namespace sat {
namespace {

TEST(Distributed, ShardsCoverABatchContiguouslyLargerFirst) {
  for (int64_t count : {0, 1, 5, 64, 65, 127}) {
    for (int ranks : {1, 2, 3, 8}) {
      int64_t at = 0;
      for (int r = 0; r < ranks; ++r) {
        const Shard s = shard_of(count, r, ranks);
        EXPECT_EQ(s.begin, at) << count << " over " << ranks;
        EXPECT_LE(s.size(), (count + ranks - 1) / ranks);
        EXPECT_GE(s.size(), count / ranks);
        if (r > 0) {
          EXPECT_LE(s.size(), shard_of(count, r - 1, ranks).size());
        }
        at = s.end;
      }
      EXPECT_EQ(at, count);
    }
  }
}

// The buckets of an all-reduce overlapped with BP (BucketSettings): consecutive, each closed once it
// holds its cap, the first at the smaller cap, a gradient above the cap alone.
TEST(Distributed, GradientBucketsCloseAtTheirCaps) {
  BucketSettings s;
  s.first_bytes = 100;
  s.bytes = 1000;
  EXPECT_EQ(plan_buckets({}, s), (std::vector<size_t>{0}));
  EXPECT_EQ(plan_buckets({40}, s), (std::vector<size_t>{0, 1}));
  // 40 + 60 reach the first cap; 500 + 400 stay under 1000 until 200 joins; 5000 alone; 10 the rest
  EXPECT_EQ(plan_buckets({40, 60, 500, 400, 200, 5000, 10}, s), (std::vector<size_t>{0, 2, 5, 6, 7}));
  // a gradient over the first cap is the first bucket alone
  EXPECT_EQ(plan_buckets({300, 1, 1}, s), (std::vector<size_t>{0, 1, 3}));
  // the last bucket never ends empty
  EXPECT_EQ(plan_buckets({100, 1000}, s), (std::vector<size_t>{0, 1, 2}));
  // every gradient in exactly one bucket, in order
  std::vector<int64_t> sizes;
  for (int i = 0; i < 200; ++i) sizes.push_back(1 + (i * 7919) % 700);
  const std::vector<size_t> starts = plan_buckets(sizes, s);
  ASSERT_GE(starts.size(), 2u);
  EXPECT_EQ(starts.front(), 0u);
  EXPECT_EQ(starts.back(), sizes.size());
  for (size_t b = 0; b + 1 < starts.size(); ++b) {
    ASSERT_LT(starts[b], starts[b + 1]);
    int64_t held = 0;
    for (size_t i = starts[b]; i < starts[b + 1]; ++i) held += sizes[i];
    if (b + 2 < starts.size()) {
      EXPECT_GE(held, b == 0 ? s.first_bytes : s.bytes) << "bucket " << b;
    }
    // closed as soon as it reached its cap: without its last gradient it was under
    EXPECT_LT(held - sizes[starts[b + 1] - 1], b == 0 ? s.first_bytes : s.bytes) << "bucket " << b;
  }
}

TEST(Distributed, BucketSettingsComeFromTheEnvironmentOrAreRefusedByName) {
  struct Env {
    const char* name;
    explicit Env(const char* n, const char* v) : name(n) { setenv(n, v, 1); }
    ~Env() { unsetenv(name); }
  };
  {
    const BucketSettings d = bucket_settings_from_env();
    EXPECT_TRUE(d.overlap);
    EXPECT_EQ(d.bytes, 25 << 20);
    EXPECT_EQ(d.first_bytes, 1 << 20);
  }
  {
    const Env o("SAT_DP_OVERLAP", "0"), b("SAT_DP_BUCKET_MB", "0.5");
    const BucketSettings s = bucket_settings_from_env();
    EXPECT_FALSE(s.overlap);
    EXPECT_EQ(s.bytes, 1 << 19);
    EXPECT_EQ(s.first_bytes, 1 << 19);   // never above the cap of the others
  }
  for (const char* bad : {"0", "-3", "abc", "25MB", "1e9"}) {
    const Env b("SAT_DP_BUCKET_MB", bad);
    test::expect_error([] { bucket_settings_from_env(); }, {"SAT_DP_BUCKET_MB", bad});
  }
  const Env o("SAT_DP_OVERLAP", "yes");
  test::expect_error([] { bucket_settings_from_env(); }, {"SAT_DP_OVERLAP='yes'", "expected 0 or 1"});
}

TEST(Distributed, OneRankStepGivesTrainStepsBits) {
  for (const char* name : {"lenet5", "resnet18"}) {
    SCOPED_TRACE(name);
    Model a = test::load_test_model(name), b = test::load_test_model(name);
    const auto cpu_a = open_backend("cpu"), cpu_b = open_backend("cpu");
    cpu_a->prepare(a, Method::bdwp);
    cpu_b->prepare(b, Method::bdwp);
    const auto comm = make_single_rank_communicator();
    check_same_state(*comm, b, "at the start");
    auto data = make_synthetic_source(a.input, a.classes, 16, 3);
    for (int s = 0; s < 2; ++s) {
      Tensor x;
      std::vector<int> y;
      std::vector<int64_t> idx(8);
      for (int i = 0; i < 8; ++i) idx[i] = s * 8 + i;
      data->batch(idx.data(), 8, x, y);
      const UpdateConfig cfg{Method::bdwp, 0.05, 0.9, 5e-4, 2e-4};
      const StepResult ra = cpu_a->train_step(a, x, y, cfg);
      bool stop = s == 1;   // a rank's wish to stop comes back as the run's
      const StepResult rb = data_parallel_step(*comm, *cpu_b, b, x, y, 8, cfg, s, stop);
      EXPECT_EQ(stop, s == 1);
      EXPECT_EQ(ra.loss, rb.loss);
      EXPECT_EQ(ra.correct, rb.correct);
    }
    test::expect_same_state(a, b);
  }
}

TEST(Distributed, ARanksFailedStepIsEveryRanksError) {
  Model m = test::load_test_model("lenet5");
  const auto cpu = open_backend("cpu");
  cpu->prepare(m, Method::bdwp);
  const auto comm = make_single_rank_communicator();
  Tensor x;
  std::vector<int> y;
  auto data = make_synthetic_source(m.input, m.classes, 4, 1);
  const int64_t idx[] = {0, 1, 2, 3};
  data->batch(idx, 4, x, y);
  y[2] = 99;   // a label out of range: this rank's step fails
  bool stop = false;
  try {
    data_parallel_step(*comm, *cpu, m, x, y, 4, UpdateConfig{}, 6, stop);
    FAIL() << "expected an error";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 of 1 failed in step 7: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("label 99"), std::string::npos) << e.what();
  }
}

// A backend whose step does not split (the Backend defaults) is refused by name before training.
TEST(Distributed, ABackendThatCannotSplitItsStepIsRefused) {
  class Whole final : public Backend {
   public:
    std::string name() const override { return "whole"; }
    void prepare(Model&, Method) override {}
    StepResult train_step(Model&, const Tensor&, const std::vector<int>&, const UpdateConfig&) override { return {}; }
    StepResult evaluate(Model&, const Tensor&, const std::vector<int>&, Method) override { return {}; }
    std::vector<float> gemm(GemmMode, NM, const std::vector<float>&, Shape, const std::vector<float>&, Shape,
                            Shape*) override {
      return {};
    }
  } whole;
  Model m = test::load_test_model("mlp");
  const auto comm = make_single_rank_communicator();
  try {
    prepare_data_parallel(*comm, whole, m, "at the start", true);
    FAIL() << "expected an error";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("backend 'whole' runs its training step whole and cannot split it"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(whole.apply_update(m, UpdateConfig{}), Error);
}

}  // namespace
}  // namespace sat
