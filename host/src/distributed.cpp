// Data-parallel training over a Communicator (docs/distributed.md): shards, the split step with its
// gradient all-reduce, the agreement on failures and settings, and the checks that every rank
// trains the same model.
#include "sat/distributed.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "sat/io.hpp"

namespace sat {

namespace {

using json = nlohmann::json;

// Every rank's record of one exchange, parsed; a record that does not parse is a rank running
// another build of sat.
std::vector<json> exchange(Communicator& comm, const json& mine, const std::string& what) {
  const std::vector<std::string> all = comm.allgather(mine.dump(), what);
  std::vector<json> out;
  out.reserve(all.size());
  for (size_t r = 0; r < all.size(); ++r) {
    json j = json::parse(all[r], nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      throw CollectiveError("rank " + std::to_string(r) + " sent an unreadable record in " + what +
                            " (every rank must run the same build of sat)");
    }
    out.push_back(std::move(j));
  }
  return out;
}

// Throws the first failure any rank reported in `records` ("ok": false, "error": text) on every rank.
void raise_failures(const std::vector<json>& records, const std::string& where) {
  for (size_t r = 0; r < records.size(); ++r) {
    if (!records[r].value("ok", false)) {
      throw CollectiveError("rank " + std::to_string(r) + " of " + std::to_string(records.size()) + " failed " +
                            where + ": " + records[r].value("error", std::string("(no message)")));
    }
  }
}

// Runs `work` and returns this rank's record for the exchange that follows: {"ok": true} and what
// `work` added, or {"ok": false, "error": its message}.
json attempt(const std::function<void(json&)>& work) {
  json record = {{"ok", true}};
  try {
    work(record);
  } catch (const std::exception& e) {
    record = {{"ok", false}, {"error", e.what()}};
  }
  return record;
}

// The update on every rank after the same exchange: an error (divergence) is every rank's.
void apply_agreed_update(Backend& backend, Model& model, const UpdateConfig& cfg) {
  try {
    backend.apply_update(model, cfg);
  } catch (const Error& e) {
    throw CollectiveError(e.what());
  }
}

std::vector<float> non_trainable_values(Model& model) {
  std::vector<float> out;
  for (Param* p : model.params()) {
    if (!p->trainable) out.insert(out.end(), p->value.begin(), p->value.end());
  }
  return out;
}

// What the launchers put in a rank's environment: Open MPI's mpirun, then MPICH's and Intel MPI's
// Hydra.
constexpr std::initializer_list<const char*> kWorldSizeVars = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
constexpr std::initializer_list<const char*> kLocalSizeVars = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"};
constexpr std::initializer_list<const char*> kLocalRankVars = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"};

// The first of `names` set in the environment, as a number; nullopt when none is.
std::optional<int> env_int(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const char* v = std::getenv(name);
    if (v && *v) return std::atoi(v);
  }
  return std::nullopt;
}

}  // namespace

int launcher_world_size() { return std::max(1, env_int(kWorldSizeVars).value_or(1)); }
int launcher_local_size() { return std::max(1, env_int(kLocalSizeVars).value_or(1)); }
int launcher_local_rank() { return std::max(0, env_int(kLocalRankVars).value_or(0)); }
bool launched_by_mpi() { return env_int(kWorldSizeVars).has_value(); }

bool poll_until(const std::function<bool()>& done, double timeout_s) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  for (long polls = 0;; ++polls) {
    if (done()) return true;
    if (Clock::now() > deadline) return false;
    if (polls > 2000) std::this_thread::sleep_for(std::chrono::microseconds(polls > 20000 ? 1000 : 50));
  }
}

std::string rank_timeout_message(double timeout_s, const std::string& what) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", timeout_s);
  return "timed out after " + std::string(secs) + " s waiting for the other ranks in " + what +
         ": a rank has died, hangs or is far slower (--mpi-timeout sets the limit)";
}

std::string cannot_split_message(const std::string& backend) {
  return "backend '" + backend + "' runs its training step whole and cannot split it at the gradient all-reduce: "
         "data-parallel training needs a backend whose step splits there (cpu, cuda, hls, sim, fpga; docs/distributed.md)";
}

