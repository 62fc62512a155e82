#include "cpu/dnnl_conv.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <vector>

#include "sat/cpu_kernels.hpp"

namespace sat::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& engine() {
  static dnnl::engine e = [] {
    dnnl_follow_simd_env();
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return e;
}

// A user buffer in its plain layout, and the primitive's own layout of it when they differ: the
// primitive is created with format `any`, so that oneDNN picks the blocked layout its fastest
// kernels read, and the edges reorder.
struct Operand {
  memory::desc user_desc, prim_desc;
  memory prim;                        // the primitive's buffer where the layouts differ
  dnnl::reorder to_prim, to_user;
  bool same = true;

  Operand() = default;
  Operand(const memory::desc& user, const memory::desc& prim_d, bool in, bool out)
      : user_desc(user), prim_desc(prim_d), same(user == prim_d) {
    if (same) return;
    prim = memory(prim_d, engine());
    memory u(user, engine(), DNNL_MEMORY_NONE);
    if (in) to_prim = dnnl::reorder(u, prim);
    if (out) to_user = dnnl::reorder(prim, u);
  }
  // The memory the primitive reads: the user's buffer itself, or its reordered copy.
  memory in(dnnl::stream& s, const float* user) {
    memory u(user_desc, engine(), const_cast<float*>(user));
    if (same) return u;
    to_prim.execute(s, u, prim);
    return prim;
  }
  memory out(float* user) { return same ? memory(user_desc, engine(), user) : prim; }
  void back(dnnl::stream& s, float* user) {
    if (same) return;
    memory u(user_desc, engine(), user);
    to_user.execute(s, prim, u);
  }
};

}  // namespace

struct DnnlConv::Plan {
  int64_t nb = 0;
  dnnl::stream stream{engine()};
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  Operand f_src, f_w, f_dst;          // forward
  Operand d_diff_dst, d_w, d_diff_src;  // backward data
  memory bias;
};

void dnnl_follow_simd_env() {
  // The path SAT_SIMD chose, as the CPU kernels parsed and checked it (simd_path()), not the
  // variable read a second time; a path forced later (force_simd_path) leaves oneDNN as it is.
  static const bool applied = [] {
    if (std::getenv("SAT_SIMD") == nullptr || std::getenv("ONEDNN_MAX_CPU_ISA") || std::getenv("DNNL_MAX_CPU_ISA"))
      return false;
    const std::string path = simd_path();
    if (path == "avx2") return dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2) == dnnl_success;
    if (path == "portable") return dnnl_set_max_cpu_isa(dnnl_cpu_isa_sse41) == dnnl_success;
    return false;
  }();
  (void)applied;
}

const char* dnnl_isa() {
  dnnl_follow_simd_env();
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

DnnlConv::DnnlConv(const ConvGeometry& g, int64_t cout, bool bias) : g_(g), cout_(cout), bias_(bias) {}
DnnlConv::~DnnlConv() = default;

DnnlConv::Plan& DnnlConv::plan(int64_t nb) {
  for (auto& q : plans_)
    if (q->nb == nb) return *q;
  if (plans_.size() >= 4) plans_.erase(plans_.begin());   // training uses two or three sizes
  auto p = std::make_unique<Plan>();
  p->nb = nb;
  const memory::dims src{nb, g_.cin, g_.h, g_.w}, wei{cout_, g_.cin, g_.k, g_.k},
      dst{nb, cout_, g_.oh, g_.ow}, bia{cout_}, strides{g_.s, g_.s}, pad{g_.p, g_.p};
  const memory::desc src_any(src, dt::f32, tag::any), wei_any(wei, dt::f32, tag::any),
      dst_any(dst, dt::f32, tag::any), bia_d(bia, dt::f32, tag::x);
  const memory::desc src_user(src, dt::f32, tag::nchw), wei_user(wei, dt::f32, tag::oihw),
      dst_user(dst, dt::f32, tag::nchw);
  const auto algo = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::primitive_desc fpd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, src_any, wei_any,
                                      bias_ ? bia_d : memory::desc(), dst_any, strides, pad, pad),
      engine());
  const dnnl::convolution_backward_data::primitive_desc dpd(
      dnnl::convolution_backward_data::desc(algo, src_any, wei_any, dst_any, strides, pad, pad),
      engine(), fpd);
  p->fwd = dnnl::convolution_forward(fpd);
  p->bwd_data = dnnl::convolution_backward_data(dpd);
  p->f_src = Operand(src_user, fpd.src_desc(), true, false);
  p->f_w = Operand(wei_user, fpd.weights_desc(), true, false);
  p->f_dst = Operand(dst_user, fpd.dst_desc(), false, true);
  p->d_diff_dst = Operand(dst_user, dpd.diff_dst_desc(), true, false);
  p->d_w = Operand(wei_user, dpd.weights_desc(), true, false);
  p->d_diff_src = Operand(src_user, dpd.diff_src_desc(), false, true);
  if (bias_) p->bias = memory(bia_d, engine(), DNNL_MEMORY_NONE);
  plans_.push_back(std::move(p));
  return *plans_.back();
}

void DnnlConv::forward(const float* x, int64_t nb, const float* w, const float* bias, float* y) {
  Plan& p = plan(nb);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, p.f_src.in(p.stream, x)},
                                       {DNNL_ARG_WEIGHTS, p.f_w.in(p.stream, w)},
                                       {DNNL_ARG_DST, p.f_dst.out(y)}};
  if (bias_) {
    p.bias.set_data_handle(const_cast<float*>(bias));
    args.emplace(DNNL_ARG_BIAS, p.bias);
  }
  p.fwd.execute(p.stream, args);
  p.f_dst.back(p.stream, y);
  p.stream.wait();
}

void DnnlConv::backward_data(const float* dy, int64_t nb, const float* w, float* dx) {
  Plan& p = plan(nb);
  p.bwd_data.execute(p.stream, {{DNNL_ARG_DIFF_DST, p.d_diff_dst.in(p.stream, dy)},
                                {DNNL_ARG_WEIGHTS, p.d_w.in(p.stream, w)},
                                {DNNL_ARG_DIFF_SRC, p.d_diff_src.out(dx)}});
  p.d_diff_src.back(p.stream, dx);
  p.stream.wait();
}

}  // namespace sat::cpu
