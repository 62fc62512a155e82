// Checkpoints: model_from_checkpoint, which runs read_checkpoint_info (frame, header, training
// state), Model::from_json_text on the stored source and load_checkpoint (parameter table, data).
// Each input is parsed as it is and with its frame repaired (fuzz_util.hpp).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "sat/checkpoint.hpp"
#include "sat/error.hpp"

namespace {
constexpr char kMagic[8] = {'S', 'A', 'T', 'C', 'K', 'P', 'T', '1'};

void parse(const std::string& path) {
  try {
    sat::TrainState state;
    sat::model_from_checkpoint(path, &state);
  } catch (const sat::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sat_fuzz::small_budgets();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sat_fuzz::ScratchFile file("checkpoint.ckpt");
  std::string bytes(reinterpret_cast<const char*>(data), size);
  parse(file.write(bytes));
  const std::string before = bytes;
  if (sat_fuzz::repair_frame(bytes, kMagic) && bytes != before) parse(file.write(bytes));
  return 0;
}
