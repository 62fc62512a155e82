// The offline scheduler (host/src/compiler, docs/dataflow.md): stream structure, tokens (balanced,
// paired in FIFO order, ordering every dependency, free of deadlock at the configured FIFO depth),
// tiles within the buffers, a disjoint memory map within the channel windows, every model for
// every method, the three dataflow switches, the products' arithmetic (on the shared reference
// interpreter of the instruction set, support/isa_interpreter.hpp), and clear errors for bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "sat/lowering.hpp"
#include "expect_error.hpp"
#include "isa_interpreter.hpp"
#include "run_cli.hpp"
#include "sat/arch/access.hpp"
#include "sat/bf16.hpp"
#include "sat/compiler.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"
#include "stream_checker.hpp"

using namespace sat;
using namespace sat::isa;

namespace {

constexpr int kExec = kNumExecUnits;

Model load_model(const std::string& name, std::optional<NM> nm = std::nullopt) {
  return Model::load(std::string(SAT_SOURCE_DIR) + "/models/" + name + ".json", nm);
}

ScheduleOptions opts(int batch, Method m = Method::bdwp) {
  ScheduleOptions o;
  o.batch = batch;
  o.method = m;
  o.record_dependencies = true;
  return o;
}

// The stream checker's token part (support/stream_checker.hpp): pairing in FIFO order, no
// leftovers, every recorded dependency ordered, no deadlock at the configured FIFO depth.
void check_tokens(const Program& p) {
  for (const std::string& problem : test::check_tokens(p)) ADD_FAILURE() << problem;
}

// Tiles within the on-chip buffers; banks exist; sparse K tiles hold whole groups.
void check_tiles(const Program& p) {
  for (size_t j = 0; j < p.insns.size(); ++j) {
    const Insn& in = p.insns[j];
    SCOPED_TRACE(std::to_string(j) + ": " + disassemble(in));
    switch (in.opcode()) {
      case OP_GEMM:
        EXPECT_LT(in[f_GEMM::a_bank], 2u);
        EXPECT_LT(in[f_GEMM::b_bank], 2u);
        EXPECT_LT(in[f_GEMM::c_bank], 2u);
        EXPECT_GE(in[f_GEMM::mt], 1u);
        EXPECT_LE(in[f_GEMM::mt], static_cast<uint32_t>(arch::kMaxTileRows));
        EXPECT_LE(in[f_GEMM::nt], static_cast<uint32_t>(arch::kMaxTileCols));
        EXPECT_LE(in[f_GEMM::kt], static_cast<uint32_t>(arch::kMaxTileK));
        if (in.flag(1)) {
          EXPECT_TRUE(arch::supported_m(static_cast<int>(in[f_GEMM::m])));
          EXPECT_EQ(in[f_GEMM::kt] % in[f_GEMM::m], 0u);
        }
        break;
      case OP_LD_2D:
      case OP_LD_CONV: {
        const uint32_t rows = in[f_LD_2D::rows], cols = in[f_LD_2D::cols];
        const bool to_b = in.flag(0);
        EXPECT_LT(in[f_LD_2D::bank], 2u);
        EXPECT_LE(rows, static_cast<uint32_t>(to_b ? arch::kMaxTileCols : arch::kMaxTileRows));
        EXPECT_LE(cols, static_cast<uint32_t>(arch::kMaxTileK));
        break;
      }
      case OP_LD_SPW:
        EXPECT_LE(in[f_LD_SPW::rows], static_cast<uint32_t>(arch::kMaxTileCols));
        EXPECT_LE(in[f_LD_SPW::groups] * in[f_LD_SPW::m], static_cast<uint32_t>(arch::kMaxTileK));
        break;
      case OP_ST_2D:
      case OP_ST_COL2IM:
        EXPECT_LE(in[f_ST_2D::rows], static_cast<uint32_t>(arch::kMaxTileRows));
        EXPECT_LE(in[f_ST_2D::cols], static_cast<uint32_t>(arch::kMaxTileCols));
        break;
      default:
        break;
    }
  }
}

void check_memory_map(const Program& p) {
  std::array<std::vector<const Region*>, arch::kDdrChannels> per;
  for (const Region& r : p.map.regions) {
    ASSERT_LT(r.channel, static_cast<uint32_t>(arch::kDdrChannels)) << r.name;
    EXPECT_EQ(r.offset % 64, 0u) << r.name;
    EXPECT_LE(r.offset + r.bytes, p.map.channel_bytes[r.channel]) << r.name;
    per[r.channel].push_back(&r);
  }
  for (int ch = 0; ch < arch::kDdrChannels; ++ch) {
    EXPECT_LE(p.map.channel_bytes[ch], arch::kChannelWindowBytes);
    auto v = per[ch];
    std::sort(v.begin(), v.end(), [](const Region* a, const Region* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < v.size(); ++i)
      EXPECT_LE(v[i - 1]->offset + v[i - 1]->bytes, v[i]->offset)
          << v[i - 1]->name << " overlaps " << v[i]->name;
  }
}

void check_program(const Program& p) {
  ASSERT_FALSE(p.insns.empty());
  EXPECT_EQ(p.insns.back().opcode(), OP_FINISH);
  for (size_t j = 0; j + 1 < p.insns.size(); ++j) EXPECT_NE(p.insns[j].opcode(), OP_FINISH) << j;
  ASSERT_FALSE(p.prologue.empty());
  EXPECT_EQ(p.prologue.back().opcode(), OP_FINISH);
  check_tokens(p);
  check_tiles(p);
  check_memory_map(p);
  int64_t counted = 0;
  for (const auto& l : p.layers) counted += l.instructions;
  EXPECT_EQ(counted, static_cast<int64_t>(p.insns.size()));
}

int count_op(const Program& p, Opcode op) {
  int n = 0;
  for (const Insn& in : p.insns) n += in.opcode() == op;
  return n;
}

}  // namespace

// ---- Every model, every method, training and inference ---------------------------------------------

TEST(Compiler, EveryModelCompilesForEveryMethod) {
  int compiled = 0;
  for (const auto& e : std::filesystem::directory_iterator(SAT_SOURCE_DIR "/models")) {
    if (e.path().extension() != ".json") continue;
    const std::string name = e.path().stem().string();
    for (Method m : {Method::bdwp, Method::srste, Method::dense}) {
      for (bool training : {true, false}) {
        SCOPED_TRACE(name + " " + method_name(m) + (training ? " training" : " inference"));
        Model model = load_model(name);
        ScheduleOptions o = opts(4, m);
        o.training = training;
        const Program p = compile(model, o);
        check_program(p);
        EXPECT_EQ(count_op(p, OP_V_XENT), 1);
        EXPECT_EQ(count_op(p, OP_SGD) > 0, training);
        ++compiled;
      }
    }
  }
  EXPECT_EQ(compiled, 5 * 3 * 2);
}

// A training program's two batch slots: insns_b is insns with every address into input/labels
// moved to the same offset in input.1/labels.1, and nothing else changed; inference has one slot.
TEST(Compiler, TheTwoBatchSlotsStreamsDifferOnlyInTheBatchAddresses) {
  for (const char* name : {"mlp", "lenet5", "resnet18"}) {
    SCOPED_TRACE(name);
    Model model = load_model(name);
    const Program p = compile(model, opts(4));
    ASSERT_GE(p.input_b, 0);
    ASSERT_GE(p.labels_b, 0);
    ASSERT_EQ(p.insns_b.size(), p.insns.size());
    const int from[2] = {p.input, p.labels}, to[2] = {p.input_b, p.labels_b};
    int moved[2] = {0, 0};
    for (size_t j = 0; j < p.insns.size(); ++j) {
      for (int w = 0; w < arch::kInsnWords; ++w) {
        const uint32_t a = p.insns[j].w[w], b = p.insns_b[j].w[w];
        if (a == b) continue;
        bool explained = false;
        for (int k = 0; k < 2; ++k) {
          const Region& r = p.map.regions[static_cast<size_t>(from[k])];
          const uint64_t off = isa::addr_offset(a) * 2;
          if (isa::addr_channel(a) != r.channel || off < r.offset || off >= r.offset + r.bytes) continue;
          EXPECT_EQ(b, p.map.regions[static_cast<size_t>(to[k])].addr(off - r.offset))
              << "instruction " << j << " word " << w << ": " << disassemble(p.insns[j]);
          ++moved[k];
          explained = true;
        }
        EXPECT_TRUE(explained) << "instruction " << j << " word " << w << " differs outside the batch addresses: "
                               << disassemble(p.insns[j]) << " / " << disassemble(p.insns_b[j]);
      }
    }
    EXPECT_GT(moved[0], 0) << "no instruction reads the input";
    EXPECT_GT(moved[1], 0) << "no instruction reads the labels";
  }
  Model model = load_model("mlp");
  ScheduleOptions inf = opts(4);
  inf.training = false;
  const Program p = compile(model, inf);
  EXPECT_TRUE(p.insns_b.empty());
  EXPECT_EQ(p.input_b, -1);
  inf.batch_slot = 1;
  test::expect_error([&] { compile(model, inf); }, "batch_slot 1 is compile()'s own choice");
  // Every DRAM access of a slot's stream stays out of the other slot's regions.
  for (const char* name : {"mlp", "lenet5"}) {
    Model m = load_model(name);
    const Program t = compile(m, opts(4));
    const int slot_regions[2][2] = {{t.input, t.labels}, {t.input_b, t.labels_b}};
    for (int s = 0; s < 2; ++s) {
      const std::vector<Insn>& stream = s == 0 ? t.insns : t.insns_b;
      for (size_t j = 0; j < stream.size(); ++j) {
        isa::DramAccess acc[isa::kMaxDramAccesses];
        const int n = isa::dram_accesses(stream[j], acc);
        for (int k = 0; k < n; ++k) {
          const uint64_t at = isa::addr_offset(acc[k].addr) * 2;
          for (int r : slot_regions[1 - s]) {
            const Region& g = t.map.regions[static_cast<size_t>(r)];
            EXPECT_FALSE(isa::addr_channel(acc[k].addr) == g.channel && at >= g.offset && at < g.offset + g.bytes)
                << name << " slot " << s << " instruction " << j << " (" << disassemble(stream[j]) << ") reaches '"
                << g.name << "' of the other slot";
          }
        }
      }
    }
  }
}

// Data-parallel training's program (ScheduleOptions::update_apart): the step stream stops after WU,
// with no update or pre-generation; the update stream holds every SGD and PGEN of the whole step,
// ends with FINISH, and its tokens stand on their own (each stream is checked alone).
TEST(Compiler, UpdateApartPutsTheUpdateInAStreamOfItsOwn) {
  for (const char* name : {"mlp", "lenet5", "resnet18"}) {
    SCOPED_TRACE(name);
    Model model = load_model(name);
    ScheduleOptions o = opts(4);
    o.update_apart = true;
    const Program p = compile(model, o);
    check_program(p);
    EXPECT_EQ(count_op(p, OP_SGD), 0);
    EXPECT_EQ(count_op(p, OP_PGEN), 0);
    EXPECT_EQ(p.insns_b.size(), p.insns.size());
    ASSERT_FALSE(p.update.empty());
    Program u = p;
    u.insns = p.update;
    u.traffic = p.update_traffic;
    u.layers = p.update_layers;
    u.insns_b.clear();
    u.dependencies.clear();   // recorded for the step stream only
    check_program(u);
    const Program whole = compile(model, opts(4));
    int trainable = 0;
    for (const Param* q : model.params()) trainable += q->trainable;
    EXPECT_EQ(count_op(u, OP_SGD), trainable);
    EXPECT_EQ(count_op(u, OP_SGD), count_op(whole, OP_SGD));
    EXPECT_EQ(count_op(u, OP_PGEN), count_op(whole, OP_PGEN));
    EXPECT_EQ(p.insns.size() + p.update.size(), whole.insns.size() + 1);   // one FINISH more
    for (const LayerSchedule& l : p.update_layers) EXPECT_TRUE(l.phase == "update" || l.phase == "pregen" || l.phase == "end") << l.phase;
    EXPECT_NE(dump_program(p).find("update stream"), std::string::npos);
  }
  Model model = load_model("mlp");
  ScheduleOptions inf = opts(4);
  inf.training = false;
  inf.update_apart = true;
  EXPECT_TRUE(compile(model, inf).update.empty());   // inference has no update
}

TEST(Compiler, ResNet18AtBatch32CompilesAndIsStreamed) {
  Model model = load_model("resnet18");
  const Program p = compile(model, opts(32));
  check_program(p);
  // Far more instructions than any on-chip queue holds: the fetch unit streams them from DRAM.
  EXPECT_GT(p.insns.size(), static_cast<size_t>(arch::kInsnQueueDepth) * 100);
  EXPECT_NE(program_summary(p).find("fetched as it runs"), std::string::npos);
}

// ---- Weight forms and work per method -------------------------------------------------------------

TEST(Compiler, MlpMacsCountKeptWeightsOnly) {
  const int B = 8;
  Model model = load_model("mlp");
  // FF: 784->512 and 512->256 at 2:8, 256->10 dense; BP skips the first layer; WU dense.
  const double ff = B * (512.0 * 784 / 4 + 256.0 * 512 / 4 + 10.0 * 256);
  const double bp = B * (256.0 * 512 / 4 + 10.0 * 256);
  const double wu = B * (512.0 * 784 + 256.0 * 512 + 10.0 * 256);
  const Program p = compile(model, opts(B));
  double macs = 0;
  for (const auto& l : p.layers) macs += l.macs;
  EXPECT_DOUBLE_EQ(macs, ff + bp + wu);
  // srste: BP dense over the masked W_F.
  Model m2 = load_model("mlp");
  const Program s = compile(m2, opts(B, Method::srste));
  double smacs = 0;
  for (const auto& l : s.layers) smacs += l.macs;
  EXPECT_DOUBLE_EQ(smacs, ff + B * (256.0 * 512 + 10.0 * 256) + wu);
}

TEST(Compiler, WeightFormsFollowTheMethod) {
  for (Method m : {Method::bdwp, Method::srste, Method::dense}) {
    SCOPED_TRACE(method_name(m));
    Model model = load_model("lenet5");
    const Program p = compile(model, opts(4, m));
    int sparse_gemm = 0, spw = 0;
    for (const Insn& in : p.insns) {
      sparse_gemm += in.opcode() == OP_GEMM && in.flag(1);
      spw += in.opcode() == OP_LD_SPW;
    }
    ASSERT_EQ(p.weights.size(), 4u);
    for (const WeightBinding& w : p.weights) {
      const bool ff = w.weight->ff_sparse(m), bp = w.weight->bp_sparse(m);
      EXPECT_EQ(w.fwd_values >= 0, ff);
      EXPECT_EQ(w.bwd_values >= 0, bp);
      EXPECT_EQ(w.dense >= 0, !ff);     // the FF operand
      EXPECT_EQ(w.dense_t >= 0, !bp);   // the BP operand, W^T
    }
    if (m == Method::dense) {
      EXPECT_EQ(spw, 0);
      EXPECT_EQ(sparse_gemm, 0);
    } else {
      EXPECT_GT(spw, 0);
      EXPECT_GT(sparse_gemm, 0);
    }
    // SR-STE term exactly on the weights whose FF is sparse (conv2, fc1 at 2:8).
    int srste = 0;
    for (const Insn& in : p.insns) srste += in.opcode() == OP_SGD && in.flag(1);
    EXPECT_EQ(srste, m == Method::dense ? 0 : 2);
  }
}

// ---- The three switches --------------------------------------------------------------------------

TEST(Compiler, InterleaveMappingSeparatesProductOperands) {
  Model model = load_model("lenet5");
  const Program on = compile(model, opts(8));
  // Every GEMM's A load, B load and the store of its tile touch three different channels.
  int checked = 0;
  uint32_t a_ch = 99, b_ch = 99;
  for (const Insn& in : on.insns) {
    if (in.opcode() == OP_LD_2D || in.opcode() == OP_LD_CONV) {
      (in.flag(0) ? b_ch : a_ch) = addr_channel(in[f_LD_2D::addr]);
    } else if (in.opcode() == OP_LD_SPW) {
      b_ch = addr_channel(in[f_LD_SPW::val_addr]);
    } else if (in.opcode() == OP_ST_2D) {
      const uint32_t c_ch = addr_channel(in[f_ST_2D::addr]);
      EXPECT_NE(a_ch, b_ch);
      EXPECT_NE(a_ch, c_ch);
      EXPECT_NE(b_ch, c_ch);
      ++checked;
    }
  }
  EXPECT_GT(checked, 10);
  int used = 0;
  for (uint64_t b : on.map.channel_bytes) used += b > 0;
  EXPECT_EQ(used, 4);

  Model m2 = load_model("lenet5");
  ScheduleOptions o = opts(8);
  o.interleave_mapping = false;
  const Program off = compile(m2, o);
  for (const Region& r : off.map.regions) EXPECT_EQ(r.channel, 0u) << r.name;
  EXPECT_EQ(off.insns.size(), on.insns.size());   // same work, other addresses
  check_program(off);
}

// Index of the SGD that updates the master at DRAM address `w`; -1 when none.
int64_t sgd_of(const Program& p, uint32_t w) {
  for (size_t j = 0; j < p.insns.size(); ++j)
    if (p.insns[j].opcode() == OP_SGD && p.insns[j][f_SGD::w] == w) return static_cast<int64_t>(j);
  return -1;
}

TEST(Compiler, PregenerationOnceAfterTheUpdateElseSelectionOnEveryLoad) {
  Model model = load_model("lenet5");
  const Program on = compile(model, opts(8));
  // bdwp lenet5: conv1 and fc2 dense copies (W and W^T, the FF and the BP operand, in one pass),
  // conv2 and fc1 W_F and W_B in one pass each (PGEN b4); each after its weight's update.
  EXPECT_EQ(count_op(on, OP_PGEN), 4);
  EXPECT_EQ(on.prologue.size(), 5u);
  int both = 0;
  for (const auto& in : on.insns) both += in.opcode() == OP_PGEN && in.flag(4);
  EXPECT_EQ(both, 2);
  // With the fusion off, W_F and W_B are two PGENs again.
  ScheduleOptions split = opts(8);
  split.fused_pregen = false;
  EXPECT_EQ(count_op(compile(model, split), OP_PGEN), 6);
  for (size_t j = 0; j < on.insns.size(); ++j) {
    if (on.insns[j].opcode() != OP_PGEN) continue;
    const int64_t sgd = sgd_of(on, on.insns[j][f_PGEN::w]);
    ASSERT_GE(sgd, 0);
    EXPECT_LT(sgd, static_cast<int64_t>(j)) << "PGEN " << j << " before its weight's update";
  }

  Model m2 = load_model("lenet5");
  ScheduleOptions o = opts(8);
  o.pregeneration = false;
  const Program off = compile(m2, o);
  check_program(off);
  // The sparse forms are selected on the fly from the masters by every LD_SPW (b0; b1 for W_B);
  // PGEN remains for the dense copies of conv1 and fc2 (FF of both, BP of fc2: conv1 needs no dX)
  // and for W_F of conv2 and fc1, whose indices the SR-STE term of SGD reads: 5, each before its
  // weight's update (and before the product's loads, which the token check orders).
  EXPECT_EQ(count_op(off, OP_PGEN), 5);
  int fly_k = 0, fly_cout = 0;
  for (size_t j = 0; j < off.insns.size(); ++j) {
    const Insn& in = off.insns[j];
    if (in.opcode() == OP_LD_SPW) {
      ASSERT_TRUE(in.flag(0)) << "LD_SPW " << j << " reads a pre-generated form";
      (in.flag(1) ? fly_cout : fly_k) += 1;
      EXPECT_GT(sgd_of(off, in[f_LD_SPW::val_addr]), static_cast<int64_t>(j)) << "LD_SPW " << j << " not from a master";
    }
    if (in.opcode() != OP_PGEN) continue;
    EXPECT_GT(sgd_of(off, in[f_PGEN::w]), static_cast<int64_t>(j));
    EXPECT_TRUE(in.flag(2) || in.flag(3) || !in.flag(0)) << "PGEN " << j << " of W_B with pre-generation off";
  }
  EXPECT_GT(fly_k, 0);
  EXPECT_GT(fly_cout, 0);
  int64_t bytes_on = 0, bytes_off = 0;
  for (const auto& l : on.layers) bytes_on += l.bytes_loaded + l.bytes_stored;
  for (const auto& l : off.layers) bytes_off += l.bytes_loaded + l.bytes_stored;
  EXPECT_GT(bytes_off, bytes_on);

  // Inference: the forms come from the prologue, so pre-generation leaves no PGEN in the stream.
  Model m3 = load_model("lenet5");
  ScheduleOptions inf = opts(8);
  inf.training = false;
  EXPECT_EQ(count_op(compile(m3, inf), OP_PGEN), 0);
  inf.pregeneration = false;
  EXPECT_EQ(count_op(compile(m3, inf), OP_PGEN), 2);   // the dense copies of conv1 and fc2
}

TEST(Compiler, OfflineSchedulingOffSerialisesAndSingleBuffers) {
  Model model = load_model("lenet5");
  const Program on = compile(model, opts(8));
  Model m2 = load_model("lenet5");
  ScheduleOptions o = opts(8);
  o.offline_scheduling = false;
  const Program off = compile(m2, o);
  check_program(off);
  int64_t tokens_off = 0, changes = 0;
  for (size_t j = 0; j < off.insns.size(); ++j) {
    const Insn& in = off.insns[j];
    tokens_off += __builtin_popcount(in.wait());
    if (j > 0) {
      const int u = opcode_unit(off.insns[j - 1].opcode()), v = opcode_unit(in.opcode());
      if (u != v && u < kExec && v < kExec) {
        ++changes;
        EXPECT_EQ(in.wait(), 1u << u) << j;
      }
    }
    if (in.opcode() == OP_GEMM) {
      EXPECT_EQ(in[f_GEMM::a_bank] | in[f_GEMM::b_bank] | in[f_GEMM::c_bank], 0u) << j;
    }
  }
  EXPECT_EQ(tokens_off, changes);
  // With double buffering both banks are used.
  bool bank1 = false;
  for (const Insn& in : on.insns) bank1 |= in.opcode() == OP_GEMM && in[f_GEMM::c_bank] == 1;
  EXPECT_TRUE(bank1);
}

TEST(Compiler, TimingEstimateRewardsInterleavingAndOfflineScheduling) {
  auto cycles = [](bool interleave, bool offline) {
    Model m = load_model("lenet5");
    ScheduleOptions o = opts(32);
    o.interleave_mapping = interleave;
    o.offline_scheduling = offline;
    return estimate_timing(compile(m, o)).cycles;
  };
  const double both = cycles(true, true);
  EXPECT_GT(both, 0);
  EXPECT_GT(cycles(false, true), 1.1 * both);
  EXPECT_GT(cycles(true, false), 1.1 * both);
}

// ---- Bad inputs ------------------------------------------------------------------------------------

TEST(Compiler, BadInputsGiveClearErrors) {
  Model model = load_model("mlp");
  test::expect_error([&] { compile(model, opts(0)); }, "batch must be >= 1");
  test::expect_error([&] { compile(model, opts(-5)); }, "batch must be >= 1");
  test::expect_error([&] { compile(model, opts(70000)); }, "65535");
  // Past a channel's 2 GiB window: the error names the layer and the region.
  Model big = load_model("vgg_small");
  try {
    compile(big, opts(60000));
    ADD_FAILURE() << "no error for a memory map past the channel window";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("past its window"), std::string::npos) << msg;
    EXPECT_NE(msg.find("layers["), std::string::npos) << msg;
  }
  // Softmax over more classes than a vector row holds.
  Model wide = Model::from_json_text(
      R"({"name": "wide", "input": [16], "classes": 9000,
          "layers": [{"type": "linear", "out": 9000}]})",
      "wide.json");
  test::expect_error([&] { compile(wide, opts(2)); }, {"loss", "kMaxVecRow"});
}

