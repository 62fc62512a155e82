// The `hls` backend: trains by running the offline scheduler's instruction stream on the HLS kernel
// compiled for the CPU (C-simulation). The host keeps the model; before each run it writes the
// parameters, the momentum and the current weight forms into the kernel's DDR image at the
// addresses of the program's memory map, and after a training run it reads them back, so the host
// model mirrors the accelerator after every step (checkpoints, evaluation on another backend and
// the mask comparisons of the tests read it).
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

#include "backend_factories.hpp"
#include "sat/compiler.hpp"
#include "sat/error.hpp"
#include "sat_hls/kernel.hpp"
#include "sat/ops.hpp"

namespace sat {

namespace {

// The four DDR channel buffers of one program, in 2-byte words.
struct DdrImage {
  std::array<std::vector<uint16_t>, arch::kDdrChannels> ch;

  explicit DdrImage(const MemoryMap& map) {
    for (int c = 0; c < arch::kDdrChannels; ++c) ch[c].assign((map.channel_bytes[c] + 1) / 2, 0);
  }
  uint8_t* bytes(const Region& r) { return reinterpret_cast<uint8_t*>(ch[r.channel].data()) + r.offset; }
};

// A compiled program with its DDR image.
struct Loaded {
  Program prog;
  DdrImage ddr;
  explicit Loaded(Program p) : prog(std::move(p)), ddr(prog.map) {}

  const Region& region(int index) const { return prog.map.regions.at(static_cast<size_t>(index)); }
  uint8_t* at(int index) { return ddr.bytes(region(index)); }

  void write(int index, const void* data, size_t bytes) {
    if (index < 0) return;
    const Region& r = region(index);
    if (bytes > r.bytes) {
      throw Error("hls backend: " + std::to_string(bytes) + " bytes do not fit region '" + r.name +
                  "' of " + std::to_string(r.bytes) + " bytes");
    }
    std::memcpy(at(index), data, bytes);
  }
  void read(int index, void* data, size_t bytes) {
    const Region& r = region(index);
    if (bytes > r.bytes) {
      throw Error("hls backend: reading " + std::to_string(bytes) + " bytes from region '" + r.name +
                  "' of " + std::to_string(r.bytes) + " bytes");
    }
    std::memcpy(data, at(index), bytes);
  }

  void run() {
    uint16_t* ptr[arch::kDdrChannels];
    uint64_t words[arch::kDdrChannels];
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      ptr[c] = ddr.ch[c].data();
      words[c] = ddr.ch[c].size();
    }
    const auto st = hls::run_kernel(prog.insns.data(), prog.insns.size(), ptr, words);
    if (st[0] != isa::STATUS_OK) throw Error("hls backend: the kernel stopped: " + hls::status_message(st));
    if (st[3] != 0) {
      throw Error("training diverged: the update produced " + std::to_string(st[3]) +
                  " non-finite parameter values (lower the learning rate)");
    }
  }
};

std::vector<uint16_t> to_bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16_bits(v[i]);
  return out;
}
std::vector<float> from_bf16_bits(const uint16_t* p, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = bf16_bits_to_f32(p[i]);
  return out;
}

