#pragma once
// Data-parallel training: every rank holds the whole model, takes its shard of each global batch,
// computes its gradients, and the ranks sum them (FP32, in rank order, the same bits on every rank)
// before each applies the same update and pre-generation. Design and numerics: docs/distributed.md.
//
// The transport is not ours: a Communicator is implemented over MPI (host/mpi, Boost.MPI) and the
// training loop (sat/train.hpp) runs over the interface below.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sat/backend.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"

namespace sat {

// An error that every rank raised together, agreed through a collective (a rank's failed step, a
// settings mismatch): the ranks can end normally. Any other error on one rank must abort the job,
// since the others may be waiting for it in a collective.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

// How long a rank waits for the others in one exchange unless told otherwise (sat train
// --mpi-timeout).
inline constexpr double kDefaultRankTimeoutS = 300;

// Polls `done` until it returns true, spinning first (an exchange between fast steps completes
// within microseconds) and then sleeping briefly between polls. Returns false once `timeout_s`
// has passed without it. What every wait on the other ranks (MPI's, NCCL's) runs.
bool poll_until(const std::function<bool()>& done, double timeout_s);
// The error text of such a wait that timed out in `what`.
std::string rank_timeout_message(double timeout_s, const std::string& what);

// Why `backend` cannot take part in data-parallel training (Backend::splits_step is false).
std::string cannot_split_message(const std::string& backend);

// The collectives data-parallel training needs. Every call is collective: all ranks make the same
// calls in the same order. Each waits at most timeout_seconds() for the other ranks and then throws
// sat::Error naming `what` (the caller's name for the exchange, "the gradient all-reduce of step 7");
// after such an error the communicator is broken and the process must end without another
// collective (the MPI implementation aborts the job on destruction).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual double timeout_seconds() const = 0;
  // Every rank's `bytes` (any length), in rank order.
  virtual std::vector<std::string> allgather(const std::string& bytes, const std::string& what) = 0;
  // data[i] = sum over ranks r = 0, 1, ... of rank r's data[i], added in FP32 in rank order, so
  // that every rank ends with the same bits. All ranks pass the same length.
  virtual void allreduce_sum(std::span<float> data, const std::string& what) = 0;
  // Rank `root`'s bytes on every rank.
  virtual void broadcast(std::string& bytes, int root, const std::string& what) = 0;
  // Ends the whole job at once, on every rank, with `status` (after an error that the other ranks
  // may not know of). Does not return.
  [[noreturn]] virtual void abort(int status) = 0;
};

// What the MPI launcher (mpirun, mpiexec; srun over PMI/PMIx) says in this process's environment,
// read without MPI: the number of processes it started (1 when none started this one), and how
// many of them run on this host (for the default thread count; 1 when unknown).
int launcher_world_size();
int launcher_local_size();
// This process's rank among those on its host (which GPU it takes); 0 when none is given.
int launcher_local_rank();
// True when an MPI launcher started this process (even as its only rank).
bool launched_by_mpi();

// The communicator of a run of one rank: every collective returns at once with this rank's data.
// What a test or a single process uses to run the data-parallel code path without MPI.
std::unique_ptr<Communicator> make_single_rank_communicator();

