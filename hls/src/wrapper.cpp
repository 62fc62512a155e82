// run_kernel / status_message: the host side of the C-simulated kernel.
#include <cstdio>
#include <mutex>
#include <vector>

#include "kernel.hpp"
#include "sat_hls/kernel.hpp"

namespace sat::hls {

namespace {

std::string hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, v);
  return buf;
}

std::string unit_list(uint32_t mask) {
  std::string s;
  for (int u = 0; u < 8; ++u) {
    if ((mask >> u) & 1u) s += (s.empty() ? "" : ", ") + std::string(isa::unit_name(u));
  }
  return s;
}

std::string where(const std::array<uint32_t, isa::kStatusWords>& st) {
  const uint8_t op = static_cast<uint8_t>(st[4]);
  std::string s = "instruction " + std::to_string(st[1]);
  if (st[4] != kernel::kNoOpcode && isa::opcode_unit(op) >= 0) {
    s += std::string(" (") + isa::opcode_name(op) + " on unit " + isa::unit_name(isa::opcode_unit(op)) + ")";
  }
  return s;
}

std::string field_label(uint8_t op, uint32_t field) {
  const char* name = isa::field_name(op, static_cast<int>(field));
  return name ? std::string("field '") + name + "' (word " + std::to_string(field) + ")"
              : "word " + std::to_string(field);
}

}  // namespace

std::array<uint32_t, isa::kStatusWords> run_kernel(const isa::Insn* insns, size_t count,
                                                   uint16_t* const ddr[arch::kDdrChannels],
                                                   const uint64_t halfwords[arch::kDdrChannels]) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::vector<ap_uint<512>> words(count);
  for (size_t i = 0; i < count; ++i) {
    for (int j = 0; j < arch::kInsnWords; ++j) words[i].range(32 * j + 31, 32 * j) = insns[i].w[j];
  }
  const uint32_t n = count > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(count);
  uint32_t status[isa::kStatusWords] = {};
  static_assert(arch::kDdrChannels == 4, "sat_top has four DDR ports");
  uint64_t sizes[arch::kDdrChannels];
  for (int c = 0; c < arch::kDdrChannels; ++c) sizes[c] = ddr[c] ? halfwords[c] : 0;
  sat_top(words.data(), n, ddr[0], ddr[1], ddr[2], ddr[3], sizes[0], sizes[1], sizes[2], sizes[3], status);
  std::array<uint32_t, isa::kStatusWords> out{};
  for (int i = 0; i < isa::kStatusWords; ++i) out[i] = status[i];
  return out;
}

std::string status_message(const std::array<uint32_t, isa::kStatusWords>& st) {
  const uint8_t op = static_cast<uint8_t>(st[4]);
  const uint32_t field = st[5], value = st[6], extra = st[7];
  std::string msg;
  switch (st[0]) {
    case isa::STATUS_OK:
      msg = "ok: " + std::to_string(st[2]) + " instructions executed";
      break;
    case isa::STATUS_BAD_OPCODE:
      msg = "bad opcode " + hex(value & 0xffu, 2) + " at instruction " + std::to_string(st[1]) +
            ": not in the instruction set (sat/arch/isa.hpp)";
      break;
    case isa::STATUS_BAD_ADDRESS: {
      const uint32_t ch = isa::addr_channel(value);
      msg = "out-of-range DRAM address at " + where(st) + ": " + field_label(op, field) + " = " + hex(value, 8) +
            " (channel " + std::to_string(ch) + ", halfword offset " + std::to_string(isa::addr_offset(value)) +
            ") with an access of " + std::to_string(extra) + " halfwords reaches past the end of channel " +
            std::to_string(ch) + "'s buffer";
      break;
    }
    case isa::STATUS_NO_FINISH:
      msg = "missing FINISH: the stream of " + std::to_string(value) + " instructions ended without a FINISH instruction";
      break;
    case isa::STATUS_DEADLOCK:
      msg = "token deadlock at " + where(st) + ": no unit progressed for " + std::to_string(arch::kDeadlockRounds) +
            " rounds;";
      if (value != 0) msg += " it waits for a token from " + unit_list(value) + " that is never signalled";
      if (extra != 0) {
        msg += std::string(value != 0 ? " and" : "") + " its token FIFO to " + unit_list(extra) + " is full (" +
               std::to_string(arch::kTokenDepth) + " tokens never consumed)";
      }
      break;
    case isa::STATUS_BAD_FIELD:
      msg = "bad field at " + where(st) + ": ";
      if (field == 0) {
        msg += "header word " + hex(value, 8) + ": ";
        if (op == isa::OP_FINISH) {
          msg += "FINISH must not wait or signal (mask bits " + hex(extra, 2) + ")";
        } else if (isa::opcode_unit(op) >= 0 && extra > 0xffu) {
          msg += "flag bits " + hex(extra >> 24, 2) + " are not a valid combination for " + isa::opcode_name(op);
        } else {
          msg += "wait/signal masks name units without token queues (bits " + hex(extra, 2) + ")";
        }
      } else if (op == isa::OP_LD_SPW && field == isa::f_LD_SPW::idx_addr) {
        msg += "the in-group index of entry " + std::to_string(extra) + " is not below m";
      } else if (op == isa::OP_V_XENT && field == isa::f_V_XENT::labels) {
        msg += "the label of row " + std::to_string(extra) + " is outside [0, classes)";
      } else {
        msg += field_label(op, field) + " = " + std::to_string(value) + " is out of range";
        if (extra != 0) msg += " (limit or divisor " + std::to_string(extra) + ")";
      }
      break;
    case isa::STATUS_TOKEN_LEFT:
      msg = "unbalanced tokens at FINISH (instruction " + std::to_string(st[1]) + "): " + std::to_string(extra) +
            " token(s) left in the queue " + isa::unit_name(static_cast<int>(value >> 8)) + " -> " +
            isa::unit_name(static_cast<int>(value & 0xffu)) + " (signalled but never waited for)";
      break;
    default:
      msg = "unknown kernel status code " + std::to_string(st[0]);
      break;
  }
  if (st[0] != isa::STATUS_OK) msg += "; " + std::to_string(st[2]) + " instructions executed before";
  if (st[3] != 0) msg += "; the update unit produced " + std::to_string(st[3]) + " non-finite weight(s)";
  return msg;
}

}  // namespace sat::hls
