// Model descriptions: every shipped model builds, and malformed descriptions are refused with an
// error that names the file and the field.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "sat/error.hpp"
#include "sat/layer.hpp"
#include "sat/model.hpp"

using namespace sat;

namespace {

std::string error_of(const std::string& text) {
  try {
    Model::from_json_text(text, "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Models, EveryShippedModelBuildsAndEndsInTheClasses) {
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator(SAT_SOURCE_DIR "/models")) {
    if (e.path().extension() != ".json") continue;
    SCOPED_TRACE(e.path().string());
    Model m = Model::load(e.path().string());
    EXPECT_EQ(m.layers.back()->out_shape, (Shape{m.classes}));
    EXPECT_GT(m.num_params(), 0);
    // At 2:8 at least one layer is sparse, and every weight that is not says why.
    int sparse = 0;
    for (const auto& info : m.describe(Method::bdwp)) {
      if (info.sparsity.find("2:8") != std::string::npos) ++sparse;
    }
    EXPECT_GT(sparse, 0);
    ++count;
  }
  EXPECT_EQ(count, 5);
}

TEST(Models, LeNetShapesAndDenseReasons) {
  Model m = Model::load(SAT_SOURCE_DIR "/models/lenet5.json");
  const auto rows = m.describe(Method::bdwp);
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_EQ(rows[0].out, (Shape{32, 28, 28}));
  EXPECT_NE(rows[0].sparsity.find("K 9 % 8 != 0"), std::string::npos) << rows[0].sparsity;
  EXPECT_EQ(rows[3].sparsity, "2:8 FF+BP");
  EXPECT_EQ(rows[7].in, (Shape{3136}));
  EXPECT_NE(rows[9].sparsity.find("Cout 10 % 8 != 0"), std::string::npos) << rows[9].sparsity;
}

TEST(Models, PerLayerOverrideAndModelOverride) {
  const char* text = R"({"name": "t", "input": [16], "classes": 8, "nm": "2:8",
      "layers": [{"type": "linear", "out": 16, "nm": "1:4"}, {"type": "relu"},
                 {"type": "linear", "out": 8}]})";
  Model m = Model::from_json_text(text, "t.json");
  auto rows = m.describe(Method::bdwp);
  EXPECT_EQ(rows[0].sparsity, "1:4 FF+BP");
  EXPECT_EQ(rows[2].sparsity, "2:8 FF+BP");
  Model d = Model::from_json_text(text, "t.json", NM{1, 1});
  rows = d.describe(Method::bdwp);
  EXPECT_EQ(rows[0].sparsity, "1:4 FF+BP");     // the layer's own setting wins
  EXPECT_EQ(rows[2].sparsity, "dense");
}

TEST(Models, MalformedDescriptionsNameTheProblem) {
  EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("[]").find("JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"classes": 10, "layers": []})").find("\"input\""), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "layers": []})").find("\"classes\""), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "layers": []})").find("empty"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "layers": [{"type": "linear", "out": 3}]})")
                .find("2 classes"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "layers": [{"type": "lineer", "out": 2}]})")
                .find("unknown layer type 'lineer'"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "layers": [{"type": "linear", "outs": 2}]})")
                .find("unknown field \"outs\""), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "layers": [{"type": "linear"}]})")
                .find("layers[0] (linear): missing field \"out\""), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "nm": "3:5", "layers": [{"type": "linear", "out": 2}]})")
                .find("not in the supported set"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "recipe": {"lr": -1}, "layers": [{"type": "linear", "out": 2}]})")
                .find("lr must be > 0"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "extra": 1, "layers": [{"type": "linear", "out": 2}]})")
                .find("unknown top-level field \"extra\""), std::string::npos);
  try {
    Model::load("/nonexistent/model.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open model file"), std::string::npos);
  }
}

// Sizes past what a machine can hold are refused before they are allocated, naming the file, the
// layer and the size (a 2^31-wide layer once died in std::bad_alloc, a 10^6-wide one took 7 GB).
TEST(Models, OversizedModelsAreRefusedBeforeAllocating) {
  const std::string wide =
      error_of(R"({"input": [784], "classes": 10, "layers": [{"type": "linear", "out": 2147483648}, {"type": "linear", "out": 10}]})");
  EXPECT_NE(wide.find("bad.json: parameter layers[0].weight [2147483648, 784] has 1683627180032 elements, "
                      "over the budget of 268435456 (SAT_MAX_PARAMETERS)"),
            std::string::npos)
      << wide;
  // Each layer within the budget, the whole model not: refused naming the model.
  ::setenv("SAT_MAX_PARAMETERS", "1000", 1);
  const std::string total = error_of(
      R"({"name": "two", "input": [30], "classes": 10, "layers": [{"type": "linear", "out": 30}, {"type": "linear", "out": 10}]})");
  EXPECT_NE(total.find("model two has 1240 parameters, over the budget of 1000"), std::string::npos) << total;
  ::setenv("SAT_MAX_PARAMETERS", "lots", 1);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 2, "layers": [{"type": "linear", "out": 2}]})")
                .find("SAT_MAX_PARAMETERS must be a positive integer (elements), got 'lots'"),
            std::string::npos);
  ::unsetenv("SAT_MAX_PARAMETERS");
  ::setenv("SAT_MAX_ACTIVATION", "100", 1);
  const std::string act = error_of(R"({"input": [4, 8, 8], "classes": 2, "layers": [{"type": "flatten"}, {"type": "linear", "out": 2}]})");
  EXPECT_NE(act.find("layer layers[0] (flatten) outputs [256] = 256 elements per sample, over the budget of 100"),
            std::string::npos)
      << act;
  ::unsetenv("SAT_MAX_ACTIVATION");
  // A product of sizes past 63 bits is an error, not a wrapped count.
  EXPECT_NE(error_of(R"({"input": [4294967296, 4294967296], "classes": 2, "layers": [{"type": "flatten"}, {"type": "linear", "out": 2}]})")
                .find("too many elements"),
            std::string::npos);
  // classes: an integer in range, and the reason given is the right one (1e12 once read as < 2).
  EXPECT_NE(error_of(R"({"input": [4], "classes": 1e12, "layers": [{"type": "linear", "out": 2}]})")
                .find("field \"classes\" must be an integer between 2 and 16777216, got 1000000000000.0"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "classes": 1, "layers": [{"type": "linear", "out": 2}]})")
                .find("field \"classes\" must be an integer between 2 and 16777216, got 1"),
            std::string::npos);
}

// Containers nest at most kMaxLayerNesting levels: 10,000 nested residuals once overflowed the stack.
TEST(Models, DeepNestingIsRefused) {
  auto nested = [](int depth) {
    std::string s = R"({"input": [4], "classes": 4, "layers": )";
    for (int i = 0; i < depth; ++i) s += R"([{"type": "residual", "body": )";
    s += R"([{"type": "relu"}])";
    for (int i = 0; i < depth; ++i) s += "}]";
    return s + "}";
  };
  EXPECT_EQ(error_of(nested(kMaxLayerNesting)), "(no error)");
  const std::string deep = error_of(nested(10000));
  EXPECT_NE(deep.find("containers nested more than 64 levels deep"), std::string::npos) << deep.substr(0, 300);
  EXPECT_LT(deep.size(), 300u);
}
