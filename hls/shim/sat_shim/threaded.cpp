// The threaded dataflow model's runtime (threaded.hpp): the processes' threads, the idle waits and
// the deadlock watchdog.
#include "sat_shim/threaded.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace hls::threaded {

namespace {

using Clock = std::chrono::steady_clock;

thread_local Process* tl_current = nullptr;
std::atomic<uint64_t> g_progress{0};
std::atomic<Region*> g_region{nullptr};

// A region whose every live process waits has nothing that could move a stream; `quiet` only leaves
// time for a woken thread to be scheduled. `stall` catches waits that spin without SAT_DATAFLOW_IDLE.
double g_quiet_s = 2.0, g_stall_s = 60.0;
DeadlockHandler g_handler = nullptr;
std::mutex g_settings_mu;

// How long an idle wait sleeps when nothing it watches changes: it then polls again, so a change it
// could not watch (a poll list that overflowed) is seen within this time.
constexpr auto kIdleSleep = std::chrono::milliseconds(10);
constexpr auto kWatchdogTick = std::chrono::milliseconds(20);

void default_handler(const char* report) {
  std::fputs(report, stderr);
  std::fflush(stderr);
  std::abort();
}

double env_seconds(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  return end != v && d > 0 ? d : fallback;
}

void reset_polls(Process* p) {
  p->npolled = 0;
  p->overflow = false;
  p->moved = false;
}

const char* state_text(State s) {
  switch (s) {
    case State::running: return "running";
    case State::reading: return "blocked reading";
    case State::writing: return "blocked writing";
    case State::idle: return "idle, polling";
    case State::finished: return "finished";
  }
  return "?";
}

}  // namespace

void Process::note_poll(const StreamBase* s, uint64_t version) {
  for (int i = 0; i < npolled; ++i) {
    if (polled[i] == s) {
      polled_version[i] = version;
      return;
    }
  }
  if (npolled == kMaxWatched) {
    overflow = true;
    return;
  }
  polled[npolled] = s;
  polled_version[npolled] = version;
  ++npolled;
}

void Process::wake() {
  std::lock_guard<std::mutex> l(mu);
  woken = true;
  cv.notify_one();
}

Process* current() { return tl_current; }

void note_progress() { g_progress.fetch_add(1, std::memory_order_relaxed); }

void wake_watchers(uint64_t mask) {
  Region* r = g_region.load();
  if (r == nullptr) return;
  for (int i = 0; mask != 0 && i < kMaxProcesses; ++i, mask >>= 1) {
    if ((mask & 1u) == 0) continue;
    if (Process* p = r->procs_[i].load()) p->wake();
  }
}

void idle() {
  Process* p = tl_current;
  if (p == nullptr) {
    std::this_thread::yield();
    return;
  }
  if (p->moved || p->overflow || p->npolled == 0) {
    reset_polls(p);
    return;
  }
  const uint64_t bit = uint64_t{1} << p->id;
  auto* streams = const_cast<StreamBase**>(p->polled);
  for (int i = 0; i < p->npolled; ++i) streams[i]->watchers_.fetch_or(bit);
  // The watcher bits are set before the versions are read again, and a stream bumps its version
  // before it reads its watchers (both sequentially consistent): a change after the poll is either
  // seen here or wakes the wait below.
  bool changed = false;
  for (int i = 0; i < p->npolled; ++i) changed = changed || streams[i]->version_.load() != p->polled_version[i];
  if (!changed) {
    std::unique_lock<std::mutex> l(p->mu);
    p->watching.assign(p->polled, p->polled + p->npolled);
    p->state.store(static_cast<int>(State::idle));
    const bool woke = p->cv.wait_for(l, kIdleSleep, [&] { return p->woken; });
    p->woken = false;
    if (woke) p->state.store(static_cast<int>(State::running));
  }
  for (int i = 0; i < p->npolled; ++i) streams[i]->watchers_.fetch_and(~bit);
  reset_polls(p);
}

Region::Region(const char* name) : name_(name) {
  Region* none = nullptr;
  if (!g_region.compare_exchange_strong(none, this)) {
    std::fputs("hls::threaded: a dataflow region started while another runs\n", stderr);
    std::abort();
  }
  watchdog_ = std::thread([this] { watchdog(); });
}

