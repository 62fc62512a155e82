// Data loading: IDX parsing and validation, the Debian Fashion-MNIST, model-shaped batches,
// synthetic data and the epoch order.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#include "temp_dir.hpp"
#include "expect_error.hpp"
#include "sat/data.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"

using namespace sat;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
using test::TempDir;

void be32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((v >> s) & 0xff);
}

std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols, const std::vector<uint8_t>& pixels) {
  std::string out;
  be32(out, 0x00000803);
  be32(out, count);
  be32(out, rows);
  be32(out, cols);
  out.append(pixels.begin(), pixels.end());
  return out;
}

std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string out;
  be32(out, 0x00000801);
  be32(out, static_cast<uint32_t>(labels.size()));
  out.append(labels.begin(), labels.end());
  return out;
}

std::vector<uint8_t> ramp(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  return v;
}

float norm(uint8_t p) { return (static_cast<float>(p) / 255.0f - kFashionMnistMean) / kFashionMnistStd; }

using test::expect_error;

// A small data set written as gzip IDX files.
struct IdxFiles {
  TempDir dir;
  std::string images = dir.file("img.gz"), labels = dir.file("lbl.gz");
  IdxFiles(const std::string& img, const std::string& lbl) {
    atomic_write_file(images, gzip_compress(img));
    atomic_write_file(labels, gzip_compress(lbl));
  }
};

std::shared_ptr<Dataset> make_dataset(int64_t count, int64_t rows, int64_t cols) {
  auto d = std::make_shared<Dataset>();
  d->name = "test";
  d->count = count, d->rows = rows, d->cols = cols, d->classes = 10;
  d->images = ramp(static_cast<size_t>(count * rows * cols));
  for (int64_t i = 0; i < count; ++i) d->labels.push_back(static_cast<uint8_t>(i % 10));
  return d;
}

}  // namespace

TEST(IdxLoad, HappyPathGzip) {
  const auto px = ramp(3 * 4 * 5);
  IdxFiles f(idx_images(3, 4, 5, px), idx_labels({7, 0, 9}));
  const Dataset d = load_idx(f.images, f.labels);
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.rows, 4);
  EXPECT_EQ(d.cols, 5);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.images, px);
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{7, 0, 9}));
}

TEST(IdxLoad, HappyPathUncompressed) {
  TempDir dir;
  const auto px = ramp(2 * 3 * 3);
  atomic_write_file(dir.file("img"), idx_images(2, 3, 3, px));
  atomic_write_file(dir.file("lbl"), idx_labels({1, 2}));
  const Dataset d = load_idx(dir.file("img"), dir.file("lbl"), 3);
  EXPECT_EQ(d.images, px);
  EXPECT_EQ(d.classes, 3);
  EXPECT_EQ(d.name, "img");
}

TEST(IdxLoad, WrongMagic) {
  IdxFiles f(idx_images(1, 2, 2, ramp(4)), idx_labels({1}));
  // The files swapped: each has the other's magic.
  expect_error([&] { load_idx(f.labels, f.images); },
               {f.labels, "wrong magic 0x00000801, expected 0x00000803 (IDX images)"});
  IdxFiles g(idx_images(1, 2, 2, ramp(4)), idx_images(1, 2, 2, ramp(4)));
  expect_error([&] { load_idx(g.images, g.labels); }, {g.labels, "wrong magic 0x00000803, expected 0x00000801"});
}

TEST(IdxLoad, Truncated) {
  std::string img = idx_images(10, 28, 28, ramp(10 * 784));
  img.resize(1000);
  IdxFiles f(img, idx_labels(std::vector<uint8_t>(10, 1)));
  expect_error([&] { load_idx(f.images, f.labels); }, {f.images, "truncated: expected 7856 bytes", "got 1000"});

  IdxFiles h(idx_images(1, 2, 2, ramp(4)).substr(0, 10), idx_labels({1}));
  expect_error([&] { load_idx(h.images, h.labels); }, {h.images, "truncated", "16-byte IDX header"});
}

