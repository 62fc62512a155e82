#pragma once
// Checkpoints: a model's FP32 master weights and momentum with the training state, enough for
// `sat train --resume` to continue exactly and for `sat eval --checkpoint` to rebuild the model
// from the file alone. Byte layout: docs/formats.md ("SATCKPT1").
//
// Only the FP32 masters are stored. The compressed N:M forms are derived data: after
// load_checkpoint the caller must regenerate them (Model::regenerate or Backend::prepare with the
// state's method) before the model runs.
#include <string>

#include "sat/model.hpp"
#include "sat/train.hpp"

namespace sat {

inline constexpr uint32_t kCheckpointVersion = 1;

// Writes every Param of model.params() (trainable or not: value and momentum) and `state`
// atomically (atomic_write_file). Throws sat::Error naming the path.
void save_checkpoint(const std::string& path, Model& model, const TrainState& state);

// Verifies the file (magic, version, size, checksum) and that its parameters match the model's by
// name and shape, then fills every Param's value and momentum (gradients are zeroed) and returns
// the saved state. Nothing in the model changes when it throws sat::Error.
TrainState load_checkpoint(const std::string& path, Model& model);

// What a checkpoint says about its run, without a model: the header's model name and source and
// the training state. Verifies the file like load_checkpoint.
struct CheckpointInfo {
  std::string model_name;
  std::string model_source;                  // Model::source at save time; empty for models built in code
  NM model_nm{1, 1};                         // Model::nm at save time (after any --nm override)
  TrainState state;                          // method, nm, recipe, counters, history
};
CheckpointInfo read_checkpoint_info(const std::string& path);

// The JSON text the checkpointed model was built from. Rebuild with
// Model::from_json_text(text, path, info.model_nm): the source's own "nm" may have been
// overridden on the command line. Throws sat::Error when the model was built in
// code and the checkpoint holds no source.
std::string checkpoint_model_source(const std::string& path);

// Rebuilds the checkpointed model (from its source, with the N:M it was trained at) and loads the
// checkpoint into it; regenerates its sparse forms for the checkpoint's method. `state` receives
// the training state.
Model model_from_checkpoint(const std::string& path, TrainState* state);

}  // namespace sat
