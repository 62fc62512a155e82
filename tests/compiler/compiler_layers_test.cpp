// Structural checks of the accelerator lowerings of batchnorm2d, layernorm, gelu, residual,
// attention, patch_embed and token_mean (host/src/compiler/lower_*.cpp): the instruction kinds
// each layer emits in FF and BP, their settings fields, the stream checker over whole compiled
// steps (support/stream_checker.hpp: tokens, and data flow: every DRAM access lies inside one
// region of the memory map, every element an instruction reads was written earlier in the stream
// or is host-provided, every parameter gradient is fully written by the layer's own instructions
// before the update reads it), and dense steps run on the reference interpreter of the
// instruction set (support/isa_interpreter.hpp) against the CPU reference. Bit-level agreement
// with the kernel is the hls backend's test; this one needs no kernel.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "expect_error.hpp"
#include "isa_interpreter.hpp"
#include "sat/arch/isa.hpp"
#include "sat/bf16.hpp"
#include "sat/compiler.hpp"
#include "sat/lowering.hpp"
#include "sat/model.hpp"
#include "stream_checker.hpp"

using namespace sat;
using namespace sat::isa;

namespace {

// The shared stream checker (support/stream_checker.hpp): tokens and data flow.
void expect_consistent(const Program& p) {
  for (const std::string& problem : test::check_stream(p)) ADD_FAILURE() << problem;
}

// ---- Per-layer instruction histograms ------------------------------------------------------------

struct Segments {
  const Program& p;
  // Instructions of every segment of `layer` in `phase`.
  std::vector<const Insn*> of(const std::string& layer, const std::string& phase) const {
    std::vector<const Insn*> out;
    for (const auto& s : p.layers) {
      if (s.name != layer || s.phase != phase) continue;
      for (int64_t i = 0; i < s.instructions; ++i) {
        out.push_back(&p.insns[static_cast<size_t>(s.first_insn + i)]);
      }
    }
    return out;
  }
  int count(const std::string& layer, const std::string& phase, Opcode op) const {
    int n = 0;
    for (const Insn* in : of(layer, phase)) n += in->opcode() == op;
    return n;
  }
  const Insn* first(const std::string& layer, const std::string& phase, Opcode op) const {
    for (const Insn* in : of(layer, phase))
      if (in->opcode() == op) return in;
    return nullptr;
  }
};

Program compile_text(const std::string& text, Method method, int batch, bool training = true) {
  Model m = Model::from_json_text(text, "test.json");
  ScheduleOptions opt;
  opt.batch = batch;
  opt.method = method;
  opt.training = training;
  return compile(m, opt);
}

float as_float(uint32_t bits) { return f32_from_bits(bits); }

// A small pre-norm transformer: 8x8 image, 4x4 patches -> 4 tokens of width 16, 2 heads.
const char* kTinyVit = R"({
  "name": "tiny_vit", "input": [1, 8, 8], "classes": 10, "nm": "2:8",
  "layers": [
    {"type": "patch_embed", "name": "pe", "patch": 4, "dim": 16},
    {"type": "residual", "name": "blk1", "body": [
      {"type": "layernorm", "name": "ln1"},
      {"type": "attention", "name": "attn", "heads": 2}]},
    {"type": "residual", "name": "blk2", "body": [
      {"type": "layernorm", "name": "ln2", "eps": 0.001},
      {"type": "linear", "name": "fc1", "out": 32},
      {"type": "gelu", "name": "act", "approximate": "tanh"},
      {"type": "linear", "name": "fc2", "out": 16}]},
    {"type": "layernorm", "name": "ln_f"},
    {"type": "token_mean", "name": "pool"},
    {"type": "linear", "name": "head", "out": 10}
  ]})";

