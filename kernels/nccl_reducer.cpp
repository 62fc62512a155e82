// NCCL for the cuda backend's data-parallel training: a non-blocking communicator bootstrapped over
// the MPI Communicator, grouped all-reduces with a pre-multiplied sum, and waits with a deadline.
#include "nccl_reducer.hpp"

#include <cstring>

#include "cuda_check.hpp"
#include "sat/distributed.hpp"
#include "sat/error.hpp"

#ifdef SAT_NCCL_BUILT
#include <nccl.h>
#endif

namespace sat::cuda {

#ifdef SAT_NCCL_BUILT

bool nccl_built() { return true; }

std::string nccl_description() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL (version unknown)";
  // NCCL_VERSION_CODE since 2.9: major * 10000 + minor * 100 + patch
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

struct NcclReducer::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t compute = nullptr;   // where the buffers are written
  cudaStream_t stream = nullptr;    // NCCL's own, non-blocking: nothing else waits on it implicitly
  cudaEvent_t produced = nullptr;   // the compute stream's work so far, for the next operation
  double timeout_s = kDefaultRankTimeoutS;
  int rank = 0, size = 1;
  ncclRedOp_t op{};
  bool has_op = false;
  bool in_flight = false;   // operations enqueued and not yet waited for
  std::string what;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (comm) {
      // An operation left in flight waits for a peer that may never come (its step failed): only
      // an abort ends its kernels. Otherwise the communicator is destroyed in order.
      if (in_flight && cudaStreamQuery(stream) != cudaSuccess) {
        ncclCommAbort(comm);
      } else {
        if (has_op) ncclRedOpDestroy(op, comm);
        ncclCommDestroy(comm);
      }
    }
    if (produced) cudaEventDestroy(produced);
    if (stream) cudaStreamDestroy(stream);
  }

  [[noreturn]] void fail(const std::string& why) {
    if (comm) {
      ncclCommAbort(comm);   // the pending operations of this rank end with it
      comm = nullptr;
      has_op = false;
      in_flight = false;
    }
    throw Error("rank " + std::to_string(rank) + " of " + std::to_string(size) + ": NCCL: " + why);
  }

  void check(ncclResult_t r, const std::string& in) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    fail("failed in " + in + ": " + ncclGetErrorString(r) +
                   (ncclGetLastError(comm) ? std::string(" (") + ncclGetLastError(comm) + ")" : ""));
  }

  void require_comm() const {
    if (!comm) throw Error("NCCL: the communicator was aborted by an earlier error");
  }

  // Polls until the communicator has no call in progress (a non-blocking communicator may still be
  // enqueueing the last one) and, with `stream_too`, NCCL's stream has done its work (poll_until);
  // an asynchronous error or the timeout ends it.
  void wait(const std::string& in, bool stream_too) {
    const bool done = poll_until([&] {
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(comm, &state), in);
      if (state != ncclSuccess && state != ncclInProgress) check(state, in);
      if (state != ncclSuccess || !stream_too) return state == ncclSuccess;
      const cudaError_t q = cudaStreamQuery(stream);
      if (q != cudaSuccess && q != cudaErrorNotReady) SAT_CUDA_CHECK(q);
      return q == cudaSuccess;
    }, timeout_s);
    if (!done) fail(rank_timeout_message(timeout_s, in));
    if (stream_too) in_flight = false;
  }

  // NCCL's next operations start after the compute stream's work enqueued so far.
  void after_compute() {
    SAT_CUDA_CHECK(cudaEventRecord(produced, compute));
    SAT_CUDA_CHECK(cudaStreamWaitEvent(stream, produced, 0));
  }
};

