#include "sat/data.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <random>

#include "sat/error.hpp"
#include "sat/io.hpp"

namespace sat {

namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;   // unsigned bytes, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;   // unsigned bytes, 1 dimension
// Guards the allocation against a header with absurd dimensions (4 x 2^31 is representable).
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 34;

uint32_t be32(const std::string& b, size_t at) {
  auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[at + i])); };
  return (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string basename_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Reads one IDX file: checks the magic, the header and that exactly header + payload bytes are
// there. `dims` receives the header's dimensions; returns the payload.
std::string read_idx(const std::string& path, uint32_t magic, const char* what, int ndims,
                     std::vector<uint32_t>& dims) {
  const size_t header = 4 + 4 * static_cast<size_t>(ndims);
  // A cheap first read of the header alone tells how much to expect, so an over-long file is
  // detected without loading it whole.
  const std::string head = read_maybe_gzip(path, header);
  if (head.size() < 4) {
    throw Error(path + ": truncated: expected a " + std::to_string(header) + "-byte IDX header, got " +
                std::to_string(head.size()) + " bytes");
  }
  const uint32_t got_magic = be32(head, 0);
  if (got_magic != magic) {
    throw Error(path + ": wrong magic " + hex32(got_magic) + ", expected " + hex32(magic) + " (" + what + ")");
  }
  if (head.size() < header) {
    throw Error(path + ": truncated: expected a " + std::to_string(header) + "-byte IDX header, got " +
                std::to_string(head.size()) + " bytes");
  }
  dims.resize(static_cast<size_t>(ndims));
  uint64_t payload = 1;
  for (int i = 0; i < ndims; ++i) {
    dims[static_cast<size_t>(i)] = be32(head, 4 + 4 * static_cast<size_t>(i));
    // IDX sizes are signed 32-bit in practice; a set top bit means a corrupt header.
    if (dims[static_cast<size_t>(i)] == 0 || dims[static_cast<size_t>(i)] > 0x7fffffffu) {
      throw Error(path + ": dimension " + std::to_string(i) + " of the header is " +
                  std::to_string(dims[static_cast<size_t>(i)]) + "; expected a positive size");
    }
    payload *= dims[static_cast<size_t>(i)];
    if (payload > kMaxIdxBytes) {
      throw Error(path + ": header dimensions describe more than " + std::to_string(kMaxIdxBytes) +
                  " bytes; the header is corrupt");
    }
  }
  const uint64_t expected = header + payload;
  std::string all = read_maybe_gzip(path, static_cast<size_t>(expected) + 1);
  if (all.size() < expected) {
    throw Error(path + ": truncated: expected " + std::to_string(expected) + " bytes (" +
                std::to_string(header) + "-byte header + " + std::to_string(payload) + " bytes of data), got " +
                std::to_string(all.size()));
  }
  if (all.size() > expected) {
    throw Error(path + ": longer than its header says: expected " + std::to_string(expected) +
                " bytes, the file holds more");
  }
  all.erase(0, header);
  return all;
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// SplitMix64 (Steele, Lea, Flood 2014): a well-mixed 64-bit hash, used to derive independent
// streams from (seed, index) without any library-defined distribution.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string shape_pair(const Shape& model_input, int64_t rows, int64_t cols) {
  return "model input " + shape_str(model_input) + " cannot take images of " + shape_str({rows, cols});
}

// How one output coordinate along an axis reads the image: a bilinear blend of i0 and i1, or
// padding. Copying is the blend with w1 = 0, which reproduces the pixel exactly.
struct AxisTap {
  int32_t i0 = 0, i1 = 0;
  float w1 = 0;
  bool pad = false;
};

std::vector<AxisTap> axis_plan(int64_t in, int64_t out) {
  std::vector<AxisTap> plan(static_cast<size_t>(out));
  if (out >= in) {
    const int64_t before = (out - in) / 2;
    for (int64_t o = 0; o < out; ++o) {
      const int64_t s = o - before;
      auto& t = plan[static_cast<size_t>(o)];
      if (s < 0 || s >= in) t.pad = true;
      else t.i0 = t.i1 = static_cast<int32_t>(s);
    }
    return plan;
  }
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    const double s = std::max(0.0, (static_cast<double>(o) + 0.5) * scale - 0.5);
    auto& t = plan[static_cast<size_t>(o)];
    t.i0 = static_cast<int32_t>(s);
    t.i1 = static_cast<int32_t>(std::min<int64_t>(t.i0 + 1, in - 1));
    t.w1 = static_cast<float>(s - t.i0);
  }
  return plan;
}