// A small residual CNN: identity and projection shortcuts, batch norm, GELU.
const char* kTinyCnn = R"({
  "name": "tiny_cnn", "input": [3, 8, 8], "classes": 10, "nm": "2:8",
  "layers": [
    {"type": "conv2d", "name": "stem", "out": 8, "kernel": 3, "padding": 1, "bias": false},
    {"type": "batchnorm2d", "name": "bn0", "momentum": 0.2},
    {"type": "relu"},
    {"type": "residual", "name": "down", "body": [
      {"type": "conv2d", "out": 16, "kernel": 3, "stride": 2, "padding": 1, "bias": false},
      {"type": "batchnorm2d", "name": "bn1"},
      {"type": "relu"},
      {"type": "conv2d", "out": 16, "kernel": 3, "padding": 1, "bias": false},
      {"type": "batchnorm2d", "name": "bn2"}],
     "shortcut": [
      {"type": "conv2d", "out": 16, "kernel": 1, "stride": 2, "bias": false},
      {"type": "batchnorm2d", "name": "bn_sc"}]},
    {"type": "residual", "name": "same", "body": [
      {"type": "batchnorm2d", "name": "bn3"},
      {"type": "gelu", "name": "g"}]},
    {"type": "global_avgpool"},
    {"type": "flatten"},
    {"type": "linear", "out": 10}
  ]})";


// Error of `got` against `want` in the 2-norm, relative to the larger of |want| and a floor of
// 1e-3 per element (a gradient that is zero in exact arithmetic, such as the key bias's, since the
// softmax ignores a constant per row, comes out as rounding noise of that order).
double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += std::pow(double(got[i]) - want[i], 2);
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-6 * double(want.size())));
}

// Runs one dense training step of `text` on the CPU reference and through the compiled stream on
// the interpreter; compares the loss and every parameter gradient.
void expect_step_matches_cpu(const std::string& text, int batch, double tol) {
  Model m = Model::from_json_text(text, "test.json");
  m.regenerate(Method::dense);
  ScheduleOptions opt;
  opt.batch = batch;
  opt.method = Method::dense;
  const Program p = compile(m, opt);

  Rng rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  Shape xs = m.input;
  xs.insert(xs.begin(), batch);
  std::vector<float> xv(size_t(sat::numel(xs)));
  for (float& v : xv) v = nd(rng);
  const Tensor x = Tensor::from_f32(xs, xv);
  std::vector<int> labels(static_cast<size_t>(batch));
  for (int i = 0; i < batch; ++i) labels[size_t(i)] = (i * 7 + 3) % m.classes;

  test::IsaInterpreter k(p);
  // Host-provided data: the input (NHWC; the tests use C = 1 or rank-2 samples, where NCHW and
  // NHWC agree), labels, masters.
  ASSERT_TRUE(xs.size() != 4 || xs[1] == 1);
  const uint32_t in_addr = k.region_addr(p.input);
  for (size_t i = 0; i < xv.size(); ++i) k.set_bf16(in_addr, int64_t(i), xv[i]);
  for (int i = 0; i < batch; ++i) k.set_i32(k.region_addr(p.labels), i, labels[size_t(i)]);
  for (const auto& pb : p.params) {
    for (int64_t i = 0; i < pb.param->numel(); ++i) k.set_f32(k.region_addr(pb.value), i, pb.param->value[size_t(i)]);
  }
  // The whole program, update included: the hyper-parameters stay zero, so SGD (which reads the
  // gradients compared below but does not write them) leaves the masters as the CPU saw them.
  k.run();

  StepContext ctx;
  ctx.method = Method::dense;
  m.zero_grad();
  const Tensor logits = m.forward(x, ctx);
  Tensor dlogits;
  const float loss = softmax_cross_entropy(logits, labels, &dlogits, nullptr);
  m.backward(dlogits, ctx);

  EXPECT_NEAR(k.get_f32(k.region_addr(p.result), 0), loss, 0.02 * std::abs(loss) + 1e-3);
  double worst = 0;
  for (const auto& pb : p.params) {
    if (pb.grad < 0) continue;
    std::vector<float> got(size_t(pb.param->numel()));
    for (int64_t i = 0; i < pb.param->numel(); ++i) got[size_t(i)] = k.get_f32(k.region_addr(pb.grad), i);
    const double e = rel_err(got, pb.param->grad);
    EXPECT_LT(e, tol) << pb.param->name;
    worst = std::max(worst, e);
  }
  ::testing::Test::RecordProperty("worst_gradient_error", std::to_string(worst));
  std::printf("[ info ] loss %g (cpu %g), worst gradient error %.3e\n",
              k.get_f32(k.region_addr(p.result), 0), loss, worst);
}
}  // namespace

// ---- Transformer layers ----------------------------------------------------------------------------

