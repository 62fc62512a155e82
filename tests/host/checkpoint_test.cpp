// Checkpoints (round trip, corruption, mismatched models) and the atomic file writer under them.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "temp_dir.hpp"
#include "expect_error.hpp"
#include "sat/checkpoint.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"

using namespace sat;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

std::string model_json(int hidden = 16, const std::string& nm = "2:8") {
  return R"({"name":"t","input":[1,4,4],"classes":3,"nm":")" + nm +
         R"(","recipe":{"epochs":7,"lr":0.1,"seed":99},"layers":[{"type":"flatten"},{"type":"linear","out":)" +
         std::to_string(hidden) + R"(},{"type":"relu"},{"type":"linear","out":3,"nm":"dense"}]})";
}

// Fills every value and momentum with distinct random numbers so a round trip proves each byte.
void randomise(Model& m, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (Param* p : m.params()) {
    for (float& v : p->value) v = n(rng);
    for (float& v : p->momentum) v = n(rng);
    for (float& v : p->grad) v = n(rng);
  }
}

TrainState sample_state() {
  TrainState s;
  s.method = Method::srste;
  s.nm = NM{2, 8};
  s.recipe.epochs = 12;
  s.recipe.lr = 0.0123456789012345;
  s.recipe.schedule = "step";
  s.recipe.seed = 0xfedcba9876543210ull;
  s.epoch = 2;
  s.step_in_epoch = 17;
  s.global_step = 2 * 469 + 17;
  s.epoch_loss_sum = 12.345678901234567;
  s.epoch_correct = 1500;
  s.epoch_seen = 17 * 128;
  s.epoch_seconds = 3.25;
  for (int e = 1; e <= 2; ++e) {
    EpochMetrics m;
    m.epoch = e;
    m.train_loss = 1.0 / e;
    m.train_acc = 0.5 + 0.1 * e;
    m.test_loss = e == 1 ? NAN : 0.7;   // an epoch without a test pass
    m.test_acc = 0.61;
    m.lr = 0.05 / e;
    m.seconds = 10.5;
    m.images_per_s = 5714.2857142857;
    s.history.push_back(m);
  }
  return s;
}

using test::expect_error;

void expect_same_metrics(const EpochMetrics& a, const EpochMetrics& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  auto same = [](double x, double y) { return (std::isnan(x) && std::isnan(y)) || x == y; };
  EXPECT_TRUE(same(a.train_loss, b.train_loss));
  EXPECT_TRUE(same(a.train_acc, b.train_acc));
  EXPECT_TRUE(same(a.test_loss, b.test_loss));
  EXPECT_TRUE(same(a.test_acc, b.test_acc));
  EXPECT_TRUE(same(a.lr, b.lr));
  EXPECT_TRUE(same(a.seconds, b.seconds));
  EXPECT_TRUE(same(a.images_per_s, b.images_per_s));
}

}  // namespace