NcclReducer::NcclReducer(Communicator& comm, cudaStream_t compute) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.compute = compute;
  m.timeout_s = comm.timeout_seconds();
  m.rank = comm.rank();
  m.size = comm.size();
  SAT_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  SAT_CUDA_CHECK(cudaEventCreateWithFlags(&m.produced, cudaEventDisableTiming));
  ncclUniqueId id{};
  std::string bytes;
  if (comm.rank() == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) throw Error(std::string("NCCL: ncclGetUniqueId failed: ") + ncclGetErrorString(r));
    bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
  }
  comm.broadcast(bytes, 0, "the NCCL communicator's unique id");
  if (bytes.size() != sizeof id) throw Error("NCCL: rank 0 sent a unique id of " + std::to_string(bytes.size()) + " bytes");
  std::memcpy(&id, bytes.data(), sizeof id);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  m.check(ncclCommInitRankConfig(&m.comm, comm.size(), id, comm.rank(), &config), "NCCL's initialisation");
  m.wait("NCCL's initialisation", false);
}

NcclReducer::~NcclReducer() = default;

void NcclReducer::begin_sum(float weight, const std::string& what) {
  Impl& m = *impl_;
  m.require_comm();
  if (m.in_flight) m.wait(m.what, true);   // an earlier sum never waited for (not expected)
  if (m.has_op) {
    ncclRedOpDestroy(m.op, m.comm);
    m.has_op = false;
  }
  m.what = what;
  m.check(ncclRedOpCreatePreMulSum(&m.op, &weight, ncclFloat32, ncclScalarHostImmediate, m.comm), what);
  m.has_op = true;
  m.wait(what, false);
}

void NcclReducer::sum_async(const std::vector<Buffer>& buffers) {
  Impl& m = *impl_;
  m.require_comm();
  if (!m.has_op) throw Error("NCCL: a sum of buffers without begin_sum (internal error)");
  if (buffers.empty()) return;
  m.after_compute();
  m.in_flight = true;
  m.check(ncclGroupStart(), m.what);
  for (const Buffer& b : buffers) {
    m.check(ncclAllReduce(b.data, b.data, static_cast<size_t>(b.n), ncclFloat32, m.op, m.comm, m.stream), m.what);
  }
  m.check(ncclGroupEnd(), m.what);
  m.wait(m.what, false);   // enqueued (not done): the next NCCL call may follow
}

void NcclReducer::end_sum() {
  Impl& m = *impl_;
  m.require_comm();
  m.wait(m.what, true);
  if (m.has_op) {
    ncclRedOpDestroy(m.op, m.comm);
    m.has_op = false;
  }
}

void NcclReducer::weighted_sum(const std::vector<Buffer>& buffers, float weight, const std::string& what) {
  begin_sum(weight, what);
  sum_async(buffers);
  end_sum();
}

void NcclReducer::broadcast_from_rank0(const std::vector<Buffer>& buffers, const std::string& what) {
  Impl& m = *impl_;
  m.require_comm();
  if (buffers.empty()) return;
  m.after_compute();
  m.in_flight = true;
  m.check(ncclGroupStart(), what);
  for (const Buffer& b : buffers) {
    m.check(ncclBroadcast(b.data, b.data, static_cast<size_t>(b.n), ncclFloat32, 0, m.comm, m.stream), what);
  }
  m.check(ncclGroupEnd(), what);
  m.wait(what, true);
}

#else  // no NCCL in this build

bool nccl_built() { return false; }
std::string nccl_description() { return "not built (configure found no nccl.h and libnccl)"; }

struct NcclReducer::Impl {};

NcclReducer::NcclReducer(Communicator&, cudaStream_t) {
  throw Error("this build has no NCCL (configure found no nccl.h and libnccl; docs/distributed.md)");
}
NcclReducer::~NcclReducer() = default;
void NcclReducer::begin_sum(float, const std::string&) {}
void NcclReducer::sum_async(const std::vector<Buffer>&) {}
void NcclReducer::end_sum() {}
void NcclReducer::weighted_sum(const std::vector<Buffer>&, float, const std::string&) {}
void NcclReducer::broadcast_from_rank0(const std::vector<Buffer>&, const std::string&) {}

#endif

}  // namespace sat::cuda
