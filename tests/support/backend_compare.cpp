#include "backend_compare.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "sat/bf16.hpp"
#include "sat/data.hpp"
#include "sat/nm.hpp"
#include "sat/ops.hpp"

namespace sat::test {

namespace {

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

}  // namespace

Model load_test_model(const std::string& model) {
  if (!model.empty() && model[0] == '{') return Model::from_json_text(model, "test model");
  return Model::load(std::string(SAT_SOURCE_DIR) + "/models/" + model + ".json");
}

void expect_training_matches_cpu(const std::string& backend, const std::string& model, Method method, int batch,
                                 int steps, const StepTolerance& tol, bool fashion) {
  Model mc = load_test_model(model), mb = load_test_model(model);
  const auto cpu = open_backend("cpu"), dev = open_backend(backend);
  cpu->prepare(mc, method);
  dev->prepare(mb, method);
  std::unique_ptr<BatchSource> data =
      fashion ? make_image_source(std::make_shared<const Dataset>(load_fashion_mnist(true)), mc.input)
              : make_synthetic_source(mc.input, mc.classes, int64_t{batch} * steps, 11);
  const UpdateConfig cfg{method, 0.02, 0.9, 5e-4, 2e-4};
  for (int s = 0; s < steps; ++s) {
    SCOPED_TRACE(backend + " " + model.substr(0, 40) + " " + method_name(method) + " step " + std::to_string(s + 1));
    std::vector<int64_t> idx(static_cast<size_t>(batch));
    for (int i = 0; i < batch; ++i) idx[static_cast<size_t>(i)] = int64_t{s} * batch + i;
    Tensor x;
    std::vector<int> y;
    data->batch(idx.data(), batch, x, y);
    std::vector<std::vector<float>> before;
    for (Param* p : mc.params()) before.push_back(p->value);
    const StepResult rc = cpu->train_step(mc, x, y, cfg);
    const StepResult rb = dev->train_step(mb, x, y, cfg);
    dev->sync(mb);
    EXPECT_NEAR(rb.loss, rc.loss, tol.loss * std::max(1.0f, std::fabs(rc.loss))) << "loss";
    const auto pc = mc.params(), pb = mb.params();
    ASSERT_EQ(pc.size(), pb.size());
    double dot_all = 0, nc_all = 0, nb_all = 0;
    for (size_t i = 0; i < pc.size(); ++i) {
      const std::vector<float>& c = pc[i]->value;
      const std::vector<float>& b = pb[i]->value;
      ASSERT_EQ(c.size(), b.size()) << pc[i]->name;
      double diff = 0, scale = 1e-12, dot = 0;
      std::vector<double> dc(c.size()), db(c.size()), dd(c.size());
      for (size_t j = 0; j < c.size(); ++j) {
        diff = std::max(diff, static_cast<double>(std::fabs(b[j] - c[j])));
        scale = std::max(scale, static_cast<double>(std::fabs(c[j])));
        dc[j] = static_cast<double>(c[j]) - before[i][j];
        db[j] = static_cast<double>(b[j]) - before[i][j];
        dd[j] = db[j] - dc[j];
        dot += dc[j] * db[j];
      }
      if (tol.param_max >= 0) {
        EXPECT_LE(diff / scale, tol.param_max) << pc[i]->name << ": values differ";
      }
      if (tol.update_norm >= 0) {
        EXPECT_LE(norm(dd), tol.update_norm * norm(dc) + tol.update_abs) << pc[i]->name << ": update differs (|CPU step| "
                                                                << norm(dc) << ")";
      }
      if (tol.update_cos >= 0 && norm(dc) > 1e-6) {
        EXPECT_GE(dot / (norm(dc) * norm(db) + 1e-30), tol.update_cos) << pc[i]->name << ": update direction differs";
      }
      if (pc[i]->trainable) {
        dot_all += dot;
        nc_all += norm(dc) * norm(dc);
        nb_all += norm(db) * norm(db);
      }
    }
    if (tol.whole_update_cos >= 0) {
      EXPECT_GE(dot_all / std::sqrt(nc_all * nb_all + 1e-300), tol.whole_update_cos) << "the update's direction differs";
    }
    if (tol.whole_update_ratio >= 0) {
      EXPECT_NEAR(std::sqrt(nb_all / nc_all), 1.0, tol.whole_update_ratio) << "the update's size differs";
    }
    if (tol.masks_exact) {
      const auto wc = mc.sparse_weights(), wb = mb.sparse_weights();
      ASSERT_EQ(wc.size(), wb.size());
      for (size_t i = 0; i < wc.size(); ++i) {
        EXPECT_EQ(wb[i]->fwd.index, wc[i]->fwd.index) << "W_F mask of " << wc[i]->weight->name;
        EXPECT_EQ(wb[i]->bwd.index, wc[i]->bwd.index) << "W_B mask of " << wc[i]->weight->name;
      }
    }
    if (tol.evaluate) {
      const StepResult ec = cpu->evaluate(mc, x, y, method), eb = dev->evaluate(mb, x, y, method);
      EXPECT_NEAR(eb.loss, ec.loss, tol.loss * std::max(1.0f, std::fabs(ec.loss))) << "evaluation loss";
    }
  }
}

void expect_gemm_matches_cpu(const std::string& backend, GemmMode mode, NM nm, int64_t batch, int64_t cout, int64_t k,
                             uint64_t seed, double rel_tol) {
  SCOPED_TRACE(backend + " gemm " + gemm_mode_name(mode) + " " + (nm.dense() ? std::string("dense") : nm.str()) +
               " B " + std::to_string(batch) + " Cout " + std::to_string(cout) + " K " + std::to_string(k));
  const std::vector<float> x = randn(static_cast<size_t>(batch * k), seed, false);
  const std::vector<float> dy = randn(static_cast<size_t>(batch * cout), seed + 1, false);
  const std::vector<float> w = randn(static_cast<size_t>(cout * k), seed + 2, true);
  const std::vector<float>& a = mode == GemmMode::ff ? x : dy;
  const std::vector<float>& b = mode == GemmMode::wu ? x : w;
  const Shape as = {batch, mode == GemmMode::ff ? k : cout};
  const Shape bs = mode == GemmMode::wu ? Shape{batch, k} : Shape{cout, k};
  Shape cs_cpu, cs_dev;
  const auto cpu = open_backend("cpu"), dev = open_backend(backend);
  const std::vector<float> want = cpu->gemm(mode, nm, a, as, b, bs, &cs_cpu);
  const std::vector<float> got = dev->gemm(mode, nm, a, as, b, bs, &cs_dev);
  ASSERT_EQ(cs_dev, cs_cpu);
  ASSERT_EQ(got.size(), want.size());
  // Magnitudes from the BF16 operands, pruned as the CPU prunes.
  std::vector<float> ar(a);
  for (auto& v : ar) v = round_bf16(v);
  std::vector<float> wp = mode == GemmMode::wu ? b
                          : nm.dense()         ? w
                                               : nm_prune(w.data(), cout, k, nm, mode == GemmMode::ff ? Axis::K : Axis::Cout);
  for (auto& v : wp) v = round_bf16(v);
  int bad = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(got.size()); ++i) {
    double mag = 0;
    if (mode == GemmMode::ff) {
      const int64_t p = i / cout, o = i % cout;
      for (int64_t t = 0; t < k; ++t) mag += std::fabs(double(ar[p * k + t]) * wp[o * k + t]);
    } else if (mode == GemmMode::bp) {
      const int64_t p = i / k, t = i % k;
      for (int64_t o = 0; o < cout; ++o) mag += std::fabs(double(ar[p * cout + o]) * wp[o * k + t]);
    } else {
      const int64_t o = i / k, t = i % k;
      for (int64_t p = 0; p < batch; ++p) mag += std::fabs(double(ar[p * cout + o]) * wp[p * k + t]);
    }
    if (!(std::fabs(double(got[i]) - want[i]) <= rel_tol * mag + 1e-6) && bad++ < 5) {
      ADD_FAILURE() << "c[" << i << "] = " << got[i] << ", CPU " << want[i] << " (sum |terms| " << mag << ")";
    }
  }
  EXPECT_EQ(bad, 0);
}

void expect_same_state(Model& a, Model& b, bool forms) {
  const auto pa = a.params(), pb = b.params();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pb[i]->value, pa[i]->value) << pa[i]->name;
    EXPECT_EQ(pb[i]->momentum, pa[i]->momentum) << pa[i]->name << " momentum";
  }
  if (!forms) return;
  const auto wa = a.sparse_weights(), wb = b.sparse_weights();
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) {
    EXPECT_EQ(wb[i]->fwd.index, wa[i]->fwd.index) << wa[i]->weight->name << " W_F";
    EXPECT_EQ(wb[i]->fwd.values, wa[i]->fwd.values) << wa[i]->weight->name << " W_F values";
    EXPECT_EQ(wb[i]->bwd.index, wa[i]->bwd.index) << wa[i]->weight->name << " W_B";
    EXPECT_EQ(wb[i]->mask_f, wa[i]->mask_f) << wa[i]->weight->name << " SR-STE mask";
  }
}

}  // namespace sat::test
