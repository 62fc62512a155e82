// sat::hls::Datapath (hls/include/sat_hls/datapath.hpp): the kernel's context and on-chip banks
// behind a host-side interface. Not part of the synthesised sources.
#include "sat_hls/datapath.hpp"

#include "kernel.hpp"

namespace sat::hls {

struct Datapath::Impl {
  kernel::Buffers buffers;   // ~0.8 MB: on the heap with the object, never on a stack
  kernel::PatchBuffer patch;   // the load unit's (LD_CONV)
  kernel::Ctx cx{};
};

Datapath::Datapath() : impl_(std::make_unique<Impl>()) {
  impl_->cx.buf = &impl_->buffers;
  impl_->patch.valid = false;
  impl_->cx.patch = &impl_->patch;
}
Datapath::~Datapath() = default;

void Datapath::attach(uint16_t* const ddr[arch::kDdrChannels], const uint64_t halfwords[arch::kDdrChannels]) {
  kernel::Ctx& cx = impl_->cx;
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    cx.ddr.gmem[c] = ddr[c];
    cx.ddr.halfwords[c] = ddr[c] ? halfwords[c] : 0;
  }
  cx.err = kernel::Error{};
  cx.nonfinite = 0;
  cx.count = kernel::Counts{};
  impl_->patch.valid = false;   // a run starts with nothing held
}

int Datapath::decode(const isa::Insn& in) { return kernel::check_header(impl_->cx, in); }

bool Datapath::execute(int unit, const isa::Insn& in) {
  if (impl_->cx.failed()) return false;
  return kernel::exec_unit(unit, impl_->cx, in);
}

bool Datapath::gemm_tile(const isa::Insn& in, kernel::GemmTile* out) {
  if (impl_->cx.failed()) return false;
  if (!kernel::gemm_tile(impl_->cx, in, *out)) return false;
  kernel::count_executed(impl_->cx, in);   // the caller computes the tile: it executes
  return true;
}

void Datapath::fail(uint32_t code, uint32_t field, uint32_t value, uint32_t detail) {
  impl_->cx.fail(code, field, value, detail);
}

bool Datapath::failed() const { return impl_->cx.failed(); }

void Datapath::status(uint32_t index, uint32_t opcode, uint32_t executed, uint32_t out[isa::kStatusWords]) const {
  kernel::write_status(out, impl_->cx, index, opcode, executed, 0);   // the simulator writes its cycles
}

}  // namespace sat::hls