TEST(IdxLoad, DamagedGzipStream) {
  TempDir dir;
  const std::string gz = gzip_compress(idx_images(50, 28, 28, ramp(50 * 784)));
  atomic_write_file(dir.file("img.gz"), gz.substr(0, gz.size() / 2));
  atomic_write_file(dir.file("lbl.gz"), gzip_compress(idx_labels(std::vector<uint8_t>(50, 1))));
  expect_error([&] { load_idx(dir.file("img.gz"), dir.file("lbl.gz")); }, {dir.file("img.gz")});
}

TEST(IdxLoad, TrailingData) {
  IdxFiles f(idx_images(1, 2, 2, ramp(4)) + "xx", idx_labels({1}));
  expect_error([&] { load_idx(f.images, f.labels); }, {f.images, "longer than its header says"});
}

TEST(IdxLoad, CountMismatch) {
  IdxFiles f(idx_images(3, 2, 2, ramp(12)), idx_labels({1, 2}));
  expect_error([&] { load_idx(f.images, f.labels); }, {f.images, f.labels, "3 images", "2 labels"});
}

TEST(IdxLoad, BadLabel) {
  IdxFiles f(idx_images(3, 2, 2, ramp(12)), idx_labels({1, 10, 2}));
  expect_error([&] { load_idx(f.images, f.labels); }, {f.labels, "label 10 of sample 1", "10"});
  EXPECT_NO_THROW(load_idx(f.images, f.labels, 11));
}

TEST(IdxLoad, BadDimensions) {
  IdxFiles f(idx_images(0, 2, 2, {}), idx_labels({}));
  expect_error([&] { load_idx(f.images, f.labels); }, {f.images, "dimension 0", "positive"});
  IdxFiles g(idx_images(0xfffffff0u, 0x7ffffff0u, 2, {}), idx_labels({}));
  expect_error([&] { load_idx(g.images, g.labels); }, {g.images});
}

TEST(IdxLoad, MissingFile) {
  TempDir dir;
  expect_error([&] { load_idx(dir.file("nope.gz"), dir.file("nope2.gz")); }, {dir.file("nope.gz")});
}

TEST(DataFashionMnist, MissingDirectorySaysHowToInstall) {
  TempDir dir;
  expect_error([&] { load_fashion_mnist(true, dir.file("absent")); },
               {"train-images-idx3-ubyte.gz", "dataset-fashion-mnist", "scripts/install-deps.sh"});
}

TEST(DataFashionMnist, DataDirFromEnvironment) {
  TempDir dir;
  const char* old = std::getenv("SAT_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("SAT_DATA_DIR", dir.file("x").c_str(), 1);
  EXPECT_EQ(default_data_dir(), dir.file("x"));
  expect_error([&] { load_fashion_mnist(false); }, {dir.file("x") + "/t10k-images-idx3-ubyte.gz"});
  if (old) ::setenv("SAT_DATA_DIR", saved.c_str(), 1);
  else ::unsetenv("SAT_DATA_DIR");
}

TEST(DataFashionMnist, RealDebianPackage) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  struct stat st{};
  if (::stat((dir + "/train-images-idx3-ubyte.gz").c_str(), &st) != 0) {
    GTEST_SKIP() << dir << " is absent (Debian package dataset-fashion-mnist not installed)";
  }
  for (bool train : {true, false}) {
    const Dataset d = load_fashion_mnist(train, dir);
    const int64_t n = train ? 60000 : 10000;
    EXPECT_EQ(d.name, train ? "fashion-mnist/train" : "fashion-mnist/test");
    ASSERT_EQ(d.count, n);
    EXPECT_EQ(d.rows, 28);
    EXPECT_EQ(d.cols, 28);
    EXPECT_EQ(d.classes, 10);
    ASSERT_EQ(d.images.size(), static_cast<size_t>(n * 784));
    // The splits are balanced: every class has a tenth of the samples.
    std::vector<int64_t> per_class(10);
    for (uint8_t l : d.labels) per_class.at(l)++;
    for (int64_t c : per_class) EXPECT_EQ(c, n / 10);
    if (train) {
      // The normalisation constants are this split's statistics.
      double sum = 0, sq = 0;
      for (uint8_t p : d.images) sum += p / 255.0, sq += (p / 255.0) * (p / 255.0);
      const double mean = sum / d.images.size(), sd = std::sqrt(sq / d.images.size() - mean * mean);
      EXPECT_NEAR(mean, kFashionMnistMean, 5e-4);
      EXPECT_NEAR(sd, kFashionMnistStd, 5e-4);
    }
  }
}

