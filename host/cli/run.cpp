// sat train and sat eval.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>

#include <omp.h>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "board_flags.hpp"
#include "commands.hpp"
#include "sat/backend.hpp"
#include "sat/checkpoint.hpp"
#include "sat/data.hpp"
#include "sat/distributed.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"
#include "sat/run_folder.hpp"
#include "sat/train.hpp"
#ifdef SAT_HAVE_MPI
#include "mpi_communicator.hpp"
#endif

namespace sat::cli {

namespace {

// Bounds of the numeric flags (they are parsed as 64-bit integers and never narrowed past these):
// the batch as the accelerator's stream encodes it (sat compile), counts and seeds as 63 bits.
constexpr long long kMaxBatch = 65535;
constexpr long long kMaxThreads = 1024;
constexpr long long kMaxCount = LLONG_MAX;

CommandSpec train_spec() {
  CommandSpec c("train", "--model NAME|PATH [flags]",
                "Trains a model on a backend and writes its run folder: metrics.csv, metrics.json,\n"
                "curves.svg and checkpoint.sat. Ctrl-C (SIGINT) or SIGTERM finishes the current step,\n"
                "writes the checkpoint and says how to resume.");
  c.value("model", "NAME|PATH", "model description (models/NAME.json or a path)")
      .value("method", "M", "bdwp (default), srste or dense")
      .value("nm", "N:M", "N:M sparsity (overrides the model file; 'dense' = no pruning)")
      .value("backend", "B", "cpu (default); hls, sim, cuda, fpga where built")
      .value("epochs", "E", "epochs (overrides the model file's recipe, as the next flags do)")
      .value("batch", "B", "batch size, 1 to 65535")
      .value("lr", "LR", "peak learning rate")
      .value("momentum", "MU", "SGD momentum, in [0, 1)")
      .value("weight-decay", "WD", "weight decay")
      .value("srste-lambda", "L", "SR-STE's decay of the pruned weights")
      .value("schedule", "S", "cosine, step or constant")
      .value("warmup-epochs", "W", "linear warm-up, in epochs")
      .value("seed", "S", "seed of the initial parameters and the data order")
      .value("data", "D", "fashion-mnist (default) or synthetic")
      .value("data-dir", "DIR", "Fashion-MNIST directory (default $SAT_DATA_DIR or /usr/share/datasets/fashion-mnist)")
      .value("train-limit", "N", "use only the first N training samples")
      .value("test-limit", "N", "use only the first N test samples")
      .value("out", "DIR", "the run folder (default runs/<model>-<method>-<N>x<M>)")
      .flag("resume", "continue the run in --out DIR from its checkpoint, exactly where it stopped")
      .flag("force", "start a new run in a folder that holds one, replacing its outputs")
      .value("checkpoint-every", "N", "also checkpoint every N steps (always at each epoch end)")
      .value("stop-after-steps", "N", "checkpoint and stop at global step N (to split a run)")
      .value("threads", "T", "CPU threads (default: all cores)")
      .flag("no-progress", "no progress line")
      .flag("json", "print the final result as JSON on stdout")
      .value("mpi-timeout", "S", "data-parallel runs (mpirun -np N sat train): seconds a rank waits for the others\n"
                                 "in one exchange before the job ends with an error (default " +
                                 std::to_string(static_cast<int>(kDefaultRankTimeoutS)) + ")");
  add_board_flags(c);
  return c;
}

CommandSpec eval_spec() {
  CommandSpec c("eval", "--checkpoint PATH [flags]",
                "Rebuilds the model from the checkpoint and reports loss and accuracy on the test set.");
  c.value("checkpoint", "PATH", "a checkpoint.sat written by sat train")
      .value("backend", "B", "cpu (default); hls, sim, cuda, fpga where built")
      .value("batch", "B", "batch size (default: the checkpoint's recipe)")
      .value("data-dir", "DIR", "Fashion-MNIST directory")
      .value("test-limit", "N", "use only the first N test samples")
      .value("threads", "T", "CPU threads (default: all cores)")
      .flag("json", "print the result as JSON on stdout");
  add_board_flags(c);
  return c;
}

// SIGINT and SIGTERM ask the run to stop after its current step (TrainOptions::interrupt); a second
// one ends the process at once, as the default action would.
std::atomic<bool> g_interrupt{false};
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_signal != 0) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_signal = sig;
  g_interrupt.store(true);
  static const char msg[] =
      "\nsat train: stopping after the current step, then writing the checkpoint (again to abort at once)\n";
  if (::write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {}
}

void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string s = "sat train";
  for (const std::string& a : argv) s += " " + a;
  return s;
}

std::unique_ptr<BatchSource> limit(std::unique_ptr<BatchSource> s, long long n, const Args& args,
                                   const char* flag) {
  if (n < 0) args.fail(std::string("--") + flag + " must be >= 0");
  return n == 0 ? std::move(s) : make_prefix_source(std::move(s), n);
}

