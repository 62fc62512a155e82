// Two independent implementations of the instruction set: the HLS kernel (C-simulation, the code
// that is synthesised) and the tests' reference interpreter (tests/support/isa_interpreter.hpp,
// written from docs/isa.md). A whole training step, started from the same DDR contents, must leave
// every region of the memory map with the same bits on both where docs/isa.md fixes the arithmetic
// order (products, ReLU, pooling, loss, SGD, pre-generation), and within BF16 rounding where the
// vector unit's reductions may sum in another order (BatchNorm, LayerNorm, softmax, GELU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "isa_interpreter.hpp"
#include "sat/backend.hpp"
#include "sat/bf16.hpp"
#include "sat/trace.hpp"

using namespace sat;

namespace {

double element(const uint8_t* p, DType dt, size_t i) {
  if (dt == DType::f32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return bf16_bits_to_f32(h);
}

// Runs one step of `model_name` on the kernel (through a trace, whose expectations are the
// kernel's) and on the interpreter; returns per region the largest difference relative to the
// region's largest magnitude (0: equal bits), checking bit equality where `exact`.
void expect_agreement_of(Model m, Method method, bool exact) {
  m.regenerate(method);
  ScheduleOptions opt;
  opt.batch = 4;
  opt.method = method;
  const auto hls = open_device("hls");
  const Trace t = make_program_trace(m, opt, *hls, 9);
  const Program p = compile(m, opt);
  ASSERT_EQ(p.insns.size(), t.insns.size());
  test::IsaInterpreter interp(p);
  for (const TraceRegion& tr : t.regions) {
    if (tr.init.empty()) continue;
    const auto dst = interp.bytes(tr.region.addr(), tr.init.size());
    std::memcpy(dst.data(), tr.init.data(), tr.init.size());
  }
  interp.run(p.insns);

  // The scale of the step's weight gradients, for the regions that are rounding noise (below).
  double grad_scale = 1e-30;
  for (const TraceRegion& tr : t.regions) {
    if (tr.region.kind != RegionKind::param_grad || tr.expected.empty()) continue;
    for (size_t i = 0; i < tr.expected.size() / 4; ++i) {
      grad_scale = std::max(grad_scale, std::fabs(element(tr.expected.data(), DType::f32, i)));
    }
  }
  int bad = 0;
  for (const TraceRegion& tr : t.regions) {
    const Region& r = tr.region;
    const auto got = interp.bytes(r.addr(), r.bytes);
    std::vector<uint8_t> zeros;
    if (!r.written && tr.init.empty()) zeros.assign(r.bytes, 0);
    const std::vector<uint8_t>& want = r.written ? tr.expected : (tr.init.empty() ? zeros : tr.init);
    if (std::memcmp(got.data(), want.data(), r.bytes) == 0) continue;
    if (exact) {
      if (bad++ < 10) ADD_FAILURE() << "region '" << r.name << "' differs from the kernel's bits";
      continue;
    }
    const size_t n = r.bytes / (r.dtype == DType::f32 ? 4 : 2);
    double diff = 0, scale = 1e-30;
    for (size_t i = 0; i < n; ++i) {
      const double a = element(got.data(), r.dtype, i), b = element(want.data(), r.dtype, i);
      diff = std::max(diff, std::fabs(a - b));
      scale = std::max(scale, std::fabs(b));
    }
    // The key projection's bias gets a gradient that is exactly zero in exact arithmetic (a
    // softmax row does not change when every score of it shifts by one amount), so both sides hold
    // rounding noise there: bounded against the step's gradients instead of its own magnitude.
    const bool noise = r.name.find("k_proj.bias") != std::string::npos;
    const double bound = noise ? 1e-3 * grad_scale : 1e-2 * scale;
    if (!(diff <= bound) && bad++ < 10) {
      ADD_FAILURE() << "region '" << r.name << "' (" << region_kind_name(r.kind) << "): max |diff| " << diff
                    << " above " << bound;
    }
  }
  EXPECT_EQ(bad, 0);
}

void expect_agreement(const std::string& model_name, Method method, const char* nm_text, bool exact) {
  SCOPED_TRACE(model_name + " " + method_name(method) + " " + nm_text);
  expect_agreement_of(Model::load(std::string(SAT_SOURCE_DIR) + "/models/" + model_name + ".json", NM::parse(nm_text)),
                      method, exact);
}

}  // namespace

TEST(InterpreterAgreement, TrainingStepBitsEqualTheKernels) {
  expect_agreement("mlp", Method::bdwp, "2:8", true);
  expect_agreement("lenet5", Method::bdwp, "2:8", true);
  expect_agreement("lenet5", Method::srste, "2:4", true);
  expect_agreement("lenet5", Method::dense, "2:8", true);
  expect_agreement("lenet5", Method::bdwp, "1:16", true);
}

TEST(InterpreterAgreement, NormalisationAndAttentionWithinRounding) {
  expect_agreement("vgg_small", Method::bdwp, "2:8", false);
  expect_agreement("vit_tiny", Method::bdwp, "1:4", false);
}

// A residual down-sampling block without BatchNorm, so that every operation has a fixed order: the
// BP of its stride-2 convolutions (3x3 and the 1x1 shortcut) runs as phase convolutions (LD_CONV b3
// tiles from a covering patch, ST_2D b3 rows in lines, b4 zeros for the shortcut's empty parities),
// bit for bit on both.
TEST(InterpreterAgreement, StrideTwoPhaseConvolutionsBitsEqualTheKernels) {
  const char* text = R"({
    "name": "down_block", "input": [8, 16, 16], "classes": 10,
    "layers": [
      {"type": "conv2d", "out": 16, "kernel": 3, "padding": 1, "bias": false},
      {"type": "relu"},
      {"type": "residual", "body": [
        {"type": "conv2d", "out": 32, "kernel": 3, "stride": 2, "padding": 1},
        {"type": "relu"},
        {"type": "conv2d", "out": 32, "kernel": 3, "padding": 1, "bias": false}],
       "shortcut": [{"type": "conv2d", "out": 32, "kernel": 1, "stride": 2, "bias": false}]},
      {"type": "relu"},
      {"type": "global_avgpool"},
      {"type": "flatten"},
      {"type": "linear", "out": 10}]})";
  for (const char* nm : {"2:8", "1:4"}) {
    for (Method method : {Method::bdwp, Method::dense}) {
      SCOPED_TRACE(std::string("down_block ") + method_name(method) + " " + nm);
      expect_agreement_of(Model::from_json_text(text, "down_block.json", NM::parse(nm)), method, true);
    }
  }
}
