// global_avgpool: see lower_pool.hpp.
#include "compiler/lower_pool.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

std::unique_ptr<LayerLowering> make_global_avgpool_lowering() {
  return std::make_unique<PoolLowering>(PoolLowering::Kind::global);
}

}  // namespace sat::compiler
