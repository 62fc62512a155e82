// maxpool2d: see lower_pool.hpp.
#include "compiler/lower_pool.hpp"
#include "compiler/lowerings.hpp"

namespace sat::compiler {

std::unique_ptr<LayerLowering> make_maxpool2d_lowering() {
  return std::make_unique<PoolLowering>(PoolLowering::Kind::max);
}

}  // namespace sat::compiler