TEST(DataImageSource, PadsCentredAndReplicatesChannels) {
  auto d = make_dataset(3, 28, 28);
  auto src = make_image_source(d, {3, 32, 32});
  EXPECT_EQ(src->size(), 3);
  EXPECT_EQ(src->classes(), 10);
  EXPECT_EQ(src->sample_shape(), (Shape{3, 32, 32}));
  const int64_t idx[] = {2, 0};
  Tensor x;
  std::vector<int> y;
  src->batch(idx, 2, x, y);
  ASSERT_EQ(x.shape(), (Shape{2, 3, 32, 32}));
  EXPECT_EQ(y, (std::vector<int>{2, 0}));
  const auto v = x.to_f32();
  const float pad = round_bf16(-kFashionMnistMean / kFashionMnistStd);
  for (int b = 0; b < 2; ++b) {
    const uint8_t* img = d->images.data() + idx[b] * 784;
    for (int c = 0; c < 3; ++c) {
      for (int r = 0; r < 32; ++r) {
        for (int col = 0; col < 32; ++col) {
          const float got = v[((b * 3 + c) * 32 + r) * 32 + col];
          const bool inside = r >= 2 && r < 30 && col >= 2 && col < 30;
          const float want = inside ? round_bf16(norm(img[(r - 2) * 28 + (col - 2)])) : pad;
          ASSERT_EQ(got, want) << "b " << b << " c " << c << " r " << r << " col " << col;
        }
      }
    }
  }
}

TEST(DataImageSource, OddPaddingPutsTheExtraPixelAfter) {
  auto d = make_dataset(1, 2, 2);
  auto src = make_image_source(d, {1, 5, 3});
  const int64_t idx[] = {0};
  Tensor x;
  std::vector<int> y;
  src->batch(idx, 1, x, y);
  const auto v = x.to_f32();
  const float pad = round_bf16(norm(0));
  // Rows: 1 before, 2 after; cols: 0 before, 1 after.
  for (int r = 0; r < 5; ++r) {
    for (int c = 0; c < 3; ++c) {
      const bool inside = r >= 1 && r < 3 && c < 2;
      const float want = inside ? round_bf16(norm(d->images[(r - 1) * 2 + c])) : pad;
      EXPECT_EQ(v[r * 3 + c], want) << r << "," << c;
    }
  }
}