// Host -> device: parameters, momentum and the weight forms the program reads.
void upload_state(Loaded& l, bool strict = true) {
  for (const ParamBinding& b : l.prog.params) {
    const Param& p = *b.param;
    l.write(b.value, p.value.data(), p.value.size() * sizeof(float));
    if (b.momentum >= 0 && !p.momentum.empty()) {
      l.write(b.momentum, p.momentum.data(), p.momentum.size() * sizeof(float));
    }
  }
  for (const WeightBinding& b : l.prog.weights) {
    const SparseWeight& sw = *b.weight;
    auto put_form = [&](const NMCompressed& c, int values, int index, const char* which) {
      if (values < 0 && index < 0) return;
      if (c.values.empty()) {
        if (!strict) return;   // a gemm problem carries only the form its pass reads
        throw Error("hls backend: weight '" + sw.weight->name + "' has no " + which +
                    " form to upload (Backend::prepare was not called for this method)");
      }
      const std::vector<bf16> v = nm_values_bf16(c);
      l.write(values, v.data(), v.size() * sizeof(bf16));
      const std::vector<uint8_t> idx = nm_pack_indices(c.index);
      l.write(index, idx.data(), idx.size());
    };
    put_form(sw.fwd, b.fwd_values, b.fwd_index, "W_F");
    put_form(sw.bwd, b.bwd_values, b.bwd_index, "W_B");
    if (b.dense >= 0 && (strict || !sw.dense.empty())) {
      if (sw.dense.empty()) {
        throw Error("hls backend: weight '" + sw.weight->name +
                    "' has no dense form to upload (Backend::prepare was not called for this method)");
      }
      const std::vector<uint16_t> d = to_bf16_bits(sw.dense);
      l.write(b.dense, d.data(), d.size() * 2);
    }
  }
}

// Device -> host after a training run: the updated parameters, momentum, BN running statistics
// and the weight forms the kernel's pre-generation unit wrote.
void download_state(Loaded& l) {
  for (const ParamBinding& b : l.prog.params) {
    Param& p = *b.param;
    l.read(b.value, p.value.data(), p.value.size() * sizeof(float));
    if (b.momentum >= 0 && !p.momentum.empty()) {
      l.read(b.momentum, p.momentum.data(), p.momentum.size() * sizeof(float));
    }
  }
  for (const WeightBinding& b : l.prog.weights) {
    SparseWeight& sw = *b.weight;
    auto get_form = [&](NMCompressed& c, int values, int index) {
      if (values < 0 || index < 0) return;
      const size_t n = c.values.size();
      const auto* v = reinterpret_cast<const uint16_t*>(l.at(values));
      c.values = from_bf16_bits(v, n);
      std::vector<uint8_t> packed((n + 1) / 2);
      l.read(index, packed.data(), packed.size());
      c.index = nm_unpack_indices(packed, static_cast<int64_t>(n));
    };
    get_form(sw.fwd, b.fwd_values, b.fwd_index);
    if (b.fwd_values >= 0) sw.mask_f = nm_mask_of(sw.fwd);
    get_form(sw.bwd, b.bwd_values, b.bwd_index);
    if (b.dense >= 0 && !sw.dense.empty()) {
      sw.dense = from_bf16_bits(reinterpret_cast<const uint16_t*>(l.at(b.dense)), sw.dense.size());
    }
  }
}

// The batch as the kernel reads it: BF16, channels last ([B][C][H][W] -> [B][H][W][C]).
void write_batch(Loaded& l, const Tensor& x, const std::vector<int>& y, int classes) {
  const int64_t b = x.dim(0);
  if (b != l.prog.options.batch) {
    throw Error("hls backend: batch of " + std::to_string(b) + " for a program compiled for " +
                std::to_string(l.prog.options.batch));
  }
  if (static_cast<int64_t>(y.size()) != b) {
    throw Error("hls backend: " + std::to_string(y.size()) + " labels for a batch of " + std::to_string(b));
  }
  const Tensor xb = x.dtype() == DType::bf16 ? x : Tensor::from_f32(x.shape(), x.to_f32());
  const bf16* src = xb.bf16_data();
  std::vector<bf16> nhwc(static_cast<size_t>(xb.numel()));
  if (x.rank() == 4) {
    const int64_t c = x.dim(1), hw = x.dim(2) * x.dim(3);
    for (int64_t s = 0; s < b; ++s)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < hw; ++i) nhwc[(s * hw + i) * c + ch] = src[(s * c + ch) * hw + i];
  } else {
    std::copy(src, src + xb.numel(), nhwc.begin());
  }
  l.write(l.prog.input, nhwc.data(), nhwc.size() * sizeof(bf16));
  std::vector<int32_t> labels(y.begin(), y.end());
  for (int32_t v : labels) {
    if (v < 0 || v >= classes) {
      throw Error("hls backend: label " + std::to_string(v) + " outside [0, " + std::to_string(classes) + ")");
    }
  }
  l.write(l.prog.labels, labels.data(), labels.size() * sizeof(int32_t));
}

