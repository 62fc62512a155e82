// The parsers of untrusted files against the inputs of tests/fuzz_corpus/ (docs/testing.md,
// "Fuzzing"): every seed still parses, and every input the fuzz targets (or the review behind
// them) found harmful is refused with a sat::Error naming the file and the problem, instead of
// undefined behaviour, an escaping foreign exception or an allocation sized by a header.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "expect_error.hpp"
#include "sat/arch/interface.hpp"
#include "sat/checkpoint.hpp"
#include "sat/data.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"
#include "sat/model.hpp"
#include "sat/npy.hpp"
#include "sat/trace.hpp"
#include "temp_dir.hpp"

namespace sat {
namespace {

using test::expect_error;

std::string corpus(const std::string& name) { return std::string(SAT_SOURCE_DIR) + "/tests/fuzz_corpus/" + name; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) ADD_FAILURE() << "cannot read " << path;
  return ss.str();
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// An input of fuzz_idx (fuzz/fuzz_idx.cpp) written back as the two files it stands for: a
// little-endian u32 n, the images file (n bytes), the labels file.
struct IdxPair {
  std::string images, labels;
};
IdxPair split_idx(const std::string& input, const test::TempDir& dir) {
  uint32_t n = 0;
  std::memcpy(&n, input.data(), 4);
  const std::string rest = input.substr(4);
  const size_t split = n < rest.size() ? n : rest.size();
  IdxPair p{dir.file("images-idx3-ubyte"), dir.file("labels-idx1-ubyte")};
  spit(p.images, rest.substr(0, split));
  spit(p.labels, rest.substr(split));
  return p;
}

// A trace of the corpus made for this build's configuration: the corpus was written by one build,
// and its interface version word (prefix and header) changes with arch/; the rest still applies.
// The word is patched in both places and the checksum recomputed (docs/formats.md, "Trace files").
std::string retarget_trace(std::string b) {
  uint32_t word = 0;
  std::memcpy(&word, b.data() + 12, 4);
  if (word == arch::kInterfaceVersion) return b;
  char old_hex[16], new_hex[16];
  std::snprintf(old_hex, sizeof old_hex, "0x%08x", word);
  std::snprintf(new_hex, sizeof new_hex, "0x%08x", arch::kInterfaceVersion);
  const size_t at = b.find(std::string("\"interface_version\":\"") + old_hex + "\"");
  if (at == std::string::npos) {
    ADD_FAILURE() << "the corpus trace has no interface_version field " << old_hex;
    return b;
  }
  b.replace(at + std::strlen("\"interface_version\":\""), 10, new_hex);
  std::memcpy(b.data() + 12, &arch::kInterfaceVersion, 4);
  const uint32_t crc = checksum_crc32(b.data(), b.size() - 4);
  std::memcpy(b.data() + b.size() - 4, &crc, 4);
  return b;
}

// ---- the seeds parse ------------------------------------------------------------------------

TEST(FuzzCorpus, NpySeedsParse) {
  const std::string names[] = {"f4_2x3.npy", "f8_3.npy", "i4_scalar.npy", "i8_2x2x1.npy", "f4_0x4_v2.npy",
                               "f4_4_v3.npy"};
  for (const auto& n : names) {
    const NpyArray a = npy_read(corpus("npy/" + n));
    EXPECT_EQ(static_cast<int64_t>(a.data.size()), numel(a.shape)) << n;
  }
}

TEST(FuzzCorpus, IdxSeedsParse) {
  for (const char* n : {"3x4x4.bin", "2x5x3_gz.bin"}) {
    test::TempDir dir;
    const IdxPair p = split_idx(slurp(corpus(std::string("idx/") + n)), dir);
    const Dataset d = load_idx(p.images, p.labels, 10);
    EXPECT_GT(d.count, 0) << n;
    EXPECT_EQ(static_cast<int64_t>(d.images.size()), d.count * d.rows * d.cols) << n;
  }
}

TEST(FuzzCorpus, TinyModelsAndTheirCheckpointsParse) {
  for (const char* n : {"tiny_linear", "tiny_conv"}) {
    const std::string path = corpus(std::string("model/") + n + ".json");
    const Model m = Model::from_json_text(slurp(path), path);
    TrainState state;
    const Model from_ckpt = model_from_checkpoint(corpus(std::string("checkpoint/") + n + ".sat"), &state);
    EXPECT_EQ(from_ckpt.source, m.source) << n;   // the checkpoints were trained from these files
    EXPECT_EQ(state.epoch, 1) << n;
  }
}

TEST(FuzzCorpus, TraceSeedsParse) {
  for (const char* n : {"tiny_linear_bdwp.sattrace", "tiny_conv_inference.sattrace"}) {
    test::TempDir dir;
    spit(dir.file(n), retarget_trace(slurp(corpus(std::string("trace/") + n))));
    const Trace t = read_trace(dir.file(n));
    EXPECT_FALSE(t.insns.empty()) << n;
    EXPECT_FALSE(t.regions.empty()) << n;
  }
}

// ---- the findings -----------------------------------------------------------------------------

// fuzz_model: a number beyond double's range ('278E412') made nlohmann throw out_of_range, which
// from_json_text did not catch (only parse_error): a foreign exception left the library.
TEST(ParserRobustness, ModelNumberOverflowIsAnError) {
  const std::string path = corpus("model/regress_number_overflow.json");
  expect_error([&] { Model::from_json_text(slurp(path), path); }, {path, "not valid JSON", "number overflow"});
}

// fuzz_model: "input": [1, 2111...1] (an integer past 64 bits, parsed as a double) was converted
// to int64 by nlohmann's get<>() with a plain cast: undefined behaviour (UBSan: 2.11111e+62 is
// outside the range of 'long'). Integer fields now take only JSON integers that fit.
TEST(ParserRobustness, ModelFloatInIntegerFieldIsAnError) {
  const std::string path = corpus("model/regress_float_to_int.json");
  expect_error([&] { Model::from_json_text(slurp(path), path); },
               {path, "field \"input\" has the wrong type or is out of range"});
  // The same rule for the recipe: a fraction is refused, not truncated.
  const std::string tiny = slurp(corpus("model/tiny_linear.json"));
  std::string fraction = tiny;
  fraction.replace(fraction.find("\"epochs\": 1"), 11, "\"epochs\": 2.5");
  expect_error([&] { Model::from_json_text(fraction, "fraction.json"); },
               {"fraction.json", "recipe: field \"epochs\" has the wrong type or is out of range"});
  std::string huge = tiny;
  huge.replace(huge.find("\"epochs\": 1"), 11, "\"epochs\": 1e30");
  expect_error([&] { Model::from_json_text(huge, "huge.json"); }, {"huge.json", "\"epochs\""});
}

// Review, confirmed under UBSan with fuzz_model: shape inference multiplied sizes from the model
// file unchecked. A padding near 2^63 overflowed the padded size (layers/common.cpp), a kernel of
// 2^62 the convolution's K = C * k * k, and an input of [1, 2^40, 2^40] H * W in batchnorm2d and
// C * patch * patch in patch_embed, and a pooling kernel of 2^40 (padding 2^39) its FLOP count.
// The input's element count is now checked first.
TEST(ParserRobustness, ModelSizesThatOverflowAreErrors) {
  const struct {
    const char* file;
    const char* message;
  } cases[] = {
      {"regress_conv_padding_overflow.json", "layers[0] (conv2d): padding 9223372036854775807 is too large"},
      {"regress_conv_kernel_overflow.json", "layers[0] (conv2d): kernel 4611686018427387904 over 1 channels"},
      {"regress_input_overflow_batchnorm.json", "\"input\": shape [1, 1099511627776, 1099511627776] has too many"},
      {"regress_input_overflow_patch_embed.json", "\"input\": shape [1, 1099511627776, 1099511627776] has too many"},
      // Built without overflow (the FLOP count of a 2^40 kernel is a double now); refused only
      // because it does not end in the classes.
      {"regress_pool_kernel_overflow.json", "the last layer outputs [1, 1, 1] per sample"},
  };
  for (const auto& c : cases) {
    const std::string path = corpus(std::string("model/") + c.file);
    expect_error([&] { Model::from_json_text(slurp(path), path); }, {path, c.message});
  }
}

// Review (the same cast as above in the checkpoint reader): "epoch": 1e30 in the state.
TEST(ParserRobustness, CheckpointFloatInIntegerFieldIsAnError) {
  const std::string path = corpus("checkpoint/regress_float_to_int.sat");
  expect_error([&] { read_checkpoint_info(path); },
               {"checkpoint " + path + " is corrupt", "header field \"epoch\" has the wrong type or is out of range"});
  expect_error([&] { model_from_checkpoint(path, nullptr); }, {path, "\"epoch\""});
}

// Review: a parameter of shape [2^62] made its byte count wrap to 0, which passed the bounds
// checks of the data section; it is now refused against the data section's size.
TEST(ParserRobustness, CheckpointShapeLargerThanTheDataIsAnError) {
  const std::string path = corpus("checkpoint/regress_shape_wrap.sat");
  expect_error([&] { model_from_checkpoint(path, nullptr); },
               {"checkpoint " + path + " is corrupt", "parameter layers[0].weight [4611686018427387904] is larger than the data section"});
}

// Review (the same cast in the trace reader): a region's "channel": 1e30.
TEST(ParserRobustness, TraceFloatInIntegerFieldIsAnError) {
  test::TempDir dir;
  const std::string path = dir.file("regress_float_to_int.sattrace");
  spit(path, retarget_trace(slurp(corpus("trace/regress_float_to_int.sattrace"))));
  expect_error([&] { read_trace(path); },
               {"trace " + path + " is malformed", "header field \"channel\" has the wrong type or is out of range"});
}

// Review, confirmed with fuzz_idx -malloc_limit_mb: an images header of 1000 x 1000 x 1000 in a
// 16-byte file made read_maybe_gzip reserve the gigabyte the header claims before finding the file
// short. The reservation is now capped by the file's size on disk.
TEST(ParserRobustness, IdxHeaderClaimingAGigabyteAllocatesNoGigabyte) {
  test::TempDir dir;
  const IdxPair p = split_idx(slurp(corpus("idx/regress_huge_header.bin")), dir);
  expect_error([&] { load_idx(p.images, p.labels, 10); }, {p.images, "truncated", "1000000016 bytes"});
  const std::string got = read_maybe_gzip(p.images, 1000000017);
  EXPECT_EQ(got.size(), 16u);
  EXPECT_LT(got.capacity(), size_t{16} << 20);   // a read chunk (1 MiB), not the gigabyte
}

}  // namespace
}  // namespace sat
