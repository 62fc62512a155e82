// The threaded synthesis path in a child process, and the differential observer (threaded_harness.hpp).
#include "threaded_harness.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "sat/arch/status_text.hpp"
#include "sat_hls/kernel.hpp"
#include "sat_hls/threaded.hpp"

namespace sat::test {

namespace {

// What the child leaves for the parent, in front of the channels in one shared mapping.
struct SharedHead {
  uint32_t status[isa::kStatusWords];
  char report[32768];
};
constexpr int kDeadlockExit = 3;
SharedHead* g_child_head = nullptr;

void on_deadlock_in_child(const char* report) {
  std::strncpy(g_child_head->report, report, sizeof g_child_head->report - 1);
  _exit(kDeadlockExit);
}

// A run that takes longer than this is a hang the watchdog missed (a process that spins).
double hard_limit_s() {
  const char* v = std::getenv("SAT_HLS_THREADED_RUN_LIMIT_S");
  return v ? std::atof(v) : 120.0;
}

// SAT_HLS_THREADED_INPROCESS=1 runs the region in this process (for ThreadSanitizer, which does not
// follow threads started after a fork); a deadlock then aborts the binary.
bool in_process() {
  const char* v = std::getenv("SAT_HLS_THREADED_INPROCESS");
  return v && *v == '1';
}

}  // namespace

ThreadedRun run_threaded(const std::vector<isa::Insn>& insns,
                         const std::array<std::vector<uint16_t>, arch::kDdrChannels>& ddr,
                         const std::array<bool, arch::kDdrChannels>& attached) {
  ThreadedRun out;
  uint64_t sizes[arch::kDdrChannels];
  size_t total = sizeof(SharedHead);
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    sizes[c] = attached[c] ? ddr[c].size() : 0;
    total += sizes[c] * sizeof(uint16_t);
  }
  void* mem = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    out.report = "mmap failed";
    return out;
  }
  auto* head = static_cast<SharedHead*>(mem);
  std::memset(head, 0, sizeof *head);
  uint16_t* chan[arch::kDdrChannels];
  uint16_t* next = reinterpret_cast<uint16_t*>(head + 1);
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    chan[c] = attached[c] ? next : nullptr;
    if (attached[c]) std::memcpy(next, ddr[c].data(), sizes[c] * sizeof(uint16_t));
    next += sizes[c];
  }

  if (in_process()) {
    hls::threaded::run(insns.data(), insns.size(), chan, sizes, head->status);
    out.outcome = ThreadedRun::finished;
  } else {
    const pid_t pid = fork();
    if (pid == 0) {
      g_child_head = head;
      hls::threaded::set_watchdog(0, 0, &on_deadlock_in_child);
      hls::threaded::run(insns.data(), insns.size(), chan, sizes, head->status);
      _exit(0);
    }
    const auto start = std::chrono::steady_clock::now();
    int ws = 0;
    for (;;) {
      const pid_t r = waitpid(pid, &ws, WNOHANG);
      if (r == pid) break;
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > hard_limit_s()) {
        kill(pid, SIGKILL);
        waitpid(pid, &ws, 0);
        out.outcome = ThreadedRun::timed_out;
        out.report = "no result within the run limit; killed";
        munmap(mem, total);
        return out;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
      out.outcome = ThreadedRun::finished;
    } else if (WIFEXITED(ws) && WEXITSTATUS(ws) == kDeadlockExit) {
      out.outcome = ThreadedRun::deadlock;
      out.report = head->report;
    } else {
      out.outcome = ThreadedRun::crashed;
      out.report = WIFSIGNALED(ws) ? "killed by signal " + std::to_string(WTERMSIG(ws))
                                   : "exit status " + std::to_string(WEXITSTATUS(ws));
    }
  }
  for (int i = 0; i < isa::kStatusWords; ++i) out.status[i] = head->status[i];
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    if (attached[c]) out.ddr[c].assign(chan[c], chan[c] + sizes[c]);
  }
  munmap(mem, total);
  return out;
}