StepResult read_result(Loaded& l) {
  uint32_t words[2];
  l.read(l.prog.result, words, sizeof words);
  StepResult r;
  std::memcpy(&r.loss, &words[0], sizeof(float));
  r.correct = static_cast<int>(words[1]);
  return r;
}

class HlsBackend final : public Backend {
 public:
  std::string name() const override { return "hls"; }

  void prepare(Model& model, Method method) override {
    model.regenerate(method);
    programs_.clear();   // a new model or method: streams are compiled again on first use
    model_ = &model;
  }

  StepResult train_step(Model& model, const Tensor& x, const std::vector<int>& y,
                        const UpdateConfig& cfg) override {
    Loaded& l = program(model, static_cast<int>(x.dim(0)), cfg.method, true);
    upload_state(l);
    const float hyper[4] = {static_cast<float>(cfg.lr), static_cast<float>(cfg.momentum),
                            static_cast<float>(cfg.weight_decay), static_cast<float>(cfg.srste_lambda)};
    l.write(l.prog.hyper, hyper, sizeof hyper);
    write_batch(l, x, y, model.classes);
    l.run();
    download_state(l);
    return read_result(l);
  }

  StepResult evaluate(Model& model, const Tensor& x, const std::vector<int>& y,
                      Method method) override {
    Loaded& l = program(model, static_cast<int>(x.dim(0)), method, false);
    upload_state(l);
    write_batch(l, x, y, model.classes);
    l.run();
    return read_result(l);
  }

  std::vector<float> gemm(GemmMode mode, NM nm, const std::vector<float>& a, Shape a_shape,
                          const std::vector<float>& b, Shape b_shape, Shape* c_shape) override {
    const std::unique_ptr<GemmProblem> pr = make_gemm_problem(mode, nm, a, a_shape, b, b_shape);
    GemmProgram gp = compile_gemm(*pr);
    Loaded l(std::move(gp.program));
    upload_state(l, false);
    const std::vector<uint16_t> abits = to_bf16_bits(a);
    l.write(gp.a, abits.data(), abits.size() * 2);
    if (gp.b >= 0) {
      const std::vector<uint16_t> bbits = to_bf16_bits(b);
      l.write(gp.b, bbits.data(), bbits.size() * 2);
    }
    l.run();
    const int64_t rows = mode == GemmMode::wu ? pr->cout : pr->batch;
    const int64_t cols = mode == GemmMode::ff ? pr->cout : pr->k;
    std::vector<float> c(static_cast<size_t>(rows * cols));
    l.read(gp.c, c.data(), c.size() * sizeof(float));
    *c_shape = {rows, cols};
    return c;
  }

 private:
  Loaded& program(Model& model, int batch, Method method, bool training) {
    if (&model != model_) {          // a model the backend was not prepared with
      programs_.clear();
      model_ = &model;
    }
    const auto key = std::make_tuple(batch, static_cast<int>(method), training);
    auto it = programs_.find(key);
    if (it == programs_.end()) {
      ScheduleOptions opt;
      opt.batch = batch;
      opt.method = method;
      opt.training = training;
      it = programs_.emplace(key, std::make_unique<Loaded>(compile(model, opt))).first;
    }
    return *it->second;
  }

  Model* model_ = nullptr;
  std::map<std::tuple<int, int, bool>, std::unique_ptr<Loaded>> programs_;
};

}  // namespace

std::unique_ptr<Backend> make_hls_backend() { return std::make_unique<HlsBackend>(); }

}  // namespace sat
