#pragma once
// The status block in clear text: what went wrong, at which instruction (index, opcode, unit),
// which field and value. One decoder for every target's status words (C-simulation, SystemC model,
// board). Host-side only (std::string); the kernel includes sat/arch/status.hpp alone.
#include <array>
#include <cstdio>
#include <string>

#include "sat/arch/config.hpp"
#include "sat/arch/isa.hpp"
#include "sat/arch/status.hpp"

namespace sat::isa {

namespace status_detail {

inline std::string hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, v);
  return buf;
}

inline std::string unit_list(uint32_t mask) {
  std::string s;
  for (int u = 0; u < 8; ++u) {
    if ((mask >> u) & 1u) s += (s.empty() ? "" : ", ") + std::string(unit_name(u));
  }
  return s;
}

inline std::string where(const uint32_t* st) {
  const uint8_t op = static_cast<uint8_t>(st[STW_OPCODE]);
  std::string s = "instruction " + std::to_string(st[STW_INDEX]);
  if (st[STW_OPCODE] != kNoOpcode && opcode_unit(op) >= 0) {
    s += std::string(" (") + opcode_name(op) + " on unit " + unit_name(opcode_unit(op)) + ")";
  }
  return s;
}

inline std::string field_label(uint8_t op, uint32_t field) {
  const char* name = field_name(op, static_cast<int>(field));
  return name ? std::string("field '") + name + "' (word " + std::to_string(field) + ")"
              : "word " + std::to_string(field);
}

}  // namespace status_detail

// `st` holds kStatusWords words. "ok: N instructions executed" for a clean run.
inline std::string status_message(const uint32_t* st) {
  const uint8_t op = static_cast<uint8_t>(st[STW_OPCODE]);
  const uint32_t field = st[STW_FIELD], value = st[STW_VALUE], extra = st[STW_DETAIL];
  std::string msg;
  switch (st[STW_CODE]) {
    case STATUS_OK:
      msg = "ok: " + std::to_string(st[STW_EXECUTED]) + " instructions executed";
      break;
    case STATUS_BAD_OPCODE:
      msg = "bad opcode " + status_detail::hex(value & 0xffu, 2) + " at instruction " + std::to_string(st[STW_INDEX]) +
            ": not in the instruction set (sat/arch/isa.hpp)";
      break;
    case STATUS_BAD_ADDRESS: {
      const uint32_t ch = addr_channel(value);
      msg = "out-of-range DRAM address at " + status_detail::where(st) + ": " + status_detail::field_label(op, field) +
            " = " + status_detail::hex(value, 8) + " (channel " + std::to_string(ch) + ", halfword offset " +
            std::to_string(addr_offset(value)) + ") with an access of " + std::to_string(extra) +
            " halfwords reaches past the end of channel " + std::to_string(ch) + "'s buffer";
      break;
    }
    case STATUS_NO_FINISH:
      msg =
          "missing FINISH: the stream of " + std::to_string(value) + " instructions ended without a FINISH instruction";
      break;
    case STATUS_DEADLOCK:
      msg = "token deadlock at " + status_detail::where(st) + ": no unit progressed for " +
            std::to_string(arch::kDeadlockRounds) + " rounds;";
      if (value != 0)
        msg += " it waits for a token from " + status_detail::unit_list(value) + " that is never signalled";
      if (extra != 0) {
        msg += std::string(value != 0 ? " and" : "") + " its token FIFO to " + status_detail::unit_list(extra) +
               " is full (" + std::to_string(arch::kTokenDepth) + " tokens never consumed)";
      }
      break;
    case STATUS_BAD_FIELD:
      msg = "bad field at " + status_detail::where(st) + ": ";
      if (field == 0) {
        msg += "header word " + status_detail::hex(value, 8) + ": ";
        if (op == OP_FINISH) {
          msg += "FINISH must not wait or signal (mask bits " + status_detail::hex(extra, 2) + ")";
        } else if (opcode_unit(op) >= 0 && extra > 0xffu) {
          msg +=
              "flag bits " + status_detail::hex(extra >> 24, 2) + " are not a valid combination for " + opcode_name(op);
        } else {
          msg += "wait/signal masks name units without token queues (bits " + status_detail::hex(extra, 2) + ")";
        }
      } else if (op == OP_LD_SPW && field == f_LD_SPW::idx_addr) {
        msg += "the in-group index of entry " + std::to_string(extra) + " is not below m";
      } else if (op == OP_V_XENT && field == f_V_XENT::labels) {
        msg += "the label of row " + std::to_string(extra) + " is outside [0, classes)";
      } else {
        msg += status_detail::field_label(op, field) + " = " + std::to_string(value) + " is out of range";
        if (extra != 0) msg += " (limit or divisor " + std::to_string(extra) + ")";
      }
      break;
    case STATUS_TOKEN_LEFT:
      msg = "unbalanced tokens at FINISH (instruction " + std::to_string(st[STW_INDEX]) +
            "): " + std::to_string(extra) + " token(s) left in the queue " + unit_name(static_cast<int>(value >> 8)) +
            " -> " + unit_name(static_cast<int>(value & 0xffu)) + " (signalled but never waited for)";
      break;
    default:
      msg = "unknown kernel status code " + std::to_string(st[STW_CODE]);
      break;
  }
  if (st[STW_CODE] != STATUS_OK) msg += "; " + std::to_string(st[STW_EXECUTED]) + " instructions executed before";
  if (st[STW_NONFINITE] != 0)
    msg += "; the update unit produced " + std::to_string(st[STW_NONFINITE]) + " non-finite weight(s)";
  return msg;
}
inline std::string status_message(const std::array<uint32_t, kStatusWords>& st) { return status_message(st.data()); }

}  // namespace sat::isa