namespace {

DifferentialCounts g_counts;

std::string status_text(const std::array<uint32_t, isa::kStatusWords>& st) {
  std::ostringstream o;
  for (uint32_t w : st) o << std::hex << w << ' ';
  return o.str() + "(" + isa::status_message(st) + ")";
}

// Replays each C-simulation run on the threaded synthesis path from the same DRAM and compares.
class Differential : public hls::RunObserver {
 public:
  void before(const isa::Insn* insns, size_t count, uint16_t* const ddr[arch::kDdrChannels],
              const uint64_t halfwords[arch::kDdrChannels]) override {
    insns_.assign(insns, insns + count);
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      live_[c] = ddr[c];
      attached_[c] = ddr[c] != nullptr;
      if (attached_[c]) init_[c].assign(ddr[c], ddr[c] + halfwords[c]);
      else init_[c].clear();
    }
  }
  void after(const std::array<uint32_t, isa::kStatusWords>& status, bool stopped) override {
    if (stopped) {
      ++g_counts.skipped;
      return;
    }
    const ThreadedRun t = run_threaded(insns_, init_, attached_);
    const std::string what = "the threaded synthesis path on a stream of " + std::to_string(insns_.size()) +
                             " instructions (C-simulation: " + isa::status_message(status) + ")";
    if (t.outcome == ThreadedRun::deadlock && status[0] == isa::STATUS_DEADLOCK) {
      // The synthesised region has no watchdog: a token cycle hangs it (docs/hls-dataflow.md).
      ++g_counts.expected_hangs;
      return;
    }
    if (t.outcome != ThreadedRun::finished) {
      ADD_FAILURE() << what << " did not finish:\n" << t.report;
      return;
    }
    if (status[0] != isa::STATUS_OK) {
      error_run(status, t, what);
      return;
    }
    if (t.status != status) {
      ADD_FAILURE() << what << ": status words differ\n  C-simulation: " << status_text(status)
                    << "\n  threaded:     " << status_text(t.status);
    }
    bool same = t.status == status;
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      if (!attached_[c]) continue;
      const uint16_t* want = live_[c];
      const std::vector<uint16_t>& got = t.ddr[c];
      size_t bad = 0, first = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        if (got[i] != want[i] && bad++ == 0) first = i;
      }
      if (bad != 0) {
        same = false;
        ADD_FAILURE() << what << ": channel " << c << " differs in " << bad << " halfword(s), first at offset "
                      << first << ": threaded 0x" << std::hex << got[first] << ", C-simulation 0x" << want[first]
                      << " (before the run 0x" << init_[c][first] << ")";
      }
    }
    if (same) ++g_counts.compared;
  }

 private:
  // A stream that fails. Its error is the same (code, instruction, opcode, field, value, detail), but
  // not what ran besides it: C-simulation's fetch checks headers ahead of the units, and the
  // region's units run concurrently, so the executed count and DRAM may differ (docs/hls-
  // dataflow.md, "Threaded execution"). A C-simulation deadlock that the region turns into another
  // error (a full token FIFO that the consumer drains at its end: TOKEN_LEFT) still has to fail.
  void error_run(const std::array<uint32_t, isa::kStatusWords>& status, const ThreadedRun& t, const std::string& what) {
    if (status[0] == isa::STATUS_DEADLOCK) {
      if (t.status[0] == isa::STATUS_OK) ADD_FAILURE() << what << ": the threaded run ends ok";
      else ++g_counts.errors;
      return;
    }
    bool same = true;
    for (int w : {isa::STW_CODE, isa::STW_INDEX, isa::STW_OPCODE, isa::STW_FIELD, isa::STW_VALUE, isa::STW_DETAIL,
                  isa::STW_INTERFACE})
      same = same && t.status[w] == status[w];
    if (!same) {
      ADD_FAILURE() << what << ": a different error\n  C-simulation: " << status_text(status)
                    << "\n  threaded:     " << status_text(t.status);
    } else {
      ++g_counts.errors;
    }
  }

  std::vector<isa::Insn> insns_;
  std::array<std::vector<uint16_t>, arch::kDdrChannels> init_;
  std::array<bool, arch::kDdrChannels> attached_{};
  uint16_t* live_[arch::kDdrChannels] = {};
};

class DifferentialEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { hls::set_run_observer(&observer_); }
  void TearDown() override {
    hls::set_run_observer(nullptr);
    std::printf("[ threaded ] %d run(s) bit-exact against C-simulation, %d failing run(s) with the same error, "
                "%d expected hang(s), %d skipped\n",
                g_counts.compared, g_counts.errors, g_counts.expected_hangs, g_counts.skipped);
  }

 private:
  Differential observer_;
};

// Every test of this binary runs under the observer.
const auto* const g_env = ::testing::AddGlobalTestEnvironment(new DifferentialEnvironment);

}  // namespace

DifferentialCounts differential_counts() { return g_counts; }

}  // namespace sat::test
