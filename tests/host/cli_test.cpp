// `sat train`, `sat eval` and `sat summary` as a user runs them: every bad flag or file ends with a
// non-zero exit and a message that names the problem; the happy paths print what they promise.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "backend_built.hpp"
#include "run_cli.hpp"
#include "sat/io.hpp"

namespace {

using sat::test::CliRun;
using sat::test::expect_cli_error;
using sat::test::expect_usage_error;
using sat::test::run_sat;

std::string tmp(const std::string& name) {
  const std::string d = std::string(SAT_BINARY_DIR) + "/cli-tmp";
  std::filesystem::create_directories(d);
  return d + "/" + name;
}

}  // namespace

TEST(Cli, UsageAndUnknownCommand) {
  EXPECT_EQ(run_sat("--help").status, 0);
  expect_usage_error("", "usage: sat");
  expect_usage_error("trian", "unknown command 'trian'");
  for (const char* c : {"train", "eval", "summary", "op"}) {
    const CliRun r = run_sat(std::string(c) + " --help");
    EXPECT_EQ(r.status, 0) << c;
    EXPECT_NE(r.out.find("usage: sat"), std::string::npos) << c << ":\n" << r.out;
  }
}

TEST(Cli, TrainRejectsBadFlags) {
  expect_usage_error("train", "missing required flag --model");
  expect_cli_error("train --model nosuchmodel", "no model named 'nosuchmodel'");
  expect_cli_error("train --model /nonexistent.json", "cannot open model file");
  expect_usage_error("train --model mlp --frobnicate", "unknown flag --frobnicate");
  expect_usage_error("train --model mlp --epochs", "flag --epochs needs a value");
  expect_usage_error("train --model mlp --epochs two", "--epochs expects an integer, got 'two'");
  expect_usage_error("train --model mlp --epochs 0", "--epochs must be between 1 and 2147483647, got 0");
  expect_usage_error("train --model mlp --batch -3", "--batch must be between 1 and 65535, got -3");
  // Numeric flags are 64-bit and range-checked, never wrapped (4294967297 once ran one epoch,
  // 99999999999 a batch of 1215752191).
  expect_usage_error("train --model mlp --epochs 4294967297", "--epochs must be between 1 and 2147483647, got 4294967297");
  expect_usage_error("train --model mlp --batch 99999999999", "--batch must be between 1 and 65535, got 99999999999");
  expect_usage_error("train --model mlp --seed 99999999999999999999", "--seed is out of range: 99999999999999999999");
  expect_usage_error("train --model mlp --stop-after-steps -1", "--stop-after-steps must be between 0 and");
  expect_usage_error("train --model mlp --lr 0", "--lr must be > 0");
  expect_usage_error("train --model mlp --lr fast", "--lr expects a number");
  expect_usage_error("train --model mlp --momentum 1.5", "--momentum must be in [0, 1)");
  expect_usage_error("train --model mlp --weight-decay -1", "--weight-decay must be >= 0");
  expect_usage_error("train --model mlp --srste-lambda -1", "--srste-lambda must be >= 0");
  expect_usage_error("train --model mlp --schedule linear", "--schedule must be cosine, step or constant");
  expect_usage_error("train --model mlp --method sparse", "unknown training method 'sparse'");
  expect_usage_error("train --model mlp --nm 2:7", "not in the supported set");
  expect_usage_error("train --model mlp --nm two", "is not of the form N:M");
  expect_cli_error("train --model mlp --backend tpu", "unknown backend 'tpu'");
  expect_cli_error("train --model mlp --backend fpga", sat::test::fpga_unopened_error());
  expect_usage_error("train --model mlp --data imagenet", "--data must be fashion-mnist or synthetic");
  expect_cli_error("train --model mlp --data-dir /nonexistent", "dataset-fashion-mnist");
  expect_usage_error("train --model mlp --threads -1", "--threads must be between 0 and 1024, got -1");
  expect_usage_error("train --model mlp --train-limit -5 --data synthetic", "--train-limit must be between 0 and");
  expect_usage_error("train --model mlp --resume", "--resume needs --out");
  expect_usage_error("train --model mlp --resume --out " + tmp("no-run"), "no checkpoint at");
  expect_usage_error("train --model mlp --json=yes", "flag --json takes no value");
  expect_usage_error("train --model mlp --epochs 1 --epochs 2", "given twice");
  expect_usage_error("train --model mlp stray", "unexpected argument 'stray'");
}