class ImageSource final : public BatchSource {
 public:
  ImageSource(std::shared_ptr<const Dataset> data, const Shape& input) : data_(std::move(data)), shape_(input) {
    if (!data_) throw Error("image source: no data set");
    const int64_t rows = data_->rows, cols = data_->cols;
    if (input.empty() || input.size() > 3 ||
        std::any_of(input.begin(), input.end(), [](int64_t d) { return d < 1; })) {
      throw Error(shape_pair(input, rows, cols) + ": expected [C, H, W], [H, W] or [D] with positive sizes");
    }
    if (input.size() == 1) {
      if (input[0] != rows * cols) {
        throw Error(shape_pair(input, rows, cols) + ": a flat input must have " + std::to_string(rows * cols) +
                    " elements (rows * cols), not " + std::to_string(input[0]));
      }
      channels_ = 1, out_h_ = rows, out_w_ = cols;
    } else {
      channels_ = input.size() == 3 ? input[0] : 1;
      out_h_ = input[input.size() - 2];
      out_w_ = input[input.size() - 1];
    }

    for (int v = 0; v < 256; ++v) {
      lut_[static_cast<size_t>(v)] = (static_cast<float>(v) / 255.0f - kFashionMnistMean) / kFashionMnistStd;
    }
    pad_value_ = lut_[0];

    const auto ys = axis_plan(rows, out_h_), xs = axis_plan(cols, out_w_);
    taps_.resize(static_cast<size_t>(out_h_ * out_w_));
    for (int64_t y = 0; y < out_h_; ++y) {
      for (int64_t x = 0; x < out_w_; ++x) {
        const AxisTap& ty = ys[static_cast<size_t>(y)];
        const AxisTap& tx = xs[static_cast<size_t>(x)];
        PixelTap& p = taps_[static_cast<size_t>(y * out_w_ + x)];
        if (ty.pad || tx.pad) {
          p.pad = true;
          continue;
        }
        p.idx = {ty.i0 * static_cast<int32_t>(cols) + tx.i0, ty.i0 * static_cast<int32_t>(cols) + tx.i1,
                 ty.i1 * static_cast<int32_t>(cols) + tx.i0, ty.i1 * static_cast<int32_t>(cols) + tx.i1};
        p.w = {(1 - ty.w1) * (1 - tx.w1), (1 - ty.w1) * tx.w1, ty.w1 * (1 - tx.w1), ty.w1 * tx.w1};
        p.copy = ty.w1 == 0 && tx.w1 == 0;
      }
    }
  }

  int64_t size() const override { return data_->count; }
  int classes() const override { return data_->classes; }
  Shape sample_shape() const override { return shape_; }

  void batch(const int64_t* indices, int64_t n, Tensor& x, std::vector<int>& y) const override {
    if (n < 0) throw Error(data_->name + ": negative batch size " + std::to_string(n));
    const int64_t plane = out_h_ * out_w_, per_sample = channels_ * plane, pixels = data_->rows * data_->cols;
    std::vector<float> buf(static_cast<size_t>(n * per_sample));
    y.resize(static_cast<size_t>(n));
    for (int64_t b = 0; b < n; ++b) {
      const int64_t i = indices[b];
      if (i < 0 || i >= data_->count) {
        throw Error(data_->name + ": sample index " + std::to_string(i) + " is outside [0, " +
                    std::to_string(data_->count) + ")");
      }
      const uint8_t* img = data_->images.data() + i * pixels;
      float* out = buf.data() + b * per_sample;
      for (int64_t p = 0; p < plane; ++p) {
        const PixelTap& t = taps_[static_cast<size_t>(p)];
        if (t.pad) out[p] = pad_value_;
        else if (t.copy) out[p] = lut_[img[t.idx[0]]];
        // Blending normalised values equals normalising the blend (the weights sum to 1).
        else out[p] = t.w[0] * lut_[img[t.idx[0]]] + t.w[1] * lut_[img[t.idx[1]]] +
                      t.w[2] * lut_[img[t.idx[2]]] + t.w[3] * lut_[img[t.idx[3]]];
      }
      for (int64_t c = 1; c < channels_; ++c) std::copy(out, out + plane, out + c * plane);
      y[static_cast<size_t>(b)] = data_->labels[static_cast<size_t>(i)];
    }
    Shape shape{n};
    shape.insert(shape.end(), shape_.begin(), shape_.end());
    x = Tensor::from_f32(std::move(shape), buf);
  }