TEST(CompilerLayers, TinyVitStreamIsConsistentForEveryMethod) {
  for (Method m : {Method::dense, Method::srste, Method::bdwp}) {
    SCOPED_TRACE(method_name(m));
    expect_consistent(compile_text(kTinyVit, m, 3));
  }
}

TEST(CompilerLayers, TinyVitInstructionKinds) {
  const int B = 3, H = 2, T = 4;
  const Program p = compile_text(kTinyVit, Method::bdwp, B);
  const Segments s{p};

  // Patch embedding: the im2col product, then the position embedding; BP: two column sums and the
  // WU product only (first layer: no dX).
  EXPECT_GE(s.count("pe", "ff", OP_LD_CONV), 1);
  EXPECT_EQ(s.count("pe", "ff", OP_V_BCAST_ADD), 1);
  const Insn* bc = s.first("pe", "ff", OP_V_BCAST_ADD);
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ((*bc)[f_V_BCAST_ADD::rows], uint32_t(B));
  EXPECT_EQ((*bc)[f_V_BCAST_ADD::cols], uint32_t(T * 16));
  EXPECT_EQ(s.count("pe", "bp", OP_V_COLSUM), 2);
  EXPECT_EQ(s.count("pe", "bp", OP_ST_COL2IM), 0);
  EXPECT_GE(s.count("pe", "wu", OP_LD_CONV), 1);   // the weight gradient reads the patches

  // Attention: 4 projections + 2 products per (sample, head), one softmax per chunk of samples.
  EXPECT_EQ(s.count("attn", "ff", OP_GEMM), 4 + 2 * B * H);
  EXPECT_EQ(s.count("attn", "ff", OP_V_SOFTMAX), std::min(B, 4));
  const Insn* sm = s.first("attn", "ff", OP_V_SOFTMAX);
  ASSERT_NE(sm, nullptr);
  EXPECT_EQ((*sm)[f_V_SOFTMAX::cols], uint32_t(T));
  EXPECT_EQ((*sm)[f_V_SOFTMAX::rows], uint32_t(H * T));   // one sample per chunk at B = 3
  EXPECT_FLOAT_EQ(as_float((*sm)[f_V_SOFTMAX::scale]), 1.0f / std::sqrt(8.0f));
  // BP: output projection BP + WU, 4 products per (sample, head), 3 x (WU + BP), 4 bias sums; the
  // four weight-gradient products are accounted as the WU pass.
  EXPECT_EQ(s.count("attn", "bp", OP_GEMM), 1 + 4 * B * H + 3);
  EXPECT_EQ(s.count("attn", "wu", OP_GEMM), 4);
  EXPECT_EQ(s.count("attn", "bp", OP_V_SOFTMAX_BWD), std::min(B, 4));
  EXPECT_EQ(s.count("attn", "bp", OP_V_COLSUM), 4);
  EXPECT_EQ(s.count("attn", "bp", OP_V_CONVERT), 1);
  const Insn* smb = s.first("attn", "bp", OP_V_SOFTMAX_BWD);
  ASSERT_NE(smb, nullptr);
  EXPECT_EQ((*smb)[f_V_SOFTMAX_BWD::scale], (*sm)[f_V_SOFTMAX::scale]);

  // Layer norms.
  EXPECT_EQ(s.count("ln1", "ff", OP_V_LN), 1);
  EXPECT_EQ(s.count("ln1", "bp", OP_V_LN_BWD), 1);
  const Insn* ln = s.first("ln2", "ff", OP_V_LN);
  ASSERT_NE(ln, nullptr);
  EXPECT_EQ((*ln)[f_V_LN::rows], uint32_t(B * T));
  EXPECT_EQ((*ln)[f_V_LN::d], 16u);
  EXPECT_FLOAT_EQ(as_float((*ln)[f_V_LN::eps]), 0.001f);

  // GELU, tanh form.
  const Insn* g = s.first("act", "ff", OP_V_GELU);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->flag(0));
  EXPECT_EQ((*g)[f_V_GELU::count], uint32_t(B * T * 32));
  const Insn* gb = s.first("act", "bp", OP_V_GELU_BWD);
  ASSERT_NE(gb, nullptr);
  EXPECT_TRUE(gb->flag(0));

  // Residuals: one add each way.
  for (const char* r : {"blk1", "blk2"}) {
    EXPECT_EQ(s.count(r, "ff", OP_V_ADD), 1) << r;
    EXPECT_EQ(s.count(r, "bp", OP_V_ADD), 1) << r;
  }

  // Token mean: average pooling with a T x 1 window, one output per sample.
  const Insn* pool = s.first("pool", "ff", OP_V_POOL);
  ASSERT_NE(pool, nullptr);
  EXPECT_TRUE(pool->flag(0));
  EXPECT_EQ((*pool)[f_V_POOL::h], uint32_t(T));
  EXPECT_EQ((*pool)[f_V_POOL::w], 1u);
  EXPECT_EQ((*pool)[f_V_POOL::kh_kw], pack16(T, 1));
  EXPECT_EQ((*pool)[f_V_POOL::oh], 1u);
  EXPECT_EQ((*pool)[f_V_POOL::ow], 1u);
  EXPECT_EQ(s.count("pool", "bp", OP_V_POOL_BWD), 1);
}

