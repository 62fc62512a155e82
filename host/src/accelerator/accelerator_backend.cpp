// The one training backend over any Device (sat/accelerator.hpp). It compiles the model once per
// (batch, method, training or inference) with the offline scheduler, keeps one ProgramImage per
// compiled program, and keeps the model's state (parameters, momentum, weight forms) resident on
// the device: a step writes only the batch and the hyper-parameters and reads only the result.
// The host model is brought up to date at Backend::sync, or when another program (an evaluation
// batch size, inference) needs the state a training program holds.
#include <cstring>
#include <map>
#include <tuple>

#include "sat/accelerator.hpp"
#include "sat/error.hpp"
#include "sat/ops.hpp"

namespace sat {

namespace {

class AcceleratorBackend final : public Backend {
 public:
  explicit AcceleratorBackend(std::unique_ptr<Device> device) : device_(std::move(device)) {}

  std::string name() const override { return device_->name(); }

  void prepare(Model& model, Method method) override {
    if (&model == model_) sync(model);   // the device may hold newer state than the host
    model.regenerate(method);
    images_.clear();   // a new model or method: streams are compiled again on first use
    staged_ = Staged{};
    split_ = last_split_ = nullptr;
    model_ = &model;
    latest_ = host_ = 1;   // the host model is the state
    live_ = nullptr;
  }

  // Step i of a program reads batch slot i % 2. Its batch is there already when the previous step
  // uploaded it during its run (prefetch); otherwise it is written now. The hyper-parameters are
  // written before the start: the running step reads them. After the start, the announced next
  // batch goes into the other slot, which this step does not read, while the device runs.
  StepResult train_step(Model& model, const Tensor& x, const std::vector<int>& y,
                        const UpdateConfig& cfg) override {
    Image& im = image(model, static_cast<int>(x.dim(0)), cfg.method, true);
    make_current(im);
    write_hyper(*im.image, cfg);
    const int slot = static_cast<int>(im.steps % static_cast<uint64_t>(im.image->batch_slots()));
    if (!staged_holds(im, slot, x, y)) write_batch(*im.image, x, y, model.classes, slot);
    staged_ = Staged{};
    RunResult r;
    {
      std::unique_ptr<DeviceRun> run = im.image->start(device_run_timeout(), slot);
      stage_next(im, (slot + 1) % im.image->batch_slots(), model.classes);
      r = run->wait();
    }
    check_run(*device_, counted(r), "training step");
    ++im.steps;
    im.version = ++latest_;
    live_ = &im;
    return read_result(*im.image);
  }

  // Data-parallel training (sat/distributed.hpp): a program compiled with its update apart. Its step
  // stream runs FF, loss, BP and WU; the gradients and the running statistics come back to the
  // host, which sums them over the ranks; apply_update writes them back and runs the update stream
  // (SGD and pre-generation on the device, as in the whole step).
  bool splits_step() const override { return true; }

  StepResult forward_backward(Model& model, const Tensor& x, const std::vector<int>& y, Method method) override {
    Image& im = image(model, static_cast<int>(x.dim(0)), method, true, true);
    make_current(im);
    write_batch(*im.image, x, y, model.classes);
    check_run(*device_, counted(im.image->run(device_run_timeout())), "training step (forward and backward)");
    im.version = ++latest_;
    live_ = &im;
    split_ = last_split_ = &im;
    download_gradients(*im.image);
    return read_result(*im.image);
  }

  // Applies the host Params' gradients, as the cpu backend does. A rank whose shard of a short last
  // batch is empty runs no forward_backward (its gradients are the host's zeros): the update then
  // runs on the last split program, or on one compiled for a batch of 1.
  void apply_update(Model& model, const UpdateConfig& cfg) override {
    Image* pending = split_ && &model == model_ ? split_ : nullptr;
    split_ = nullptr;
    if (!pending) pending = last_split_ && &model == model_ ? last_split_ : &image(model, 1, cfg.method, true, true);
    if (pending->version != latest_) {
      // make_current may bring the host up to date from the device first, which would overwrite
      // the running statistics the ranks agreed on (rank 0's) with this rank's own.
      std::vector<std::vector<float>> agreed;
      for (const Param* p : model.params())
        if (!p->trainable) agreed.push_back(p->value);
      make_current(*pending);
      size_t i = 0;
      for (Param* p : model.params())
        if (!p->trainable) p->value = agreed[i++];
    }
    Image& im = *pending;
    upload_gradients(*im.image);
    write_hyper(*im.image, cfg);
    check_run(*device_, counted(im.image->run_update(device_run_timeout())), "training step (update)");
    im.version = ++latest_;
    live_ = &im;
  }

  void prefetch(const Tensor& x, const std::vector<int>& y) override {
    next_x_ = &x;
    next_y_ = &y;
  }

  StepResult evaluate(Model& model, const Tensor& x, const std::vector<int>& y, Method method) override {
    Image& im = image(model, static_cast<int>(x.dim(0)), method, false);
    make_current(im);
    write_batch(*im.image, x, y, model.classes);
    check_run(*device_, counted(im.image->run(device_run_timeout())), "evaluation");
    return read_result(*im.image);
  }

  void sync(Model& model) override {
    if (&model != model_ || host_ == latest_ || !live_) return;
    download_state(*live_->image);
    host_ = latest_;
  }