TEST(Compiler, UnknownLayerTypeIsNamed) {
  struct Odd : Layer {
    std::string type() const override { return "odd"; }
    Shape build(const Shape& in, Rng&) override { return in; }
    Tensor forward(const Tensor& x, const StepContext&) override { return x; }
    Tensor backward(const Tensor& d, const StepContext&) override { return d; }
    void describe(std::vector<LayerInfo>&, Method) const override {}
  };
  Odd odd;
  odd.name = "layers[3]";
  test::expect_error([&] { compiler::make_lowering(odd); }, {"layers[3]", "'odd'"});
}

TEST(Compiler, DisassemblyNamesUnitsFieldsAndAddresses) {
  Model model = load_model("lenet5");
  const Program p = compile(model, opts(4));
  const std::string dump = dump_program(p);
  EXPECT_NE(dump.find("LD_CONV"), std::string::npos);
  EXPECT_NE(dump.find("LD_SPW"), std::string::npos);
  EXPECT_NE(dump.find("kh_kw=3,3"), std::string::npos);
  EXPECT_NE(dump.find("wait=LOAD"), std::string::npos);
  EXPECT_NE(dump.find("signal=GEMM"), std::string::npos);
  EXPECT_NE(dump.find("layers[3] (conv2d) ff"), std::string::npos);
  EXPECT_NE(dump.find("FINISH"), std::string::npos);
  EXPECT_NE(dump.find("memory map"), std::string::npos);
  // Addresses print as channel:byte offset, packed pairs as lo,hi, floats as numbers.
  const Insn st = compiler::Lowering::insn(OP_ST_2D, 5, {{f_ST_2D::addr, make_addr(2, 0x100)},
                                                         {f_ST_2D::rows, 7}});
  const std::string line = disassemble(st);
  EXPECT_NE(line.find("ST_2D"), std::string::npos) << line;
  EXPECT_NE(line.find("addr=2:0x200"), std::string::npos) << line;
  EXPECT_NE(line.find("rows=7"), std::string::npos) << line;
  EXPECT_NE(line.find("flags=0x5"), std::string::npos) << line;
  const Insn fill = compiler::Lowering::insn(OP_V_FILL, 1, {{f_V_FILL::value, f32_bits(1.5f)}});
  EXPECT_NE(disassemble(fill).find("value=1.5"), std::string::npos) << disassemble(fill);
}


