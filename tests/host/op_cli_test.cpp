// `sat op` end to end: runs the built CLI on small .npy inputs and checks its results against
// double-precision references built here from the project's N:M core (nm_prune) and BF16 rounding,
// and that every bad flag or input fails with exit status 1 and a message naming the problem.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend_built.hpp"
#include "sat/bf16.hpp"
#include "sat/nm.hpp"
#include "sat/npy.hpp"
#include "run_cli.hpp"

namespace sat {
namespace {

namespace fs = std::filesystem;

using test::CliRun;
using test::run_sat;

fs::path dir() {
  // One directory per test: ctest runs the tests of this file in parallel processes.
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : test) if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
  const fs::path d = fs::path(SAT_BINARY_DIR) / "test-tmp" / "op_cli" / test;
  fs::create_directories(d);
  return d;
}
std::string path(const std::string& name) { return (dir() / name).string(); }

std::vector<float> random_values(size_t n, uint64_t seed, bool with_ties = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = with_ties ? std::round(nd(rng) * 2.0f) / 2.0f : nd(rng);
  return v;
}

std::string write(const std::string& name, const Shape& shape, const std::vector<float>& v) {
  const std::string p = path(name);
  npy_write(p, shape, v);
  return p;
}

std::vector<double> bf16_rounded(const std::vector<float>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = round_bf16(v[i]);
  return out;
}

// Sum over k of a[i][k] * b[j][k] for row-major a [rows_a][kdim], b [rows_b][kdim], and the sum
// of the absolute terms (the scale of FP32 accumulation error).
void ref_abt(const std::vector<double>& a, const std::vector<double>& b, int64_t rows_a,
             int64_t rows_b, int64_t kdim, std::vector<double>& c, std::vector<double>& scale) {
  c.assign(static_cast<size_t>(rows_a * rows_b), 0.0);
  scale.assign(c.size(), 0.0);
  for (int64_t i = 0; i < rows_a; ++i)
    for (int64_t j = 0; j < rows_b; ++j)
      for (int64_t k = 0; k < kdim; ++k) {
        const double t = a[i * kdim + k] * b[j * kdim + k];
        c[i * rows_b + j] += t;
        scale[i * rows_b + j] += std::fabs(t);
      }
}

std::vector<double> transposed(const std::vector<double>& m, int64_t rows, int64_t cols) {
  std::vector<double> t(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = m[r * cols + c];
  return t;
}

// Products of BF16 values are exact in FP32, so only the FP32 summation differs from the double
// reference: bounded by (terms) * 2^-24 * sum|terms|.
void expect_close(const NpyArray& got, const Shape& shape, const std::vector<double>& ref,
                  const std::vector<double>& scale, const std::string& what) {
  ASSERT_EQ(got.shape, shape) << what;
  ASSERT_EQ(got.data.size(), ref.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < ref.size() && bad < 5; ++i) {
    const double tol = 1e-5 * scale[i] + 1e-30;
    if (!(std::fabs(got.data[i] - ref[i]) <= tol)) {
      ++bad;
      ADD_FAILURE() << what << ": C[" << i << "] = " << got.data[i] << ", reference " << ref[i];
    }
  }
}

class GemmTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GemmTest, MatchesReference) {
  const std::string nm_text = GetParam();
  const NM nm = NM::parse(nm_text);
  const int64_t B = 5, K = 32, Cout = 16;
  const auto x = random_values(B * K, 1);
  const auto w = random_values(Cout * K, 2, /*with_ties=*/true);
  const auto dy = random_values(B * Cout, 3);
  const std::string fx = write("x.npy", {B, K}, x), fw = write("w.npy", {Cout, K}, w),
                    fdy = write("dy.npy", {B, Cout}, dy), fc = path("c.npy");
  const auto prune = [&](Axis axis) {
    return bf16_rounded(nm.dense() ? w : nm_prune(w.data(), Cout, K, nm, axis));
  };
  std::vector<double> ref, scale;

  CliRun r = run_sat("op gemm --mode ff --nm " + nm_text + " --a " + fx + " --b " + fw + " --out " + fc);
  ASSERT_EQ(r.status, 0) << r.out;
  ref_abt(bf16_rounded(x), prune(Axis::K), B, Cout, K, ref, scale);
  expect_close(npy_read(fc), {B, Cout}, ref, scale, "ff " + nm_text);

  // dX[b][k] = sum_o dY[b][o] * Wb[o][k]: an A * B^T product with B = Wb^T.
  r = run_sat("op gemm --mode bp --nm " + nm_text + " --a " + fdy + " --b " + fw + " --out " + fc);
  ASSERT_EQ(r.status, 0) << r.out;
  ref_abt(bf16_rounded(dy), transposed(prune(Axis::Cout), Cout, K), B, K, Cout, ref, scale);
  expect_close(npy_read(fc), {B, K}, ref, scale, "bp " + nm_text);

