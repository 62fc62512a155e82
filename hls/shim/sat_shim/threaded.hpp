#pragma once
// The threaded host model of a Vitis HLS dataflow region (SAT_HLS_THREADED): every process of the
// region runs on its own thread and hls::stream<T, D> is a bounded blocking FIFO of depth D shared
// between threads. Nothing of this is seen by Vitis: the region's code reaches it only through the
// macros of hls_types.hpp, which expand to plain calls (or to nothing) in every other build.
//
// What it is for: running the synthesis path's protocols (tokens, fill words, drains, the burst
// links' credits and fence, the stop handshake) with the depths the hardware has, so that a link too
// shallow, a lost marker or a missing stop shows up as a deadlock or a wrong result on the host
// (docs/hls-dataflow.md, "Threaded execution"). It says nothing about timing, II or resources.
//
// Deadlocks: a watchdog thread per region fails the run when every live process is blocked on a
// stream (or sleeps in an idle wait loop) and no stream has moved for a short quiet time, or when no
// stream has moved for a long one whatever the processes do. The failure names every process and
// the stream(s) it waits on; the default handler prints that and aborts (a test runs the region in a
// child process, tests/hls_threaded/).
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace hls::threaded {

class StreamBase;

// Process ids are bits of a stream's watcher mask.
inline constexpr int kMaxProcesses = 64;
// Streams one idle wait can watch; a wait loop that polls more spins instead of sleeping.
inline constexpr int kMaxWatched = 48;

enum class State : int { running, reading, writing, idle, finished };

struct Process {
  std::string name;
  int id = 0;
  int ordinal = 0;   // among the region's processes of the same function
  std::atomic<int> state{static_cast<int>(State::running)};
  std::atomic<const StreamBase*> blocked_on{nullptr};
  // Polls that found nothing since the process last moved data or went idle: what its next idle
  // wait watches, with each stream's version at the poll.
  const StreamBase* polled[kMaxWatched] = {};
  uint64_t polled_version[kMaxWatched] = {};
  int npolled = 0;
  bool overflow = false;
  bool moved = false;
  // The idle wait itself; `watching` is a copy of `polled` for the watchdog's report.
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  std::vector<const StreamBase*> watching;

  void note_poll(const StreamBase* s, uint64_t version);
  void note_moved() {
    moved = true;
    state.store(static_cast<int>(State::running), std::memory_order_relaxed);
  }
  void wake();
};

// The process the calling thread runs; null outside a region's threads.
Process* current();
// Counts every item that enters or leaves a stream; the watchdog's measure of progress.
void note_progress();
// Called by a wait loop of the region whose iteration found nothing to do (SAT_DATAFLOW_IDLE): sleeps
// until one of the streams the iteration polled changes (or a short time passes).
void idle();
// Wakes the processes in `mask` (a stream changed that they watch).
void wake_watchers(uint64_t mask);

// The part of a stream that does not depend on its element type: its lock, its waits, its name and
// what the watchdog and the idle waits need.
class StreamBase {
 public:
  StreamBase() = default;
  explicit StreamBase(const char* name) : name_(name ? name : "") {}
  StreamBase(const StreamBase&) = delete;
  StreamBase& operator=(const StreamBase&) = delete;
  void set_name(std::string n) { name_ = std::move(n); }
  std::string name() const { return name_.empty() ? "(unnamed stream)" : name_; }
  // Items held and the depth, read without the lock: for the deadlock report only.
  virtual int held() const = 0;
  virtual int depth() const = 0;

 protected:
  ~StreamBase() = default;
  // After an item entered or left (with mu_ released): the watchdog's progress, the idle waits.
  void changed() {
    note_progress();
    const uint64_t w = watchers_.load();
    if (w != 0) wake_watchers(watchers_.exchange(0));
  }
  void polled_nothing(uint64_t version) const {
    if (Process* p = current()) p->note_poll(this, version);
  }
  void block(State s) {
    if (Process* p = current()) {
      p->blocked_on.store(this, std::memory_order_relaxed);
      p->state.store(static_cast<int>(s));
    }
  }
  void unblock() {
    if (Process* p = current()) {
      p->blocked_on.store(nullptr, std::memory_order_relaxed);
      p->note_moved();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  int readers_waiting_ = 0, writers_waiting_ = 0;
  // Bumped under mu_ on every change; an idle wait compares it with the value its poll saw, after
  // it has put itself in watchers_, so that a change between the poll and the wait is not lost.
  std::atomic<uint64_t> version_{0};
  std::atomic<uint64_t> watchers_{0};
  std::string name_;

  friend void idle();
  friend std::string deadlock_report();
};

// A dataflow region: spawns its processes, names its streams, watches for deadlock and joins every
// process when it goes out of scope. It must be declared after the streams it names, so that the
// threads are joined before any stream is destroyed.
class Region {
 public:
  explicit Region(const char* name);
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  template <typename F, typename... A>
  void spawn(const char* name, F f, A&&... a) {
    Process* p = add(name);
    auto args = std::make_tuple(pass(std::forward<A>(a))...);
    threads_.emplace_back([this, p, f, args]() mutable {
      enter(p);
      std::apply(f, args);
      leave(p);
    });
  }

  template <typename S>
  void name(S& s, const std::string& n) {
    if constexpr (std::is_array_v<S>) {
      for (std::size_t i = 0; i < std::extent_v<S>; ++i) name(s[i], n + "[" + std::to_string(i) + "]");
    } else {
      s.set_name(n);
    }
  }

 private:
  // A process's arguments as the thread keeps them: streams (class lvalues) by reference, arrays of
  // streams as the pointer the callee receives anyway, scalars by value (the UNROLLed loops' indices
  // change after the call).
  template <typename T>
  static auto pass(T&& a) {
    using D = std::remove_reference_t<T>;
    if constexpr (std::is_array_v<D>) {
      return static_cast<std::decay_t<D>>(a);
    } else if constexpr (std::is_class_v<D> && std::is_lvalue_reference_v<T>) {
      return std::ref(a);
    } else {
      return std::decay_t<T>(a);
    }
  }
  Process* add(const char* name);
  void enter(Process* p);
  void leave(Process* p);
  void watchdog();

  std::string name_;
  // Fixed slots: a stream may wake process i while the region is still spawning later ones.
  std::atomic<Process*> procs_[kMaxProcesses] = {};
  std::atomic<int> nprocs_{0};
  std::vector<std::thread> threads_;
  std::thread watchdog_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool stop_ = false;

  friend std::string deadlock_report();
  friend void wake_watchers(uint64_t mask);
};

// Watchdog settings, for every region started afterwards. `quiet_s`: no stream moved while every live
// process waited; `stall_s`: no stream moved at all. The handler gets the report; the default prints it
// to stderr and aborts. Environment: SAT_HLS_DEADLOCK_QUIET_S, SAT_HLS_DEADLOCK_STALL_S.
using DeadlockHandler = void (*)(const char* report);
void set_watchdog(double quiet_s, double stall_s, DeadlockHandler handler);
// The report the watchdog would give now (every process, its state and its streams).
std::string deadlock_report();

}  // namespace hls::threaded

namespace hls {

template <typename T, int Depth = 0>
class stream : public threaded::StreamBase {
  static constexpr int kCap = Depth > 0 ? Depth : 2;

 public:
  stream() = default;
  explicit stream(const char* name) : StreamBase(name) {}

  bool empty() const {
    std::unique_lock<std::mutex> l(mu_);
    const bool e = count_ == 0;
    const uint64_t v = version_.load();
    l.unlock();
    note(e, v);
    return e;
  }
  bool full() const {
    std::unique_lock<std::mutex> l(mu_);
    const bool f = count_ == kCap;
    const uint64_t v = version_.load();
    l.unlock();
    note(f, v);
    return f;
  }
  int size() const {
    std::lock_guard<std::mutex> l(mu_);
    return count_;
  }
  int capacity() const { return kCap; }
  int held() const override {
    std::unique_lock<std::mutex> l(mu_, std::try_to_lock);
    return l.owns_lock() ? count_ : -1;
  }
  int depth() const override { return kCap; }

  // Blocking read: waits while the FIFO is empty, as the hardware's read stalls.
  T read() {
    std::unique_lock<std::mutex> l(mu_);
    if (count_ == 0) {
      block(threaded::State::reading);
      ++readers_waiting_;
      not_empty_.wait(l, [&] { return count_ != 0; });
      --readers_waiting_;
      unblock();
    }
    T v = pop_locked();
    l.unlock();
    moved();
    return v;
  }
  void read(T& v) { v = read(); }
  bool read_nb(T& v) {
    std::unique_lock<std::mutex> l(mu_);
    if (count_ == 0) {
      const uint64_t ver = version_.load();
      l.unlock();
      note(true, ver);
      return false;
    }
    v = pop_locked();
    l.unlock();
    moved();
    return true;
  }
  // Blocking write: waits while the FIFO holds Depth items, as the hardware's write stalls.
  void write(const T& v) {
    std::unique_lock<std::mutex> l(mu_);
    if (count_ == kCap) {
      block(threaded::State::writing);
      ++writers_waiting_;
      not_full_.wait(l, [&] { return count_ != kCap; });
      --writers_waiting_;
      unblock();
    }
    push_locked(v);
    l.unlock();
    moved();
  }
  bool write_nb(const T& v) {
    std::unique_lock<std::mutex> l(mu_);
    if (count_ == kCap) {
      const uint64_t ver = version_.load();
      l.unlock();
      note(true, ver);
      return false;
    }
    push_locked(v);
    l.unlock();
    moved();
    return true;
  }

 private:
  T pop_locked() {
    T v = buf_[head_];
    head_ = (head_ + 1) % kCap;
    --count_;
    version_.fetch_add(1);
    if (writers_waiting_ != 0) not_full_.notify_one();
    return v;
  }
  void push_locked(const T& v) {
    buf_[(head_ + count_) % kCap] = v;
    ++count_;
    version_.fetch_add(1);
    if (readers_waiting_ != 0) not_empty_.notify_one();
  }
  // A poll that found the FIFO empty (or full) is what an idle wait watches; one that did not means
  // the process has something to do.
  void note(bool nothing, uint64_t version) const {
    if (nothing) {
      polled_nothing(version);
    } else if (threaded::Process* p = threaded::current()) {
      p->note_moved();
    }
  }
  void moved() {
    if (threaded::Process* p = threaded::current()) p->note_moved();
    changed();
  }

  T buf_[kCap] = {};
  int head_ = 0, count_ = 0;
};

}  // namespace hls