  std::vector<float> gemm(GemmMode mode, NM nm, const std::vector<float>& a, Shape a_shape,
                          const std::vector<float>& b, Shape b_shape, Shape* c_shape) override {
    const std::unique_ptr<GemmProblem> pr = make_gemm_problem(mode, nm, a, a_shape, b, b_shape);
    GemmProgram gp = compile_gemm(*pr);
    ProgramImage im(*device_, std::move(gp.program));
    upload_state(im, false);
    write_bf16(im, gp.a, a);
    if (gp.b >= 0) write_bf16(im, gp.b, b);
    check_run(*device_, counted(im.run(device_run_timeout())), std::string("gemm ") + gemm_mode_name(mode));
    const int64_t rows = mode == GemmMode::wu ? pr->cout : pr->batch;
    const int64_t cols = mode == GemmMode::ff ? pr->cout : pr->k;
    std::vector<float> c(static_cast<size_t>(rows * cols));
    im.read(gp.c, c.data(), c.size() * sizeof(float));
    *c_shape = {rows, cols};
    return c;
  }

 std::optional<DeviceCounters> last_counters() const override { return last_counters_; }

 private:
  const RunResult& counted(const RunResult& r) {
    last_counters_ = r.counters;
    return r;
  }
  std::optional<DeviceCounters> last_counters_;

  struct Image {
    std::unique_ptr<ProgramImage> image;
    uint64_t version = 0;   // the state version its memory holds (0: none yet)
    uint64_t steps = 0;     // training steps run: the next one reads batch slot steps % 2
  };

  // The batch written ahead into a slot, and a copy of what it was made from, so that the step
  // that reads the slot can tell it was given the same batch.
  struct Staged {
    const Image* image = nullptr;
    int slot = -1;
    Tensor x;
    std::vector<int> y;
  };
  Staged staged_;
  const Tensor* next_x_ = nullptr;   // the announced next batch (prefetch), until the next step
  const std::vector<int>* next_y_ = nullptr;

  static bool same_batch(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
    const size_t n = static_cast<size_t>(a.numel());
    return a.dtype() == DType::bf16 ? std::memcmp(a.bf16_data(), b.bf16_data(), n * sizeof(bf16)) == 0
                                    : std::memcmp(a.f32_data(), b.f32_data(), n * sizeof(float)) == 0;
  }
  bool staged_holds(const Image& im, int slot, const Tensor& x, const std::vector<int>& y) const {
    return staged_.image == &im && staged_.slot == slot && staged_.y == y && same_batch(staged_.x, x);
  }
  // Writes the announced batch into `slot` of `im` while the current step runs on the device. A
  // batch of another size belongs to another program and is left for its own step, as is one the
  // checks of write_batch refuse: that step writes it again and reports the error as its own.
  void stage_next(Image& im, int slot, int classes) {
    const Tensor* x = next_x_;
    const std::vector<int>* y = next_y_;
    next_x_ = nullptr;
    next_y_ = nullptr;
    if (!x || !y || im.image->batch_slots() < 2 || x->rank() < 1 || x->dim(0) != im.image->program().options.batch) return;
    try {
      write_batch(*im.image, *x, *y, classes, slot);
    } catch (const Error&) {
      return;
    }
    staged_ = Staged{&im, slot, *x, *y};
  }

  // Gives `im` the latest state: from the host model, after bringing that up to date from the
  // image that holds it.
  void make_current(Image& im) {
    if (im.version == latest_) return;
    if (host_ != latest_) {
      download_state(*live_->image);
      host_ = latest_;
    }
    upload_state(*im.image);
    im.version = latest_;
  }

  Image& image(Model& model, int batch, Method method, bool training, bool update_apart = false) {
    if (&model != model_) {   // a model the backend was not prepared with: its host state is current
      images_.clear();
      staged_ = Staged{};
      model_ = &model;
      latest_ = host_ = 1;
      live_ = nullptr;
      split_ = last_split_ = nullptr;
    }
    const auto key = std::make_tuple(batch, static_cast<int>(method), training, update_apart);
    auto it = images_.find(key);
    if (it == images_.end()) {
      ScheduleOptions opt;
      opt.batch = batch;
      opt.method = method;
      opt.training = training;
      opt.update_apart = update_apart;
      auto im = std::make_unique<Image>();
      im->image = std::make_unique<ProgramImage>(*device_, compile(model, opt));
      it = images_.emplace(key, std::move(im)).first;
    }
    return *it->second;
  }

  std::unique_ptr<Device> device_;
  Model* model_ = nullptr;
  std::map<std::tuple<int, int, bool, bool>, std::unique_ptr<Image>> images_;
  uint64_t latest_ = 1;     // version of the newest state
  uint64_t host_ = 1;       // version the host model holds
  Image* live_ = nullptr;   // the image that holds `latest_` when the host does not
  Image* split_ = nullptr;       // the image whose forward_backward awaits its apply_update
  Image* last_split_ = nullptr;  // the last image forward_backward ran
};

}  // namespace

std::unique_ptr<Backend> make_accelerator_backend(std::unique_ptr<Device> device) {
  if (!device) throw Error("make_accelerator_backend: no device");
  return std::make_unique<AcceleratorBackend>(std::move(device));
}

}  // namespace sat