  // dW[o][k] = sum_b dY[b][o] * X[b][k]: dense whatever --nm says.
  r = run_sat("op gemm --mode wu --nm " + nm_text + " --a " + fdy + " --b " + fx + " --out " + fc);
  ASSERT_EQ(r.status, 0) << r.out;
  ref_abt(transposed(bf16_rounded(dy), B, Cout), transposed(bf16_rounded(x), B, K), Cout, K, B, ref,
          scale);
  expect_close(npy_read(fc), {Cout, K}, ref, scale, "wu " + nm_text);
}

INSTANTIATE_TEST_SUITE_P(Settings, GemmTest,
                         ::testing::Values("2:8", "1:8", "4:8", "2:4", "1:2", "2:16", "8:8", "dense"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) if (c == ':') c = '_';
                           return s;
                         });

TEST(OpCli, GemmWuNeedsNoNm) {
  const std::string fdy = write("dy.npy", {3, 8}, random_values(24, 4));
  const std::string fx = write("x.npy", {3, 5}, random_values(15, 5));
  const CliRun r = run_sat("op gemm --mode wu --a " + fdy + " --b " + fx + " --out " + path("c.npy"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(npy_read(path("c.npy")).shape, (Shape{8, 5}));
}

TEST(OpCli, GemmPrunedAxisOnlyMustDivide) {
  // ff prunes along K only: Cout = 6 is fine at 2:8.
  const std::string fx = write("x.npy", {2, 16}, random_values(32, 6));
  const std::string fw = write("w6.npy", {6, 16}, random_values(96, 7));
  const CliRun r = run_sat("op gemm --mode ff --nm 2:8 --a " + fx + " --b " + fw + " --out " + path("c.npy"));
  EXPECT_EQ(r.status, 0) << r.out;
}

TEST(OpCli, PruneMatchesNmPrune) {
  const int64_t Cout = 16, K = 24;
  const auto w = random_values(Cout * K, 8, /*with_ties=*/true);
  const std::string fw = write("w.npy", {Cout, K}, w);
  for (const char* nm_text : {"2:8", "1:4", "3:8", "2:4", "4:8"}) {
    const NM nm = NM::parse(nm_text);
    for (const auto& [axis_text, axis] : {std::pair{"k", Axis::K}, std::pair{"cout", Axis::Cout}}) {
      const CliRun r = run_sat(std::string("op prune --nm ") + nm_text + " --axis " + axis_text +
                            " --in " + fw + " --out " + path("wp.npy"));
      ASSERT_EQ(r.status, 0) << r.out;
      const NpyArray got = npy_read(path("wp.npy"));
      EXPECT_EQ(got.shape, (Shape{Cout, K}));
      EXPECT_EQ(got.data, nm_prune(w.data(), Cout, K, nm, axis)) << nm_text << " along " << axis_text;
    }
  }
  const CliRun r = run_sat("op prune --nm dense --axis k --in " + fw + " --out " + path("wp.npy"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(npy_read(path("wp.npy")).data, w);
}

TEST(OpCli, LinearLayerMatchesReference) {
  // BDWP 2:8 linear 16 -> 8, batch 3, with given parameters; y = x Wf^T + b, dx = dy Wb,
  // dW = dy^T x, db = sum dy. y and dx are BF16 values.
  const int64_t B = 3, In = 16, Out = 8;
  const auto x = random_values(B * In, 9), dy = random_values(B * Out, 10);
  const auto w = random_values(Out * In, 11), bias = random_values(Out, 12);
  const fs::path params = dir() / "lin-params", out = dir() / "lin-out";
  fs::create_directories(params);
  npy_write((params / "weight.npy").string(), {Out, In}, w);
  npy_write((params / "bias.npy").string(), {Out}, bias);
  const std::string fx = write("lx.npy", {B, In}, x), fdy = write("ldy.npy", {B, Out}, dy);
  const CliRun r = run_sat("op layer --spec '{\"type\": \"linear\", \"out\": 8}' --input-shape 16"
                        " --method bdwp --nm 2:8 --x " + fx + " --dy " + fdy + " --params " +
                        params.string() + " --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.out;

  const NM nm{2, 8};
  const auto wf = bf16_rounded(nm_prune(w.data(), Out, In, nm, Axis::K));
  const auto wb = bf16_rounded(nm_prune(w.data(), Out, In, nm, Axis::Cout));
  const auto xr = bf16_rounded(x), dyr = bf16_rounded(dy);
  std::vector<double> ref, scale;
  auto check = [&](const std::string& file, const Shape& shape, std::vector<double> bias_add,
                   double rel) {
    const NpyArray got = npy_read((out / file).string());
    ASSERT_EQ(got.shape, shape) << file;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double want = ref[i] + (bias_add.empty() ? 0.0 : bias_add[i % bias_add.size()]);
      EXPECT_NEAR(got.data[i], want, rel * (scale[i] + std::fabs(want)) + 1e-6) << file << "[" << i << "]";
    }
  };
  // Stored BF16: relative rounding error up to 2^-9.
  ref_abt(xr, wf, B, Out, In, ref, scale);
  check("y.npy", {B, Out}, std::vector<double>(bias.begin(), bias.end()), 1.0 / 256);
  ref_abt(dyr, transposed(wb, Out, In), B, In, Out, ref, scale);
  check("dx.npy", {B, In}, {}, 1.0 / 256);
  ref_abt(transposed(dyr, B, Out), transposed(xr, B, In), Out, In, B, ref, scale);
  check("grad_weight.npy", {Out, In}, {}, 1e-5);
  ref.assign(Out, 0.0);
  scale.assign(Out, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < Out; ++o) ref[o] += dyr[b * Out + o], scale[o] += std::fabs(dyr[b * Out + o]);
  check("grad_bias.npy", {Out}, {}, 1e-5);
}

TEST(OpCli, Help) {
  for (const char* args : {"op --help", "op gemm --help", "op prune --help", "op layer --help"}) {
    const CliRun r = run_sat(args);
    EXPECT_EQ(r.status, 0) << args << ": " << r.out;
    EXPECT_NE(r.out.find("usage: sat op"), std::string::npos) << args << ": " << r.out;
  }
}

struct BadCase {
  std::string args;
  std::vector<std::string> expect;     // substrings of the message
  int status = 1;                      // 1: an error; 2: a bad command line
};

TEST(OpCli, BadInputsFailWithAMessage) {
  const std::string fx = write("bx.npy", {4, 16}, random_values(64, 20));
  const std::string fw = write("bw.npy", {8, 16}, random_values(128, 21));
  const std::string fw12 = write("bw12.npy", {8, 12}, random_values(96, 22));
  const std::string f3d = write("b3d.npy", {2, 2, 4}, random_values(16, 23));
  const std::string missing = path("no-such-file.npy");
  // A float16 file, which the reader must reject by name.
  const std::string ff2 = path("half.npy");
  {
    std::string header = "{'descr': '<f2', 'fortran_order': False, 'shape': (8, 16), }\n";
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size());
    bytes += '\0';
    bytes += header + std::string(256, '\0');
    FILE* f = std::fopen(ff2.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  const std::string out = " --out " + path("bad-out.npy");
  const std::string ok_ab = " --a " + fx + " --b " + fw;
  const std::vector<BadCase> cases = {
      {"op gemm --mode ff --nm 2:8" + ok_ab + out + " --bogus 1", {"unknown flag --bogus"}, 2},
      {"op gemm --mode ff --nm 2:8 --b " + fw + out, {"missing required flag --a"}, 2},
      {"op gemm --mode ff" + ok_ab + out, {"missing required flag --nm"}, 2},
      {"op gemm --mode ff --nm 3:5" + ok_ab + out, {"--nm", "3:5", "M = 5"}, 2},
      {"op gemm --mode ff --nm 2-8" + ok_ab + out, {"--nm", "'2-8'"}, 2},
      {"op gemm --mode ff --nm 9:8" + ok_ab + out, {"--nm", "9:8"}, 2},
      {"op gemm --mode xx --nm 2:8" + ok_ab + out, {"--mode", "unknown gemm mode 'xx'"}, 2},
      {"op gemm --mode ff --nm 2:8 --a " + fx + " --b " + fw12 + out,
       {"K differs", "[4, 16]", "[8, 12]"}},
      {"op gemm --mode bp --nm 2:8 --a " + fx + " --b " + fw + out, {"Cout differs", "[4, 16]", "[8, 16]"}},
      {"op gemm --mode wu --a " + fx + " --b " + fw + out, {"B (rows) differs", "[4, 16]", "[8, 16]"}},
      {"op gemm --mode ff --nm 2:8 --a " + f3d + " --b " + fw + out, {"must be 2-D", "[2, 2, 4]"}},
      {"op gemm --mode bp --nm 2:16 --a " + write("dy8.npy", {4, 8}, random_values(32, 4)) + " --b " + write("w8x8.npy", {8, 8}, random_values(64, 1)) + out,
       {"Cout = 8", "does not divide by M = 16"}},
      {"op gemm --mode ff --nm 2:8 --a " + write("x12.npy", {4, 12}, random_values(48, 2)) + " --b " + fw12 + out,
       {"K = 12", "does not divide by M = 8"}},
      {"op gemm --mode ff --nm 2:8 --a " + missing + " --b " + fw + out, {"no-such-file.npy", "cannot open"}},
      {"op gemm --mode ff --nm 2:8 --a " + fx + " --b " + ff2 + out, {"half.npy", "unsupported dtype '<f2'"}},
      {"op gemm --mode ff --nm 2:8" + ok_ab + out + " --backend fpga", {sat::test::fpga_unopened_error()}},
      {"op gemm --mode ff --nm 2:8" + ok_ab + out + " --backend nope", {"backend 'nope'"}},
      {"op gemm --mode ff --nm 2:8" + ok_ab + " --out " + path("no-such-dir/c.npy"), {"c.npy", "cannot write"}},
      {"op prune --nm 2:8 --axis z --in " + fw + out, {"--axis", "'z'"}, 2},
      {"op prune --nm 2:8 --axis cout --in " + write("w12x16.npy", {12, 16}, random_values(192, 3)) + out,
       {"Cout = 12", "does not divide by M = 8"}},
      {"op prune --nm 2:8 --axis k --in " + fw12 + out, {"K = 12", "does not divide by M = 8"}},
      {"op prune --nm 2:8 --axis k --in " + f3d + out, {"2-D"}},
      {"op frobnicate", {"unknown op 'frobnicate'"}, 2},
      {"op layer --spec '{\"type\": \"linear\", \"out\": 8}' --input-shape 16 --method bdwp --nm 2:8"
       " --x " + fx + " --dy " + fx + " --out " + path("lout"),
       {"DY is [4, 16]", "[4, 8]"}},
      {"op layer --spec '{\"type\": \"linear\", \"out\": 8}' --input-shape 12 --method bdwp --nm 2:8"
       " --x " + fx + " --dy " + fx + " --out " + path("lout"),
       {"X is [4, 16]"}},
      {"op layer --spec '{\"type\": \"linear\", \"out\": 8}' --input-shape 16 --method sgd --nm 2:8"
       " --x " + fx + " --dy " + fx + " --out " + path("lout"),
       {"--method", "'sgd'"}, 2},
      {"op layer --spec '{\"type\": \"linear\", \"outt\": 8}' --input-shape 16 --method bdwp --nm 2:8"
       " --x " + fx + " --dy " + fx + " --out " + path("lout"),
       {"unknown field \"outt\""}},
      {"op layer --spec '{\"type\": \"linear\", ' --input-shape 16 --method bdwp --nm 2:8"
       " --x " + fx + " --dy " + fx + " --out " + path("lout"),
       {"--spec", "not valid JSON"}, 2},
      {"op layer --spec '{\"type\": \"linear\", \"out\": 8}' --input-shape 16,x --method bdwp --nm 2:8"
       " --x " + fx + " --dy " + fx + " --out " + path("lout"),
       {"--input-shape", "16,x"}, 2},
  };
  for (const BadCase& c : cases) {
    const CliRun r = run_sat(c.args);
    EXPECT_EQ(r.status, c.status) << "sat " << c.args << "\n" << r.out;
    EXPECT_EQ(r.out.find("internal"), std::string::npos) << "sat " << c.args << "\n" << r.out;
    for (const std::string& s : c.expect) {
      EXPECT_NE(r.out.find(s), std::string::npos) << "sat " << c.args << "\nmissing '" << s << "' in:\n" << r.out;
    }
  }
}

TEST(OpCli, LayerParamFileErrors) {
  const std::string fx = write("px.npy", {2, 16}, random_values(32, 30));
  const std::string fdy = write("pdy.npy", {2, 8}, random_values(16, 31));
  const fs::path params = dir() / "bad-params";
  fs::remove_all(params);
  fs::create_directories(params);
  const std::string cmd = "op layer --spec '{\"type\": \"linear\", \"out\": 8}' --input-shape 16"
                          " --method bdwp --nm 2:8 --x " + fx + " --dy " + fdy + " --params " +
                          params.string() + " --out " + path("pout");
  CliRun r = run_sat(cmd);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("weight.npy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("op.weight"), std::string::npos) << r.out;

  npy_write((params / "weight.npy").string(), {16, 8}, random_values(128, 32));
  r = run_sat(cmd);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("weight.npy is [16, 8], but parameter op.weight is [8, 16]"), std::string::npos)
      << r.out;

  npy_write((params / "weight.npy").string(), {8, 16}, random_values(128, 32));
  r = run_sat(cmd);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("bias.npy"), std::string::npos) << r.out;

  npy_write((params / "bias.npy").string(), {8}, random_values(8, 33));
  r = run_sat(cmd);
  EXPECT_EQ(r.status, 0) << r.out;
}

}  // namespace
}  // namespace sat