namespace {

class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  double timeout_seconds() const override { return kDefaultRankTimeoutS; }
  std::vector<std::string> allgather(const std::string& bytes, const std::string&) override { return {bytes}; }
  void allreduce_sum(std::span<float>, const std::string&) override {}
  void broadcast(std::string&, int, const std::string&) override {}
  [[noreturn]] void abort(int status) override { std::_Exit(status); }
};

}  // namespace

std::unique_ptr<Communicator> make_single_rank_communicator() { return std::make_unique<SingleRankCommunicator>(); }

Shard shard_of(int64_t count, int rank, int ranks) {
  const int64_t base = count / ranks, extra = count % ranks;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

void check_same_settings(Communicator& comm, const RunSettings& mine, int64_t batch) {
  json j = {{"ok", true}};
  json items = json::array();
  items.push_back({"--batch", std::to_string(batch)});
  for (const auto& [name, value] : mine.items) items.push_back({name, value});
  j["items"] = items;
  const std::vector<json> all = exchange(comm, j, "the check of the run's settings");
  const json& first = all[0]["items"];
  for (size_t r = 1; r < all.size(); ++r) {
    const json& theirs = all[r]["items"];
    for (size_t i = 0; i < first.size(); ++i) {
      const std::string name = first[i][0].get<std::string>();
      const std::string v0 = first[i][1].get<std::string>();
      const std::string vr = i < theirs.size() ? theirs[i][1].get<std::string>() : "(none)";
      if (vr != v0) {
        throw CollectiveError("rank " + std::to_string(r) + " runs with " + name + " " + vr + " but rank 0 with " +
                              v0 + ": every rank of a data-parallel run must use the same " + name);
      }
    }
    if (theirs.size() != first.size()) {
      throw CollectiveError("rank " + std::to_string(r) + " sent " + std::to_string(theirs.size()) +
                            " settings, rank 0 " + std::to_string(first.size()) +
                            " (every rank must run the same build of sat)");
    }
  }
  if (batch % comm.size() != 0) {
    throw CollectiveError("--batch " + std::to_string(batch) + " is not divisible by the " +
                          std::to_string(comm.size()) +
                          " ranks: each rank takes an equal shard of every batch (docs/distributed.md)");
  }
}

void check_same_state(Communicator& comm, Model& model, const std::string& when) {
  // One CRC-32 per parameter and per N:M weight: what differs is named without sending the state.
  json names = json::array(), sums = json::array();
  for (Param* p : model.params()) {
    uint32_t c = checksum_crc32(p->value.data(), p->value.size() * sizeof(float));
    c = checksum_crc32(p->momentum.data(), p->momentum.size() * sizeof(float), c);
    names.push_back("parameter " + p->name + " (FP32 values and momentum)");
    sums.push_back(c);
  }
  for (SparseWeight* sw : model.sparse_weights()) {
    uint32_t c = 0;
    for (const NMCompressed* f : {&sw->fwd, &sw->bwd}) {
      c = checksum_crc32(f->values.data(), f->values.size() * sizeof(float), c);
      c = checksum_crc32(f->index.data(), f->index.size(), c);
    }
    c = checksum_crc32(sw->mask_f.data(), sw->mask_f.size(), c);
    names.push_back("N:M masks of " + sw->weight->name + " (W_F, W_B and the SR-STE mask)");
    sums.push_back(c);
  }
  const std::vector<json> all = exchange(comm, {{"ok", true}, {"sums", sums}}, "the check of the model state " + when);
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r]["sums"].size() != sums.size()) {
      throw CollectiveError("rank " + std::to_string(r) + " holds a model of another shape than rank 0 " + when);
    }
    for (size_t i = 0; i < sums.size(); ++i) {
      if (all[r]["sums"][i] != all[0]["sums"][i]) {
        throw CollectiveError("rank " + std::to_string(r) + "'s " + names[i].get<std::string>() +
                              " differ from rank 0's " + when +
                              ": the ranks no longer train the same model (docs/distributed.md)");
      }
    }
  }
}