TEST(CheckpointRoundTrip, ValuesMomentumAndStateAreRestoredExactly) {
  TempDir dir;
  Model saved = Model::from_json_text(model_json(), "t.json");
  randomise(saved, 1);
  const TrainState state = sample_state();
  const std::string path = dir.file("run.ckpt");
  save_checkpoint(path, saved, state);

  Model loaded = Model::from_json_text(model_json(), "t.json");
  randomise(loaded, 2);
  const TrainState got = load_checkpoint(path, loaded);

  const auto ps = saved.params(), pl = loaded.params();
  ASSERT_EQ(ps.size(), pl.size());
  ASSERT_GT(ps.size(), 0u);
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(pl[i]->name, ps[i]->name);
    EXPECT_EQ(pl[i]->value, ps[i]->value) << ps[i]->name;
    EXPECT_EQ(pl[i]->momentum, ps[i]->momentum) << ps[i]->name;
    for (float g : pl[i]->grad) ASSERT_EQ(g, 0.0f);
  }
  EXPECT_EQ(got.method, state.method);
  EXPECT_EQ(got.nm, state.nm);
  EXPECT_EQ(got.recipe.epochs, 12);
  EXPECT_EQ(got.recipe.lr, state.recipe.lr);
  EXPECT_EQ(got.recipe.schedule, "step");
  EXPECT_EQ(got.recipe.seed, state.recipe.seed);
  EXPECT_EQ(got.recipe.momentum, state.recipe.momentum);
  EXPECT_EQ(got.recipe.weight_decay, state.recipe.weight_decay);
  EXPECT_EQ(got.recipe.srste_lambda, state.recipe.srste_lambda);
  EXPECT_EQ(got.recipe.batch, state.recipe.batch);
  EXPECT_EQ(got.recipe.step_every, state.recipe.step_every);
  EXPECT_EQ(got.recipe.step_gamma, state.recipe.step_gamma);
  EXPECT_EQ(got.recipe.warmup_epochs, state.recipe.warmup_epochs);
  EXPECT_EQ(got.epoch, state.epoch);
  EXPECT_EQ(got.step_in_epoch, state.step_in_epoch);
  EXPECT_EQ(got.global_step, state.global_step);
  EXPECT_EQ(got.epoch_loss_sum, state.epoch_loss_sum);
  EXPECT_EQ(got.epoch_correct, state.epoch_correct);
  EXPECT_EQ(got.epoch_seen, state.epoch_seen);
  EXPECT_EQ(got.epoch_seconds, state.epoch_seconds);
  ASSERT_EQ(got.history.size(), state.history.size());
  for (size_t i = 0; i < got.history.size(); ++i) expect_same_metrics(got.history[i], state.history[i]);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"run.ckpt"});
}

TEST(CheckpointRoundTrip, ModelRebuildsFromTheCheckpointAlone) {
  TempDir dir;
  // The run overrode the file's nm (2:8) with 1:4; the rebuilt model must carry the override.
  Model saved = Model::from_json_text(model_json(), "t.json", NM{1, 4});
  randomise(saved, 3);
  TrainState st = sample_state();
  st.nm = NM{1, 4};
  save_checkpoint(dir.file("a.ckpt"), saved, st);

  const CheckpointInfo info = read_checkpoint_info(dir.file("a.ckpt"));
  EXPECT_EQ(info.model_name, "t");
  EXPECT_EQ(info.model_source, model_json());
  EXPECT_EQ(info.model_nm, (NM{1, 4}));
  EXPECT_EQ(info.state.method, Method::srste);
  EXPECT_EQ(info.state.nm, (NM{1, 4}));
  EXPECT_EQ(checkpoint_model_source(dir.file("a.ckpt")), model_json());

  Model rebuilt = Model::from_json_text(checkpoint_model_source(dir.file("a.ckpt")), dir.file("a.ckpt"), info.model_nm);
  load_checkpoint(dir.file("a.ckpt"), rebuilt);
  EXPECT_EQ(rebuilt.nm, (NM{1, 4}));
  for (size_t i = 0; i < saved.params().size(); ++i) {
    EXPECT_EQ(rebuilt.params()[i]->value, saved.params()[i]->value);
  }
  rebuilt.regenerate(info.state.method);   // the caller's step after loading
}

TEST(CheckpointRoundTrip, ModelBuiltInCodeHasNoSource) {
  TempDir dir;
  Model m = Model::from_json_text(model_json(), "t.json");
  m.source.clear();
  save_checkpoint(dir.file("c.ckpt"), m, TrainState{});
  expect_error([&] { checkpoint_model_source(dir.file("c.ckpt")); }, {"holds no model source"});
  Model m2 = Model::from_json_text(model_json(), "t.json");
  EXPECT_NO_THROW(load_checkpoint(dir.file("c.ckpt"), m2));
}

TEST(CheckpointRoundTrip, OverwritesAnExistingCheckpoint) {
  TempDir dir;
  Model m = Model::from_json_text(model_json(), "t.json");
  TrainState st;
  st.epoch = 1;
  save_checkpoint(dir.file("x.ckpt"), m, st);
  st.epoch = 2;
  save_checkpoint(dir.file("x.ckpt"), m, st);
  EXPECT_EQ(load_checkpoint(dir.file("x.ckpt"), m).epoch, 2);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"x.ckpt"});
}

