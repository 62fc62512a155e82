#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gradcheck.hpp"
#include "sat/model.hpp"

using namespace sat;

using test::build_layer;

TEST(GradCheck, LinearDense) {
  auto l = build_layer(R"({"type": "linear", "out": 16})", {24});
  test::grad_check(*l, {5, 24});
}

TEST(GradCheck, LinearTokens) {
  auto l = build_layer(R"({"type": "linear", "out": 8, "bias": false})", {3, 16});
  test::grad_check(*l, {2, 3, 16});
}

TEST(GradCheck, ReLU) {
  auto l = build_layer(R"({"type": "relu"})", {40});
  test::grad_check(*l, {3, 40});
}

TEST(GradCheck, Flatten) {
  auto l = build_layer(R"({"type": "flatten"})", {2, 3, 4});
  EXPECT_EQ(l->out_shape, (Shape{24}));
  test::grad_check(*l, {2, 2, 3, 4});
}