TEST(CompilerLayers, AttentionChunksLargerBatchesAndOmitsAbsentBiases) {
  const std::string text = R"({
    "name": "attn_nobias", "input": [6, 16], "classes": 10, "nm": "2:8",
    "layers": [
      {"type": "attention", "name": "a", "heads": 4, "bias": false},
      {"type": "token_mean"},
      {"type": "linear", "out": 10}]})";
  const int B = 9;
  const Program p = compile_text(text, Method::bdwp, B);
  expect_consistent(p);
  const Segments s{p};
  EXPECT_EQ(s.count("a", "ff", OP_V_SOFTMAX), 4);
  EXPECT_EQ(s.count("a", "bp", OP_V_SOFTMAX_BWD), 4);
  int rows = 0;
  for (const Insn* in : s.of("a", "ff"))
    if (in->opcode() == OP_V_SOFTMAX) rows += static_cast<int>((*in)[f_V_SOFTMAX::rows]);
  EXPECT_EQ(rows, B * 4 * 6);   // every (sample, head, token) row exactly once
  EXPECT_EQ(s.count("a", "bp", OP_V_COLSUM), 0);
  // The first layer: no dX, so neither the three input BP products nor the conversion.
  EXPECT_EQ(s.count("a", "bp", OP_V_CONVERT), 0);
  EXPECT_EQ(s.count("a", "bp", OP_GEMM), 1 + 4 * B * 4);
  EXPECT_EQ(s.count("a", "wu", OP_GEMM), 1 + 3);
}

TEST(CompilerLayers, PatchEmbedBackPropagatesWhenNotFirst) {
  for (int patch : {1, 2}) {
    SCOPED_TRACE("patch " + std::to_string(patch));
    const std::string text = R"({
      "name": "pe_second", "input": [2, 8, 8], "classes": 10, "nm": "2:8",
      "layers": [
        {"type": "conv2d", "out": 4, "kernel": 1},
        {"type": "patch_embed", "name": "pe", "patch": )" + std::to_string(patch) + R"(, "dim": 8},
        {"type": "token_mean"},
        {"type": "linear", "out": 10}]})";
    const Program p = compile_text(text, Method::bdwp, 2);
    expect_consistent(p);
    const Segments s{p};
    if (patch == 1) {
      EXPECT_EQ(s.count("pe", "bp", OP_ST_COL2IM), 0);
      EXPECT_EQ(s.count("pe", "bp", OP_V_CONVERT), 0);
    } else {
      EXPECT_EQ(s.count("pe", "bp", OP_V_FILL), 1);
      EXPECT_GE(s.count("pe", "bp", OP_ST_COL2IM), 1);
      EXPECT_EQ(s.count("pe", "bp", OP_V_CONVERT), 1);
    }
  }
}

// ---- Normalisation and containers in a CNN --------------------------------------------------------

TEST(CompilerLayers, TinyCnnStreamIsConsistentForEveryMethod) {
  for (Method m : {Method::dense, Method::srste, Method::bdwp}) {
    SCOPED_TRACE(method_name(m));
    expect_consistent(compile_text(kTinyCnn, m, 2));
  }
}