TEST(DataImageSource, FlatAndTwoDimensionalInputs) {
  auto d = make_dataset(2, 28, 28);
  const int64_t idx[] = {1};
  Tensor x;
  std::vector<int> y;
  make_image_source(d, {784})->batch(idx, 1, x, y);
  ASSERT_EQ(x.shape(), (Shape{1, 784}));
  const auto flat = x.to_f32();
  for (int i = 0; i < 784; ++i) ASSERT_EQ(flat[i], round_bf16(norm(d->images[784 + i])));
  make_image_source(d, {28, 28})->batch(idx, 1, x, y);
  ASSERT_EQ(x.shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(x.to_f32(), flat);
}

TEST(DataImageSource, ImpossibleShapesNameBothShapes) {
  auto d = make_dataset(1, 28, 28);
  expect_error([&] { make_image_source(d, {100}); }, {"[100]", "[28, 28]", "784"});
  expect_error([&] { make_image_source(d, {1, 1, 28, 28}); }, {"[1, 1, 28, 28]", "[28, 28]"});
  expect_error([&] { make_image_source(d, {1, 0, 28}); }, {"[1, 0, 28]", "[28, 28]"});
  expect_error([&] { make_image_source(d, {}); }, {"[]", "[28, 28]"});
}

TEST(DataImageSource, ResizesDownBilinearly) {
  // 4x4 -> 2x2 at half-pixel centres samples at 0.5 and 2.5: the mean of each 2x2 block.
  auto d = make_dataset(1, 4, 4);
  d->images = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150};
  const int64_t idx[] = {0};
  Tensor x;
  std::vector<int> y;
  {
    NumericsScope exact(Numerics::fp32);
    make_image_source(d, {1, 2, 2})->batch(idx, 1, x, y);
  }
  const auto v = x.to_f32();
  const float blocks[4] = {25, 45, 105, 125};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(v[i], (blocks[i] / 255.0f - kFashionMnistMean) / kFashionMnistStd, 1e-5);

  // 28 -> 14 halves too; a constant image stays constant at any size.
  auto c = make_dataset(1, 28, 28);
  std::fill(c->images.begin(), c->images.end(), 200);
  for (Shape s : {Shape{1, 14, 14}, Shape{2, 11, 17}, Shape{1, 32, 20}}) {
    NumericsScope exact(Numerics::fp32);
    make_image_source(c, s)->batch(idx, 1, x, y);
    const auto w = x.to_f32();
    for (int64_t r = 0; r < s[1]; ++r) {
      for (int64_t col = 0; col < s[2]; ++col) {
        const bool pad_row = s[1] > 28 && (r < (s[1] - 28) / 2 || r >= (s[1] - 28) / 2 + 28);
        const float want = pad_row ? norm(0) : norm(200);
        ASSERT_NEAR(w[r * s[2] + col], want, 1e-5) << shape_str(s) << " " << r << "," << col;
      }
    }
  }
}

TEST(DataImageSource, RejectsOutOfRangeIndices) {
  auto src = make_image_source(make_dataset(3, 28, 28), {1, 28, 28});
  const int64_t idx[] = {0, 3};
  Tensor x;
  std::vector<int> y;
  expect_error([&] { src->batch(idx, 2, x, y); }, {"sample index 3", "[0, 3)"});
}

TEST(DataImageSource, BatchIsFast) {
  auto src = make_image_source(make_dataset(1000, 28, 28), {3, 32, 32});
  std::vector<int64_t> idx(128);
  std::iota(idx.begin(), idx.end(), 100);
  Tensor x;
  std::vector<int> y;
  src->batch(idx.data(), 128, x, y);
  const auto t0 = std::chrono::steady_clock::now();
  const int reps = 20;
  for (int i = 0; i < reps; ++i) src->batch(idx.data(), 128, x, y);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  RecordProperty("batch_ms", std::to_string(ms));
  // A training step on the CPU takes far longer; this only catches an accidental slow path.
  EXPECT_LT(ms, 50.0);
}