TEST(CheckpointCorrupt, FlippedByteIsRefused) {
  TempDir dir;
  Model m = Model::from_json_text(model_json(), "t.json");
  randomise(m, 4);
  save_checkpoint(dir.file("a.ckpt"), m, sample_state());
  const std::string good = read_file(dir.file("a.ckpt"));
  // One byte in the JSON header, one in the weights, one in the checksum itself.
  for (size_t at : {size_t{40}, good.size() / 2, good.size() - 4 + 1}) {
    std::string bad = good;
    bad[at] ^= 0x10;
    atomic_write_file(dir.file("bad.ckpt"), bad);
    Model target = Model::from_json_text(model_json(), "t.json");
    const auto before = target.params()[0]->value;
    expect_error([&] { load_checkpoint(dir.file("bad.ckpt"), target); },
                 {dir.file("bad.ckpt"), "is corrupt: checksum mismatch"});
    EXPECT_EQ(target.params()[0]->value, before) << "a refused checkpoint must not change the model";
  }
}

TEST(CheckpointCorrupt, TruncatedFileIsRefused) {
  TempDir dir;
  Model m = Model::from_json_text(model_json(), "t.json");
  save_checkpoint(dir.file("a.ckpt"), m, sample_state());
  const std::string good = read_file(dir.file("a.ckpt"));
  for (size_t keep : {good.size() - 1, good.size() / 2, size_t{20}}) {
    atomic_write_file(dir.file("t.ckpt"), good.substr(0, keep));
    expect_error([&] { load_checkpoint(dir.file("t.ckpt"), m); }, {dir.file("t.ckpt"), "truncated"});
  }
  atomic_write_file(dir.file("long.ckpt"), good + "x");
  expect_error([&] { load_checkpoint(dir.file("long.ckpt"), m); }, {"corrupt"});
}

TEST(CheckpointCorrupt, WrongMagicAndVersionAndMissingFile) {
  TempDir dir;
  atomic_write_file(dir.file("n.ckpt"), "PK\x03\x04 not a checkpoint at all, but long enough for a prefix");
  Model m = Model::from_json_text(model_json(), "t.json");
  expect_error([&] { load_checkpoint(dir.file("n.ckpt"), m); }, {dir.file("n.ckpt"), "not a SAT checkpoint"});

  save_checkpoint(dir.file("a.ckpt"), m, TrainState{});
  std::string v2 = read_file(dir.file("a.ckpt"));
  v2[8] = 2;
  atomic_write_file(dir.file("v2.ckpt"), v2);
  expect_error([&] { load_checkpoint(dir.file("v2.ckpt"), m); }, {"format version 2", "reads version 1"});

  expect_error([&] { load_checkpoint(dir.file("absent.ckpt"), m); }, {dir.file("absent.ckpt"), "No such file"});
}

TEST(CheckpointMismatch, DifferentShapeIsRefused) {
  TempDir dir;
  Model m16 = Model::from_json_text(model_json(16), "t.json");
  save_checkpoint(dir.file("a.ckpt"), m16, TrainState{});
  Model m32 = Model::from_json_text(model_json(32), "t.json");
  const auto before = m32.params()[0]->value;
  const std::string name = m32.params()[0]->name;
  expect_error([&] { load_checkpoint(dir.file("a.ckpt"), m32); },
               {"parameter " + name + " has shape [16, 16] in the checkpoint but [32, 16] in the model"});
  EXPECT_EQ(m32.params()[0]->value, before);
}

TEST(CheckpointMismatch, MissingOrExtraParametersAreRefused) {
  TempDir dir;
  // Both models have "head" with the same shape; only the big one has "fc1".
  const std::string small_json =
      R"({"name":"s","input":[1,4,4],"classes":3,"layers":[{"type":"flatten"},)"
      R"({"type":"linear","out":3,"name":"head"}]})";
  const std::string big_json =
      R"({"name":"b","input":[1,4,4],"classes":3,"layers":[{"type":"flatten"},)"
      R"({"type":"linear","out":16,"name":"fc1"},{"type":"relu"},{"type":"linear","out":3,"name":"head"}]})";
  Model small = Model::from_json_text(small_json, "s.json");
  Model big = Model::from_json_text(big_json, "b.json");
  save_checkpoint(dir.file("small.ckpt"), small, TrainState{});
  save_checkpoint(dir.file("big.ckpt"), big, TrainState{});
  expect_error([&] { load_checkpoint(dir.file("small.ckpt"), big); },
               {"does not match the model", "parameter fc1.", "is in the model but not in the checkpoint"});
  expect_error([&] { load_checkpoint(dir.file("big.ckpt"), small); },
               {"does not match the model", "parameter fc1.", "is in the checkpoint but not in the model"});
}

