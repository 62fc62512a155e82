// The `fpga` device over XRT's native API. One Session holds the card, the loaded xclbin and the
// kernel; every memory and stream made from it holds the Session too, so the card is released only
// after the last buffer on it, whichever order the owners drop them in.
#include "sat_driver/xrt_device.hpp"

#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "sat/arch/interface.hpp"
#include "sat/error.hpp"
#include "xclbin_check.hpp"
#include "xrt_support.hpp"

namespace sat::driver {

using detail::Kind;
using detail::Owned;
using detail::xrt_call;

namespace {

constexpr const char* kBufferAdvice = "is the card's memory free? 'xbutil examine -r memory' shows its use";
constexpr const char* kRunAdvice = "'xbutil examine' shows the card's state; 'xbutil reset' clears a stuck kernel";

int arg_index(arch::TopArgKind kind, int channel) {
  for (int i = 0; i < arch::kNumTopArgs; ++i) {
    if (arch::kTopArgs[i].kind == kind && arch::kTopArgs[i].channel == channel) return i;
  }
  throw Error("device 'fpga': the contract has no argument of that kind for channel " + std::to_string(channel));
}

const char* state_name(ert_cmd_state s) {
  switch (s) {
    case ERT_CMD_STATE_NEW: return "NEW";
    case ERT_CMD_STATE_QUEUED: return "QUEUED";
    case ERT_CMD_STATE_RUNNING: return "RUNNING";
    case ERT_CMD_STATE_COMPLETED: return "COMPLETED";
    case ERT_CMD_STATE_ERROR: return "ERROR";
    case ERT_CMD_STATE_ABORT: return "ABORT";
    case ERT_CMD_STATE_SUBMITTED: return "SUBMITTED";
    case ERT_CMD_STATE_TIMEOUT: return "TIMEOUT";
    case ERT_CMD_STATE_NORESPONSE: return "NORESPONSE";
    default: return "unknown";
  }
}

bool is_index(const std::string& s) {
  if (s.empty() || s.size() > 4) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

struct Session {
  explicit Session(xrt::device d) : device(std::move(d)) {}
  Owned<Kind::device, xrt::device> device;
  xrt::uuid uuid;
  std::unique_ptr<Owned<Kind::kernel, xrt::kernel>> kernel;
  std::vector<ArgPlacement> placement;
  std::string description;
  std::function<WaitOutcome(std::chrono::milliseconds)> wait_override;
};

using Buffer = Owned<Kind::buffer, xrt::bo>;

std::unique_ptr<Buffer> allocate_buffer(Session& s, uint64_t bytes, int group, const std::string& what) {
  // Whole pages: XRT backs a buffer's host side with aligned_alloc(4096, size), which C requires to
  // be a multiple of the alignment (glibc tolerates others; AddressSanitizer does not). A channel
  // the program leaves empty still gets a page: every m_axi argument of a run names a buffer.
  constexpr uint64_t kPage = 4096;
  const uint64_t n = bytes == 0 ? kPage : (bytes + kPage - 1) / kPage * kPage;
  auto bo = std::make_unique<Buffer>(xrt_call("allocating " + std::to_string(n) + " bytes for " + what + " in bank " +
                                                  std::to_string(group),
                                              kBufferAdvice, [&] { return xrt::bo(*s.device, n, group); }));
  xrt_call("clearing " + what, kBufferAdvice, [&] {
    std::memset((*bo)->map<void*>(), 0, n);
    (*bo)->sync(XCL_BO_SYNC_BO_TO_DEVICE);
  });
  return bo;
}

class Stream final : public DeviceStream {
 public:
  Stream(std::shared_ptr<Session> s, std::unique_ptr<Buffer> bo, size_t n)
      : session(std::move(s)), bo(std::move(bo)), count(n) {}
  size_t size() const override { return count; }
  // The buffer before the session: members are destroyed in reverse order.
  std::shared_ptr<Session> session;
  std::unique_ptr<Buffer> bo;
  size_t count;
};

class Memory final : public XrtMemory {
 public:
  Memory(std::shared_ptr<Session> s, const ChannelBytes& bytes) : session_(std::move(s)), bytes_(bytes) {
    for (int c = 0; c < arch::kDdrChannels; ++c) {
      const ArgPlacement& p = session_->placement[static_cast<size_t>(arg_index(arch::TopArgKind::ddr, c))];
      const int group = xrt_call("looking up the bank of argument " + p.name, "the xclbin's connectivity",
                                 [&] { return (*session_->kernel)->group_id(arg_index(arch::TopArgKind::ddr, c)); });
      if (p.bank_bytes && bytes[c] > p.bank_bytes) {
        throw Error("device 'fpga': the program needs " + std::to_string(bytes[c]) + " bytes on DDR channel " +
                    std::to_string(c) + ", but bank " + p.bank_tag + " holds " + std::to_string(p.bank_bytes));
      }
      banks_[c] = group;
      bo_[c] = allocate_buffer(*session_, bytes[c], group, "DDR channel " + std::to_string(c));
    }
  }
  uint64_t bytes(int channel) const override { return bytes_.at(static_cast<size_t>(channel)); }
  void write(int channel, uint64_t offset, const void* src, uint64_t n) override {
    check_transfer("fpga", channel, offset, n, size_of(channel));
    if (n == 0) return;
    xrt_call("writing " + std::to_string(n) + " bytes at offset " + std::to_string(offset) + " of DDR channel " +
                 std::to_string(channel),
             kRunAdvice, [&] {
               (*bo_[channel])->write(src, n, offset);
               (*bo_[channel])->sync(XCL_BO_SYNC_BO_TO_DEVICE, n, offset);
             });
  }
  void read(int channel, uint64_t offset, void* dst, uint64_t n) override {
    check_transfer("fpga", channel, offset, n, size_of(channel));
    if (n == 0) return;
    xrt_call("reading " + std::to_string(n) + " bytes at offset " + std::to_string(offset) + " of DDR channel " +
                 std::to_string(channel),
             kRunAdvice, [&] {
               (*bo_[channel])->sync(XCL_BO_SYNC_BO_FROM_DEVICE, n, offset);
               (*bo_[channel])->read(dst, n, offset);
             });
  }
  int bank(int channel) const override { return banks_.at(static_cast<size_t>(channel)); }
  uint64_t buffer_bytes(int channel) const override { return (*bo_.at(static_cast<size_t>(channel)))->size(); }
  uint64_t device_address(int channel) const override { return (*bo_.at(static_cast<size_t>(channel)))->address(); }
  Session* session() const { return session_.get(); }
  xrt::bo& bo(int channel) { return **bo_[static_cast<size_t>(channel)]; }

 private:
  // 0 for a channel that does not exist, which check_transfer then names.
  uint64_t size_of(int channel) const {
    return channel >= 0 && channel < arch::kDdrChannels ? bytes_[static_cast<size_t>(channel)] : 0;
  }

  std::shared_ptr<Session> session_;
  ChannelBytes bytes_{};
  std::array<int, arch::kDdrChannels> banks_{};
  std::array<std::unique_ptr<Buffer>, arch::kDdrChannels> bo_;
};

class Device final : public XrtDevice {
 public:
  explicit Device(std::shared_ptr<Session> s) : s_(std::move(s)) {}
  std::string name() const override { return "fpga"; }
  std::string description() const override { return s_->description; }
  const std::vector<ArgPlacement>& placement() const override { return s_->placement; }
  std::string xclbin_uuid() const override { return s_->uuid.to_string(); }

  std::unique_ptr<DeviceMemory> allocate(const ChannelBytes& bytes) override {
    return std::make_unique<Memory>(s_, bytes);
  }

  std::unique_ptr<DeviceStream> load(const std::vector<isa::Insn>& insns) override {
    const int arg = arg_index(arch::TopArgKind::insn_stream, -1);
    const int group = xrt_call("looking up the bank of the instruction stream", "the xclbin's connectivity",
                               [&] { return (*s_->kernel)->group_id(arg); });
    const uint64_t bytes = insns.size() * sizeof(isa::Insn);
    std::unique_ptr<Buffer> bo = allocate_buffer(*s_, bytes, group, "the instruction stream");
    if (bytes) {
      xrt_call("writing the instruction stream", kRunAdvice, [&] {
        (*bo)->write(insns.data(), bytes, 0);
        (*bo)->sync(XCL_BO_SYNC_BO_TO_DEVICE, bytes, 0);
      });
    }
    return std::make_unique<Stream>(s_, std::move(bo), insns.size());
  }

  RunResult run(DeviceStream& stream, DeviceMemory& memory, std::chrono::milliseconds timeout) override {
    return start(stream, memory, timeout)->wait();
  }

  // Sets the arguments and starts the kernel; the returned run waits for it. The backend writes
  // the next batch into the region the running stream does not read between the two.
  std::unique_ptr<DeviceRun> start(DeviceStream& stream, DeviceMemory& memory, std::chrono::milliseconds timeout) override {
    auto* st = dynamic_cast<Stream*>(&stream);
    auto* mem = dynamic_cast<Memory*>(&memory);
    if (!st || !mem || st->session != s_ || mem->session() != s_.get()) {
      throw Error("device 'fpga': the stream or the memory was made by another device");
    }
    auto r = std::make_unique<Owned<Kind::run, xrt::run>>(xrt_call(
        "creating a run of " + std::string(arch::kTopName), kRunAdvice, [&] { return xrt::run(**s_->kernel); }));
    xrt_call("setting the arguments of " + std::string(arch::kTopName), kRunAdvice, [&] {
      for (int i = 0; i < arch::kNumTopArgs; ++i) {
        const arch::TopArg& a = arch::kTopArgs[i];
        switch (a.kind) {
          case arch::TopArgKind::insn_stream: (*r)->set_arg(i, **st->bo); break;
          case arch::TopArgKind::u32: (*r)->set_arg(i, static_cast<uint32_t>(st->count)); break;
          case arch::TopArgKind::ddr: (*r)->set_arg(i, mem->bo(a.channel)); break;
          case arch::TopArgKind::u64: (*r)->set_arg(i, static_cast<uint64_t>(mem->bytes(a.channel) / 2)); break;
          case arch::TopArgKind::status: break;   // written by the kernel, read after the run
        }
      }
    });
    const auto t0 = std::chrono::steady_clock::now();
    xrt_call("starting " + std::string(arch::kTopName), kRunAdvice, [&] { (*r)->start(); });
    return std::make_unique<Run>(s_, std::move(r), t0, timeout);
  }

 private:
  // A started xrt::run. wait() waits for what is left of the timeout; a run dropped without wait()
  // (an exception between start and wait) is waited for, and aborted at its timeout, before its
  // buffers can go.
  class Run final : public DeviceRun {
   public:
    Run(std::shared_ptr<Session> s, std::unique_ptr<Owned<Kind::run, xrt::run>> r,
        std::chrono::steady_clock::time_point t0, std::chrono::milliseconds timeout)
        : s_(std::move(s)), r_(std::move(r)), t0_(t0), timeout_(timeout) {}
    ~Run() override {
      if (r_) {
        try {
          wait();
        } catch (...) {   // a destructor cannot report; the error came with the exception that got here
        }
      }
    }

    RunResult wait() override {
      if (!r_) throw Error("device 'fpga': a run's result was already taken");
      const auto r = std::move(r_);
      RunResult out;
      std::chrono::milliseconds left{0};
      if (timeout_.count() > 0) {
        const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0_);
        left = std::max(std::chrono::milliseconds{1}, timeout_ - spent);   // 0 would mean no timeout to XRT
      }
      WaitOutcome outcome = WaitOutcome::completed;
      if (s_->wait_override) {
        outcome = s_->wait_override(left);
      } else {
        const ert_cmd_state state = xrt_call("waiting for " + std::string(arch::kTopName), kRunAdvice,
                                             [&] { return (*r)->wait(left); });
        if (state == ERT_CMD_STATE_TIMEOUT) {
          outcome = WaitOutcome::timed_out;
        } else if (state != ERT_CMD_STATE_COMPLETED) {
          throw Error(std::string("device 'fpga': the run of ") + arch::kTopName + " ended in state " +
                      state_name(state) + " (" + kRunAdvice + ")");
        }
      }
      out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
      if (outcome == WaitOutcome::timed_out) {
        // The kernel is stopped before the buffers can go: XRT must not free memory a kernel writes.
        xrt_call("stopping the run of " + std::string(arch::kTopName) + " after its timeout",
                 std::string(kRunAdvice) + "; the card may need 'xbutil reset' before its next use",
                 [&] { (*r)->abort(); });
        out.timed_out = true;
        return out;
      }
      out.status = read_status();
      // The board has a clock: the kernel's collector counted the run's cycles (docs/fpga.md).
      out.counters = counters_from_status(out.status, true);
      return out;
    }

   private:
    StatusWords read_status() {
      const ArgPlacement& p = s_->placement[static_cast<size_t>(arg_index(arch::TopArgKind::status, -1))];
      StatusWords w{};
      xrt_call("reading the status words of " + std::string(arch::kTopName) + " (registers at offset " +
                   std::to_string(p.offset) + ")",
               detail::noop_shim()
                   ? std::string("XRT's no-op shim runs no kernel and has no registers to read: a run needs a card")
                   : std::string(kRunAdvice),
               [&] {
                 for (int i = 0; i < isa::kStatusWords; ++i) {
                   w[static_cast<size_t>(i)] = (*s_->kernel)->read_register(static_cast<uint32_t>(p.offset + 4u * i));
                 }
               });
      return w;
    }

    std::shared_ptr<Session> s_;
    std::unique_ptr<Owned<Kind::run, xrt::run>> r_;
    std::chrono::steady_clock::time_point t0_;
    std::chrono::milliseconds timeout_;
  };

  std::shared_ptr<Session> s_;
};

}  // namespace

XrtOptions xrt_options_from_env() {
  XrtOptions o;
  if (const char* x = std::getenv("SAT_XCLBIN")) o.xclbin = x;
  if (const char* d = std::getenv("SAT_FPGA_DEVICE"); d && *d) o.device = d;
  return o;
}

std::unique_ptr<sat::Device> open_xrt_device(const XrtOptions& o) {
  // The xclbin first: a file that is not a SAT kernel of this build never reaches the card.
  detail::CheckedXclbin x = detail::read_sat_xclbin(o.xclbin);
  const std::string advice = detail::open_advice();
  xrt::device dev;
  if (is_index(o.device)) {
    dev = xrt_call("opening card " + o.device, advice,
                   [&] { return xrt::device(static_cast<unsigned int>(std::stoul(o.device))); });
  } else if (o.device.find(':') != std::string::npos) {
    dev = xrt_call("opening the card at PCIe BDF " + o.device, advice, [&] { return xrt::device(o.device); });
  } else {
    throw Error("device 'fpga': '" + o.device + "' is neither a card index (0, 1, ...) nor a PCIe BDF "
                "(like 0000:65:00.1; 'sat devices' lists them)");
  }
  auto s = std::make_shared<Session>(std::move(dev));
  s->uuid = xrt_call("loading xclbin '" + o.xclbin + "'",
                     "was it linked for this card's shell? it was linked for " + x.platform +
                         "; 'xbutil examine' names the card's shell",
                     [&] { return (*s->device).load_xclbin(x.xclbin); });
  s->kernel = std::make_unique<Owned<Kind::kernel, xrt::kernel>>(xrt_call(
      std::string("opening kernel ") + arch::kTopName + " of xclbin '" + o.xclbin + "'",
      "the driver reads its status registers and needs it for itself: is another process using the card?",
      [&] { return xrt::kernel(*s->device, s->uuid, arch::kTopName, xrt::kernel::cu_access_mode::exclusive); }));
  s->placement = std::move(x.args);
  // What XRT says the kernel's arguments are connected to is what the buffers follow.
  for (int i = 0; i < arch::kNumTopArgs; ++i) {
    ArgPlacement& p = s->placement[static_cast<size_t>(i)];
    if (p.bank < 0) continue;
    p.bank = xrt_call("looking up the bank of argument " + p.name, "the xclbin's connectivity",
                      [&] { return (*s->kernel)->group_id(i); });
  }
  s->description = "SAT kernel on XRT card " + o.device + (detail::noop_shim() ? " (XRT's no-op shim: no board)" : "") +
                   ", xclbin " + o.xclbin;
  s->wait_override = o.wait_override;
  return std::make_unique<Device>(std::move(s));
}

}  // namespace sat::driver
