// The upload of the next batch during a training step (AcceleratorBackend, Device::start): a device
// wrapper over `hls` that records the order of its calls and runs a started stream only when it is
// waited for, as a board runs it between start and wait. If the backend wrote the next batch into
// the slot the running step reads, the deferred run would read the wrong batch and the trained
// weights would differ from a plain `hls` run's.
#include <gtest/gtest.h>

#include <cstring>

#include "backend_compare.hpp"
#include "sat/accelerator.hpp"
#include "sat/compiler.hpp"
#include "sat/data.hpp"
#include "sat/train.hpp"
#include "sat_hls/device.hpp"
#include "temp_dir.hpp"

using namespace sat;
using sat::test::TempDir;

namespace {

bool same_stream(const std::vector<isa::Insn>& a, const std::vector<isa::Insn>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(isa::Insn)) == 0;
}

struct Event {
  enum Kind { start, run, wait, write } kind;
  int stream = -1;                       // start, run: which loaded stream
  int channel = -1;                      // write
  uint64_t offset = 0, bytes = 0;        // write
};

class RecordingMemory final : public DeviceMemory {
 public:
  RecordingMemory(std::unique_ptr<DeviceMemory> inner, std::vector<Event>* log) : inner(std::move(inner)), log_(log) {}
  uint64_t bytes(int channel) const override { return inner->bytes(channel); }
  void write(int channel, uint64_t offset, const void* src, uint64_t n) override {
    log_->push_back({Event::write, -1, channel, offset, n});
    inner->write(channel, offset, src, n);
  }
  void read(int channel, uint64_t offset, void* dst, uint64_t n) override { inner->read(channel, offset, dst, n); }
  std::unique_ptr<DeviceMemory> inner;

 private:
  std::vector<Event>* log_;
};

class RecordingStream final : public DeviceStream {
 public:
  RecordingStream(std::unique_ptr<DeviceStream> inner, int id) : inner(std::move(inner)), id(id) {}
  size_t size() const override { return inner->size(); }
  std::unique_ptr<DeviceStream> inner;
  int id;
};

class RecordingDevice final : public Device {
 public:
  explicit RecordingDevice(std::vector<Event>* log) : inner_(hls::make_hls_device()), log_(log) {}
  std::string name() const override { return "hls"; }
  std::string description() const override { return "hls, recorded, runs deferred to wait()"; }
  std::unique_ptr<DeviceMemory> allocate(const ChannelBytes& bytes) override {
    return std::make_unique<RecordingMemory>(inner_->allocate(bytes), log_);
  }
  std::unique_ptr<DeviceStream> load(const std::vector<isa::Insn>& insns) override {
    loaded.push_back(insns);
    return std::make_unique<RecordingStream>(inner_->load(insns), static_cast<int>(loaded.size()) - 1);
  }
  RunResult run(DeviceStream& stream, DeviceMemory& mem, std::chrono::milliseconds timeout) override {
    auto& s = dynamic_cast<RecordingStream&>(stream);
    log_->push_back({Event::run, s.id});
    return inner_->run(*s.inner, *dynamic_cast<RecordingMemory&>(mem).inner, timeout);
  }
  std::unique_ptr<DeviceRun> start(DeviceStream& stream, DeviceMemory& mem, std::chrono::milliseconds timeout) override {
    auto& s = dynamic_cast<RecordingStream&>(stream);
    log_->push_back({Event::start, s.id});
    return std::make_unique<Deferred>(*inner_, *s.inner, *dynamic_cast<RecordingMemory&>(mem).inner, timeout, log_);
  }
  std::vector<std::vector<isa::Insn>> loaded;

 private:
  // The kernel runs when the host waits for it: whatever the host wrote in between is in DRAM.
  class Deferred final : public DeviceRun {
   public:
    Deferred(Device& d, DeviceStream& s, DeviceMemory& m, std::chrono::milliseconds t, std::vector<Event>* log)
        : d_(d), s_(s), m_(m), t_(t), log_(log) {}
    RunResult wait() override {
      log_->push_back({Event::wait});
      return d_.run(s_, m_, t_);
    }

   private:
    Device& d_;
    DeviceStream& s_;
    DeviceMemory& m_;
    std::chrono::milliseconds t_;
    std::vector<Event>* log_;
  };
  std::unique_ptr<Device> inner_;
  std::vector<Event>* log_;
};

std::vector<float> values(const Model& m) {
  std::vector<float> v;
  for (const Param* p : const_cast<Model&>(m).params()) v.insert(v.end(), p->value.begin(), p->value.end());
  return v;
}

void train_steps(Backend& b, Model& m, int steps) {
  auto data = make_synthetic_source(m.input, m.classes, 8 * steps, 11);
  TempDir dir;
  TrainState st;
  st.method = Method::bdwp;
  st.nm = m.nm;
  st.recipe = m.recipe;
  st.recipe.epochs = 1;
  st.recipe.batch = 8;
  TrainOptions o;
  o.out_dir = dir.path();
  o.progress = false;
  o.quiet = true;
  train(b, m, *data, nullptr, st, o);
  b.sync(m);
}

}  // namespace

