// compile(): one Lowering over the whole model (docs/dataflow.md).
#include "sat/lowering.hpp"
#include "sat/error.hpp"

namespace sat {

void check_tile_limits(const ScheduleOptions& opt) {
  auto check = [](const char* what, int v, int max, const char* constant) {
    if (v < 1 || v > max) {
      throw Error(std::string("compile: tile ") + what + " " + std::to_string(v) + " is outside 1.." +
                  std::to_string(max) + " (the on-chip banks the kernel is built with, arch/config.hpp " +
                  constant + "; a larger buffer needs a rebuild)");
    }
  };
  check("rows", opt.tile_rows, arch::kMaxTileRows, "kMaxTileRows");
  check("cols", opt.tile_cols, arch::kMaxTileCols, "kMaxTileCols");
  check("k", opt.tile_k, arch::kMaxTileK, "kMaxTileK");
  if (opt.tile_k % 16 != 0) {
    throw Error("compile: tile k " + std::to_string(opt.tile_k) +
                " is not a multiple of 16: a K tile must hold whole groups of every supported M");
  }
}

Program compile(Model& model, const ScheduleOptions& opt) {
  if (opt.batch < 1) {
    throw Error("compile " + model.name + ": batch must be >= 1, got " + std::to_string(opt.batch));
  }
  if (opt.batch > 0xffff) {
    throw Error("compile " + model.name + ": batch " + std::to_string(opt.batch) +
                " is larger than the accelerator's 65535");
  }
  if (opt.batch_slot != 0) {
    throw Error("compile " + model.name + ": batch_slot " + std::to_string(opt.batch_slot) +
                " is compile()'s own choice (a training program holds the streams of both slots); pass 0");
  }
  compiler::Lowering lw(model, opt);
  lw.lower_model();
  Program p = std::move(lw.program());
  if (opt.training) {
    // The stream of the other slot: the same schedule over the same memory map, its batch reads
    // at slot 1's addresses.
    ScheduleOptions other = opt;
    other.batch_slot = 1;
    other.record_dependencies = false;
    compiler::Lowering lw_b(model, other);
    lw_b.place_batch_slot_b(p.map.regions[static_cast<size_t>(p.input_b)], p.map.regions[static_cast<size_t>(p.labels_b)]);
    lw_b.lower_model();
    if (lw_b.program().insns.size() != p.insns.size() || lw_b.program().map.channel_bytes[1] != p.map.channel_bytes[1]) {
      throw Error("compile " + model.name + ": the two batch slots' programs differ in shape (a scheduler bug)");
    }
    p.insns_b = std::move(lw_b.program().insns);
  }
  return p;
}

}  // namespace sat
