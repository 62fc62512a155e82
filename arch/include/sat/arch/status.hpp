#pragma once
// The kernel's status block: the words the top function's `status` port returns after a run, on
// every target (C-simulation, the SystemC model, the board). Codes and word layout are defined
// here; sat/arch/status_text.hpp turns a block into a sentence. Dependency-free C++17.
#include <cstdint>

namespace sat::isa {

// name, value, meaning
#define SAT_STATUS_CODES(X)                                                                        \
  X(OK, 0, "the stream ran to FINISH")                                                            \
  X(BAD_OPCODE, 1, "an opcode not in the table")                                                  \
  X(BAD_ADDRESS, 2, "a DRAM access outside the channel's buffer")                                 \
  X(NO_FINISH, 3, "the stream ended without FINISH")                                              \
  X(DEADLOCK, 4, "no unit could progress (a token wait never satisfied, or a token FIFO full)")   \
  X(BAD_FIELD, 5, "a field out of range (tile larger than a buffer, M unsupported, ...)")         \
  X(TOKEN_LEFT, 6, "FINISH reached with tokens still queued (unbalanced wait/signal)")

enum Status : uint32_t {
#define SAT_STATUS_ENUM(name, value, doc) STATUS_##name = value,
  SAT_STATUS_CODES(SAT_STATUS_ENUM)
#undef SAT_STATUS_ENUM
};
#define SAT_STATUS_COUNT(name, value, doc) +1
inline constexpr uint32_t kNumStatusCodes = 0 SAT_STATUS_CODES(SAT_STATUS_COUNT);
#undef SAT_STATUS_COUNT

// Word indices of the status block (docs/isa.md, "Status words", says what VALUE and DETAIL hold
// for each code).
#define SAT_STATUS_WORDS(X)                                                                        \
  X(CODE, 0, "a Status")                                                                           \
  X(INDEX, 1, "index of the offending instruction (FINISH's index on success)")                    \
  X(EXECUTED, 2, "instructions executed")                                                          \
  X(NONFINITE, 3, "non-finite values the update unit produced")                                    \
  X(OPCODE, 4, "offending opcode (kNoOpcode: none)")                                               \
  X(FIELD, 5, "offending field (word number; 0: the header or none)")                              \
  X(VALUE, 6, "the field's value")                                                                 \
  X(DETAIL, 7, "code-specific detail")                                                             \
  X(INTERFACE, 8, "arch::kInterfaceVersion of the kernel that ran (sat/arch/interface.hpp)")            \
  X(CYCLES_LO, 9, "kernel clock cycles of the run, low word (0 where the target has no clock)")          \
  X(CYCLES_HI, 10, "kernel clock cycles of the run, high word")                                         \
  X(GEMM_CYCLES, 11, "PE-array cycles of the executed GEMMs (arch::gemm_cycles; saturates)")            \
  X(DRAM_READ_LO, 12, "DRAM bytes the executed instructions read (sat/arch/access.hpp), low word")       \
  X(DRAM_READ_HI, 13, "DRAM bytes read, high word")                                                     \
  X(DRAM_WRITE_LO, 14, "DRAM bytes the executed instructions wrote, low word")                          \
  X(DRAM_WRITE_HI, 15, "DRAM bytes written, high word")

enum StatusWord : int {
#define SAT_STATUS_WORD_ENUM(name, index, doc) STW_##name = index,
  SAT_STATUS_WORDS(SAT_STATUS_WORD_ENUM)
#undef SAT_STATUS_WORD_ENUM
};
// Words 0-8 describe the run's outcome, 9-15 are its counters (docs/isa.md §7 says what each
// target counts). The counters are not part of an outcome: two targets that compute the same bits
// may count differently (a clock, a DRAM model), so comparisons of runs stop at STW_INTERFACE.
#define SAT_STATUS_WORD_COUNT(name, index, doc) +1
inline constexpr int kStatusWords = 0 SAT_STATUS_WORDS(SAT_STATUS_WORD_COUNT);
#undef SAT_STATUS_WORD_COUNT
static_assert(kStatusWords == 16, "the status block is sixteen 32-bit registers (the top function's status port)");
inline constexpr int kOutcomeWords = STW_INTERFACE + 1;

// A 64-bit counter split over two words.
inline uint64_t status_u64(const uint32_t* st, int lo) {
  return static_cast<uint64_t>(st[lo]) | static_cast<uint64_t>(st[lo + 1]) << 32;
}
inline void set_status_u64(uint32_t* st, int lo, uint64_t v) {
  st[lo] = static_cast<uint32_t>(v);
  st[lo + 1] = static_cast<uint32_t>(v >> 32);
}
inline constexpr uint32_t kNoOpcode = 0xff;

}  // namespace sat::isa
