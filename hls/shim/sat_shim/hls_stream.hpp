#pragma once
// A small stand-in for Xilinx's <hls_stream.h>, used only where the Vitis HLS headers are absent.
// hls::stream<T, Depth> is a bounded FIFO (a ring buffer of Depth entries, 2 when Depth is 0, as
// Vitis's default FIFO depth) with the blocking and non-blocking calls of the real class. Unlike
// the real C-simulation model (unbounded), full() reports the configured depth, so the kernel's
// cooperative C-simulation stalls exactly where the hardware FIFO would. Reading an empty or
// writing a full stream in blocking form would hang the hardware; here it aborts with a message.
// With SAT_HLS_THREADED the region's processes run as threads instead, and the stream is the
// thread-safe blocking FIFO of threaded.hpp.
#if defined(SAT_HLS_THREADED)
#include "sat_shim/threaded.hpp"
#else
#include <cstdio>
#include <cstdlib>

namespace hls {

template <typename T, int Depth = 0>
class stream {
  static constexpr int kCap = Depth > 0 ? Depth : 2;

 public:
  stream() = default;
  explicit stream(const char*) {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == kCap; }
  int size() const { return count_; }
  int capacity() const { return kCap; }

  T read() {
    if (empty()) fail("read from an empty stream (the hardware would block forever)");
    T v = buf_[head_];
    head_ = (head_ + 1) % kCap;
    --count_;
    return v;
  }
  void read(T& v) { v = read(); }
  bool read_nb(T& v) {
    if (empty()) return false;
    v = read();
    return true;
  }
  void write(const T& v) {
    if (full()) fail("write to a full stream (the hardware would block forever)");
    buf_[(head_ + count_) % kCap] = v;
    ++count_;
  }
  bool write_nb(const T& v) {
    if (full()) return false;
    write(v);
    return true;
  }
  const T& front() const { return buf_[head_]; }
  void clear() { head_ = count_ = 0; }

 private:
  [[noreturn]] static void fail(const char* what) {
    std::fprintf(stderr, "hls::stream shim: %s\n", what);
    std::abort();
  }
  T buf_[kCap] = {};
  int head_ = 0, count_ = 0;
};

}  // namespace hls
#endif  // SAT_HLS_THREADED
