#include "sat/train.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>

#include <nlohmann/json.hpp>

#include "sat/checkpoint.hpp"
#include "sat/data.hpp"
#include "sat/distributed.hpp"
#include "sat/error.hpp"
#include "sat/metrics.hpp"

namespace sat {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string clock_text(double s) {
  const long t = std::lround(std::max(0.0, s));
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

// A one-line progress display: redrawn in place on a terminal, a line every 10% otherwise.
class Progress {
 public:
  Progress(bool enabled, int epoch, int epochs, int64_t steps)
      : enabled_(enabled), tty_(isatty(STDERR_FILENO)), epoch_(epoch), epochs_(epochs), steps_(steps) {}

  void update(int64_t step, double loss, double acc, double images_per_s, double eta_s) {
    if (!enabled_) return;
    const int64_t tenth = std::max<int64_t>(1, steps_ / 10);
    if (!tty_ && step % tenth != 0 && step != steps_) return;
    const int width = 24;
    const int fill = static_cast<int>(width * step / std::max<int64_t>(1, steps_));
    std::string bar(static_cast<size_t>(fill), '=');
    bar.resize(width, ' ');
    std::fprintf(stderr, "%sepoch %d/%d [%s] %lld/%lld  loss %.4f  acc %5.2f%%  %.0f img/s  ETA %s%s",
                 tty_ ? "\r" : "", epoch_, epochs_, bar.c_str(), static_cast<long long>(step),
                 static_cast<long long>(steps_), loss, 100 * acc, images_per_s,
                 clock_text(eta_s).c_str(), tty_ ? "\033[K" : "\n");
    std::fflush(stderr);
  }
  void done() {
    if (enabled_ && tty_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  bool enabled_, tty_;
  int epoch_, epochs_;
  int64_t steps_;
};

void write_outputs(const std::string& dir, const Model& model, const TrainState& s,
                   const std::string& backend) {
  if (dir.empty()) return;
  nlohmann::json info = {{"model", model.name},      {"method", method_name(s.method)},
                         {"nm", s.nm.str()},         {"backend", backend},
                         {"epochs", s.recipe.epochs}, {"batch", s.recipe.batch},
                         {"lr", s.recipe.lr},        {"schedule", s.recipe.schedule},
                         {"momentum", s.recipe.momentum}, {"weight_decay", s.recipe.weight_decay},
                         {"srste_lambda", s.recipe.srste_lambda}, {"seed", s.recipe.seed}};
  write_metrics_csv(dir + "/metrics.csv", s.history);
  write_metrics_json(dir + "/metrics.json", info, s.history);
  write_metrics_svg(dir + "/curves.svg",
                    model.name + " " + method_name(s.method) + " " + s.nm.str() + " on " + backend,
                    s.history);
}

}  // namespace

void check_recipe(const Recipe& r, const std::function<std::string(const std::string& field)>& name) {
  auto bad = [&](const char* field, const std::string& rule) { throw Error(name(field) + " must be " + rule); };
  if (r.epochs < 1) bad("epochs", ">= 1");
  if (r.batch < 1 || r.batch > 65535) bad("batch", "between 1 and 65535");
  if (!(r.lr > 0)) bad("lr", "> 0");
  if (!(r.momentum >= 0 && r.momentum < 1)) bad("momentum", "in [0, 1)");
  if (!(r.weight_decay >= 0)) bad("weight_decay", ">= 0");
  if (!(r.srste_lambda >= 0)) bad("srste_lambda", ">= 0");
  if (r.schedule != "cosine" && r.schedule != "step" && r.schedule != "constant") {
    bad("schedule", "cosine, step or constant, got '" + r.schedule + "'");
  }
}

double learning_rate(const Recipe& r, int64_t global_step, int64_t steps_per_epoch) {
  const double total = static_cast<double>(r.epochs) * static_cast<double>(steps_per_epoch);
  const double t = static_cast<double>(global_step);
  const double warm = r.warmup_epochs * static_cast<double>(steps_per_epoch);
  if (warm > 0 && t < warm) return r.lr * (t + 1) / warm;
  if (r.schedule == "cosine") {
    const double progress = total > warm ? (t - warm) / (total - warm) : 1.0;
    return 0.5 * r.lr * (1 + std::cos(std::numbers::pi * std::min(1.0, progress)));
  }
  if (r.schedule == "step") {
    const int64_t epoch = global_step / std::max<int64_t>(1, steps_per_epoch);
    return r.lr * std::pow(r.step_gamma, static_cast<double>(epoch / std::max(1, r.step_every)));
  }
  return r.lr;
}

EvalResult evaluate(Backend& backend, Model& model, const BatchSource& data, Method method, int batch,
                    Communicator* comm) {
  EvalResult out;
  const int64_t n = data.size();
  std::vector<int64_t> idx;
  Tensor x;
  std::vector<int> y;
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min<int64_t>(batch, n - start);
    if (comm) {
      const Shard sh = shard_of(count, comm->rank(), comm->size());
      idx.resize(static_cast<size_t>(sh.size()));
      for (int64_t i = 0; i < sh.size(); ++i) idx[i] = start + sh.begin + i;
      y.clear();
      if (sh.size() > 0) data.batch(idx.data(), sh.size(), x, y);
      const ShardEval e = data_parallel_eval(*comm, backend, model, x, y, method,
                                             "the evaluation of samples " + std::to_string(start) + " to " +
                                                 std::to_string(start + count - 1));
      loss_sum += e.loss_sum;
      correct += e.correct;
      continue;
    }
    idx.resize(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) idx[i] = start + i;
    data.batch(idx.data(), count, x, y);
    const StepResult r = backend.evaluate(model, x, y, method);
    loss_sum += static_cast<double>(r.loss) * static_cast<double>(count);
    correct += r.correct;
  }
  out.samples = n;
  out.loss = n ? loss_sum / static_cast<double>(n) : 0;
  out.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0;
  return out;
}

TrainState train(Backend& backend, Model& model, const BatchSource& train_data,
                 const BatchSource* test_data, TrainState s, const TrainOptions& o) {
  const Recipe& r = s.recipe;
  if (train_data.sample_shape() != model.input) {
    throw Error("training data has samples of shape " + shape_str(train_data.sample_shape()) +
                " but model " + model.name + " takes " + shape_str(model.input));
  }
  const int64_t n = train_data.size();
  const int64_t steps = (n + r.batch - 1) / r.batch;   // the last batch may be short
  if (!o.out_dir.empty()) std::filesystem::create_directories(o.out_dir);
  const std::string ckpt = o.out_dir.empty() ? "" : o.out_dir + "/checkpoint.sat";

  if (o.stop_after_steps > 0 && s.global_step >= o.stop_after_steps) {
    // A resumed run already past the stop: no further step (not one more before checking).
    if (!o.quiet) {
      std::printf("already at step %lld, at or past --stop-after-steps %lld: nothing to train\n",
                  static_cast<long long>(s.global_step), static_cast<long long>(o.stop_after_steps));
    }
    return s;
  }
  backend.prepare(model, s.method);
  Communicator* comm = o.comm;
  const bool on_device =
      comm && prepare_data_parallel(*comm, backend, model,
                                    s.global_step ? "at step " + std::to_string(s.global_step) : "at the start", o.quiet);
  // This rank's part of a global batch of `count` samples starting at `start` of the epoch's order.
  auto shard_batch = [&](const std::vector<int64_t>& order, int64_t start, int64_t count, Tensor& bx,
                         std::vector<int>& by) {
    if (!comm) return train_data.batch(order.data() + start, count, bx, by);
    const Shard sh = shard_of(count, comm->rank(), comm->size());
    by.clear();
    if (sh.size() > 0) train_data.batch(order.data() + start + sh.begin, sh.size(), bx, by);
  };
  // A resumed run's metrics files are rewritten from its checkpoint, the one record of the run.
  if (!s.history.empty()) write_outputs(o.out_dir, model, s, backend.name());
  UpdateConfig cfg{s.method, r.lr, r.momentum, r.weight_decay, r.srste_lambda};
  Tensor x, x_next;
  std::vector<int> y, y_next;
  bool have_next = false;
  std::vector<int64_t> idx;

  while (s.epoch < r.epochs) {
    const int epoch = s.epoch + 1;
    const std::vector<int64_t> order = epoch_order(n, r.seed, epoch);
    Progress progress(o.progress, epoch, r.epochs, steps);
    const auto t_epoch = Clock::now();
    const double seconds_before = s.epoch_seconds;
    for (int64_t step = s.step_in_epoch; step < steps; ++step) {
      const int64_t start = step * r.batch, count = std::min<int64_t>(r.batch, n - start);
      if (have_next) {
        std::swap(x, x_next);
        std::swap(y, y_next);
      } else {
        shard_batch(order, start, count, x, y);
      }
      have_next = false;
      // The next batch of the epoch, announced so that a device that runs asynchronously uploads
      // it during this step (Backend::prefetch); the same batches in the same order either way.
      if (step + 1 < steps) {
        const int64_t next = (step + 1) * r.batch;
        shard_batch(order, next, std::min<int64_t>(r.batch, n - next), x_next, y_next);
        if (!y_next.empty()) backend.prefetch(x_next, y_next);
        have_next = true;
      }
      cfg.lr = learning_rate(r, s.global_step, steps);
      bool any_stop = o.interrupt && o.interrupt->load();
      const StepResult res = comm ? data_parallel_step(*comm, backend, model, x, y, count, cfg, s.global_step, any_stop, on_device)
                                  : backend.train_step(model, x, y, cfg);
      if (!std::isfinite(res.loss)) {
        throw Error("training diverged at epoch " + std::to_string(epoch) + " step " +
                    std::to_string(step + 1) + ": loss is not finite (lower the learning rate)");
      }
      s.epoch_loss_sum += static_cast<double>(res.loss) * static_cast<double>(count);
      s.epoch_correct += res.correct;
      s.epoch_seen += count;
      s.step_in_epoch = step + 1;
      ++s.global_step;
      s.epoch_seconds = seconds_before + seconds_since(t_epoch);
      const double rate = static_cast<double>(s.epoch_seen) / std::max(1e-9, s.epoch_seconds);
      progress.update(step + 1, s.epoch_loss_sum / static_cast<double>(s.epoch_seen),
                      static_cast<double>(s.epoch_correct) / static_cast<double>(s.epoch_seen), rate,
                      static_cast<double>(n - s.epoch_seen) / rate);
      bool stop = o.stop_after_steps > 0 && s.global_step >= o.stop_after_steps;
      if (o.on_step) {
        const StepReport report{epoch, s.step_in_epoch, steps, s.global_step, static_cast<double>(res.loss),
                                static_cast<int64_t>(res.correct), count, cfg.lr};
        if (!o.on_step(report)) stop = true;
      }
      if (comm ? any_stop : o.interrupt && o.interrupt->load()) stop = true;
      if (!ckpt.empty() && (stop || (o.checkpoint_every > 0 && s.global_step % o.checkpoint_every == 0))) {
        backend.sync(model);
        save_checkpoint(ckpt, model, s);
      }
      if (stop) {
        backend.sync(model);
        progress.done();
        if (!o.quiet) {
          std::printf("stopped at step %lld (epoch %d, step %lld of %lld)%s\n",
                      static_cast<long long>(s.global_step), epoch,
                      static_cast<long long>(s.step_in_epoch), static_cast<long long>(steps),
                      ckpt.empty() ? "" : ("; checkpoint " + ckpt).c_str());
        }
        return s;
      }
    }
    progress.done();

    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = s.epoch_loss_sum / static_cast<double>(std::max<int64_t>(1, s.epoch_seen));
    m.train_acc = static_cast<double>(s.epoch_correct) / static_cast<double>(std::max<int64_t>(1, s.epoch_seen));
    m.lr = cfg.lr;
    m.seconds = s.epoch_seconds;
    m.images_per_s = static_cast<double>(s.epoch_seen) / std::max(1e-9, s.epoch_seconds);
    if (test_data) {
      const EvalResult ev = evaluate(backend, model, *test_data, s.method, r.batch, comm);
      if (!std::isfinite(ev.loss)) {
        // Finite but huge parameters (a learning rate far too large) pass the update's check and
        // overflow only here; the epoch is not recorded.
        throw Error("training diverged at epoch " + std::to_string(epoch) +
                    ": the test loss is not finite (lower the learning rate)");
      }
      m.test_loss = ev.loss;
      m.test_acc = ev.accuracy;
    }
    s.history.push_back(m);
    s.epoch = epoch;
    s.step_in_epoch = 0;
    s.epoch_loss_sum = 0;
    s.epoch_correct = s.epoch_seen = 0;
    s.epoch_seconds = 0;
    if (!o.quiet) {
      std::printf("epoch %d/%d  train loss %.4f acc %6.2f%%", epoch, r.epochs, m.train_loss,
                  100 * m.train_acc);
      if (test_data) std::printf("  test loss %.4f acc %6.2f%%", m.test_loss, 100 * m.test_acc);
      std::printf("  lr %.4g  %.1f s (%.0f img/s)\n", m.lr, m.seconds, m.images_per_s);
      std::fflush(stdout);
    }
    backend.sync(model);
    if (comm) check_same_state(*comm, model, "after epoch " + std::to_string(epoch));
    // The checkpoint first: if it cannot be written, the metrics do not list the epoch either.
    if (!ckpt.empty()) save_checkpoint(ckpt, model, s);
    write_outputs(o.out_dir, model, s, backend.name());
    // (Ranks of a data-parallel run agree on stopping at their next step's exchange instead.)
    if (!comm && o.interrupt && o.interrupt->load() && s.epoch < r.epochs) {
      if (!o.quiet) {
        std::printf("stopped at the end of epoch %d%s\n", epoch,
                    ckpt.empty() ? "" : ("; checkpoint " + ckpt).c_str());
      }
      return s;
    }
  }
  backend.sync(model);
  return s;
}

}  // namespace sat