DataSources open_data(const Args& args, const Model& model) {
  const std::string kind = args.str("data", "fashion-mnist");
  if (kind != "fashion-mnist" && kind != "synthetic") args.fail("--data must be " + std::string(kDataKinds) + ", got '" + kind + "'");
  DataSources s = sat::open_data(kind, model.input, model.classes, args.str("data-dir", ""));
  s.train = limit(std::move(s.train), args.integer("train-limit", 0, 0, kMaxCount), args, "train-limit");
  s.test = limit(std::move(s.test), args.integer("test-limit", 0, 0, kMaxCount), args, "test-limit");
  return s;
}

// --threads, or by default the host's cores shared among the `ranks_here` processes of a
// data-parallel run on this host (all cores for one process).
void set_threads(const Args& args, int ranks_here = 1) {
  const long long t = args.integer("threads", 0, 0, kMaxThreads);
  set_cpu_threads(t > 0 ? static_cast<int>(t) : std::max(1, omp_get_num_procs() / ranks_here));
}

void apply_overrides(const Args& args, Recipe& r) {
  r.epochs = static_cast<int>(args.integer("epochs", r.epochs, 1, INT_MAX));
  r.batch = static_cast<int>(args.integer("batch", r.batch, 1, kMaxBatch));
  r.lr = args.real("lr", r.lr);
  r.momentum = args.real("momentum", r.momentum);
  r.weight_decay = args.real("weight-decay", r.weight_decay);
  r.srste_lambda = args.real("srste-lambda", r.srste_lambda);
  r.schedule = args.str("schedule", r.schedule);
  r.warmup_epochs = args.real("warmup-epochs", r.warmup_epochs);
  r.seed = static_cast<uint64_t>(args.integer("seed", static_cast<long long>(r.seed), 0, kMaxCount));
  try {
    check_recipe(r, [](const std::string& field) {
      std::string flag = "--" + field;
      std::replace(flag.begin(), flag.end(), '_', '-');
      return flag;
    });
  } catch (const Error& e) {
    args.fail(e.what());
  }
}

