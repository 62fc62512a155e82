// compile(): one Lowering over the whole model (docs/dataflow.md).
#include "sat/lowering.hpp"
#include "sat/error.hpp"

namespace sat {

Program compile(Model& model, const ScheduleOptions& opt) {
  if (opt.batch < 1) {
    throw Error("compile " + model.name + ": batch must be >= 1, got " + std::to_string(opt.batch));
  }
  if (opt.batch > 0xffff) {
    throw Error("compile " + model.name + ": batch " + std::to_string(opt.batch) +
                " is larger than the accelerator's 65535");
  }
  compiler::Lowering lw(model, opt);
  lw.lower_model();
  return std::move(lw.program());
}

}  // namespace sat
