#include "sat_sim_study/insn_record.hpp"

#include <string>

namespace sat::sim {

const char* stall_cause_name(int cause) {
  static const std::array<std::string, isa::kNumExecUnits> token = [] {
    std::array<std::string, isa::kNumExecUnits> t;
    for (int u = 0; u < isa::kNumExecUnits; ++u) t[u] = std::string("token_") + isa::unit_name(u);
    return t;
  }();
  if (cause >= kStallTokenFirst && cause < kStallTokenFirst + isa::kNumExecUnits) return token[cause].c_str();
  switch (cause) {
    case kStallTokenFull: return "token_full";
    case kStallQueue: return "queue";
    case kStallBank: return "bank";
    case kStallDram: return "dram";
    default: return "?";
  }
}

}  // namespace sat::sim