TEST(DataSynthetic, DeterministicPerSample) {
  auto a = make_synthetic_source({3, 8, 8}, 10, 1000, 42);
  auto b = make_synthetic_source({3, 8, 8}, 10, 1000, 42);
  auto c = make_synthetic_source({3, 8, 8}, 10, 1000, 43);
  EXPECT_EQ(a->size(), 1000);
  EXPECT_EQ(a->classes(), 10);
  EXPECT_EQ(a->sample_shape(), (Shape{3, 8, 8}));
  const int64_t i1[] = {5, 17, 999}, i2[] = {17};
  Tensor xa, xb, xc, x17;
  std::vector<int> ya, yb, yc, y17;
  a->batch(i1, 3, xa, ya);
  b->batch(i1, 3, xb, yb);
  c->batch(i1, 3, xc, yc);
  a->batch(i2, 1, x17, y17);
  ASSERT_EQ(xa.shape(), (Shape{3, 3, 8, 8}));
  EXPECT_EQ(xa.to_f32(), xb.to_f32());
  EXPECT_EQ(ya, yb);
  EXPECT_NE(xa.to_f32(), xc.to_f32());
  // A sample is the same wherever it sits in a batch.
  const auto va = xa.to_f32(), v17 = x17.to_f32();
  EXPECT_TRUE(std::equal(v17.begin(), v17.end(), va.begin() + 192));
  EXPECT_EQ(y17[0], ya[1]);
}

TEST(DataSynthetic, StandardNormalInputsAndUniformLabels) {
  auto s = make_synthetic_source({25}, 7, 4000, 1);
  std::vector<int64_t> idx(4000);
  std::iota(idx.begin(), idx.end(), 0);
  Tensor x;
  std::vector<int> y;
  {
    NumericsScope exact(Numerics::fp32);
    s->batch(idx.data(), 4000, x, y);
  }
  const auto v = x.to_f32();
  double sum = 0, sq = 0;
  for (float f : v) sum += f, sq += double(f) * f;
  const double mean = sum / v.size(), var = sq / v.size() - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.03);
  std::vector<int> per(7);
  for (int l : y) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, 7);
    per[l]++;
  }
  for (int c : per) EXPECT_NEAR(c, 4000 / 7.0, 120);
  expect_error([&] { make_synthetic_source({}, 10, 5, 1); }, {"sample shape"});
}

TEST(DataEpochOrder, PermutationThatDependsOnSeedAndEpoch) {
  const auto o1 = epoch_order(1000, 7, 1);
  std::vector<int64_t> sorted = o1;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(epoch_order(1000, 7, 1), o1);        // a pure function: a resumed run sees the same
  EXPECT_NE(epoch_order(1000, 7, 2), o1);
  EXPECT_NE(epoch_order(1000, 8, 1), o1);
  std::vector<int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(o1, identity);
  EXPECT_TRUE(epoch_order(0, 1, 1).empty());
  EXPECT_EQ(epoch_order(1, 1, 1), (std::vector<int64_t>{0}));
}

TEST(DataEpochOrder, FixedAcrossPlatforms) {
  // mt19937_64 and the hand-written Fisher-Yates fix the order; this pins it so that a change of
  // the algorithm (which would break resuming old runs) is noticed.
  EXPECT_EQ(epoch_order(10, 1, 1), (std::vector<int64_t>{4, 3, 6, 5, 8, 7, 2, 0, 1, 9}));
  EXPECT_EQ(epoch_order(10, 1, 2), (std::vector<int64_t>{5, 3, 0, 4, 1, 9, 7, 6, 2, 8}));
}

TEST(DataPrefix, KeepsTheFirstSamples) {
  auto prefix = make_prefix_source(make_synthetic_source({4}, 3, 50, 1), 10);
  EXPECT_EQ(prefix->size(), 10);
  EXPECT_EQ(prefix->sample_shape(), (Shape{4}));
  const int64_t idx[2] = {0, 9};
  Tensor a, b;
  std::vector<int> ya, yb;
  prefix->batch(idx, 2, a, ya);
  make_synthetic_source({4}, 3, 50, 1)->batch(idx, 2, b, yb);
  EXPECT_EQ(a.to_f32(), b.to_f32());
  EXPECT_EQ(ya, yb);
  EXPECT_EQ(make_prefix_source(make_synthetic_source({4}, 3, 50, 1), 80)->size(), 50);
  expect_error([] { make_prefix_source(make_synthetic_source({4}, 3, 50, 1), -1); }, "count >= 0");
}