 private:
  struct PixelTap {
    std::array<int32_t, 4> idx{};            // (y0,x0), (y0,x1), (y1,x0), (y1,x1)
    std::array<float, 4> w{};
    bool pad = false, copy = false;
  };

  std::shared_ptr<const Dataset> data_;
  Shape shape_;
  int64_t channels_ = 1, out_h_ = 0, out_w_ = 0;
  std::array<float, 256> lut_{};
  float pad_value_ = 0;
  std::vector<PixelTap> taps_;               // one per output pixel of a channel plane
};

class SyntheticSource final : public BatchSource {
 public:
  SyntheticSource(const Shape& shape, int classes, int64_t count, uint64_t seed)
      : shape_(shape), classes_(classes), count_(count), seed_(seed) {
    if (shape.empty() || std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 1; })) {
      throw Error("synthetic source: sample shape " + shape_str(shape) + " must be non-empty with positive sizes");
    }
    if (classes < 1) throw Error("synthetic source: classes must be >= 1, got " + std::to_string(classes));
    if (count < 1) throw Error("synthetic source: count must be >= 1, got " + std::to_string(count));
  }

  int64_t size() const override { return count_; }
  int classes() const override { return classes_; }
  Shape sample_shape() const override { return shape_; }

  void batch(const int64_t* indices, int64_t n, Tensor& x, std::vector<int>& y) const override {
    if (n < 0) throw Error("synthetic source: negative batch size " + std::to_string(n));
    const int64_t per_sample = numel(shape_);
    for (int64_t b = 0; b < n; ++b) {
      if (indices[b] < 0 || indices[b] >= count_) {
        throw Error("synthetic source: sample index " + std::to_string(indices[b]) + " is outside [0, " +
                    std::to_string(count_) + ")");
      }
    }
    std::vector<float> buf(static_cast<size_t>(n * per_sample));
    y.resize(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n; ++b) {
      uint64_t state = splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(indices[b])));
      y[static_cast<size_t>(b)] = static_cast<int>(((state >> 32) * static_cast<uint64_t>(classes_)) >> 32);
      float* out = buf.data() + b * per_sample;
      // Box-Muller on a SplitMix64 stream: two normals per pair of uniforms.
      for (int64_t j = 0; j < per_sample; j += 2) {
        state += 0x9e3779b97f4a7c15ull;
        const uint64_t r1 = splitmix64(state);
        state += 0x9e3779b97f4a7c15ull;
        const uint64_t r2 = splitmix64(state);
        const double u1 = (static_cast<double>(r1 >> 11) + 1.0) * 0x1.0p-53;   // (0, 1]
        const double u2 = static_cast<double>(r2 >> 11) * 0x1.0p-53;           // [0, 1)
        const double r = std::sqrt(-2.0 * std::log(u1));
        const double a = 6.283185307179586 * u2;
        out[j] = static_cast<float>(r * std::cos(a));
        if (j + 1 < per_sample) out[j + 1] = static_cast<float>(r * std::sin(a));
      }
    }
    Shape shape{n};
    shape.insert(shape.end(), shape_.begin(), shape_.end());
    x = Tensor::from_f32(std::move(shape), buf);
  }

 private:
  Shape shape_;
  int classes_;
  int64_t count_;
  uint64_t seed_;
};

}  // namespace

BatchSource::~BatchSource() = default;

Dataset load_idx(const std::string& images_path, const std::string& labels_path, int classes) {
  if (classes < 1 || classes > 256) {
    throw Error("load_idx: classes must be in [1, 256] (labels are bytes), got " + std::to_string(classes));
  }
  std::vector<uint32_t> idims, ldims;
  const std::string pixels = read_idx(images_path, kIdxImagesMagic, "IDX images", 3, idims);
  const std::string labels = read_idx(labels_path, kIdxLabelsMagic, "IDX labels", 1, ldims);
  if (idims[0] != ldims[0]) {
    throw Error(images_path + " holds " + std::to_string(idims[0]) + " images but " + labels_path + " holds " +
                std::to_string(ldims[0]) + " labels");
  }
  Dataset d;
  d.name = basename_of(images_path);
  d.count = idims[0];
  d.rows = idims[1];
  d.cols = idims[2];
  d.classes = classes;
  d.images.assign(pixels.begin(), pixels.end());
  d.labels.assign(labels.begin(), labels.end());
  for (size_t i = 0; i < d.labels.size(); ++i) {
    if (d.labels[i] >= classes) {
      throw Error(labels_path + ": label " + std::to_string(d.labels[i]) + " of sample " + std::to_string(i) +
                  " is not below the number of classes, " + std::to_string(classes));
    }
  }
  return d;
}