TEST(UploadOverlap, TheNextBatchGoesIntoTheOtherSlotWhileTheStepRuns) {
  constexpr int kSteps = 5;
  std::vector<Event> log;
  auto* rec = new RecordingDevice(&log);
  auto backend = make_accelerator_backend(std::unique_ptr<Device>(rec));
  Model m = test::load_test_model("mlp");
  train_steps(*backend, m, kSteps);

  Model ref = test::load_test_model("mlp");
  auto plain = open_backend("hls");
  train_steps(*plain, ref, kSteps);
  EXPECT_EQ(values(m), values(ref)) << "training with the upload overlapped differs from the plain hls device";

  // The training program as the backend compiled it: its map says which bytes are which slot.
  Model shape = test::load_test_model("mlp");
  ScheduleOptions opt;
  opt.batch = 8;
  opt.method = Method::bdwp;
  const Program prog = compile(shape, opt);
  ASSERT_FALSE(prog.insns_b.empty());
  ASSERT_FALSE(same_stream(prog.insns, prog.insns_b)) << "the two slots' streams are the same";
  int stream_of[2] = {-1, -1};
  for (size_t i = 0; i < rec->loaded.size(); ++i) {
    if (same_stream(rec->loaded[i], prog.insns)) stream_of[0] = static_cast<int>(i);
    if (same_stream(rec->loaded[i], prog.insns_b)) stream_of[1] = static_cast<int>(i);
  }
  ASSERT_GE(stream_of[0], 0);
  ASSERT_GE(stream_of[1], 0);
  const int slot_regions[2][2] = {{prog.input, prog.labels}, {prog.input_b, prog.labels_b}};
  // The slot a write lands in (-1: none of the batch regions), and whether it covers the region.
  auto slot_of = [&](const Event& e, bool* whole) {
    for (int s = 0; s < 2; ++s) {
      for (int r : slot_regions[s]) {
        const Region& g = prog.map.regions[static_cast<size_t>(r)];
        if (static_cast<int>(g.channel) == e.channel && e.offset < g.offset + g.bytes && g.offset < e.offset + e.bytes) {
          *whole = e.offset == g.offset && e.bytes == g.bytes;
          return s;
        }
      }
    }
    return -1;
  };

  int step = -1;
  bool running = false;
  int slot_writes_during_run = 0;
  std::vector<int> written_before_start(kSteps, 0);
  for (const Event& e : log) {
    if (e.kind == Event::run) ADD_FAILURE() << "a training step ran synchronously";
    if (e.kind == Event::start) {
      ++step;
      running = true;
      slot_writes_during_run = 0;
      ASSERT_LT(step, kSteps);
      EXPECT_EQ(e.stream, stream_of[step % 2]) << "step " << step << " does not read batch slot " << step % 2;
    } else if (e.kind == Event::wait) {
      // Every step but the last wrote the next batch, both regions of the other slot, while it ran.
      EXPECT_EQ(slot_writes_during_run, step + 1 < kSteps ? 2 : 0) << "step " << step;
      running = false;
    } else if (e.kind == Event::write) {
      bool whole = false;
      const int s = slot_of(e, &whole);
      if (s < 0) {
        EXPECT_FALSE(running) << "step " << step << ": a write outside the batch slots while the kernel runs";
        continue;
      }
      if (running) {
        EXPECT_EQ(s, (step + 1) % 2) << "step " << step << " wrote into the slot it reads while running";
        EXPECT_TRUE(whole);
        ++slot_writes_during_run;
      } else {
        written_before_start[static_cast<size_t>(step + 1)] += 1;
      }
    }
  }
  EXPECT_EQ(step, kSteps - 1);
  EXPECT_EQ(written_before_start[0], 2) << "the first batch is written before the first start";
  for (int i = 1; i < kSteps; ++i) {
    EXPECT_EQ(written_before_start[static_cast<size_t>(i)], 0)
        << "step " << i << "'s batch was uploaded again although the step before wrote it";
  }
}

// A batch other than the one announced is written before its step starts, into the slot it reads.
TEST(UploadOverlap, ABatchOtherThanTheAnnouncedOneIsWrittenAgain) {
  std::vector<Event> log;
  auto* rec = new RecordingDevice(&log);
  auto backend = make_accelerator_backend(std::unique_ptr<Device>(rec));
  Model m = test::load_test_model("mlp");
  backend->prepare(m, Method::bdwp);
  auto data = make_synthetic_source(m.input, m.classes, 24, 3);
  Tensor x0, x1, x2;
  std::vector<int> y0, y1, y2;
  const int64_t i0[8] = {0, 1, 2, 3, 4, 5, 6, 7}, i1[8] = {8, 9, 10, 11, 12, 13, 14, 15},
                i2[8] = {16, 17, 18, 19, 20, 21, 22, 23};
  data->batch(i0, 8, x0, y0);
  data->batch(i1, 8, x1, y1);
  data->batch(i2, 8, x2, y2);
  const UpdateConfig cfg{Method::bdwp, 0.02, 0.9, 5e-4, 2e-4};
  backend->prefetch(x1, y1);
  backend->train_step(m, x0, y0, cfg);
  log.clear();
  backend->train_step(m, x2, y2, cfg);   // not the announced x1
  backend->sync(m);

  Model ref = test::load_test_model("mlp");
  auto plain = open_backend("hls");
  plain->prepare(ref, Method::bdwp);
  plain->train_step(ref, x0, y0, cfg);
  plain->train_step(ref, x2, y2, cfg);
  plain->sync(ref);
  EXPECT_EQ(values(m), values(ref)) << "the second step trained on the announced batch, not the one it was given";
  int writes_before_start = 0;
  for (const Event& e : log) {
    if (e.kind == Event::start) break;
    if (e.kind == Event::write) ++writes_before_start;
  }
  EXPECT_GE(writes_before_start, 3) << "the hyper-parameters and both regions of the batch";
}