TEST(Cli, TrainSyntheticRunWritesOutputs) {
  const std::string out = tmp("synthetic-run");
  std::filesystem::remove_all(out);
  const CliRun r = run_sat("train --model mlp --data synthetic --train-limit 256 --test-limit 128 "
                    "--epochs 2 --batch 64 --no-progress --out " + out);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("epoch 2/2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("result: mlp bdwp 2:8 on cpu"), std::string::npos) << r.out;
  for (const char* f : {"metrics.csv", "metrics.json", "curves.svg", "checkpoint.sat"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  }
  // Resuming a finished run with more epochs continues from epoch 3; a different method is refused.
  expect_usage_error("train --resume --out " + out + " --method dense --data synthetic",
               "trained with --method bdwp");
  const CliRun more = run_sat("train --resume --out " + out + " --epochs 3 --data synthetic "
                       "--train-limit 256 --test-limit 128 --no-progress");
  ASSERT_EQ(more.status, 0) << more.out;
  EXPECT_NE(more.out.find("resuming mlp at epoch 3"), std::string::npos) << more.out;
  EXPECT_NE(more.out.find("epoch 3/3"), std::string::npos) << more.out;
  // --model names the checkpoint's model or is refused (it once resumed the checkpoint's silently).
  expect_usage_error("train --resume --model lenet5 --out " + out + " --data synthetic",
                   "holds model 'mlp', not 'lenet5' (--model)");
}

// --stop-after-steps below the step a resumed run is at trains nothing (it once ran one more step).
TEST(Cli, StopAfterStepsAtOrPastItTrainsNothing) {
  const std::string out = tmp("stop-run");
  std::filesystem::remove_all(out);
  const std::string data = " --data synthetic --train-limit 128 --test-limit 32 --batch 16 --no-progress";
  const CliRun first = run_sat("train --model mlp --epochs 1 --stop-after-steps 5 --out " + out + data);
  ASSERT_EQ(first.status, 0) << first.out;
  EXPECT_NE(first.out.find("stopped at step 5"), std::string::npos) << first.out;
  const std::string before = sat::read_file(out + "/checkpoint.sat");
  const CliRun again = run_sat("train --resume --stop-after-steps 3 --out " + out + data);
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_NE(again.out.find("already at step 5, at or past --stop-after-steps 3: nothing to train"), std::string::npos)
      << again.out;
  EXPECT_EQ(sat::read_file(out + "/checkpoint.sat"), before) << "the checkpoint changed";
}

// A model's name is one component of the default run folder: "../../../escaped" stays in runs/.
TEST(Cli, DefaultRunFolderStaysInsideRuns) {
  const std::string dir = tmp("name-escape");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  sat::atomic_write_file(dir + "/esc.json",
                         R"({"name": "../../../escaped", "input": [1, 28, 28], "classes": 10,
                             "layers": [{"type": "flatten"}, {"type": "linear", "out": 10}]})");
  const CliRun r = run_sat("train --model " + dir + "/esc.json --epochs 1 --data synthetic --train-limit 64 "
                           "--test-limit 32 --no-progress", dir);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir + "/runs/.._.._.._escaped-bdwp-1x1/checkpoint.sat")) << r.out;
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir).parent_path().parent_path().parent_path() /
                                       "escaped-bdwp-1x1"));
}

TEST(Cli, EvalRefusesCorruptAndMissingCheckpoints) {
  expect_usage_error("eval", "missing required flag --checkpoint");
  expect_cli_error("eval --checkpoint " + tmp("missing.sat"), "missing.sat");
  const std::string out = tmp("eval-run");
  std::filesystem::remove_all(out);
  ASSERT_EQ(run_sat("train --model mlp --data synthetic --train-limit 128 --test-limit 64 --epochs 1 "
                "--no-progress --out " + out).status, 0);
  const std::string ckpt = out + "/checkpoint.sat";
  const std::string bad = tmp("corrupt.sat");
  std::filesystem::copy_file(ckpt, bad, std::filesystem::copy_options::overwrite_existing);
  {
    std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(bad) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(bad) / 2));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  expect_cli_error("eval --checkpoint " + bad, "corrupt");
  expect_usage_error("eval --checkpoint " + ckpt + " --batch 0", "--batch must be between 1 and 65535, got 0");
}

TEST(Cli, SummaryShowsFlopsAndSparsity) {
  const CliRun r = run_sat("summary --model lenet5");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("dense (K 9 % 8 != 0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2:8 FF+BP"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FLOP ceiling"), std::string::npos) << r.out;
  const CliRun j = run_sat("summary --model mlp --json --nm 1:8");
  ASSERT_EQ(j.status, 0) << j.out;
  EXPECT_NE(j.out.find("\"step_speedup_ceiling\""), std::string::npos) << j.out;
  expect_usage_error("summary", "missing required flag --model");
  expect_usage_error("summary --model lenet5 --method fast", "unknown training method");
  expect_usage_error("summary --model lenet5 --nm 0:8", "need 1 <= N <= M");
}
