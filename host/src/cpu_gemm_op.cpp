// The GEMM primitive of `sat op gemm` on the CPU. It runs the same code a layer's training step
// runs: the weight goes through the N:M core into a SparseWeight, and the product is the
// weight_ops product of that pass, so this primitive checks exactly what training computes.
#include <algorithm>
#include <memory>

#include "sat/cpu_kernels.hpp"
#include "cpu/weight_ops.hpp"
#include "sat/error.hpp"
#include "sat/ops.hpp"

namespace sat {

GemmMode parse_gemm_mode(const std::string& s) {
  if (s == "ff") return GemmMode::ff;
  if (s == "bp") return GemmMode::bp;
  if (s == "wu") return GemmMode::wu;
  throw Error("unknown gemm mode '" + s + "' (expected ff, bp or wu)");
}

const char* gemm_mode_name(GemmMode mode) {
  switch (mode) {
    case GemmMode::ff: return "ff";
    case GemmMode::bp: return "bp";
    case GemmMode::wu: return "wu";
  }
  return "?";
}

namespace {

// What the operands are called in each mode, for error messages.
struct Roles {
  const char* a;      // "A (X) [B][K]"
  const char* b;
};
Roles roles(GemmMode mode) {
  switch (mode) {
    case GemmMode::ff: return {"A (X) [B][K]", "B (W) [Cout][K]"};
    case GemmMode::bp: return {"A (dY) [B][Cout]", "B (W) [Cout][K]"};
    case GemmMode::wu: return {"A (dY) [B][Cout]", "B (X) [B][K]"};
  }
  return {"A", "B"};
}

// Feature-major copy of a row-major [rows][cols] activation, rounded as activations are stored.
std::vector<float> feature_major(const std::vector<float>& a, int64_t rows, int64_t cols) {
  std::vector<float> rounded(a.size()), t(a.size());
  std::transform(a.begin(), a.end(), rounded.begin(), round_storage);
  cpu::transpose(rounded.data(), rows, cols, t.data());
  return t;
}

std::vector<float> row_major(const std::vector<float>& t, int64_t features, int64_t cols) {
  std::vector<float> out(t.size());
  cpu::transpose(t.data(), features, cols, out.data());
  return out;
}

}  // namespace

std::unique_ptr<GemmProblem> make_gemm_problem(GemmMode mode, NM nm, const std::vector<float>& a,
                                               const Shape& a_shape, const std::vector<float>& b,
                                               const Shape& b_shape) {
  const std::string what = std::string("gemm ") + gemm_mode_name(mode);
  const Roles r = roles(mode);
  if (mode == GemmMode::wu) nm = NM{1, 1};
  validate_nm(nm);

  auto check_2d = [&](const char* role, const Shape& s, const std::vector<float>& v) {
    if (s.size() != 2) throw Error(what + ": " + role + " must be 2-D, got " + shape_str(s));
    if (s[0] < 1 || s[1] < 1) throw Error(what + ": " + role + " is empty: " + shape_str(s));
    if (static_cast<int64_t>(v.size()) != numel(s)) {
      throw Error(what + ": " + role + " has shape " + shape_str(s) + " but " +
                  std::to_string(v.size()) + " values");
    }
  };
  check_2d(r.a, a_shape, a);
  check_2d(r.b, b_shape, b);
  auto mismatch = [&](const char* dim) {
    throw Error(what + ": " + dim + " differs: " + r.a + " is " + shape_str(a_shape) + ", " + r.b +
                " is " + shape_str(b_shape));
  };

  // B rows (samples) and the weight's [cout][k]; the weight is b in ff/bp, the gradient in wu.
  int64_t batch = a_shape[0], cout = 0, k = 0;
  switch (mode) {
    case GemmMode::ff:
      if (a_shape[1] != b_shape[1]) mismatch("K");
      cout = b_shape[0];
      k = b_shape[1];
      break;
    case GemmMode::bp:
      if (a_shape[1] != b_shape[0]) mismatch("Cout");
      cout = b_shape[0];
      k = b_shape[1];
      break;
    case GemmMode::wu:
      if (a_shape[0] != b_shape[0]) mismatch("B (rows)");
      cout = a_shape[1];
      k = b_shape[1];
      break;
  }
  if (!nm.dense()) {
    const bool along_k = mode == GemmMode::ff;
    const int64_t len = along_k ? k : cout;
    if (len % nm.m != 0) {
      throw Error(what + ": N:M " + nm.str() + " prunes W along " + (along_k ? "K" : "Cout") +
                  ", but " + (along_k ? "K = " : "Cout = ") + std::to_string(len) +
                  " does not divide by M = " + std::to_string(nm.m) + " (" + r.b + " is " +
                  shape_str(b_shape) + ")");
    }
  }

  auto pr = std::make_unique<GemmProblem>();
  pr->mode = mode;
  pr->batch = batch;
  pr->cout = cout;
  pr->k = k;
  pr->weight = Param("gemm.W", {cout, k});
  SparseWeight& sw = pr->sw;
  sw.weight = &pr->weight;
  sw.cout = cout;
  sw.k = k;
  sw.nm = nm;
  if (mode != GemmMode::wu) pr->weight.value = b;
  // Only the form this pass reads is built (SparseWeight::regenerate would also build the other
  // axis, which need not divide by M here). A dense pass reads `dense` under Method::dense.
  pr->method = nm.dense() ? Method::dense : Method::bdwp;
  if (mode != GemmMode::wu) {
    if (nm.dense()) {
      sw.dense.resize(b.size());
      std::transform(b.begin(), b.end(), sw.dense.begin(), round_storage);
    } else if (mode == GemmMode::ff) {
      sw.fwd = nm_compress(b.data(), cout, k, nm, Axis::K);
    } else {
      sw.bwd = nm_compress(b.data(), cout, k, nm, Axis::Cout);
    }
  }
  return pr;
}

std::vector<float> cpu_gemm(GemmMode mode, NM nm, const std::vector<float>& a, Shape a_shape,
                            const std::vector<float>& b, Shape b_shape, Shape* c_shape) {
  const std::unique_ptr<GemmProblem> pr = make_gemm_problem(mode, nm, a, a_shape, b, b_shape);
  const int64_t batch = pr->batch, cout = pr->cout, k = pr->k;
  SparseWeight& sw = pr->sw;
  const StepContext ctx{pr->method, true};
  const std::string what = std::string("gemm ") + gemm_mode_name(mode);
  switch (mode) {
    case GemmMode::ff: {
      const std::vector<float> xt = feature_major(a, batch, k);
      std::vector<float> yt(static_cast<size_t>(cout * batch));
      cpu::ff_product(sw, ctx, xt.data(), batch, yt.data());
      *c_shape = {batch, cout};
      return row_major(yt, cout, batch);
    }
    case GemmMode::bp: {
      const std::vector<float> dyt = feature_major(a, batch, cout);
      std::vector<float> dxt(static_cast<size_t>(k * batch));
      cpu::bp_product(sw, ctx, dyt.data(), batch, dxt.data());
      *c_shape = {batch, k};
      return row_major(dxt, k, batch);
    }
    case GemmMode::wu: {
      const std::vector<float> dyt = feature_major(a, batch, cout);
      const std::vector<float> xt = feature_major(b, batch, k);
      cpu::wu_product(sw, ctx, dyt.data(), xt.data(), batch);
      *c_shape = {cout, k};
      return std::move(pr->weight.grad);
    }
  }
  throw Error(what + ": unknown mode");
}

}  // namespace sat
