#pragma once
// Data sets and the batches a training step consumes.
//
// Images are kept as the raw bytes of the IDX files; a BatchSource turns a list of sample indices
// into a model-shaped BF16 batch (normalisation, padding or resizing, channel replication) each
// step, so a data set loads once and serves models of any input shape. File formats and
// validation rules: docs/formats.md.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sat/tensor.hpp"

namespace sat {

// Grey-scale images with class labels.
struct Dataset {
  std::string name;                          // "fashion-mnist/train", or the images file's name
  int64_t count = 0, rows = 0, cols = 0;
  int classes = 0;
  std::vector<uint8_t> images;               // count * rows * cols, row-major per image
  std::vector<uint8_t> labels;               // count, each < classes
};

// Reads an IDX image file (magic 0x00000803) and its IDX label file (magic 0x00000801), gzip
// compressed or not. Throws sat::Error naming the file and the problem: wrong magic, bad
// dimensions, truncated or over-long data, differing counts, a label >= classes.
Dataset load_idx(const std::string& images_path, const std::string& labels_path, int classes = 10);

// The directory load_fashion_mnist reads when given none: $SAT_DATA_DIR, else the Debian package's
// /usr/share/datasets/fashion-mnist.
std::string default_data_dir();

// The Fashion-MNIST train (60,000) or test (10,000) split from `dir` (default_data_dir() when
// empty). When the files are missing the error says how to install them.
Dataset load_fashion_mnist(bool train, const std::string& dir = "");

// Fashion-MNIST's pixel statistics over the training set (pixels scaled to [0, 1]).
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;

// Produces batches shaped for a model. batch() is const and keeps no state, so a source can be
// shared between threads and the same indices always give the same batch.
class BatchSource {
 public:
  virtual ~BatchSource();
  virtual int64_t size() const = 0;          // number of samples
  virtual int classes() const = 0;
  virtual Shape sample_shape() const = 0;    // per sample, no batch dimension
  // x becomes [n, ...sample_shape()] (storage per the numerics mode, BF16 in training) and y the
  // n labels of samples indices[0..n). Throws sat::Error on an index outside [0, size()).
  virtual void batch(const int64_t* indices, int64_t n, Tensor& x, std::vector<int>& y) const = 0;
};

// Serves `data` to a model whose per-sample input is `model_input`:
//   [C, H, W] or [H, W]: pixels normalised as (p/255 - mean) / std with Fashion-MNIST's statistics;
//     an axis longer than the images is zero-padded centred (28 -> 32 adds 2 on each side; an odd
//     difference puts the extra pixel after), with the normalised value of a black pixel,
//     -mean/std; an axis shorter than the images is resized down bilinearly (half-pixel centres,
//     no antialiasing: PyTorch's interpolate(bilinear, align_corners=False)); C > 1 repeats the
//     grey channel.
//   [D]: the flattened normalised image; D must equal rows * cols.
// Throws sat::Error naming both shapes when the input shape cannot be served.
std::unique_ptr<BatchSource> make_image_source(std::shared_ptr<const Dataset> data, const Shape& model_input);

// `count` samples of shape `sample_shape` with standard-normal inputs and uniform labels in
// [0, classes), each a pure function of (seed, index): for throughput runs without a data set.
std::unique_ptr<BatchSource> make_synthetic_source(const Shape& sample_shape, int classes, int64_t count,
                                                   uint64_t seed);

// The first `count` samples of `source` (all of them when count >= its size).
std::unique_ptr<BatchSource> make_prefix_source(std::unique_ptr<BatchSource> source, int64_t count);

// The shuffled order of samples in `epoch` (any integer; training uses 1-based epochs): a
// permutation of [0, count) that depends only on (count, seed, epoch), identical on every platform,
// so a resumed run sees the order the interrupted one would have.
std::vector<int64_t> epoch_order(int64_t count, uint64_t seed, int epoch);

// The training and test sources of `sat train --data KIND` for a model whose per-sample input is
// `input` with `classes` classes: "fashion-mnist" (its two splits from `data_dir`, default_data_dir()
// when empty) or "synthetic" (60,000 samples with seed 1 to train, 10,000 with seed 2 to test).
// Throws sat::Error naming the kind when it is neither, and the class counts when they differ.
inline constexpr const char* kDataKinds = "fashion-mnist or synthetic";
struct DataSources {
  std::unique_ptr<BatchSource> train, test;
};
DataSources open_data(const std::string& kind, const Shape& input, int classes, const std::string& data_dir = "");

}  // namespace sat
