// ProgramImage and the transfers between the host model and a program's memory map
// (sat/accelerator.hpp). Every device shares these, so the layout the kernel reads (BF16 values,
// packed indices, channels-last batches) is written in one place.
#include <cstdlib>
#include <cstring>

#include "file_layout.hpp"
#include "sat/accelerator.hpp"
#include "sat/arch/interface.hpp"
#include "sat/error.hpp"
#include "sat/nm.hpp"

namespace sat {

namespace {

std::vector<uint16_t> to_bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16_bits(v[i]);
  return out;
}

std::vector<float> from_bf16_bits(const std::vector<uint16_t>& bits) {
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = bf16_bits_to_f32(bits[i]);
  return out;
}

// The [cols][rows] transpose of a row-major [rows][cols] matrix (W -> W^T for the BP copy).
std::vector<float> transposed(const std::vector<float>& m, int64_t rows, int64_t cols) {
  std::vector<float> out(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[static_cast<size_t>(c * rows + r)] = m[static_cast<size_t>(r * cols + c)];
  return out;
}

}  // namespace

ProgramImage::ProgramImage(Device& device, Program program) : device_(&device), prog_(std::move(program)) {
  ChannelBytes bytes{};
  for (int c = 0; c < arch::kDdrChannels; ++c) bytes[c] = prog_.map.channel_bytes[c];
  mem_ = device_->allocate(bytes);
  stream_ = device_->load(prog_.insns);
  if (!prog_.insns_b.empty()) stream_b_ = device_->load(prog_.insns_b);
}

int ProgramImage::batch_slots() const { return stream_b_ ? 2 : 1; }

DeviceStream& ProgramImage::step_stream(int slot) {
  if (slot == 0) return *stream_;
  if (slot == 1 && stream_b_) return *stream_b_;
  throw Error("device '" + device_->name() + "': batch slot " + std::to_string(slot) + " does not exist (the program has " +
              std::to_string(batch_slots()) + ")");
}

const Region& ProgramImage::region(int index) const {
  if (index < 0 || static_cast<size_t>(index) >= prog_.map.regions.size()) {
    throw Error("device '" + device_->name() + "': region index " + std::to_string(index) +
                " is not in the program's memory map (" + std::to_string(prog_.map.regions.size()) + " regions)");
  }
  return prog_.map.regions[static_cast<size_t>(index)];
}

void ProgramImage::write(int index, const void* data, uint64_t bytes, uint64_t offset) {
  if (index < 0) return;
  const Region& r = region(index);
  if (offset > r.bytes || bytes > r.bytes - offset) {
    throw Error("device '" + device_->name() + "': " + std::to_string(bytes) + " bytes at offset " +
                std::to_string(offset) + " do not fit region '" + r.name + "' of " + std::to_string(r.bytes) + " bytes");
  }
  mem_->write(static_cast<int>(r.channel), r.offset + offset, data, bytes);
}

void ProgramImage::read(int index, void* data, uint64_t bytes, uint64_t offset) {
  const Region& r = region(index);
  if (offset > r.bytes || bytes > r.bytes - offset) {
    throw Error("device '" + device_->name() + "': reading " + std::to_string(bytes) + " bytes at offset " +
                std::to_string(offset) + " from region '" + r.name + "' of " + std::to_string(r.bytes) + " bytes");
  }
  mem_->read(static_cast<int>(r.channel), r.offset + offset, data, bytes);
}

std::vector<uint8_t> ProgramImage::read_region(int index) {
  std::vector<uint8_t> out(region(index).bytes);
  read(index, out.data(), out.size());
  return out;
}

RunResult ProgramImage::run(std::chrono::milliseconds timeout, int slot) {
  return device_->run(step_stream(slot), *mem_, timeout);
}

std::unique_ptr<DeviceRun> ProgramImage::start(std::chrono::milliseconds timeout, int slot) {
  return device_->start(step_stream(slot), *mem_, timeout);
}

RunResult ProgramImage::run_once_loaded(std::unique_ptr<DeviceStream>& stream, const std::vector<isa::Insn>& insns,
                                        const std::string& missing, std::chrono::milliseconds timeout) {
  if (insns.empty()) throw Error("device '" + device_->name() + "': the program has no " + missing);
  if (!stream) stream = device_->load(insns);
  return device_->run(*stream, *mem_, timeout);
}

RunResult ProgramImage::run_prologue(std::chrono::milliseconds timeout) {
  return run_once_loaded(prologue_, prog_.prologue, "prologue", timeout);
}

RunResult ProgramImage::run_update(std::chrono::milliseconds timeout) {
  return run_once_loaded(update_, prog_.update, "update stream (compiled without update_apart)", timeout);
}

void check_run(const Device& device, const RunResult& r, const std::string& what) {
  const std::string who = "device '" + device.name() + "'";
  if (r.timed_out) throw Error(who + ": " + what + ": " + r.message());
  if (r.status[isa::STW_INTERFACE] != arch::kInterfaceVersion) {
    throw Error(who + ": " + what + ": the kernel reports interface version " + file_layout::hex32(r.status[isa::STW_INTERFACE]) +
                ", but this host was built for " + file_layout::hex32(arch::kInterfaceVersion) +
                " (arch/include/sat/arch/interface.hpp): rebuild the kernel (or the bitstream) and the host from one tree");
  }
  if (r.status[isa::STW_CODE] != isa::STATUS_OK) throw Error(who + ": " + what + ": the kernel stopped: " + r.message());
  if (r.status[isa::STW_NONFINITE] != 0) {
    throw Error("training diverged: the update produced " + std::to_string(r.status[isa::STW_NONFINITE]) +
                " non-finite parameter values (lower the learning rate)");
  }
}

void upload_state(ProgramImage& im, bool strict) {
  const Program& prog = im.program();
  const std::string who = "device '" + im.device().name() + "'";
  for (const ParamBinding& b : prog.params) {
    const Param& p = *b.param;
    im.write(b.value, p.value.data(), p.value.size() * sizeof(float));
    if (b.momentum >= 0 && !p.momentum.empty()) im.write(b.momentum, p.momentum.data(), p.momentum.size() * sizeof(float));
  }
  for (const WeightBinding& b : prog.weights) {
    const SparseWeight& sw = *b.weight;
    auto put_form = [&](const NMCompressed& c, int values, int index, const char* which) {
      if (values < 0 && index < 0) return;
      if (c.values.empty()) {
        if (!strict) return;   // a gemm problem carries only the form its pass reads
        throw Error(who + ": weight '" + sw.weight->name + "' has no " + which +
                    " form to upload (Backend::prepare was not called for this method)");
      }
      const std::vector<bf16> v = nm_values_bf16(c);
      im.write(values, v.data(), v.size() * sizeof(bf16));
      const std::vector<uint8_t> idx = nm_pack_indices(c.index);
      im.write(index, idx.data(), idx.size());
    };
    put_form(sw.fwd, b.fwd_values, b.fwd_index, "W_F");
    put_form(sw.bwd, b.bwd_values, b.bwd_index, "W_B");
    const bool any_dense = b.dense >= 0 || b.dense_t >= 0;
    if (any_dense && (strict || !sw.dense.empty())) {
      if (sw.dense.empty()) {
        throw Error(who + ": weight '" + sw.weight->name +
                    "' has no dense form to upload (Backend::prepare was not called for this method)");
      }
      if (b.dense >= 0) write_bf16(im, b.dense, sw.dense);
      if (b.dense_t >= 0) write_bf16(im, b.dense_t, transposed(sw.dense, sw.cout, sw.k));
    }
  }
}

void download_state(ProgramImage& im) {
  const Program& prog = im.program();
  for (const ParamBinding& b : prog.params) {
    Param& p = *b.param;
    im.read(b.value, p.value.data(), p.value.size() * sizeof(float));
    if (b.momentum >= 0 && !p.momentum.empty()) im.read(b.momentum, p.momentum.data(), p.momentum.size() * sizeof(float));
  }
  for (const WeightBinding& b : prog.weights) {
    SparseWeight& sw = *b.weight;
    auto get_form = [&](NMCompressed& c, int values, int index) {
      if (values < 0 || index < 0) return;
      const size_t n = c.values.size();
      std::vector<uint16_t> bits(n);
      im.read(values, bits.data(), n * 2);
      c.values = from_bf16_bits(bits);
      std::vector<uint8_t> packed((n + 1) / 2);
      im.read(index, packed.data(), packed.size());
      c.index = nm_unpack_indices(packed, static_cast<int64_t>(n));
    };
    get_form(sw.fwd, b.fwd_values, b.fwd_index);
    if (b.fwd_values >= 0) sw.mask_f = nm_mask_of(sw.fwd);
    get_form(sw.bwd, b.bwd_values, b.bwd_index);
    if ((b.dense >= 0 || b.dense_t >= 0) && !sw.dense.empty()) {
      std::vector<uint16_t> bits(sw.dense.size());
      im.read(b.dense >= 0 ? b.dense : b.dense_t, bits.data(), bits.size() * 2);
      sw.dense = from_bf16_bits(bits);
      if (b.dense < 0) sw.dense = transposed(sw.dense, sw.k, sw.cout);   // held as W^T [k][cout]
    }
  }
}

void download_gradients(ProgramImage& im) {
  for (const ParamBinding& b : im.program().params) {
    Param& p = *b.param;
    if (p.trainable && b.grad >= 0) {
      p.grad.resize(p.value.size());
      im.read(b.grad, p.grad.data(), p.grad.size() * sizeof(float));
    } else if (!p.trainable) {
      im.read(b.value, p.value.data(), p.value.size() * sizeof(float));
    }
  }
}

void upload_gradients(ProgramImage& im) {
  const std::string who = "device '" + im.device().name() + "'";
  for (const ParamBinding& b : im.program().params) {
    const Param& p = *b.param;
    if (p.trainable && b.grad >= 0) {
      if (p.grad.size() != p.value.size()) {
        throw Error(who + ": parameter '" + p.name + "' has " + std::to_string(p.grad.size()) +
                    " gradient values for " + std::to_string(p.value.size()) + " parameters");
      }
      im.write(b.grad, p.grad.data(), p.grad.size() * sizeof(float));
    } else if (!p.trainable) {
      im.write(b.value, p.value.data(), p.value.size() * sizeof(float));
    }
  }
}

void write_batch(ProgramImage& im, const Tensor& x, const std::vector<int>& y, int classes, int slot) {
  const Program& prog = im.program();
  const std::string who = "device '" + im.device().name() + "'";
  if (slot < 0 || slot >= im.batch_slots()) {
    throw Error(who + ": batch slot " + std::to_string(slot) + " does not exist (the program has " +
                std::to_string(im.batch_slots()) + ")");
  }
  const int64_t b = x.dim(0);
  if (b != prog.options.batch) {
    throw Error(who + ": batch of " + std::to_string(b) + " for a program compiled for " +
                std::to_string(prog.options.batch));
  }
  if (static_cast<int64_t>(y.size()) != b) {
    throw Error(who + ": " + std::to_string(y.size()) + " labels for a batch of " + std::to_string(b));
  }
  for (int v : y) {
    if (v < 0 || v >= classes) {
      throw Error(who + ": label " + std::to_string(v) + " outside [0, " + std::to_string(classes) + ")");
    }
  }
  const Tensor xb = x.dtype() == DType::bf16 ? x : Tensor::from_f32(x.shape(), x.to_f32());
  const bf16* src = xb.bf16_data();
  std::vector<bf16> nhwc(static_cast<size_t>(xb.numel()));
  if (x.rank() == 4) {   // [B][C][H][W] -> [B][H][W][C]
    const int64_t c = x.dim(1), hw = x.dim(2) * x.dim(3);
    for (int64_t s = 0; s < b; ++s)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < hw; ++i) nhwc[(s * hw + i) * c + ch] = src[(s * c + ch) * hw + i];
  } else {
    std::copy(src, src + xb.numel(), nhwc.begin());
  }
  im.write(slot == 0 ? prog.input : prog.input_b, nhwc.data(), nhwc.size() * sizeof(bf16));
  const std::vector<int32_t> labels(y.begin(), y.end());
  im.write(slot == 0 ? prog.labels : prog.labels_b, labels.data(), labels.size() * sizeof(int32_t));
}