TEST(CompilerLayers, StrideTwoConvolutionBackwardRunsAsPhaseConvolutions) {
  // kTinyCnn's "down" block: a 3x3 and a 1x1 convolution of stride 2 on an 8x8 input.
  auto count = [](const Program& p, uint8_t op, int flag) {
    int64_t n = 0;
    for (const Insn& in : p.insns) n += in.opcode() == op && (flag < 0 || in.flag(flag)) ? 1 : 0;
    return n;
  };
  for (Method m : {Method::dense, Method::bdwp}) {
    SCOPED_TRACE(method_name(m));
    Model model = Model::from_json_text(kTinyCnn, "test.json");
    ScheduleOptions opt;
    opt.batch = 2;
    opt.method = m;
    const Program on = compile(model, opt);
    expect_consistent(on);
    // Nothing scatters: the 3x3 gives four phases, the 1x1 one (the others are zero-filled).
    EXPECT_EQ(count(on, OP_ST_COL2IM, -1), 0);
    EXPECT_GT(count(on, OP_ST_2D, 3), 0);
    opt.phase_bp = false;
    const Program off = compile(model, opt);
    expect_consistent(off);
    EXPECT_GT(count(off, OP_ST_COL2IM, -1), 0);
    EXPECT_EQ(count(off, OP_ST_2D, 3), 0);
  }
}

TEST(CompilerLayers, PhaseTapsOfAStrideTwoWindow) {
  auto expect_taps = [](int kernel, int pad, int parity, int first, int count, int window_pad) {
    SCOPED_TRACE(std::to_string(kernel) + "x" + std::to_string(kernel) + " pad " + std::to_string(pad) + " parity " +
                 std::to_string(parity));
    const compiler::PhaseTaps t = compiler::phase_taps_1d(kernel, pad, parity);
    EXPECT_EQ(t.first, first);
    EXPECT_EQ(t.count, count);
    EXPECT_EQ(t.pad, window_pad);
  };
  // 3x3, pad 1: even rows take the middle tap, odd rows the outer two; both windows unpadded.
  expect_taps(3, 1, 0, 1, 1, 0);
  expect_taps(3, 1, 1, 0, 2, 0);
  // 1x1, pad 0: odd rows get nothing.
  EXPECT_EQ(compiler::phase_taps_1d(1, 0, 1).count, 0);
  // 7x7, pad 3: taps 1, 3, 5 and 0, 2, 4, 6, both padded 1.
  expect_taps(7, 3, 0, 1, 3, 1);
  expect_taps(7, 3, 1, 0, 4, 1);
  // 3x3, pad 0: the parities' pads differ (1 and 0), which one LD_CONV pad cannot serve.
  EXPECT_NE(compiler::phase_taps_1d(3, 0, 0).pad, compiler::phase_taps_1d(3, 0, 1).pad);
}

TEST(CompilerLayers, BatchNormTrainingAndInference) {
  const int B = 2;
  const Program p = compile_text(kTinyCnn, Method::bdwp, B);
  const Segments s{p};
  const Insn* bn = s.first("bn0", "ff", OP_V_BN);
  ASSERT_NE(bn, nullptr);
  EXPECT_TRUE(bn->flag(0));
  EXPECT_EQ((*bn)[f_V_BN::rows], uint32_t(B * 8 * 8));
  EXPECT_EQ((*bn)[f_V_BN::c], 8u);
  EXPECT_FLOAT_EQ(as_float((*bn)[f_V_BN::eps]), 1e-5f);
  EXPECT_FLOAT_EQ(as_float((*bn)[f_V_BN::momentum]), 0.2f);
  const Insn* bn1 = s.first("bn1", "ff", OP_V_BN);
  ASSERT_NE(bn1, nullptr);
  EXPECT_EQ((*bn1)[f_V_BN::rows], uint32_t(B * 4 * 4));
  EXPECT_FLOAT_EQ(as_float((*bn1)[f_V_BN::momentum]), 0.1f);
  for (const char* name : {"bn0", "bn1", "bn2", "bn_sc", "bn3"}) {
    EXPECT_EQ(s.count(name, "bp", OP_V_BN_BWD), 1) << name;
  }
  // The projection shortcut's BP and the body's are summed by the residual.
  EXPECT_EQ(s.count("down", "ff", OP_V_ADD), 1);
  EXPECT_EQ(s.count("down", "bp", OP_V_ADD), 1);
  EXPECT_EQ(s.count("same", "bp", OP_V_ADD), 1);

  const Program inf = compile_text(kTinyCnn, Method::bdwp, B, false);
  const Segments si{inf};
  const Insn* bi = si.first("bn0", "ff", OP_V_BN);
  ASSERT_NE(bi, nullptr);
  EXPECT_FALSE(bi->flag(0));
  for (const Insn& in : inf.insns) {
    EXPECT_NE(in.opcode(), OP_V_BN_BWD);
    EXPECT_NE(in.opcode(), OP_V_SOFTMAX_BWD);
  }
  expect_consistent(inf);
}