// ---- The products' arithmetic, on the reference interpreter of the instruction set ---------------
// Executes the stream in program order (tokens only reorder what is independent) on a DRAM model
// and compares a layer's FF output, BP input gradient and WU weight gradient with the CPU layer.
// Shapes with remainder tiles along M, N and K.

namespace {

// NCHW (CPU) <-> NHWC (DRAM) index maps for a [B, C, H, W] tensor; identity for other ranks.
int64_t nhwc_index(const Shape& s, int64_t i) {
  if (s.size() != 4) return i;
  const int64_t C = s[1], H = s[2], W = s[3];
  const int64_t b = i / (C * H * W), c = (i / (H * W)) % C, y = (i / W) % H, x = i % W;
  return ((b * H + y) * W + x) * C + c;
}

void expect_close(const std::vector<float>& ref, const std::vector<float>& got, const char* what) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  float scale = 1e-6f;
  for (float v : ref) scale = std::max(scale, std::fabs(v));
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::fabs(ref[i] - got[i]) > 0.02f * scale + 0.01f * std::fabs(ref[i])) {
      if (++bad < 5) ADD_FAILURE() << what << "[" << i << "]: reference " << ref[i] << ", stream " << got[i];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << ref.size() << " differ";
}

// One weight layer, lowered FF + BP + WU, executed by the interpreter, against the CPU layer.
void check_layer_products(const std::string& layer_json, const Shape& input, Method method,
                          bool offline) {
  SCOPED_TRACE(layer_json + " " + method_name(method) + (offline ? "" : " no-offline"));
  Model model;
  model.name = "one";
  model.input = input;
  model.classes = 2;
  model.nm = NM{2, 8};
  const nlohmann::json layers = nlohmann::json::parse("[" + layer_json + "]");
  model.layers = make_layers(layers, "one.json", "layers", model.nm);
  model.build(1);
  model.regenerate(method);
  const int B = 3;
  ScheduleOptions o;
  o.batch = B;
  o.method = method;
  o.offline_scheduling = offline;
  compiler::Lowering lw(model, o);
  compiler::TensorRef x;
  x.region = lw.program().input;
  x.shape = compiler::dram_shape(B, model.input);
  Layer& layer = *model.layers[0];
  const compiler::TensorRef y = lw.forward_sequence(model.layers, x);
  const compiler::TensorRef dy =
      lw.alloc("dy", RegionKind::gradient, compiler::dram_shape(B, layer.out_shape));
  const compiler::TensorRef dx = lw.backward_sequence(model.layers, dy, true);
  lw.emit(make_insn(OP_FINISH), {}, {});
  const Program& p = lw.program();
  check_tokens(p);

  // Host side: random input and output gradient, parameters and weight forms into DRAM.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  Shape xs = input, ys = layer.out_shape;
  xs.insert(xs.begin(), B);
  ys.insert(ys.begin(), B);
  std::vector<float> xv(static_cast<size_t>(numel(xs))), gv(static_cast<size_t>(numel(ys)));
  for (auto& v : xv) v = round_bf16(uni(rng));
  for (auto& v : gv) v = round_bf16(uni(rng));
  test::IsaInterpreter mm(p);
  for (size_t i = 0; i < xv.size(); ++i) mm.set_bf16(lw.addr(x), nhwc_index(xs, static_cast<int64_t>(i)), xv[i]);
  for (size_t i = 0; i < gv.size(); ++i) mm.set_bf16(lw.addr(dy), nhwc_index(ys, static_cast<int64_t>(i)), gv[i]);
  for (const ParamBinding& pb : p.params) {
    for (int64_t i = 0; i < pb.param->numel(); ++i)
      mm.set_f32(p.map.regions[pb.value].addr(), i, pb.param->value[i]);
  }
  for (const WeightBinding& wb : p.weights) {
    const SparseWeight& sw = *wb.weight;
    auto put_form = [&](int vr, int ir, const NMCompressed& c) {
      const auto vals = nm_values_bf16(c);
      for (size_t i = 0; i < vals.size(); ++i)
        mm.set_bf16(p.map.regions[vr].addr(), static_cast<int64_t>(i), to_f32(vals[i]));
      const auto packed = nm_pack_indices(c.index);
      std::copy(packed.begin(), packed.end(), mm.bytes(p.map.regions[ir].addr(), packed.size()).begin());
    };
    if (wb.fwd_values >= 0) put_form(wb.fwd_values, wb.fwd_index, sw.fwd);
    if (wb.bwd_values >= 0) put_form(wb.bwd_values, wb.bwd_index, sw.bwd);
    if (wb.dense >= 0) {
      for (size_t i = 0; i < sw.dense.size(); ++i)
        mm.set_bf16(p.map.regions[wb.dense].addr(), static_cast<int64_t>(i), sw.dense[i]);
    }
    if (wb.dense_t >= 0) {   // W^T [k][cout]
      for (int64_t o = 0; o < sw.cout; ++o)
        for (int64_t kk = 0; kk < sw.k; ++kk)
          mm.set_bf16(p.map.regions[wb.dense_t].addr(), kk * sw.cout + o, sw.dense[static_cast<size_t>(o * sw.k + kk)]);
    }
  }
  mm.run();

  // CPU reference.
  StepContext ctx;
  ctx.method = method;
  const Tensor yr = layer.forward(Tensor::from_f32(xs, xv), ctx);
  model.zero_grad();
  const Tensor dxr = layer.backward(Tensor::from_f32(ys, gv), ctx);

  std::vector<float> got(static_cast<size_t>(numel(ys)));
  for (size_t i = 0; i < got.size(); ++i) got[i] = mm.get_bf16(lw.addr(y), nhwc_index(ys, static_cast<int64_t>(i)));
  expect_close(yr.to_f32(), got, "FF output");
  got.assign(static_cast<size_t>(numel(xs)), 0);
  for (size_t i = 0; i < got.size(); ++i) got[i] = mm.get_bf16(lw.addr(dx), nhwc_index(xs, static_cast<int64_t>(i)));
  expect_close(dxr.to_f32(), got, "BP input gradient");
  for (const ParamBinding& pb : p.params) {
    got.assign(pb.param->grad.size(), 0);
    for (size_t i = 0; i < got.size(); ++i) got[i] = mm.get_f32(p.map.regions[pb.grad].addr(), static_cast<int64_t>(i));
    expect_close(pb.param->grad, got, pb.param->name.c_str());
  }
}

}  // namespace