void write_bf16(ProgramImage& im, int index, const std::vector<float>& values) {
  const std::vector<uint16_t> bits = to_bf16_bits(values);
  im.write(index, bits.data(), bits.size() * 2);
}

void write_hyper(ProgramImage& im, const UpdateConfig& cfg) {
  const float hyper[4] = {static_cast<float>(cfg.lr), static_cast<float>(cfg.momentum),
                          static_cast<float>(cfg.weight_decay), static_cast<float>(cfg.srste_lambda)};
  im.write(im.program().hyper, hyper, sizeof hyper);
}

StepResult read_result(ProgramImage& im) {
  uint32_t words[2];
  im.read(im.program().result, words, sizeof words);
  StepResult r;
  std::memcpy(&r.loss, &words[0], sizeof(float));
  r.correct = static_cast<int>(words[1]);
  return r;
}

std::chrono::milliseconds device_run_timeout() {
  const char* env = std::getenv("SAT_DEVICE_TIMEOUT_S");
  if (!env || !*env) return std::chrono::milliseconds(3600 * 1000);
  char* end = nullptr;
  const double s = std::strtod(env, &end);
  if (end == env || *end != '\0' || !(s >= 0) || s > 1e9) {
    throw Error("SAT_DEVICE_TIMEOUT_S='" + std::string(env) + "' is not a number of seconds >= 0");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

}  // namespace sat