TEST(IoAtomicWrite, MissingDirectoryFailsCleanly) {
  TempDir dir;
  const std::string target = dir.file("no-such-dir/run.ckpt");
  expect_error([&] { atomic_write_file(target, "data"); }, {target, "No such file or directory"});
  Model m = Model::from_json_text(model_json(), "t.json");
  expect_error([&] { save_checkpoint(target, m, TrainState{}); }, {target});
  EXPECT_TRUE(dir.entries().empty());
}

TEST(IoAtomicWrite, OnlyARegularFileIsReplaced) {
  TempDir dir;
  // A directory, a symbolic link (even to a regular file), a FIFO and a device node are refused by
  // name and left as they are, with no temporary file behind.
  fs::create_directory(dir.file("target"));
  atomic_write_file(dir.file("target/keep"), "x");
  expect_error([&] { atomic_write_file(dir.file("target"), "payload"); }, {dir.file("target"), "is a directory"});
  EXPECT_EQ(read_file(dir.file("target/keep")), "x");
  atomic_write_file(dir.file("real"), "real");
  fs::create_symlink(dir.file("real"), dir.file("link"));
  expect_error([&] { atomic_write_file(dir.file("link"), "payload"); }, {dir.file("link"), "is a symbolic link"});
  EXPECT_TRUE(fs::is_symlink(dir.file("link")));
  EXPECT_EQ(read_file(dir.file("real")), "real");
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  expect_error([&] { atomic_write_file(dir.file("fifo"), "payload"); }, {dir.file("fifo"), "is a FIFO"});
  EXPECT_TRUE(fs::is_fifo(dir.file("fifo")));
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"fifo", "link", "real", "target"}));
  // The device node of the report: /dev/full stays a character device.
  expect_error([&] { atomic_write_file("/dev/full", "payload"); }, {"/dev/full", "is a character device"});
  EXPECT_TRUE(fs::is_character_file("/dev/full"));
}

TEST(IoAtomicWrite, ReplacesContentWhole) {
  TempDir dir;
  atomic_write_file(dir.file("f"), std::string(100000, 'a'));
  atomic_write_file(dir.file("f"), "short");
  EXPECT_EQ(read_file(dir.file("f")), "short");
  atomic_write_file(dir.file("empty"), "");
  EXPECT_EQ(read_file(dir.file("empty")), "");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"empty", "f"}));
  expect_error([&] { read_file(dir.file("absent")); }, {dir.file("absent"), "No such file"});
  expect_error([&] { read_file(dir.path()); }, {"directory"});
}

TEST(IoChecksum, Crc32MatchesTheStandardCheckValue) {
  // The CRC-32/ISO-HDLC check value of "123456789".
  EXPECT_EQ(checksum_crc32("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(checksum_crc32("56789", 5, checksum_crc32("1234", 4)), 0xCBF43926u);
  EXPECT_EQ(checksum_crc32("", 0), 0u);
}

TEST(IoGzip, RoundTripThroughReadMaybeGzip) {
  TempDir dir;
  std::string payload;
  for (int i = 0; i < 100000; ++i) payload += static_cast<char>(i * 7 % 251);
  atomic_write_file(dir.file("p.gz"), gzip_compress(payload));
  atomic_write_file(dir.file("p"), payload);
  EXPECT_EQ(read_maybe_gzip(dir.file("p.gz")), payload);
  EXPECT_EQ(read_maybe_gzip(dir.file("p")), payload);
  EXPECT_EQ(read_maybe_gzip(dir.file("p.gz"), 10), payload.substr(0, 10));
}
