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
  cudaStream_t stream = nullptr;
  double timeout_s = kDefaultRankTimeoutS;
  int rank = 0, size = 1;

  [[noreturn]] void fail(const std::string& why) {
    if (comm) {
      ncclCommAbort(comm);   // the pending operations of this rank end with it
      comm = nullptr;
    }
    throw Error("rank " + std::to_string(rank) + " of " + std::to_string(size) + ": NCCL: " + why);
  }

  void check(ncclResult_t r, const std::string& what) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    fail("failed in " + what + ": " + ncclGetErrorString(r) +
                   (ncclGetLastError(comm) ? std::string(" (") + ncclGetLastError(comm) + ")" : ""));
  }

  // Polls until the communicator has no call in progress and, with `stream_too`, the stream's work
  // is done (poll_until); an asynchronous error or the timeout ends it.
  void wait(const std::string& what, bool stream_too) {
    const bool done = poll_until([&] {
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(comm, &state), what);
      if (state != ncclSuccess && state != ncclInProgress) check(state, what);
      if (state != ncclSuccess || !stream_too) return state == ncclSuccess;
      const cudaError_t q = cudaStreamQuery(stream);
      if (q != cudaSuccess && q != cudaErrorNotReady) SAT_CUDA_CHECK(q);
      return q == cudaSuccess;
    }, timeout_s);
    if (!done) fail(rank_timeout_message(timeout_s, what));
  }
};

NcclReducer::NcclReducer(Communicator& comm, cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  impl_->stream = stream;
  impl_->timeout_s = comm.timeout_seconds();
  impl_->rank = comm.rank();
  impl_->size = comm.size();
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
  impl_->check(ncclCommInitRankConfig(&impl_->comm, comm.size(), id, comm.rank(), &config), "NCCL's initialisation");
  impl_->wait("NCCL's initialisation", false);
}

NcclReducer::~NcclReducer() {
  if (impl_ && impl_->comm) ncclCommDestroy(impl_->comm);
}

void NcclReducer::weighted_sum(const std::vector<Buffer>& buffers, float weight, const std::string& what) {
  Impl& m = *impl_;
  if (!m.comm) throw Error("NCCL: the communicator was aborted by an earlier error");
  ncclRedOp_t op{};
  m.check(ncclRedOpCreatePreMulSum(&op, &weight, ncclFloat32, ncclScalarHostImmediate, m.comm), what);
  m.wait(what, false);
  m.check(ncclGroupStart(), what);
  for (const Buffer& b : buffers) {
    m.check(ncclAllReduce(b.data, b.data, static_cast<size_t>(b.n), ncclFloat32, op, m.comm, m.stream), what);
  }
  m.check(ncclGroupEnd(), what);
  m.wait(what, true);
  ncclRedOpDestroy(op, m.comm);
}

void NcclReducer::broadcast_from_rank0(const std::vector<Buffer>& buffers, const std::string& what) {
  Impl& m = *impl_;
  if (!m.comm) throw Error("NCCL: the communicator was aborted by an earlier error");
  if (buffers.empty()) return;
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
void NcclReducer::weighted_sum(const std::vector<Buffer>&, float, const std::string&) {}
void NcclReducer::broadcast_from_rank0(const std::vector<Buffer>&, const std::string&) {}

#endif

}  // namespace sat::cuda