bool prepare_data_parallel(Communicator& comm, Backend& backend, Model& model, const std::string& when, bool quiet) {
  if (!backend.splits_step()) throw CollectiveError(cannot_split_message(backend.name()));
  check_same_state(comm, model, when);
  const char* env = std::getenv("SAT_DP_REDUCE");
  const std::string want = env ? env : "";
  if (!want.empty() && want != "host" && want != "device") {
    throw CollectiveError("SAT_DP_REDUCE='" + want + "': expected host or device");
  }
  std::string where;
  if (want != "host") {
    run_agreed(comm, [&] { where = backend.reduce_on_device(comm); }, "to set up the device's gradient all-reduce");
  }
  if (want == "device" && where.empty()) {
    throw CollectiveError("SAT_DP_REDUCE=device: backend '" + backend.name() + "' sums no gradients on a device");
  }
  auto said = [](const std::string& w) { return w.empty() ? std::string("through the host") : "on " + w; };
  const std::vector<std::string> all = comm.allgather(where, "the check of where the gradients are summed");
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) {
      throw CollectiveError("rank " + std::to_string(r) + " sums its gradients " + said(all[r]) + ", rank 0 " +
                            said(all[0]) + " (every rank must run the same build of sat)");
    }
  }
  if (!quiet) {
    std::printf("data-parallel on %d ranks: gradients summed %s\n", comm.size(),
                where.empty() ? "through the host (MPI, FP32, rank order)" : ("on the device (" + where + ")").c_str());
    std::fflush(stdout);
  }
  return !where.empty();
}

BucketSettings bucket_settings_from_env() {
  BucketSettings s;
  if (const char* e = std::getenv("SAT_DP_OVERLAP"); e && *e) {
    const std::string v = e;
    if (v != "0" && v != "1") throw Error("SAT_DP_OVERLAP='" + v + "': expected 0 or 1");
    s.overlap = v == "1";
  }
  if (const char* e = std::getenv("SAT_DP_BUCKET_MB"); e && *e) {
    char* end = nullptr;
    const double mb = std::strtod(e, &end);
    // at least one float; at most 64 GiB (beyond any device's gradients)
    if (end == e || *end != '\0' || !(mb * 1048576.0 >= 4.0) || mb > 65536.0) {
      throw Error(std::string("SAT_DP_BUCKET_MB='") + e + "': expected a size in MiB, at least 4 bytes and at most 65536");
    }
    s.bytes = static_cast<int64_t>(mb * 1048576.0);
    s.first_bytes = std::min(s.first_bytes, s.bytes);
  }
  return s;
}

std::vector<size_t> plan_buckets(const std::vector<int64_t>& bytes, const BucketSettings& settings) {
  std::vector<size_t> starts = {0};
  int64_t held = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    held += bytes[i];
    const int64_t cap = starts.size() == 1 ? settings.first_bytes : settings.bytes;
    if (held >= cap && i + 1 < bytes.size()) {
      starts.push_back(i + 1);
      held = 0;
    }
  }
  if (!bytes.empty()) starts.push_back(bytes.size());
  return starts;
}

