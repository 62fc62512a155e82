#pragma once
// The training loop: epochs over a data set on a backend, learning-rate schedule, progress,
// metrics, checkpoints and exact resume.
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sat/backend.hpp"
#include "sat/model.hpp"

namespace sat {

// One row of the metrics log.
// Accuracies are fractions in [0, 1].
struct EpochMetrics {
  int epoch = 0;                 // 1-based
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  double lr = 0;                 // at the epoch's last step
  double seconds = 0;            // wall time of the epoch's training steps
  double images_per_s = 0;
};

// Where a run stands; saved in checkpoints so --resume continues exactly.
struct TrainState {
  Method method = Method::bdwp;
  NM nm{2, 8};
  Recipe recipe;                 // effective recipe (model file + overrides)
  int epoch = 0;                 // epochs fully done
  int64_t step_in_epoch = 0;     // steps done of epoch `epoch` + 1
  int64_t global_step = 0;
  double epoch_loss_sum = 0;     // running sums of the unfinished epoch
  int64_t epoch_correct = 0, epoch_seen = 0;
  double epoch_seconds = 0;
  std::vector<EpochMetrics> history;
};

// Checks a recipe's hyper-parameters: epochs >= 1, batch in [1, 65535] (what the accelerator's
// stream encodes), lr > 0, momentum in [0, 1), weight decay and SR-STE lambda >= 0, a known
// schedule. Throws sat::Error "<name(field)> must be ..." where `name` spells the recipe's field
// (epochs, batch, lr, momentum, weight_decay, srste_lambda, schedule) as the caller's user knows it:
// a flag, an argument.
void check_recipe(const Recipe& r, const std::function<std::string(const std::string& field)>& name);

// Learning rate at a global step (cosine / step / constant with optional linear warm-up).
double learning_rate(const Recipe& r, int64_t global_step, int64_t steps_per_epoch);

}  // namespace sat

namespace sat {

class BatchSource;
class Communicator;   // sat/distributed.hpp

// What one training step reports to TrainOptions::on_step.
struct StepReport {
  int epoch = 0;                 // 1-based
  int64_t step_in_epoch = 0;     // steps done of this epoch, this one included
  int64_t steps_per_epoch = 0;
  int64_t global_step = 0;       // steps done in all, this one included
  double loss = 0;               // this step's mean loss
  int64_t correct = 0, count = 0;  // this step's correct predictions and samples
  double lr = 0;                 // the learning rate this step used
};

struct TrainOptions {
  std::string out_dir;           // metrics.csv, metrics.json, curves.svg, checkpoint.sat; "" = none
  int64_t stop_after_steps = 0;  // > 0: save a checkpoint and stop at this global step (interrupt)
  int64_t checkpoint_every = 0;  // > 0: also checkpoint every this many steps
  bool progress = true;          // progress line with rate and ETA on stderr
  bool quiet = false;            // no per-epoch lines on stdout
  // Called after every step. Returning false stops the run there as stop_after_steps does: the
  // checkpoint is written (when out_dir is set) and train() returns the state.
  std::function<bool(const StepReport&)> on_step;
  // Polled after every step; once it reads true the run stops as above. The CLI's SIGINT and
  // SIGTERM handler sets it, so an interrupted run loses nothing.
  const std::atomic<bool>* interrupt = nullptr;
  // Data-parallel training (docs/distributed.md): every rank calls train() with the same model,
  // data and state, and takes its shard of each batch; the ranks agree on every step's outcome and
  // on stopping (an interrupt on any rank stops them all after the same step; on_step must answer
  // the same on every rank). Only the rank given an out_dir writes files: give it to rank 0 only.
  Communicator* comm = nullptr;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t samples = 0;
};

// Evaluates in inference mode over the whole source in batches; with `comm`, each rank evaluates
// its shard of every batch and every rank returns the whole source's result.
EvalResult evaluate(Backend& backend, Model& model, const BatchSource& data, Method method, int batch,
                    Communicator* comm = nullptr);

// Runs epochs until state.recipe.epochs are done, starting from `state` (fresh or loaded from a
// checkpoint). After each epoch: evaluation on `test` (if given), checkpoint, then the metrics
// files, which are rewritten from the checkpoint's history: a row is never listed without the
// checkpoint that holds it.
// Returns the final state; state.history holds every epoch's metrics.
TrainState train(Backend& backend, Model& model, const BatchSource& train_data,
                 const BatchSource* test_data, TrainState state, const TrainOptions& options);

}  // namespace sat
