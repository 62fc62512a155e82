#pragma once
// What every part of the driver shares: XRT calls turned into sat::Error, and the count of the XRT
// objects the driver holds (so the tests can see that an error leaves nothing allocated).
#include <atomic>
#include <exception>
#include <string>
#include <utility>

#include "sat/error.hpp"
#include "sat_driver/xrt_device.hpp"

namespace sat::driver::detail {

// Runs `f`, an XRT call; an exception from XRT becomes "device 'fpga': <what> failed: <XRT's
// message> (<check>)". A sat::Error passes through unchanged.
template <typename F>
auto xrt_call(const std::string& what, const std::string& check, F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("device 'fpga': " + what + " failed: " + e.what() + " (" + check + ")");
  }
}

enum class Kind { device, kernel, buffer, run };

std::atomic<int>& live_count(Kind k);

// An XRT object the driver owns, counted while it lives. XRT's handles are reference-counted
// shared pointers: the last Owned that drops one releases it on the device.
template <Kind K, typename T>
class Owned {
 public:
  explicit Owned(T obj) : obj_(std::move(obj)) { ++live_count(K); }
  ~Owned() { --live_count(K); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  T& operator*() { return obj_; }
  const T& operator*() const { return obj_; }
  T* operator->() { return &obj_; }
  const T* operator->() const { return &obj_; }

 private:
  T obj_;
};

// XILINX_XRT and XCL_EMULATION_MODE as this process sees them, for messages.
std::string xrt_environment();
bool noop_shim();   // XCL_EMULATION_MODE=noop
// What to check when XRT cannot start or open a card, given the environment.
std::string open_advice();

}  // namespace sat::driver::detail