// ---- Shipped models and errors -----------------------------------------------------------------

TEST(CompilerLayers, ShippedModelsWithTheseLayersCompile) {
  for (const char* name : {"vit_tiny", "resnet18", "vgg_small"}) {
    Model m = Model::load(std::string(SAT_SOURCE_DIR "/models/") + name + ".json");
    for (Method method : {Method::dense, Method::srste, Method::bdwp}) {
      SCOPED_TRACE(std::string(name) + " " + method_name(method));
      ScheduleOptions opt;
      opt.batch = 2;
      opt.method = method;
      const Program p = compile(m, opt);
      EXPECT_EQ(p.insns.back().opcode(), OP_FINISH);
      if (method == Method::bdwp) expect_consistent(p);
    }
    ScheduleOptions inf;
    inf.batch = 2;
    inf.training = false;
    EXPECT_NO_THROW(compile(m, inf)) << name;
  }
}

TEST(CompilerLayers, RowsLongerThanTheVectorUnitAreRefusedNamingTheLayer) {
  const std::string ln = R"({
    "name": "wide", "input": [9000], "classes": 10,
    "layers": [{"type": "layernorm", "name": "wide_ln"}, {"type": "linear", "out": 10}]})";
  test::expect_error([&] { compile_text(ln, Method::dense, 1); }, {"wide_ln", "layernorm", "9000"});
  const std::string at = R"({
    "name": "long", "input": [8200, 8], "classes": 10,
    "layers": [{"type": "attention", "name": "long_attn", "heads": 1},
               {"type": "token_mean"}, {"type": "linear", "out": 10}]})";
  test::expect_error([&] { compile_text(at, Method::dense, 1); }, {"long_attn", "attention", "8200"});
}

// ---- Numerics against the CPU reference (dense method, reference interpreter) -------------------

TEST(CompilerLayers, TinyVitDenseStepMatchesTheCpuReference) {
  expect_step_matches_cpu(kTinyVit, 5, 0.03);
}

TEST(CompilerLayers, AttentionWithoutBiasAndPatchEmbedBackwardMatchTheCpuReference) {
  const std::string text = R"({
    "name": "pe_attn", "input": [1, 8, 8], "classes": 10,
    "layers": [
      {"type": "conv2d", "out": 4, "kernel": 1},
      {"type": "patch_embed", "patch": 2, "dim": 8},
      {"type": "residual", "body": [{"type": "attention", "heads": 2, "bias": false}]},
      {"type": "gelu"},
      {"type": "token_mean"},
      {"type": "linear", "out": 10}]})";
  expect_step_matches_cpu(text, 3, 0.03);
}

TEST(CompilerLayers, ResidualCnnWithBatchNormMatchesTheCpuReference) {
  const std::string text = R"({
    "name": "bn_cnn", "input": [1, 8, 8], "classes": 10,
    "layers": [
      {"type": "conv2d", "out": 8, "kernel": 3, "padding": 1, "bias": false},
      {"type": "batchnorm2d"},
      {"type": "relu"},
      {"type": "residual", "body": [
        {"type": "conv2d", "out": 16, "kernel": 3, "stride": 2, "padding": 1, "bias": false},
        {"type": "batchnorm2d"},
        {"type": "gelu"}],
       "shortcut": [
        {"type": "conv2d", "out": 16, "kernel": 1, "stride": 2, "bias": false},
        {"type": "batchnorm2d", "momentum": 0.3}]},
      {"type": "residual", "body": [{"type": "batchnorm2d"}, {"type": "relu"}]},
      {"type": "global_avgpool"},
      {"type": "flatten"},
      {"type": "linear", "out": 10}]})";
  expect_step_matches_cpu(text, 4, 0.03);
}