std::string default_data_dir() {
  const char* env = std::getenv("SAT_DATA_DIR");
  if (env && *env) return env;
  return "/usr/share/datasets/fashion-mnist";
}

Dataset load_fashion_mnist(bool train, const std::string& dir) {
  const std::string root = dir.empty() ? default_data_dir() : dir;
  const std::string prefix = root + "/" + (train ? "train" : "t10k");
  // The Debian package and the upstream release ship .gz files; an unpacked copy works as well.
  auto find = [&](const std::string& stem) {
    const std::string gz = prefix + stem + ".gz";
    if (exists(gz)) return gz;
    if (exists(prefix + stem)) return prefix + stem;
    throw Error("Fashion-MNIST not found: " + gz + " does not exist. Install the Debian package "
                "dataset-fashion-mnist (scripts/install-deps.sh does), or point SAT_DATA_DIR (or --data-dir) "
                "at a directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz");
  };
  const std::string images = find("-images-idx3-ubyte");
  const std::string labels = find("-labels-idx1-ubyte");
  Dataset d = load_idx(images, labels, 10);
  d.name = std::string("fashion-mnist/") + (train ? "train" : "test");
  return d;
}

std::unique_ptr<BatchSource> make_image_source(std::shared_ptr<const Dataset> data, const Shape& model_input) {
  return std::make_unique<ImageSource>(std::move(data), model_input);
}

std::unique_ptr<BatchSource> make_synthetic_source(const Shape& sample_shape, int classes, int64_t count,
                                                   uint64_t seed) {
  return std::make_unique<SyntheticSource>(sample_shape, classes, count, seed);
}

std::vector<int64_t> epoch_order(int64_t count, uint64_t seed, int epoch) {
  if (count < 0) throw Error("epoch_order: negative count " + std::to_string(count));
  std::vector<int64_t> order(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) order[static_cast<size_t>(i)] = i;
  // mt19937_64's output is fixed by the standard; std::shuffle and the distributions are not,
  // so the swap index is drawn here by rejection sampling (no modulo bias).
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(static_cast<int64_t>(epoch)))));
  for (int64_t i = count - 1; i > 0; --i) {
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t threshold = (0 - bound) % bound;    // 2^64 mod bound
    uint64_t r;
    do r = rng();
    while (r < threshold);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(r % bound)]);
  }
  return order;
}

namespace {
class PrefixSource final : public BatchSource {
 public:
  PrefixSource(std::unique_ptr<BatchSource> inner, int64_t count)
      : inner_(std::move(inner)), count_(std::min(count, inner_->size())) {}
  int64_t size() const override { return count_; }
  int classes() const override { return inner_->classes(); }
  Shape sample_shape() const override { return inner_->sample_shape(); }
  void batch(const int64_t* idx, int64_t n, Tensor& x, std::vector<int>& y) const override {
    inner_->batch(idx, n, x, y);
  }

 private:
  std::unique_ptr<BatchSource> inner_;
  int64_t count_;
};
}  // namespace

std::unique_ptr<BatchSource> make_prefix_source(std::unique_ptr<BatchSource> source, int64_t count) {
  if (count < 0) throw Error("a data prefix needs count >= 0, got " + std::to_string(count));
  if (count >= source->size()) return source;
  return std::make_unique<PrefixSource>(std::move(source), count);
}

DataSources open_data(const std::string& kind, const Shape& input, int classes, const std::string& data_dir) {
  DataSources s;
  if (kind == "fashion-mnist") {
    auto train = std::make_shared<const Dataset>(load_fashion_mnist(true, data_dir));
    auto test = std::make_shared<const Dataset>(load_fashion_mnist(false, data_dir));
    if (train->classes != classes) {
      throw Error("the model has " + std::to_string(classes) + " classes but Fashion-MNIST has " +
                  std::to_string(train->classes));
    }
    s.train = make_image_source(train, input);
    s.test = make_image_source(test, input);
  } else if (kind == "synthetic") {
    s.train = make_synthetic_source(input, classes, 60000, 1);
    s.test = make_synthetic_source(input, classes, 10000, 2);
  } else {
    throw Error("data source '" + kind + "': expected " + kDataKinds);
  }
  return s;
}

}  // namespace sat
