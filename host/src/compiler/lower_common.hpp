#pragma once
// Helpers shared by the layer lowerings of this folder.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sat/lowering.hpp"

namespace sat::compiler {

// Integer setting `key` of a layer's attrs(); throws naming the layer when absent.
inline int64_t attr_int(Lowering& lw, const Layer& layer, const char* key) {
  const nlohmann::json a = layer.attrs();
  if (!a.contains(key) || !a[key].is_number_integer()) {
    lw.fail(std::string("layer settings lack the integer \"") + key + "\"");
  }
  return a[key].get<int64_t>();
}

// The parameter of `layer` whose name ends in `suffix`; throws naming the layer when absent.
inline Param* need_param(Lowering& lw, Layer& layer, const char* suffix) {
  Param* p = lw.param(layer, suffix);
  if (!p) lw.fail(std::string("has no parameter '") + suffix + "'");
  return p;
}

// Throws unless dy is a BF16 output gradient of `count` elements; `layout` (e.g. "[batch, features]
// ") names its shape in the message.
inline void check_dy(Lowering& lw, const TensorRef& dy, int64_t count, const char* layout = "") {
  if (dy.dtype != DType::bf16 || dy.numel() != count) {
    lw.fail(std::string("expected a BF16 ") + layout + "output gradient of " + std::to_string(count) +
            " elements, got " + std::to_string(dy.numel()));
  }
}

// Window geometry of a convolution or pooling layer from its [C, H, W] input and output shapes.
inline ConvGeom window_geom(Lowering& lw, const Layer& layer, int64_t kernel, int64_t stride,
                            int64_t pad) {
  if (layer.in_shape.size() != 3 || layer.out_shape.size() != 3) {
    lw.fail("expected [C, H, W] input and output shapes, got " + shape_str(layer.in_shape) +
            " -> " + shape_str(layer.out_shape));
  }
  if (kernel > 0xffff || stride > 0xffff || pad > 0xffff) {
    lw.fail("kernel, stride and padding must each fit 16 bits");
  }
  ConvGeom g;
  g.c = layer.in_shape[0];
  g.h = layer.in_shape[1];
  g.w = layer.in_shape[2];
  g.kh = g.kw = kernel;
  g.stride = stride;
  g.pad = pad;
  g.oh = layer.out_shape[1];
  g.ow = layer.out_shape[2];
  return g;
}

// A tensor of `shape` at region `region` (a parameter, ...), FP32 unless told.
inline TensorRef region_ref(int region, Shape shape, DType dtype = DType::f32) {
  TensorRef t;
  t.region = region;
  t.dtype = dtype;
  t.shape = std::move(shape);
  return t;
}

// The bias gradient: column sums of dY [rows][cols] into the FP32 gradient of `bias` (added when
// an earlier instruction already wrote it this step).
inline void bias_grad(Lowering& lw, const Param* bias, const TensorRef& dy, int64_t rows,
                      int64_t cols) {
  const TensorRef g = lw.grad_ref(bias);
  const uint8_t add = lw.region_written(g.region) ? 1 : 0;
  lw.emit_vec(Lowering::insn(isa::OP_V_COLSUM, add,
                             {{isa::f_V_COLSUM::x, lw.addr(dy)},
                              {isa::f_V_COLSUM::y, lw.addr(g)},
                              {isa::f_V_COLSUM::rows, lw.u32(rows, "rows")},
                              {isa::f_V_COLSUM::cols, lw.u32(cols, "cols")}}),
              add ? std::vector<TensorRef>{dy, g} : std::vector<TensorRef>{dy}, {g});
}

// Rows of y (row stride `row_stride`, column stride `col_stride`) as the output of a weight product,
// with the FP32 `bias` added by the store when there is one.
inline Output bias_output(Lowering& lw, const TensorRef& y, const Param* bias, int64_t row_stride,
                          int64_t col_stride = 1) {
  Output o = Output::rows(y, row_stride, col_stride);
  if (bias) o.bias_region = lw.region_of_param(bias);
  return o;
}

// Zeroes the FP32 tensor t (an accumulator a product then adds into).
inline void zero_f32(Lowering& lw, const TensorRef& t) {
  lw.emit_vec(Lowering::insn(isa::OP_V_FILL, 1,
                             {{isa::f_V_FILL::y, lw.addr(t)},
                              {isa::f_V_FILL::count, lw.u32(t.numel(), "count")},
                              {isa::f_V_FILL::value, Lowering::f32(0.0f)}}),
              {}, {t});
}

// Rounds the FP32 accumulator `acc` into the BF16 tensor y of as many elements.
inline void convert_to_bf16(Lowering& lw, const TensorRef& acc, const TensorRef& y) {
  lw.emit_vec(Lowering::insn(isa::OP_V_CONVERT, 0,
                             {{isa::f_V_CONVERT::x, lw.addr(acc)},
                              {isa::f_V_CONVERT::y, lw.addr(y)},
                              {isa::f_V_CONVERT::count, lw.u32(y.numel(), "count")}}),
              {acc}, {y});
}

}  // namespace sat::compiler
