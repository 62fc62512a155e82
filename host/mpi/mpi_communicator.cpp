// The MPI Communicator. Boost.MPI owns MPI's lifetime and the world communicator; the exchanges are
// MPI-3 non-blocking collectives (Boost.MPI 1.74 wraps none) polled against a deadline, so that a
// rank that died or hangs ends the others with an error instead of a hang.
#include "mpi_communicator.hpp"

#include <mpi.h>
#include <unistd.h>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <climits>
#include <cstdio>
#include <cstring>

#include "sat/error.hpp"

namespace sat {

namespace {

// The largest count one MPI call carries here (counts are int).
constexpr int64_t kMaxCount = INT_MAX / 2;

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s)
      // FUNNELED: the OpenMP threads inside a rank's kernels never call MPI. Exceptions are this
      // class's to handle (an unwinding error must not abort the job before it is printed).
      : env_(boost::mpi::threading::funneled, false), timeout_s_(timeout_s) {
    if (boost::mpi::environment::thread_level() < boost::mpi::threading::funneled) {
      throw Error("MPI provides no thread support (MPI_THREAD_FUNNELED): the CPU kernels' threads need it");
    }
    MPI_Comm_set_errhandler(comm(), MPI_ERRORS_RETURN);
  }

  ~MpiCommunicator() override {
    // A collective that timed out is still pending on this rank: MPI_Finalize could wait for it.
    if (broken_) env_.abort(1);
  }

  int rank() const override { return world_.rank(); }
  int size() const override { return world_.size(); }
  double timeout_seconds() const override { return timeout_s_; }

  std::vector<std::string> allgather(const std::string& bytes, const std::string& what) override {
    const int n = size();
    int64_t mine = static_cast<int64_t>(bytes.size());
    std::vector<int64_t> lengths(static_cast<size_t>(n));
    MPI_Request req;
    check(MPI_Iallgather(&mine, 1, MPI_INT64_T, lengths.data(), 1, MPI_INT64_T, comm(), &req), what);
    wait(req, what);
    std::vector<int> counts(static_cast<size_t>(n)), displs(static_cast<size_t>(n));
    int64_t total = 0;
    for (int r = 0; r < n; ++r) {
      if (lengths[r] > kMaxCount || total + lengths[r] > kMaxCount) {
        fail(what + ": the records are larger than one MPI exchange carries (" + std::to_string(lengths[r]) + " bytes)");
      }
      counts[r] = static_cast<int>(lengths[r]);
      displs[r] = static_cast<int>(total);
      total += lengths[r];
    }
    std::string all(static_cast<size_t>(total), '\0');
    check(MPI_Iallgatherv(bytes.data(), static_cast<int>(mine), MPI_BYTE, all.data(), counts.data(), displs.data(),
                          MPI_BYTE, comm(), &req), what);
    wait(req, what);
    std::vector<std::string> out;
    for (int r = 0; r < n; ++r) out.push_back(all.substr(static_cast<size_t>(displs[r]), static_cast<size_t>(counts[r])));
    return out;
  }

  void allreduce_sum(std::span<float> data, const std::string& what) override {
    const int n = size();
    if (n == 1) return;
    // Reduce-scatter by an all-to-all (rank r receives chunk r of every rank and adds them in rank
    // order), then an all-gather of the sums: the bandwidth of a ring all-reduce, and the same bits
    // on every rank, since each sum is computed once.
    const int64_t segment = kMaxCount / 4;
    std::vector<float> received;
    for (int64_t base = 0; base < static_cast<int64_t>(data.size()); base += segment) {
      const int64_t len = std::min<int64_t>(segment, static_cast<int64_t>(data.size()) - base);
      float* seg = data.data() + base;
      std::vector<int> send_counts(n), send_displs(n), recv_counts(n), recv_displs(n);
      for (int r = 0; r < n; ++r) {
        const Shard c = shard_of(len, r, n);
        send_counts[r] = static_cast<int>(c.size());
        send_displs[r] = static_cast<int>(c.begin);
      }
      const Shard mine = shard_of(len, rank(), n);
      for (int r = 0; r < n; ++r) {
        recv_counts[r] = static_cast<int>(mine.size());
        recv_displs[r] = static_cast<int>(r * mine.size());
      }
      received.resize(static_cast<size_t>(n * mine.size()));
      MPI_Request req;
      check(MPI_Ialltoallv(seg, send_counts.data(), send_displs.data(), MPI_FLOAT, received.data(), recv_counts.data(),
                           recv_displs.data(), MPI_FLOAT, comm(), &req), what);
      wait(req, what);
      float* sum = seg + mine.begin;
      for (int64_t i = 0; i < mine.size(); ++i) sum[i] = received[static_cast<size_t>(i)];
      for (int r = 1; r < n; ++r) {
        const float* part = received.data() + r * mine.size();
        for (int64_t i = 0; i < mine.size(); ++i) sum[i] += part[i];
      }
      check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, seg, send_counts.data(), send_displs.data(), MPI_FLOAT, comm(),
                            &req), what);
      wait(req, what);
    }
  }

  void broadcast(std::string& bytes, int root, const std::string& what) override {
    int64_t len = static_cast<int64_t>(bytes.size());
    MPI_Request req;
    check(MPI_Ibcast(&len, 1, MPI_INT64_T, root, comm(), &req), what);
    wait(req, what);
    bytes.resize(static_cast<size_t>(len));
    for (int64_t at = 0; at < len; at += kMaxCount) {
      const int part = static_cast<int>(std::min<int64_t>(kMaxCount, len - at));
      check(MPI_Ibcast(bytes.data() + at, part, MPI_BYTE, root, comm(), &req), what);
      wait(req, what);
    }
  }

  [[noreturn]] void abort(int status) override {
    std::fflush(stdout);
    std::fflush(stderr);
    env_.abort(status);
    std::_Exit(status);   // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  MPI_Comm comm() const { return static_cast<MPI_Comm>(world_); }

  [[noreturn]] void fail(const std::string& message) {
    broken_ = true;
    throw Error("rank " + std::to_string(rank()) + " of " + std::to_string(size()) + ": " + message);
  }

  void check(int rc, const std::string& what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    fail("MPI failed in " + what + ": " + std::string(text, static_cast<size_t>(len)));
  }

  // Polls the request until it completes or the timeout passes (poll_until).
  void wait(MPI_Request& req, const std::string& what) {
    const bool done = poll_until([&] {
      int flag = 0;
      check(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), what);
      return flag != 0;
    }, timeout_s_);
    if (!done) fail(rank_timeout_message(timeout_s_, what));
  }

  boost::mpi::environment env_;
  boost::mpi::communicator world_;
  double timeout_s_;
  bool broken_ = false;
};

}  // namespace

std::unique_ptr<Communicator> open_mpi_communicator(double timeout_s) {
  if (!(timeout_s > 0)) throw Error("the MPI timeout must be > 0 seconds");
  if (boost::mpi::environment::initialized()) throw Error("MPI is already initialised in this process");
  return std::make_unique<MpiCommunicator>(timeout_s);
}

}  // namespace sat
