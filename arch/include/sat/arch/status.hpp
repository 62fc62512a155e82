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
  X(INTERFACE, 8, "arch::kInterfaceVersion of the kernel that ran (sat/arch/interface.hpp)")

enum StatusWord : int {
#define SAT_STATUS_WORD_ENUM(name, index, doc) STW_##name = index,
  SAT_STATUS_WORDS(SAT_STATUS_WORD_ENUM)
#undef SAT_STATUS_WORD_ENUM
};
inline constexpr int kStatusWords = 16;   // words 9-15 are reserved and read as 0
inline constexpr uint32_t kNoOpcode = 0xff;

}  // namespace sat::isa