// `sat train` in one process, or on one rank of a data-parallel run (comm). Setup that can fail on
// one rank only (a file, a flag of an MPMD launch) is agreed on, so that every rank ends with the
// same error instead of waiting for the failed one.
int train_command(const Args& args, const std::vector<std::string>& argv, Communicator* comm) {
  const bool lead = !comm || comm->rank() == 0;   // the rank that prints and writes the run folder
  auto agreed = [&](const std::string& what, const std::function<void()>& work) {
    if (comm) run_agreed(*comm, work, what);
    else work();
  };
  std::unique_ptr<Backend> backend;
  Model model;
  TrainState state;
  std::string out = args.str("out", "");
  std::unique_ptr<RunFolder> folder;
  const bool resume = args.flag("resume");
  std::string ckpt;
  agreed("to open the backend and the run folder", [&] {
    set_threads(args, comm ? launcher_local_size() : 1);
    backend = open_backend(backend_flag(args, "cpu"));
    if (resume && args.flag("force")) args.fail("--resume and --force exclude each other");
    if (!resume) return;
    if (out.empty()) args.fail("--resume needs --out DIR (the run directory to continue)");
    ckpt = out + "/checkpoint.sat";
    if (!lead) return;   // the checkpoint reaches the other ranks from rank 0 (share_file)
    if (!std::filesystem::exists(ckpt)) args.fail("--resume: no checkpoint at " + ckpt);
    folder = std::make_unique<RunFolder>(out, RunFolder::Mode::resume, command_line(argv));
  });
  const std::string source = resume && comm ? share_file(*comm, ckpt) : ckpt;
  agreed("to set up the run", [&] {
    if (resume) {
      model = model_from_checkpoint(source, &state);
      if (args.has("model")) {
        const Model named = Model::load(resolve_model_path(args.str("model")));
        if (named.name != model.name) {
          args.fail("--resume: the checkpoint " + ckpt + " holds model '" + model.name + "', not '" + named.name +
                    "' (--model)");
        }
      }
      if (args.has("method") && method_flag(args, "") != state.method) {
        args.fail("--resume: the checkpoint was trained with --method " +
                  std::string(method_name(state.method)) + ", not " + args.str("method"));
      }
      if (args.has("nm") && !(nm_flag(args, "") == state.nm)) {
        args.fail("--resume: the checkpoint was trained with --nm " + state.nm.str());
      }
      if (args.has("epochs")) {
        state.recipe.epochs = static_cast<int>(args.integer("epochs", state.recipe.epochs, 1, INT_MAX));
      }
      if (lead) {
        std::printf("resuming %s at epoch %d step %lld from %s\n", model.name.c_str(), state.epoch + 1,
                    static_cast<long long>(state.step_in_epoch), ckpt.c_str());
      }
    } else {
      model = Model::load(resolve_model_path(args.str("model")), nm_opt(args));
      state.method = method_flag(args, "bdwp");
      state.nm = model.nm;
      state.recipe = model.recipe;
      apply_overrides(args, state.recipe);
      if (state.recipe.seed != model.recipe.seed) {
        model.recipe.seed = state.recipe.seed;
        model.build(state.recipe.seed);
      }
      if (out.empty()) {
        // The model's name as one path component: anything but letters, digits, '.', '_' and '-'
        // (a '/' above all) becomes '_', so the default folder stays inside runs/.
        std::string name = model.name;
        for (char& c : name) {
          const bool safe = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
          if (!safe) c = '_';
        }
        out = "runs/" + name + "-" + method_name(state.method) + "-" + std::to_string(state.nm.n) + "x" +
              std::to_string(state.nm.m);
      }
    }
  });
  if (comm && resume) remove_shared_copy(*comm, source);

  DataSources data;
  agreed("to open the data and the run folder", [&] {
    data = open_data(args, model);
    if (!folder && lead) {
      folder = std::make_unique<RunFolder>(out, args.flag("force") ? RunFolder::Mode::force : RunFolder::Mode::fresh,
                                           command_line(argv));
    }
  });
  if (comm) {
    // What every rank must share; the model's description by its text, so that two files of one
    // name differ.
    RunSettings mine;
    const Recipe& r = state.recipe;
    mine.add("--model", model.name + " (description CRC-32 " +
                            std::to_string(checksum_crc32(model.source.data(), model.source.size())) + ")");
    mine.add("--method", method_name(state.method));
    mine.add("--nm", state.nm.str());
    mine.add("--seed", std::to_string(r.seed));
    mine.add("--backend", backend->name());
    mine.add("--epochs", std::to_string(r.epochs));
    for (const auto& [flag, v] : {std::pair{"--lr", r.lr}, {"--momentum", r.momentum}, {"--weight-decay", r.weight_decay},
                                  {"--srste-lambda", r.srste_lambda}, {"--warmup-epochs", r.warmup_epochs}}) {
      char text[40];
      std::snprintf(text, sizeof text, "%.17g", v);
      mine.add(flag, text);
    }
    mine.add("--schedule", r.schedule);
    mine.add("--data", args.str("data", "fashion-mnist"));
    mine.add("training samples (--train-limit)", std::to_string(data.train->size()));
    mine.add("test samples (--test-limit)", std::to_string(data.test->size()));
    mine.add("--resume", resume ? "yes" : "no");
    mine.add("the step to start from", std::to_string(state.global_step));
    mine.add("--stop-after-steps", args.str("stop-after-steps", "0"));
    mine.add("--checkpoint-every", args.str("checkpoint-every", "0"));
    check_same_settings(*comm, mine, r.batch);
  }
  catch_stop_signals();
  TrainOptions opts;
  opts.out_dir = lead ? out : "";
  opts.interrupt = &g_interrupt;
  opts.progress = lead && !args.flag("no-progress");
  opts.quiet = !lead;
  opts.stop_after_steps = args.integer("stop-after-steps", 0, 0, kMaxCount);
  opts.checkpoint_every = args.integer("checkpoint-every", 0, 0, kMaxCount);
  opts.comm = comm;
  const std::string ranks =
      comm ? " on " + std::to_string(comm->size()) + " ranks (data-parallel, " +
                 std::to_string(state.recipe.batch / comm->size()) + " samples each)"
           : "";
  if (!resume && lead) {
    std::printf("training %s (%lld parameters) with %s %s on %s%s: %d epochs, batch %d, lr %g %s, "
                "%lld training / %lld test samples -> %s\n",
                model.name.c_str(), static_cast<long long>(model.num_params()),
                method_name(state.method),
                state.method == Method::dense ? "(no pruning)" : state.nm.str().c_str(),
                backend->name().c_str(), ranks.c_str(),
                state.recipe.epochs, state.recipe.batch, state.recipe.lr,
                state.recipe.schedule.c_str(), static_cast<long long>(data.train->size()),
                static_cast<long long>(data.test->size()), out.c_str());
    std::fflush(stdout);
  }
  const TrainState done = train(*backend, model, *data.train, data.test.get(), state, opts);
  if (done.epoch < done.recipe.epochs) {
    // Stopped early, not at --stop-after-steps: interrupted, here or (data-parallel) on another rank.
    const bool at_requested_step = opts.stop_after_steps > 0 && done.global_step >= opts.stop_after_steps;
    if (!at_requested_step) {
      std::fflush(stdout);
      if (lead) {
        // The resume command repeats what the checkpoint does not hold: where the data and the run come from.
        std::string resume_cmd = (comm ? "mpirun -np " + std::to_string(comm->size()) + " " : std::string()) +
                                 "sat train --resume --out " + out;
        for (const char* f : {"backend", "xclbin", "device", "data", "data-dir", "train-limit", "test-limit", "threads",
                              "checkpoint-every", "mpi-timeout"}) {
          if (auto v = args.opt(f)) resume_cmd += std::string(" --") + f + " " + *v;
        }
        std::fprintf(stderr, "sat train: interrupted (%s) at step %lld; checkpoint %s written. Resume with:\n  %s\n",
                     g_signal == SIGINT ? "SIGINT" : g_signal == SIGTERM ? "SIGTERM" : "on another rank",
                     static_cast<long long>(done.global_step), folder->checkpoint().c_str(), resume_cmd.c_str());
      }
      return 128 + (g_signal != 0 ? g_signal : SIGTERM);
    }
    return kExitOk;   // stopped early on request (--stop-after-steps)
  }
  if (!lead) return kExitOk;

  const EpochMetrics& last = done.history.back();
  double total_s = 0;
  for (const auto& m : done.history) total_s += m.seconds;
  if (args.flag("json")) {
    nlohmann::json j = {{"model", model.name}, {"method", method_name(done.method)},
                        {"nm", done.nm.str()}, {"backend", backend->name()},
                        {"epochs", done.epoch}, {"test_accuracy", last.test_acc},
                        {"test_loss", last.test_loss}, {"train_seconds", total_s},
                        {"ranks", comm ? comm->size() : 1}, {"out", out}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("result: %s %s %s on %s%s: test accuracy %.2f%% after %d epochs (%.1f s training); "
                "outputs in %s\n",
                model.name.c_str(), method_name(done.method), done.nm.str().c_str(),
                backend->name().c_str(), ranks.c_str(), 100 * last.test_acc, done.epoch, total_s, out.c_str());
  }
  return 0;
}

}  // namespace

