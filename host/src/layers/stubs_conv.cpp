// Temporary: the convolution family is being written; delete this file when it lands.
#include "layers/layers.hpp"
namespace sat::layers {
LayerPtr make_conv2d(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_maxpool2d(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_avgpool2d(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_global_avgpool(const LayerSpec& spec) { spec.fail("not built yet"); }
LayerPtr make_batchnorm2d(const LayerSpec& spec) { spec.fail("not built yet"); }
}  // namespace sat::layers