TEST(CompilerProducts, LinearWithRemainderTilesMatchesTheCpuLayer) {
  // K 520 = 512 + 8, N 136 = 128 + 8, P = 3 * 50 = 150 = 128 + 22.
  for (Method m : {Method::bdwp, Method::srste, Method::dense})
    check_layer_products(R"({"type": "linear", "out": 136})", {50, 520}, m, true);
  check_layer_products(R"({"type": "linear", "out": 136})", {50, 520}, Method::bdwp, false);
}

TEST(CompilerProducts, ConvolutionMatchesTheCpuLayer) {
  // K = 64*9 = 576 = 512 + 64, Cout 136, P = 3 * 5 * 5 = 75 with stride 2 and padding.
  for (Method m : {Method::bdwp, Method::srste, Method::dense})
    check_layer_products(R"({"type": "conv2d", "out": 136, "kernel": 3, "stride": 2, "padding": 1})",
                         {64, 9, 9}, m, true);
  // Even height: the BP of stride 2 runs as four phase convolutions (ST_2D b3); the odd width
  // gives phases of 5 and 4 columns; Cout 136 = 128 + 8 columns per tap segment.
  for (Method m : {Method::bdwp, Method::srste, Method::dense})
    check_layer_products(R"({"type": "conv2d", "out": 136, "kernel": 3, "stride": 2, "padding": 1})",
                         {24, 8, 9}, m, true);
  check_layer_products(R"({"type": "conv2d", "out": 136, "kernel": 3, "stride": 2, "padding": 1})",
                       {24, 8, 9}, Method::bdwp, false);
  // 1x1 stride 2: only the even rows and columns of dX get a product; the rest is zero-filled.
  check_layer_products(R"({"type": "conv2d", "out": 16, "kernel": 1, "stride": 2, "bias": false})", {16, 6, 7},
                       Method::bdwp, true);
  // 1x1 stride 1: BP stores dX directly; P = 3 * 36 = 108.
  check_layer_products(R"({"type": "conv2d", "out": 16, "kernel": 1, "bias": false})", {16, 6, 6},
                       Method::bdwp, true);
}