Region::~Region() {
  for (auto& t : threads_) t.join();
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  done_cv_.notify_all();
  watchdog_.join();
  g_region.store(nullptr);
  for (int i = 0; i < nprocs_.load(); ++i) delete procs_[i].load();
}

Process* Region::add(const char* name) {
  const int id = nprocs_.load();
  if (id == kMaxProcesses) {
    std::fputs("hls::threaded: more processes than a watcher mask holds\n", stderr);
    std::abort();
  }
  auto* p = new Process;
  p->id = id;
  p->name = name;
  for (int i = 0; i < id; ++i) p->ordinal += procs_[i].load()->name == p->name ? 1 : 0;
  procs_[id].store(p);
  nprocs_.store(id + 1);
  return p;
}

void Region::enter(Process* p) { tl_current = p; }

void Region::leave(Process* p) {
  p->state.store(static_cast<int>(State::finished));
  tl_current = nullptr;
}

void Region::watchdog() {
  double quiet_s, stall_s;
  DeadlockHandler handler;
  {
    std::lock_guard<std::mutex> l(g_settings_mu);
    quiet_s = env_seconds("SAT_HLS_DEADLOCK_QUIET_S", g_quiet_s);
    stall_s = env_seconds("SAT_HLS_DEADLOCK_STALL_S", g_stall_s);
    handler = g_handler ? g_handler : default_handler;
  }
  uint64_t last = g_progress.load();
  Clock::time_point since = Clock::now();
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    done_cv_.wait_for(l, kWatchdogTick, [&] { return stop_; });
    if (stop_) break;
    const uint64_t now_progress = g_progress.load();
    const Clock::time_point now = Clock::now();
    if (now_progress != last) {
      last = now_progress;
      since = now;
      continue;
    }
    const double quiet = std::chrono::duration<double>(now - since).count();
    bool all_wait = true, any_live = false;
    for (int i = 0; i < nprocs_.load(); ++i) {
      const auto s = static_cast<State>(procs_[i].load()->state.load());
      if (s == State::finished) continue;
      any_live = true;
      all_wait = all_wait && s != State::running;
    }
    if (!any_live) continue;
    if ((all_wait && quiet >= quiet_s) || quiet >= stall_s) {
      std::string r = "hls::threaded: deadlock in dataflow region '" + name_ + "': no stream moved for " +
                      std::to_string(quiet).substr(0, 4) + " s" +
                      (all_wait ? " and every live process waits" : " (some process spins without waiting)") +
                      "\n";
      l.unlock();
      r += deadlock_report();
      handler(r.c_str());
      l.lock();
      return;   // a handler that returns leaves the region to the test's own time limit
    }
  }
}

std::string deadlock_report() {
  Region* r = g_region.load();
  if (r == nullptr) return "no dataflow region is running\n";
  std::string out;
  auto stream_text = [](const StreamBase* s) {
    std::string t = s->name();
    t.append(" (").append(std::to_string(s->held())).append("/").append(std::to_string(s->depth())).append(" held)");
    return t;
  };
  for (int i = 0; i < r->nprocs_.load(); ++i) {
    Process* p = r->procs_[i].load();
    const auto s = static_cast<State>(p->state.load());
    // Processes called from an UNROLLed loop share a function: numbered in call order.
    bool shared = false;
    for (int k = 0; k < r->nprocs_.load(); ++k) shared = shared || (k != i && r->procs_[k].load()->name == p->name);
    out += "  ";
    out += p->name;
    if (shared) out.append("#").append(std::to_string(p->ordinal));
    out.append(": ").append(state_text(s));
    if (s == State::reading || s == State::writing) {
      if (const StreamBase* b = p->blocked_on.load()) out.append(" ").append(stream_text(b));
    } else if (s == State::idle) {
      std::lock_guard<std::mutex> l(p->mu);
      for (size_t k = 0; k < p->watching.size(); ++k) out.append(k ? ", " : " ").append(stream_text(p->watching[k]));
    }
    out += "\n";
  }
  return out;
}

void set_watchdog(double quiet_s, double stall_s, DeadlockHandler handler) {
  std::lock_guard<std::mutex> l(g_settings_mu);
  if (quiet_s > 0) g_quiet_s = quiet_s;
  if (stall_s > 0) g_stall_s = stall_s;
  g_handler = handler;
}

}  // namespace hls::threaded
