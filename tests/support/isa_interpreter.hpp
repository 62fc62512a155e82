#pragma once
// The tests' reference interpreter of the accelerator's instruction set: runs a compiled
// sat::Program in program order over four DRAM channel images, with the instruction semantics of
// docs/isa.md written here independently of the HLS kernel, so that the scheduler's addresses,
// strides, tile shapes and transpositions can be compared numerically with the CPU reference
// without a kernel. Program order is a valid schedule (the tokens only let independent work
// overlap), so the tokens themselves are the stream checker's business (stream_checker.hpp).
//
// Numerics follow docs/isa.md: BF16 (round to nearest even, subnormals flushed) and FP32 in DRAM,
// FP32 accumulation in the PE array (its eight-lane order), FP32 or double intermediates in the
// vector unit as the CPU layers. Every opcode of the table runs; an unknown opcode, a field out of
// range or an access past a channel throws sat::Error naming the instruction and its opcode, so
// nothing is ever skipped silently.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "sat/arch/access.hpp"
#include "sat/arch/isa.hpp"
#include "sat/compiler.hpp"

namespace sat::test {

class IsaInterpreter {
 public:
  // Channel images of Program::map.channel_bytes, zeroed. `program` must outlive the interpreter.
  explicit IsaInterpreter(const Program& program);

  // Element `i` of a BF16 / FP32 / int32 array starting at ISA address `addr` (docs/isa.md: the
  // offset counts halfwords, FP32 and int32 take two, low half first). set_bf16 rounds (RNE).
  float get_bf16(uint32_t addr, int64_t i) const;
  void set_bf16(uint32_t addr, int64_t i, float v);
  float get_f32(uint32_t addr, int64_t i) const;
  void set_f32(uint32_t addr, int64_t i, float v);
  int32_t get_i32(uint32_t addr, int64_t i) const;
  void set_i32(uint32_t addr, int64_t i, int32_t v);
  // `count` raw bytes from ISA address `addr` (packed N:M indices, ...); throws past the channel.
  std::span<uint8_t> bytes(uint32_t addr, size_t count);
  std::span<const uint8_t> bytes(uint32_t addr, size_t count) const;
  // ISA address of the start of region `region` of the program's memory map.
  uint32_t region_addr(int region) const;

  // The whole program: Program::prologue (where it has one) then Program::insns, each to FINISH.
  void run();
  // One instruction sequence over the same images, in order up to its FINISH; throws when it has
  // none (the kernel's NO_FINISH).
  void run(std::span<const isa::Insn> insns);

  // Non-finite weights SGD produced so far (the kernel's status word 3).
  int64_t nonfinite_weights() const { return nonfinite_; }

 private:
  // Operand banks (docs/isa.md §3): tiles compact with the pitch of the instruction that wrote or
  // reads them; BF16 values are held as the floats they convert to exactly.
  struct Bank {
    std::vector<float> a, b, c;
    std::vector<uint8_t> b_index;   // in-group indices of a sparse B tile, at the values' positions
  };

  // The input patch the last LD_CONV left in the load unit's buffer (LD_CONV b3 must name it).
  struct HeldPatch {
    bool valid = false;
    uint32_t addr = 0;
    isa::ConvPatch extent;
  } held_patch_;

  void step(const isa::Insn& in);
  void load_2d(const isa::Insn& in);
  void load_conv(const isa::Insn& in);
  void load_spw(const isa::Insn& in);
  void gemm(const isa::Insn& in);
  void store_2d(const isa::Insn& in);
  void store_col2im(const isa::Insn& in);
  void pool(const isa::Insn& in, bool backward);
  void batch_norm(const isa::Insn& in);
  void batch_norm_bwd(const isa::Insn& in);
  void layer_norm(const isa::Insn& in);
  void layer_norm_bwd(const isa::Insn& in);
  void softmax(const isa::Insn& in);
  void softmax_bwd(const isa::Insn& in);
  void cross_entropy(const isa::Insn& in);
  void sgd(const isa::Insn& in);
  void pgen(const isa::Insn& in);

  uint8_t* at(uint32_t addr, int64_t byte_off, int64_t count);
  const uint8_t* at(uint32_t addr, int64_t byte_off, int64_t count) const;
  uint16_t bf16_bits(uint32_t addr, int64_t i) const;
  void set_bf16_bits(uint32_t addr, int64_t i, uint16_t bits);
  uint32_t nibble(uint32_t addr, int64_t entry) const;
  void set_nibble(uint32_t addr, int64_t entry, uint32_t v);

  const Program& program_;
  std::array<std::vector<uint8_t>, arch::kDdrChannels> dram_;
  std::array<Bank, 2> banks_;
  int64_t nonfinite_ = 0;
};

}  // namespace sat::test