// ---- sat compile ------------------------------------------------------------------------------------

namespace {

// `sat compile <args>`.
test::CliRun sat_cli(const std::string& args) { return test::run_sat("compile " + args); }

// `sat compile <args>` fails with `needle` in its output and exit status `status` (2: a bad
// command line, 1: an error).
void expect_cli_error(const std::string& args, const std::string& needle, int status = 2) {
  test::expect_cli_error("compile " + args, needle, status);
}

}  // namespace

TEST(CompileCli, BadFlagsAreNamed) {
  expect_cli_error("", "missing required flag --model");
  expect_cli_error("--model nosuchmodel", "no model named 'nosuchmodel'", 1);
  expect_cli_error("--model mlp --batch 0", "--batch must be between 1 and 65535, got 0");
  expect_cli_error("--model mlp --batch -2", "--batch must be between 1 and 65535, got -2");
  expect_cli_error("--model mlp --batch two", "--batch expects an integer, got 'two'");
  expect_cli_error("--model mlp --batch 100000", "--batch must be between 1 and 65535, got 100000");
  expect_cli_error("--model mlp --method sparse", "unknown training method 'sparse'");
  expect_cli_error("--model mlp --nm 2:7", "not in the supported set");
  expect_cli_error("--model mlp --frobnicate", "unknown flag --frobnicate");
  expect_cli_error("--model mlp --dump=yes", "flag --dump takes no value");
  expect_cli_error("--model vgg_small --batch 60000", "past its window", 1);
}