int cmd_train(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = train_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  const double timeout = args.real("mpi-timeout", kDefaultRankTimeoutS);
  if (!(timeout > 0)) args.fail("--mpi-timeout must be > 0 seconds");
  // Under a launcher, even as its only rank (mpirun -np 1: the data-parallel path on one rank).
  if (!launched_by_mpi()) return train_command(args, argv, nullptr);
#ifdef SAT_HAVE_MPI
  std::unique_ptr<Communicator> comm = open_mpi_communicator(timeout);
  try {
    return train_command(args, argv, comm.get());
  } catch (const CollectiveError&) {
    throw;   // every rank raised it: each prints it and MPI ends normally
  } catch (const std::exception& e) {
    // The other ranks may be waiting for this one in a collective: the job ends here.
    std::fprintf(stderr, "error: rank %d of %d: %s\n", comm->rank(), comm->size(), e.what());
    comm->abort(kExitError);
  }
  return kExitError;   // (abort does not return)
#else
  const int world = launcher_world_size();
  if (world == 1) return train_command(args, argv, nullptr);
  throw Error("an MPI launcher started " + std::to_string(world) +
              " processes, but this sat was built without MPI (configure found no Boost.MPI; Debian: "
              "libboost-mpi-dev openmpi-bin): each would train the whole model alone (docs/distributed.md)");
#endif
}

int cmd_eval(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = eval_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  set_threads(args);
  const std::string ckpt = args.str("checkpoint");
  std::unique_ptr<Backend> backend = open_backend(backend_flag(args, "cpu"));
  TrainState state;
  Model model = model_from_checkpoint(ckpt, &state);
  backend->prepare(model, state.method);
  const std::string dir = args.str("data-dir", "");
  auto test = std::make_shared<const Dataset>(load_fashion_mnist(false, dir));
  auto source = limit(make_image_source(test, model.input), args.integer("test-limit", 0, 0, kMaxCount), args,
                      "test-limit");
  const long long batch = args.integer("batch", state.recipe.batch, 1, kMaxBatch);
  const EvalResult r = evaluate(*backend, model, *source, state.method, static_cast<int>(batch));
  if (args.flag("json")) {
    nlohmann::json j = {{"model", model.name}, {"method", method_name(state.method)},
                        {"nm", state.nm.str()}, {"epoch", state.epoch}, {"samples", r.samples},
                        {"loss", r.loss}, {"accuracy", r.accuracy}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s (%s %s, epoch %d): test loss %.4f, accuracy %.2f%% on %lld samples\n",
                model.name.c_str(), method_name(state.method), state.nm.str().c_str(), state.epoch,
                r.loss, 100 * r.accuracy, static_cast<long long>(r.samples));
  }
  return 0;
}

}  // namespace sat::cli