StepResult data_parallel_step(Communicator& comm, Backend& backend, Model& model, const Tensor& x,
                              const std::vector<int>& y, int64_t total, const UpdateConfig& cfg,
                              int64_t global_step, bool& stop, bool on_device) {
  const std::string step = "step " + std::to_string(global_step + 1);
  // Each rank's gradient is the mean over its shard: weighted by shard/total, the sum over the
  // ranks is the mean over the global batch (exact scaling when the weight is a power of two).
  const float weight = static_cast<float>(static_cast<double>(y.size()) / static_cast<double>(total));
  const std::string reduction = "the gradient all-reduce of " + step;
  json mine = attempt([&](json& rec) {
    StepResult local;
    if (on_device) backend.begin_gradient_reduction(weight, reduction);
    if (y.empty()) {
      model.zero_grad();   // a shard of a short last batch may be empty: it adds nothing
    } else {
      local = backend.forward_backward(model, x, y, cfg.method);
    }
    rec["loss"] = local.loss;
    rec["correct"] = local.correct;
  });
  mine["stop"] = stop;
  mine["count"] = y.size();
  const std::vector<json> all = exchange(comm, mine, "the status exchange of " + step);
  raise_failures(all, "in " + step);

  // The global batch's loss and count, summed in rank order (the same value on every rank).
  StepResult r;
  double loss_sum = 0;
  stop = false;
  for (const json& j : all) {
    const int64_t n = j["count"].get<int64_t>();
    if (n > 0) loss_sum += j["loss"].get<double>() * static_cast<double>(n);
    r.correct += j["correct"].get<int>();
    stop = stop || j["stop"].get<bool>();
  }
  r.loss = static_cast<float>(loss_sum / static_cast<double>(total));

  if (on_device) {
    backend.reduce_gradients(weight, reduction);
    apply_agreed_update(backend, model, cfg);
    return r;
  }
  std::vector<Param*> params = model.params();
  size_t n = 0;
  for (const Param* p : params) n += p->trainable ? p->grad.size() : 0;
  std::vector<float> flat(n);
  size_t at = 0;
  for (const Param* p : params) {
    if (!p->trainable) continue;
    for (float g : p->grad) flat[at++] = g * weight;
  }
  comm.allreduce_sum(flat, reduction);
  at = 0;
  for (Param* p : params) {
    if (!p->trainable) continue;
    std::memcpy(p->grad.data(), flat.data() + at, p->grad.size() * sizeof(float));
    at += p->grad.size();
  }

  // The running statistics follow rank 0's (each rank's saw only its shard).
  std::vector<float> buffers = non_trainable_values(model);
  if (!buffers.empty()) {
    std::string bytes(reinterpret_cast<const char*>(buffers.data()), buffers.size() * sizeof(float));
    comm.broadcast(bytes, 0, "the running statistics of " + step);
    if (bytes.size() != buffers.size() * sizeof(float)) {
      throw CollectiveError("rank 0 sent " + std::to_string(bytes.size()) + " bytes of running statistics in " +
                            step + ", this rank holds " + std::to_string(buffers.size() * sizeof(float)));
    }
    const char* src = bytes.data();
    for (Param* p : params) {
      if (p->trainable) continue;
      std::memcpy(p->value.data(), src, p->value.size() * sizeof(float));
      src += p->value.size() * sizeof(float);
    }
  }
  // The same gradients and state on every rank: the update and pre-generation give the same bits.
  apply_agreed_update(backend, model, cfg);
  return r;
}

ShardEval data_parallel_eval(Communicator& comm, Backend& backend, Model& model, const Tensor& x,
                             const std::vector<int>& y, Method method, const std::string& what) {
  const json mine = attempt([&](json& rec) {
    rec["loss_sum"] = 0.0;
    rec["correct"] = 0;
    if (y.empty()) return;
    const StepResult r = backend.evaluate(model, x, y, method);
    rec["loss_sum"] = static_cast<double>(r.loss) * static_cast<double>(y.size());
    rec["correct"] = r.correct;
  });
  const std::vector<json> all = exchange(comm, mine, what);
  raise_failures(all, "in " + what);
  ShardEval out;
  for (const json& j : all) {
    out.loss_sum += j["loss_sum"].get<double>();
    out.correct += j["correct"].get<int64_t>();
  }
  return out;
}

void run_agreed(Communicator& comm, const std::function<void()>& work, const std::string& what) {
  raise_failures(exchange(comm, attempt([&](json&) { work(); }), what), what);
}

std::string share_file(Communicator& comm, const std::string& path) {
  std::string bytes;
  run_agreed(comm, [&] { if (comm.rank() == 0) bytes = read_file(path); }, "to read " + path);
  comm.broadcast(bytes, 0, "the copy of " + path);
  std::string copy = path;
  run_agreed(comm, [&] {
    if (comm.rank() == 0) return;
    const char* tmp = std::getenv("TMPDIR");
    copy = std::string(tmp && *tmp ? tmp : "/tmp") + "/sat-rank" + std::to_string(comm.rank()) + "-XXXXXX";
    const int fd = mkstemp(copy.data());   // a private name; the bytes go in through the one file writer
    if (fd < 0) throw Error("cannot create " + copy + ": " + std::strerror(errno));
    ::close(fd);
    try {
      atomic_write_file(copy, bytes);
    } catch (...) {
      ::unlink(copy.c_str());
      throw;
    }
  }, "to copy " + path);
  return copy;
}

void remove_shared_copy(Communicator& comm, const std::string& copy) {
  if (comm.rank() != 0) ::unlink(copy.c_str());
}

}  // namespace sat
