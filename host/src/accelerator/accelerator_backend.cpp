// The one training backend over any Device (sat/accelerator.hpp). It compiles the model once per
// (batch, method, training or inference) with the offline scheduler, keeps one ProgramImage per
// compiled program, and keeps the model's state (parameters, momentum, weight forms) resident on
// the device: a step writes only the batch and the hyper-parameters and reads only the result.
// The host model is brought up to date at Backend::sync, or when another program (an evaluation
// batch size, inference) needs the state a training program holds.
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
    model_ = &model;
    latest_ = host_ = 1;   // the host model is the state
    live_ = nullptr;
  }

  StepResult train_step(Model& model, const Tensor& x, const std::vector<int>& y,
                        const UpdateConfig& cfg) override {
    Image& im = image(model, static_cast<int>(x.dim(0)), cfg.method, true);
    make_current(im);
    write_hyper(*im.image, cfg);
    write_batch(*im.image, x, y, model.classes);
    check_run(*device_, counted(im.image->run(device_run_timeout())), "training step");
    im.version = ++latest_;
    live_ = &im;
    return read_result(*im.image);
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
  };

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

  Image& image(Model& model, int batch, Method method, bool training) {
    if (&model != model_) {   // a model the backend was not prepared with: its host state is current
      images_.clear();
      model_ = &model;
      latest_ = host_ = 1;
      live_ = nullptr;
    }
    const auto key = std::make_tuple(batch, static_cast<int>(method), training);
    auto it = images_.find(key);
    if (it == images_.end()) {
      ScheduleOptions opt;
      opt.batch = batch;
      opt.method = method;
      opt.training = training;
      auto im = std::make_unique<Image>();
      im->image = std::make_unique<ProgramImage>(*device_, compile(model, opt));
      it = images_.emplace(key, std::move(im)).first;
    }
    return *it->second;
  }

  std::unique_ptr<Device> device_;
  Model* model_ = nullptr;
  std::map<std::tuple<int, int, bool>, std::unique_ptr<Image>> images_;
  uint64_t latest_ = 1;     // version of the newest state
  uint64_t host_ = 1;       // version the host model holds
  Image* live_ = nullptr;   // the image that holds `latest_` when the host does not
};

}  // namespace

std::unique_ptr<Backend> make_accelerator_backend(std::unique_ptr<Device> device) {
  if (!device) throw Error("make_accelerator_backend: no device");
  return std::make_unique<AcceleratorBackend>(std::move(device));
}

}  // namespace sat
