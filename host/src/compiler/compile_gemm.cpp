// The program of one `sat op gemm` product: the same Lowering and the same weight products a
// training step uses, on a one-layer model that wraps the problem's weight, so that the primitive
// checks exactly what training runs on the accelerator.
#include "sat/lowering.hpp"
#include "sat/error.hpp"
#include "sat/ops.hpp"

namespace sat {

namespace {

// A layer that only owns the problem's weight, so that Lowering allocates and binds its regions.
class GemmWeightLayer final : public Layer {
 public:
  explicit GemmWeightLayer(GemmProblem& p) : p_(p) { name = "gemm"; }
  std::string type() const override { return "gemm"; }
  Shape build(const Shape& in, Rng&) override { return in; }
  Tensor forward(const Tensor&, const StepContext&) override { throw Error("gemm layer: no forward"); }
  Tensor backward(const Tensor&, const StepContext&) override { throw Error("gemm layer: no backward"); }
  void params(std::vector<Param*>& out) override { out.push_back(&p_.weight); }
  void sparse_weights(std::vector<SparseWeight*>& out) override { out.push_back(&p_.sw); }
  void describe(std::vector<LayerInfo>&, Method) const override {}

 private:
  GemmProblem& p_;
};

}  // namespace

GemmProgram compile_gemm(GemmProblem& pr) {
  using compiler::Operand;
  using compiler::Output;
  using compiler::TensorRef;
  GemmProgram out;
  out.model = std::make_unique<Model>();
  Model& model = *out.model;
  model.name = "gemm";
  model.classes = 1;
  model.input = {pr.k};
  model.layers.push_back(std::make_unique<GemmWeightLayer>(pr));

  ScheduleOptions opt;
  opt.batch = static_cast<int>(pr.batch);
  opt.method = pr.method;
  // The ff pass reads W_F (or the dense copy); bp and wu need the training-time forms and grads.
  opt.training = pr.mode != GemmMode::ff;
  compiler::Lowering lw(model, opt);
  const int64_t b = pr.batch, cout = pr.cout, k = pr.k;
  switch (pr.mode) {
    case GemmMode::ff: {
      const TensorRef x = lw.alloc("gemm.a", RegionKind::activation, {b, k});
      const TensorRef y = lw.alloc("gemm.c", RegionKind::activation, {b, cout}, DType::f32);
      lw.ff_product(&pr.sw, Operand::rows(x, k), b, Output::rows(y, cout));
      out.a = x.region;
      out.c = y.region;
      break;
    }
    case GemmMode::bp: {
      const TensorRef dy = lw.alloc("gemm.a", RegionKind::gradient, {b, cout});
      const TensorRef dx = lw.alloc("gemm.c", RegionKind::gradient, {b, k}, DType::f32);
      lw.bp_product(&pr.sw, Operand::rows(dy, cout), b, Output::rows(dx, k));
      out.a = dy.region;
      out.c = dx.region;
      break;
    }
    case GemmMode::wu: {
      const TensorRef dy = lw.alloc("gemm.a", RegionKind::gradient, {b, cout});
      const TensorRef x = lw.alloc("gemm.b", RegionKind::activation, {b, k});
      // dW = dY^T X: the operands are dY^T [Cout][B] and X^T [K][B], read transposed.
      lw.wu_product(&pr.sw, Operand::rows(dy, 1, cout), Operand::rows(x, 1, k), b);
      out.a = dy.region;
      out.b = x.region;
      out.c = lw.grad_region_of_param(&pr.weight);
      break;
    }
  }
  lw.emit(isa::make_insn(isa::OP_FINISH), {}, {});
  out.program = std::move(lw.program());
  return out;
}

}  // namespace sat
