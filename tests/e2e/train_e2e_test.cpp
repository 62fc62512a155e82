// End-to-end runs through the public API: a short real training run with an accuracy floor, exact
// resume, and a training step of every shipped model. Labelled "slow" in ctest.
#include <gtest/gtest.h>

#include <filesystem>

#include "sat/backend.hpp"
#include "sat/checkpoint.hpp"
#include "sat/data.hpp"
#include "sat/model.hpp"
#include "sat/train.hpp"

using namespace sat;

namespace {

std::shared_ptr<const Dataset> fashion(bool train) {
  static std::shared_ptr<const Dataset> cache[2];
  auto& d = cache[train ? 1 : 0];
  if (!d) d = std::make_shared<const Dataset>(load_fashion_mnist(train));
  return d;
}

bool have_fashion() {
  return std::filesystem::exists(default_data_dir() + "/train-images-idx3-ubyte.gz");
}

std::string temp_dir(const std::string& name) {
  const std::string d = std::string(SAT_BINARY_DIR) + "/e2e-tmp/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace

// BDWP 2:8 on the MLP learns Fashion-MNIST: one epoch on 12k images reaches >= 75% on 2k test
// images (a full run reaches ~88%; this is a smoke floor, far above chance at 10%).
TEST(EndToEnd, MlpBdwpLearnsFashionMnist) {
  if (!have_fashion()) GTEST_SKIP() << "Fashion-MNIST not installed (scripts/install-deps.sh)";
  Model model = Model::load(SAT_SOURCE_DIR "/models/mlp.json");
  auto train_src = make_prefix_source(make_image_source(fashion(true), model.input), 12000);
  auto test_src = make_prefix_source(make_image_source(fashion(false), model.input), 2000);
  auto backend = open_backend("cpu");
  TrainState s;
  s.method = Method::bdwp;
  s.nm = model.nm;
  s.recipe = model.recipe;
  s.recipe.epochs = 1;
  TrainOptions o;
  o.progress = false;
  o.quiet = true;
  const TrainState done = train(*backend, model, *train_src, test_src.get(), s, o);
  ASSERT_EQ(done.history.size(), 1u);
  EXPECT_GE(done.history[0].test_acc, 0.75);
  EXPECT_LT(done.history[0].train_loss, 1.0);
  // The sparse forms really are 2:8: a quarter of the first layer's weights survive in W_F.
  const SparseWeight* sw = model.sparse_weights()[0];
  EXPECT_EQ(sw->fwd.nnz(), sw->cout * sw->k / 4);
}

// Stopping after some steps and resuming from the checkpoint ends bit-identical to an
// uninterrupted run.
TEST(EndToEnd, ResumeIsExact) {
  const char* text = R"({"name": "tiny", "input": [1, 8, 8], "classes": 4, "nm": "2:8",
      "recipe": {"epochs": 2, "batch": 16, "lr": 0.05},
      "layers": [{"type": "conv2d", "out": 16, "kernel": 3, "padding": 1}, {"type": "batchnorm2d"},
                 {"type": "relu"}, {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"},
                 {"type": "linear", "out": 32}, {"type": "relu"}, {"type": "linear", "out": 4}]})";
  auto data = make_synthetic_source({1, 8, 8}, 4, 200, 3);
  auto backend = open_backend("cpu");
  TrainOptions o;
  o.progress = false;
  o.quiet = true;

  Model straight = Model::from_json_text(text, "tiny.json");
  TrainState s;
  s.method = Method::bdwp;
  s.nm = straight.nm;
  s.recipe = straight.recipe;
  o.out_dir = temp_dir("straight");
  const TrainState a = train(*backend, straight, *data, data.get(), s, o);

  Model first = Model::from_json_text(text, "tiny.json");
  o.out_dir = temp_dir("split");
  o.stop_after_steps = 17;                     // mid-way through the second epoch (13 steps each)
  const TrainState stopped = train(*backend, first, *data, data.get(), s, o);
  ASSERT_EQ(stopped.global_step, 17);
  ASSERT_EQ(stopped.epoch, 1);

  const std::string ckpt = o.out_dir + "/checkpoint.sat";
  TrainState r;
  Model resumed = model_from_checkpoint(ckpt, &r);
  EXPECT_EQ(r.global_step, 17);
  o.stop_after_steps = 0;
  const TrainState b = train(*backend, resumed, *data, data.get(), r, o);

  ASSERT_EQ(a.history.size(), b.history.size());
  for (size_t e = 0; e < a.history.size(); ++e) {
    EXPECT_EQ(a.history[e].train_loss, b.history[e].train_loss) << "epoch " << e + 1;
    EXPECT_EQ(a.history[e].test_acc, b.history[e].test_acc) << "epoch " << e + 1;
  }
  const auto pa = straight.params(), pb = resumed.params();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i]->value, pb[i]->value) << pa[i]->name;
    EXPECT_EQ(pa[i]->momentum, pb[i]->momentum) << pa[i]->name;
  }
}

// Every shipped model runs training steps under every method on synthetic data, and the loss
// stays finite.
TEST(EndToEnd, EveryModelTrainsAStep) {
  auto backend = open_backend("cpu");
  for (const auto& e : std::filesystem::directory_iterator(SAT_SOURCE_DIR "/models")) {
    if (e.path().extension() != ".json") continue;
    for (Method method : {Method::dense, Method::srste, Method::bdwp}) {
      SCOPED_TRACE(e.path().filename().string() + " " + method_name(method));
      Model m = Model::load(e.path().string());
      auto data = make_synthetic_source(m.input, m.classes, 8, 5);
      std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5, 6, 7};
      Tensor x;
      std::vector<int> y;
      data->batch(idx.data(), 8, x, y);
      backend->prepare(m, method);
      const UpdateConfig cfg{method, 0.01, 0.9, 5e-4, 2e-4};
      const float l0 = backend->train_step(m, x, y, cfg).loss;
      const float l1 = backend->train_step(m, x, y, cfg).loss;
      EXPECT_TRUE(std::isfinite(l0));
      EXPECT_TRUE(std::isfinite(l1));
    }
  }
}
