// A training run never loses or mixes up work: its folder is locked while it writes, an earlier run
// is replaced only on request, SIGINT/SIGTERM end it with a checkpoint, a metrics row is never
// listed without its checkpoint, and a diverging run stops with an error (issue 16).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "expect_error.hpp"
#include "run_cli.hpp"
#include "sat/backend.hpp"
#include "sat/data.hpp"
#include "sat/io.hpp"
#include "sat/model.hpp"
#include "sat/npy.hpp"
#include "sat/run_folder.hpp"
#include "sat/train.hpp"
#include "temp_dir.hpp"

namespace sat {
namespace {

namespace fs = std::filesystem;
using test::CliRun;
using test::expect_cli_error;
using test::expect_error;
using test::expect_usage_error;
using test::run_sat;
using test::TempDir;

const std::string kSmall = " --model mlp --data synthetic --train-limit 64 --test-limit 32 --epochs 1 --no-progress";

// The MLP's recipe with `epochs` epochs of batch `batch`, and options that print nothing.
TrainState mlp_state(const Model& model, int epochs, int batch) {
  TrainState state;
  state.nm = model.nm;
  state.recipe = model.recipe;
  state.recipe.epochs = epochs;
  state.recipe.batch = batch;
  return state;
}

TrainOptions silent_options() {
  TrainOptions opts;
  opts.progress = false;
  opts.quiet = true;
  return opts;
}

size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

TEST(RunSafety, AFolderThatHoldsARunNeedsResumeOrForce) {
  TempDir tmp;
  const std::string out = tmp.file("run");
  ASSERT_EQ(run_sat("train" + kSmall + " --out " + out).status, 0);
  const std::string before = read_file(out + "/checkpoint.sat");

  expect_cli_error("train" + kSmall + " --out " + out, "already holds a run; continue it with --resume, replace it with --force");
  EXPECT_EQ(read_file(out + "/checkpoint.sat"), before) << "the refused run touched the earlier one";
  expect_usage_error("train" + kSmall + " --resume --force --out " + out, "--resume and --force exclude each other");

  // --force replaces the earlier outputs: a run with another seed leaves its own checkpoint, and
  // a file of the user's in the folder stays.
  atomic_write_file(out + "/notes.txt", "mine");
  const CliRun forced = run_sat("train" + kSmall + " --seed 7 --force --out " + out);
  ASSERT_EQ(forced.status, 0) << forced.out;
  EXPECT_NE(read_file(out + "/checkpoint.sat"), before);
  EXPECT_EQ(read_file(out + "/notes.txt"), "mine");
  EXPECT_EQ(count_lines(out + "/metrics.csv"), 2u) << "header and one epoch";
}

TEST(RunSafety, ASecondRunOnALockedFolderIsRefusedNamingTheFirst) {
  TempDir tmp;
  const std::string out = tmp.file("locked");
  {
    const RunFolder held(out, RunFolder::Mode::fresh, "the test's own run");
    const CliRun r = run_sat("train" + kSmall + " --out " + out);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("is in use by another run (pid " + std::to_string(getpid()) + ": the test's own run)"),
              std::string::npos)
        << r.out;
    // Within one process too: a second holder is refused.
    expect_error([&] { RunFolder again(out, RunFolder::Mode::force, "second"); }, {"in use by another run", "the test's own run"});
    EXPECT_FALSE(RunFolder::holds_run(out));
  }
  // Released when its holder goes: the run goes ahead.
  EXPECT_EQ(run_sat("train" + kSmall + " --out " + out).status, 0);
}

TEST(RunSafety, OutMustBeAFolder) {
  TempDir tmp;
  atomic_write_file(tmp.file("plain"), "x");
  expect_cli_error("train" + kSmall + " --out " + tmp.file("plain"), "exists and is not a directory");
  EXPECT_EQ(read_file(tmp.file("plain")), "x");
  expect_cli_error("train" + kSmall + " --out " + tmp.file("plain") + "/sub", "cannot create the run folder");
}

// Runs `sat train` in the background, waits until it has trained a few steps (its checkpoint_every
// checkpoint appears), sends `sig`, and returns its exit status and output.
CliRun interrupt_run(const std::string& args, const std::string& out, int sig) {
  const std::string log = out + ".log";
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = "exec '" + std::string(SAT_BINARY_DIR) + "/sat' " + args + " > '" + log + "' 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  CliRun r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(out + "/checkpoint.sat") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, sig);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = read_file(log);
  return r;
}

TEST(RunSafety, SigintAndSigtermEndWithACheckpointAndSayHowToResume) {
  TempDir tmp;
  for (const int sig : {SIGINT, SIGTERM}) {
    const std::string out = tmp.file(sig == SIGINT ? "int" : "term");
    const std::string data = " --data synthetic --train-limit 60000 --test-limit 32 --batch 16";
    const CliRun r = interrupt_run("train --model mlp --epochs 1 --no-progress --checkpoint-every 3" + data +
                                       " --out " + out,
                                   out, sig);
    ASSERT_EQ(r.status, 128 + sig) << r.out;
    EXPECT_NE(r.out.find(std::string("interrupted (") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ")"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Resume with:\n  sat train --resume --out " + out + " --data synthetic --train-limit 60000"),
              std::string::npos)
        << r.out;
    // The checkpoint holds the step the run stopped at, and resuming goes on from there.
    const auto stopped = r.out.find("stopped at step ");
    ASSERT_NE(stopped, std::string::npos) << r.out;
    const long long step = std::stoll(r.out.substr(stopped + 16));
    EXPECT_GT(step, 0);
    EXPECT_LT(step, 3750) << "the run was not interrupted";
    const CliRun resumed = run_sat("train --resume --out " + out + data + " --no-progress --stop-after-steps " +
                                   std::to_string(step + 2));
    ASSERT_EQ(resumed.status, 0) << resumed.out;
    EXPECT_NE(resumed.out.find("stopped at step " + std::to_string(step + 2)), std::string::npos) << resumed.out;
  }
}

// `sat op prune --out /dev/full`, run as root, once replaced the device node with a regular file:
// .npy outputs went through a rename of their own. Here a FIFO and a folder stand for the node.
TEST(RunSafety, NpyOutputsReplaceOnlyRegularFiles) {
  TempDir tmp;
  const std::string fifo = tmp.file("node"), dir = tmp.file("folder"), w = tmp.file("w.npy");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  fs::create_directories(dir);
  npy_write(w, {2, 8}, std::vector<float>(16, 1.0f));
  for (const std::string& target : {fifo, dir}) {
    expect_cli_error("op prune --nm 2:8 --axis k --in " + w + " --out " + target, "not a regular file; it was left as it is");
    expect_error([&] { npy_write(target, {2, 8}, std::vector<float>(16, 1.0f)); }, "not a regular file");
  }
  struct stat st {};
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(tmp.entries(), (std::vector<std::string>{"folder", "node", "w.npy"})) << "a temporary file was left";
}

TEST(RunSafety, ADivergingRunStopsWithAnError) {
  TempDir tmp;
  const CliRun r = run_sat("train" + kSmall + " --lr 1e30 --out " + tmp.file("nan"));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("training diverged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lower the learning rate"), std::string::npos) << r.out;
}

// The epoch's checkpoint is written before its metrics: where the checkpoint cannot be written
// (here its path is a folder, as a full disk would fail it), metrics.csv does not list the epoch.
TEST(RunSafety, AMetricsRowIsNeverListedWithoutItsCheckpoint) {
  TempDir tmp;
  const std::string out = tmp.file("run");
  fs::create_directories(out + "/checkpoint.sat");
  Model model = Model::load(std::string(SAT_SOURCE_DIR) + "/models/mlp.json");
  auto backend = open_backend("cpu");
  auto data = make_synthetic_source(model.input, model.classes, 64, 1);
  const TrainState state = mlp_state(model, 1, model.recipe.batch);
  TrainOptions opts = silent_options();
  opts.out_dir = out;
  expect_error([&] { train(*backend, model, *data, nullptr, state, opts); }, "checkpoint.sat");
  EXPECT_FALSE(fs::exists(out + "/metrics.csv"));
  EXPECT_FALSE(fs::exists(out + "/metrics.json"));
}

// The per-step callback sees every step in order and can stop the run like --stop-after-steps.
TEST(RunSafety, OnStepSeesEveryStepAndCanStop) {
  Model model = Model::load(std::string(SAT_SOURCE_DIR) + "/models/mlp.json");
  auto backend = open_backend("cpu");
  auto data = make_synthetic_source(model.input, model.classes, 200, 1);
  const TrainState state = mlp_state(model, 2, 64);
  TrainOptions opts = silent_options();
  std::vector<StepReport> seen;
  opts.on_step = [&](const StepReport& r) {
    seen.push_back(r);
    return r.global_step < 6;
  };
  const TrainState done = train(*backend, model, *data, nullptr, state, opts);
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(done.global_step, 6);
  EXPECT_EQ(seen[3].epoch, 1);
  EXPECT_EQ(seen[3].step_in_epoch, 4);
  EXPECT_EQ(seen[3].count, 200 - 3 * 64) << "the short last batch";
  EXPECT_EQ(seen[4].epoch, 2);
  EXPECT_EQ(seen[4].step_in_epoch, 1);
  EXPECT_EQ(seen[4].steps_per_epoch, 4);
  for (const StepReport& r : seen) EXPECT_TRUE(std::isfinite(r.loss) && r.lr > 0);
}

TEST(RunSafety, CompileSummaryAndEvalWriteJson) {
  const CliRun c = run_sat("compile --model lenet5 --batch 8 --json");
  ASSERT_EQ(c.status, 0) << c.out;
  const auto cj = nlohmann::json::parse(c.out);
  EXPECT_EQ(cj["model"], "lenet5");
  EXPECT_EQ(cj["batch"], 8);
  EXPECT_GT(cj["instructions"].get<int64_t>(), 0);
  EXPECT_EQ(cj["total"]["instructions"], cj["instructions"]);
  EXPECT_FALSE(cj["layers"].empty());
  EXPECT_FALSE(cj["memory_map"]["regions"].empty());
  EXPECT_FALSE(cj.contains("stream"));
  const auto dumped = nlohmann::json::parse(run_sat("compile --model lenet5 --batch 8 --json --dump").out);
  EXPECT_EQ(dumped["stream"].size(), cj["instructions"].get<size_t>());

  const CliRun s = run_sat("summary --model lenet5 --json");
  ASSERT_EQ(s.status, 0) << s.out;
  EXPECT_EQ(nlohmann::json::parse(s.out)["model"], "lenet5");

  TempDir tmp;
  ASSERT_EQ(run_sat("train" + kSmall + " --out " + tmp.file("e")).status, 0);
  const CliRun e = run_sat("eval --checkpoint " + tmp.file("e") + "/checkpoint.sat --test-limit 32 --json");
  ASSERT_EQ(e.status, 0) << e.out;
  const auto ej = nlohmann::json::parse(e.out);
  EXPECT_EQ(ej["samples"], 32);
  EXPECT_GE(ej["accuracy"].get<double>(), 0.0);
}

TEST(RunSafety, HelpIsGeneratedFromTheDeclaredFlags) {
  for (const char* cmd : {"train", "eval", "summary", "compile", "replay", "info", "sim", "op gemm", "op prune", "op layer"}) {
    const CliRun r = run_sat(std::string(cmd) + " --help");
    EXPECT_EQ(r.status, 0) << cmd << ":\n" << r.out;
    EXPECT_EQ(r.out.rfind(std::string("usage: sat ") + cmd, 0), 0u) << cmd << ":\n" << r.out;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << cmd << ":\n" << r.out;
  }
  // Every flag the parser accepts is in the help, with its text.
  const CliRun train = run_sat("train --help");
  for (const char* flag : {"--model NAME|PATH", "--force", "--resume", "--stop-after-steps N", "--json"}) {
    EXPECT_NE(train.out.find(flag), std::string::npos) << flag;
  }
  expect_usage_error("train --mod mlp", "unknown flag --mod");   // no abbreviations
}

}  // namespace
}  // namespace sat