TEST(CompileCli, PrintsSummaryMemoryMapAndDump) {
  const test::CliRun help = sat_cli("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("usage: sat compile"), std::string::npos) << help.out;

  const test::CliRun r = sat_cli("--model lenet5 --batch 16 --nm 2:8");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* s : {"layers[3]", "conv2d", "total", "MMAC", "instruction stream", "memory map",
                        "ch3", "timing estimate"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " missing in:\n" << r.out;
  }
  EXPECT_EQ(r.out.find("LD_CONV"), std::string::npos) << "the stream is printed only with --dump";

  const test::CliRun d = sat_cli("--model mlp --batch 4 --dump --no-offline --no-pregen --no-interleave");
  ASSERT_EQ(d.status, 0) << d.out;
  for (const char* s : {"FINISH", "LD_SPW", "PGEN", "SGD", "V_XENT", "interleave mapping off",
                        "pre-generation off", "offline scheduling off", "regions:"}) {
    EXPECT_NE(d.out.find(s), std::string::npos) << s;
  }
  const test::CliRun inf = sat_cli("--model mlp --batch 4 --inference --method srste");
  ASSERT_EQ(inf.status, 0) << inf.out;
  EXPECT_NE(inf.out.find("inference stream"), std::string::npos) << inf.out;

  // The data-parallel program: its update stream is printed after the step's.
  const test::CliRun u = sat_cli("--model mlp --batch 4 --update-apart --dump");
  ASSERT_EQ(u.status, 0) << u.out;
  const size_t at = u.out.find("update stream (data-parallel");
  ASSERT_NE(at, std::string::npos) << u.out;
  EXPECT_NE(u.out.find("SGD", at), std::string::npos);
  EXPECT_EQ(u.out.substr(0, at).find(" SGD "), std::string::npos) << "the step stream holds no update";
  const test::CliRun uj = sat_cli("--model mlp --batch 4 --update-apart --json");
  ASSERT_EQ(uj.status, 0) << uj.out;
  const nlohmann::json j = nlohmann::json::parse(uj.out);
  EXPECT_TRUE(j["options"]["update_apart"].get<bool>());
  EXPECT_GT(j["update_instructions"].get<int>(), 0);
  const test::CliRun bad = sat_cli("--model mlp --batch 4 --update-apart --inference");
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_NE(bad.out.find("--update-apart needs a training program"), std::string::npos) << bad.out;
}