// [begin, end) of rank `rank`'s shard of a global batch of `count` samples: contiguous, sizes
// differing by at most one, the larger ones first.
struct Shard {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Shard shard_of(int64_t count, int rank, int ranks);

// The settings every rank must share, as (name, value) pairs named as the user sets them
// ("--model", "--nm", "--seed", ...). check_same_settings gathers every rank's, with the global
// batch as "--batch", and throws CollectiveError on every rank naming the first setting in which a
// rank differs from rank 0, and when the batch is not divisible by the number of ranks.
struct RunSettings {
  std::vector<std::pair<std::string, std::string>> items;
  void add(std::string name, std::string value) { items.emplace_back(std::move(name), std::move(value)); }
};
void check_same_settings(Communicator& comm, const RunSettings& mine, int64_t batch);

// Checks that every rank holds the same parameters (FP32 values and momentum, bit for bit) and the
// same N:M forms (W_F and W_B values and indices, the SR-STE mask); throws sat::Error on every
// rank naming the first parameter or weight that differs and the ranks. `when` says where the run
// is ("after step 120").
void check_same_state(Communicator& comm, Model& model, const std::string& when);

// Before the first data-parallel step: checks that the backend splits its step and that every rank
// holds the same state (check_same_state, `when`), and sets up where the gradients are summed: on
// the backend's device where it can (Backend::reduce_on_device; SAT_DP_REDUCE=host keeps the host,
// =device requires the device), else through the host; the ranks agree on it. Unless `quiet`,
// prints which. Returns true for the device. Throws CollectiveError naming the problem.
bool prepare_data_parallel(Communicator& comm, Backend& backend, Model& model, const std::string& when, bool quiet);

// The data-parallel step over a rank's shard (x, y: `shard` samples of a global batch of `total`):
// the backend's FF, loss, BP and WU; the gradients weighted by shard/total and summed over the
// ranks; the non-trainable state a step changes (BatchNorm's running statistics) taken from
// rank 0, as PyTorch's DistributedDataParallel does; then the update and pre-generation. With
// `on_device` (Backend::reduce_on_device set up), the backend sums the gradients on its device.
// A rank whose step fails tells the others: every rank throws sat::Error naming that rank and
// its error. `stop` is true on entry when this rank wants the run to stop after this step; it is
// true on return when any rank did. Returns the global batch's mean loss and correct count.
StepResult data_parallel_step(Communicator& comm, Backend& backend, Model& model, const Tensor& x,
                              const std::vector<int>& y, int64_t total, const UpdateConfig& cfg,
                              int64_t global_step, bool& stop, bool on_device = false);

// Gradient buckets: a backend that sums its gradients on the device (cuda with NCCL) starts the
// all-reduce of a bucket as soon as the backward pass has finished every gradient in it, while BP
// goes on with the layers before, as PyTorch's DistributedDataParallel does (docs/distributed.md,
// "cuda"). Settings from the environment, read when the run sets up its reduction:
//   SAT_DP_OVERLAP=0|1     (default 1) 0: one all-reduce of every gradient after the whole BP
//   SAT_DP_BUCKET_MB=X     (default 25, DDP's bucket_cap_mb) a bucket closes once it holds X MiB;
//                          the first (the last layers' gradients, finished first) closes at
//                          min(1 MiB, X) so that the first all-reduce starts early
struct BucketSettings {
  bool overlap = true;
  int64_t first_bytes = int64_t{1} << 20;
  int64_t bytes = int64_t{25} << 20;
};
// Throws sat::Error naming the variable and the value it refuses.
BucketSettings bucket_settings_from_env();
// Splits gradients of bytes[0], bytes[1], ... (in the order BP finishes them) into consecutive
// buckets: a bucket takes gradients until it holds at least its cap (first_bytes for the first,
// then bytes), so a gradient larger than the cap is a bucket of its own. Returns each bucket's
// first index followed by bytes.size() (empty input: {0}).
std::vector<size_t> plan_buckets(const std::vector<int64_t>& bytes, const BucketSettings& settings);

// Inference over a rank's shard of an evaluation batch: the global batch's summed loss (mean loss
// times count) and correct count, the same on every rank.
struct ShardEval {
  double loss_sum = 0;
  int64_t correct = 0;
};
ShardEval data_parallel_eval(Communicator& comm, Backend& backend, Model& model, const Tensor& x,
                             const std::vector<int>& y, Method method, const std::string& what);

// Runs `work` on every rank (it may do nothing on some) and then agrees on the outcome: when it
// threw on any rank, every rank throws CollectiveError naming the first such rank and its error
// (a rank's own error keeps its text). `what` names the work ("setting up the run").
void run_agreed(Communicator& comm, const std::function<void()>& work, const std::string& what);

// Every rank ends with a copy of the bytes of rank 0's file `path` (a checkpoint to resume from)
// in a private temporary file, whose path it returns (rank 0 returns `path` itself); the caller
// removes the copy with remove_shared_copy. A rank that cannot read or write is reported on every
// rank.
std::string share_file(Communicator& comm, const std::string& path);
void remove_shared_copy(Communicator& comm, const std::string& copy);

}  // namespace sat
