// The offline scheduler (host/src/compiler, docs/dataflow.md): stream structure, tokens (balanced,
// paired in FIFO order, ordering every dependency, free of deadlock at the configured FIFO depth),
// tiles within the buffers, a disjoint memory map within the channel windows, every model for
// every method, the three dataflow switches, the products' arithmetic (a small reference
// interpreter of the load/GEMM/store instructions), and clear errors for bad inputs.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "sat/lowering.hpp"
#include "expect_error.hpp"
#include "run_cli.hpp"
#include "sat/bf16.hpp"
#include "sat/compiler.hpp"
#include "sat/error.hpp"
#include "sat/model.hpp"

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

// ---- Token checker --------------------------------------------------------------------------------
// Pairs the k-th wait of unit V on unit U with the k-th signal of U towards V (FIFO order) and
// checks that the signal comes earlier in the stream, that no token is left over at the end, that
// CTRL neither waits nor signals, and (with the pairing's happens-before relation, as vector clocks)
// that every recorded dependency is ordered by tokens or by same-unit program order.
void check_tokens(const Program& p) {
  const auto n = static_cast<int64_t>(p.insns.size());
  std::array<std::array<std::vector<int64_t>, kExec>, kExec> signals;   // [U][V]: signalling insns
  std::array<std::array<size_t, kExec>, kExec> consumed{};
  std::vector<std::array<int64_t, kExec>> clock(static_cast<size_t>(n));
  std::array<std::array<int64_t, kExec>, kExec> unit_clock;
  for (auto& c : unit_clock) c.fill(-1);
  for (int64_t j = 0; j < n; ++j) {
    const Insn& in = p.insns[static_cast<size_t>(j)];
    const int v = opcode_unit(in.opcode());
    ASSERT_GE(v, 0) << "insn " << j << " has an unknown opcode";
    if (v >= kExec) {
      EXPECT_EQ(in.wait(), 0) << "CTRL insn " << j << " waits";
      EXPECT_EQ(in.signal(), 0) << "CTRL insn " << j << " signals";
      continue;
    }
    auto clk = unit_clock[static_cast<size_t>(v)];
    for (int u = 0; u < kExec; ++u) {
      if (!(in.wait() & (1u << u))) continue;
      ASSERT_NE(u, v) << "insn " << j << " waits on its own unit";
      auto& q = signals[static_cast<size_t>(u)][static_cast<size_t>(v)];
      size_t& c = consumed[static_cast<size_t>(u)][static_cast<size_t>(v)];
      ASSERT_LT(c, q.size()) << "insn " << j << " (" << disassemble(in) << ") waits on "
                             << unit_name(u) << " with no earlier unconsumed signal";
      const int64_t i = q[c++];
      for (int x = 0; x < kExec; ++x) clk[x] = std::max(clk[x], clock[static_cast<size_t>(i)][x]);
    }
    clk[static_cast<size_t>(v)] = j;
    clock[static_cast<size_t>(j)] = clk;
    unit_clock[static_cast<size_t>(v)] = clk;
    for (int w = 0; w < kExec; ++w) {
      if (!(in.signal() & (1u << w))) continue;
      ASSERT_NE(w, v) << "insn " << j << " signals its own unit";
      signals[static_cast<size_t>(v)][static_cast<size_t>(w)].push_back(j);
    }
  }
  for (int u = 0; u < kExec; ++u)
    for (int v = 0; v < kExec; ++v)
      EXPECT_EQ(consumed[u][v], signals[u][v].size())
          << "tokens " << unit_name(u) << " -> " << unit_name(v) << " left at FINISH";
  for (const auto& [i, j] : p.dependencies) {
    ASSERT_LT(i, j);
    const int u = opcode_unit(p.insns[static_cast<size_t>(i)].opcode());
    ASSERT_LT(u, kExec);
    ASSERT_GE(clock[static_cast<size_t>(j)][u], i)
        << "insn " << j << " (" << disassemble(p.insns[static_cast<size_t>(j)])
        << ") is not ordered after insn " << i << " (" << disassemble(p.insns[static_cast<size_t>(i)])
        << ")";
  }
}

// Runs the units as decoupled in-order machines with token FIFOs of depth kTokenDepth; returns
// false on a deadlock (no unit can move while some still have instructions).
bool runs_without_deadlock(const Program& p) {
  std::array<std::vector<int64_t>, kExec> queue;
  for (size_t j = 0; j < p.insns.size(); ++j) {
    const int u = opcode_unit(p.insns[j].opcode());
    if (u < kExec) queue[static_cast<size_t>(u)].push_back(static_cast<int64_t>(j));
  }
  std::array<size_t, kExec> pc{};
  std::array<std::array<int, kExec>, kExec> fifo{};
  for (;;) {
    bool moved = false, left = false;
    for (int v = 0; v < kExec; ++v) {
      while (pc[v] < queue[v].size()) {
        const Insn& in = p.insns[static_cast<size_t>(queue[v][pc[v]])];
        bool ok = true;
        for (int u = 0; u < kExec; ++u)
          if ((in.wait() & (1u << u)) && fifo[u][v] == 0) ok = false;
        for (int w = 0; w < kExec; ++w)
          if ((in.signal() & (1u << w)) && fifo[v][w] >= arch::kTokenDepth) ok = false;
        if (!ok) break;
        for (int u = 0; u < kExec; ++u)
          if (in.wait() & (1u << u)) --fifo[u][v];
        for (int w = 0; w < kExec; ++w)
          if (in.signal() & (1u << w)) ++fifo[v][w];
        ++pc[v];
        moved = true;
      }
      if (pc[v] < queue[v].size()) left = true;
    }
    if (!left) return true;
    if (!moved) return false;
  }
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
  EXPECT_TRUE(runs_without_deadlock(p)) << "token deadlock at FIFO depth " << arch::kTokenDepth;
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
      EXPECT_EQ(w.dense >= 0, !ff || !bp);
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
  // bdwp lenet5: conv1 and fc2 dense copies, conv2 and fc1 W_F and W_B; each after its weight's
  // update.
  EXPECT_EQ(count_op(on, OP_PGEN), 6);
  EXPECT_EQ(on.prologue.size(), 7u);
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
    EXPECT_TRUE(in.flag(2) || !in.flag(0)) << "PGEN " << j << " of W_B with pre-generation off";
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


// ---- The products' arithmetic: a reference interpreter of the load / GEMM / store instructions ----
// Executes the stream in program order (tokens only reorder what is independent) on a DRAM model
// and compares a layer's FF output, BP input gradient and WU weight gradient with the CPU layer.
// Shapes with remainder tiles along M, N and K.

namespace {

class MiniMachine {
 public:
  explicit MiniMachine(const Program& p) {
    for (int c = 0; c < arch::kDdrChannels; ++c) dram_[c].assign(p.map.channel_bytes[c] + 64, 0);
  }
  uint8_t* at(uint32_t a, int64_t byte_off = 0) {
    auto& ch = dram_.at(addr_channel(a));
    const uint64_t off = uint64_t{addr_offset(a)} * 2 + static_cast<uint64_t>(byte_off);
    if (off >= ch.size()) throw Error("interpreter: address past the channel");
    return ch.data() + off;
  }
  float bf(uint32_t a, int64_t e) {
    uint16_t b;
    std::memcpy(&b, at(a, e * 2), 2);
    return bf16_bits_to_f32(b);
  }
  void set_bf(uint32_t a, int64_t e, float v) {
    const uint16_t b = f32_to_bf16_bits(v);
    std::memcpy(at(a, e * 2), &b, 2);
  }
  float f(uint32_t a, int64_t e) {
    float v;
    std::memcpy(&v, at(a, e * 4), 4);
    return v;
  }
  void set_f(uint32_t a, int64_t e, float v) { std::memcpy(at(a, e * 4), &v, 4); }

  void run(const Program& p) {
    for (const Insn& in : p.insns) step(in);
  }

 private:
  static constexpr int kT = arch::kMaxTileRows * arch::kMaxTileK;
  struct Geom {
    int64_t c, h, w, kh, kw, s, pad, oh, ow;
  };
  static Geom geom(const Insn& in, int base) {   // fields c..ow start at `base` (LD_CONV/ST_COL2IM)
    return {in[base], in[base + 1], in[base + 2], lo16(in[base + 3]), hi16(in[base + 3]),
            lo16(in[base + 4]), hi16(in[base + 4]), in[base + 5], in[base + 6]};
  }
  // NHWC element index of im2col (p, k), or -1 in the padding.
  static int64_t im2col(const Geom& g, int64_t p, int64_t k) {
    const int64_t b = p / (g.oh * g.ow), oy = (p / g.ow) % g.oh, ox = p % g.ow;
    const int64_t ci = k / (g.kh * g.kw), ky = (k / g.kw) % g.kh, kx = k % g.kw;
    const int64_t iy = oy * g.s - g.pad + ky, ix = ox * g.s - g.pad + kx;
    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return -1;
    return ((b * g.h + iy) * g.w + ix) * g.c + ci;
  }

  void step(const Insn& in) {
    switch (in.opcode()) {
      case OP_LD_2D: {
        auto& buf = in.flag(0) ? b_[in[f_LD_2D::bank]] : a_[in[f_LD_2D::bank]];
        const int64_t rows = in[f_LD_2D::rows], cols = in[f_LD_2D::cols];
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c)
            buf[r * cols + c] = bf(in[f_LD_2D::addr], r * in[f_LD_2D::row_stride] + c * in[f_LD_2D::col_stride]);
        break;
      }
      case OP_LD_CONV: {
        auto& buf = in.flag(0) ? b_[in[f_LD_CONV::bank]] : a_[in[f_LD_CONV::bank]];
        const Geom g = geom(in, f_LD_CONV::c);
        const int64_t rows = in[f_LD_CONV::rows], cols = in[f_LD_CONV::cols];
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < cols; ++c) {
            const int64_t e = in.flag(1) ? im2col(g, in[f_LD_CONV::p0] + c, in[f_LD_CONV::k0] + r)
                                         : im2col(g, in[f_LD_CONV::p0] + r, in[f_LD_CONV::k0] + c);
            buf[r * cols + c] = e < 0 ? 0.0f : bf(in[f_LD_CONV::addr], e);
          }
        }
        break;
      }
      case OP_LD_SPW: {
        const int bank = static_cast<int>(in[f_LD_SPW::bank]);
        const int64_t rows = in[f_LD_SPW::rows], groups = in[f_LD_SPW::groups];
        const int64_t n = in[f_LD_SPW::n], lg = in[f_LD_SPW::line_groups];
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t g = 0; g < groups; ++g) {
            for (int64_t j = 0; j < n; ++j) {
              const int64_t e = ((in[f_LD_SPW::l0] + r) * lg + in[f_LD_SPW::g0] + g) * n + j;
              const int64_t slot = (r * groups + g) * n + j;
              sv_[bank][slot] = bf(in[f_LD_SPW::val_addr], e);
              const uint8_t byte = *at(in[f_LD_SPW::idx_addr], e / 2);
              si_[bank][slot] = (e % 2) ? byte >> 4 : byte & 15;
            }
          }
        }
        break;
      }
      case OP_GEMM: {
        const int64_t mt = in[f_GEMM::mt], nt = in[f_GEMM::nt], kt = in[f_GEMM::kt];
        const auto& a = a_[in[f_GEMM::a_bank]];
        auto& c = c_[in[f_GEMM::c_bank]];
        const int bb = static_cast<int>(in[f_GEMM::b_bank]);
        const int64_t n = in[f_GEMM::n], m = in[f_GEMM::m];
        for (int64_t r = 0; r < mt; ++r) {
          for (int64_t col = 0; col < nt; ++col) {
            float acc = in.flag(0) ? c[r * nt + col] : 0.0f;
            if (in.flag(1)) {
              const int64_t groups = kt / m;
              for (int64_t g = 0; g < groups; ++g)
                for (int64_t j = 0; j < n; ++j) {
                  const int64_t slot = (col * groups + g) * n + j;
                  acc += sv_[bb][slot] * a[r * kt + g * m + si_[bb][slot]];
                }
            } else {
              for (int64_t k = 0; k < kt; ++k) acc += a[r * kt + k] * b_[bb][col * kt + k];
            }
            c[r * nt + col] = acc;
          }
        }
        last_nt_[in[f_GEMM::c_bank]] = nt;
        break;
      }
      case OP_ST_2D: {
        const auto& c = c_[in[f_ST_2D::c_bank]];
        const int64_t nt = last_nt_[in[f_ST_2D::c_bank]];
        for (int64_t r = 0; r < in[f_ST_2D::rows]; ++r) {
          for (int64_t col = 0; col < in[f_ST_2D::cols]; ++col) {
            float v = c[r * nt + col];
            if (in.flag(2)) v += f(in[f_ST_2D::bias_addr], col);
            const int64_t e = r * in[f_ST_2D::row_stride] + col * in[f_ST_2D::col_stride];
            if (in.flag(0)) {
              set_f(in[f_ST_2D::addr], e, in.flag(1) ? f(in[f_ST_2D::addr], e) + v : v);
            } else {
              set_bf(in[f_ST_2D::addr], e, v);
            }
          }
        }
        break;
      }
      case OP_ST_COL2IM: {
        const auto& c = c_[in[f_ST_COL2IM::c_bank]];
        const int64_t nt = last_nt_[in[f_ST_COL2IM::c_bank]];
        const Geom g = geom(in, f_ST_COL2IM::c);
        for (int64_t r = 0; r < in[f_ST_COL2IM::rows]; ++r)
          for (int64_t col = 0; col < in[f_ST_COL2IM::cols]; ++col) {
            const int64_t e = im2col(g, in[f_ST_COL2IM::p0] + r, in[f_ST_COL2IM::k0] + col);
            if (e >= 0) set_f(in[f_ST_COL2IM::addr], e, f(in[f_ST_COL2IM::addr], e) + c[r * nt + col]);
          }
        break;
      }
      case OP_V_FILL:
        for (int64_t i = 0; i < in[f_V_FILL::count]; ++i) {
          if (in.flag(0)) {
            set_f(in[f_V_FILL::y], i, f32_from_bits(in[f_V_FILL::value]));
          } else {
            set_bf(in[f_V_FILL::y], i, f32_from_bits(in[f_V_FILL::value]));
          }
        }
        break;
      case OP_V_CONVERT:
        for (int64_t i = 0; i < in[f_V_CONVERT::count]; ++i) set_bf(in[f_V_CONVERT::y], i, f(in[f_V_CONVERT::x], i));
        break;
      case OP_V_COLSUM:
        for (int64_t col = 0; col < in[f_V_COLSUM::cols]; ++col) {
          float s = in.flag(0) ? f(in[f_V_COLSUM::y], col) : 0.0f;
          for (int64_t r = 0; r < in[f_V_COLSUM::rows]; ++r) s += bf(in[f_V_COLSUM::x], r * in[f_V_COLSUM::cols] + col);
          set_f(in[f_V_COLSUM::y], col, s);
        }
        break;
      case OP_FINISH:
      case OP_SGD:    // the update and pre-generation that follow the layer's backward do not
      case OP_PGEN:   // touch what is compared (outputs, input gradient, parameter gradients)
        break;
      default:
        throw Error(std::string("interpreter: unexpected ") + opcode_name(in.opcode()));
    }
  }

  std::array<std::vector<uint8_t>, arch::kDdrChannels> dram_;
  std::array<std::vector<float>, 2> a_{std::vector<float>(kT), std::vector<float>(kT)};
  std::array<std::vector<float>, 2> b_{std::vector<float>(kT), std::vector<float>(kT)};
  std::array<std::vector<float>, 2> sv_{std::vector<float>(kT), std::vector<float>(kT)};
  std::array<std::vector<int>, 2> si_{std::vector<int>(kT), std::vector<int>(kT)};
  std::array<std::vector<float>, 2> c_{std::vector<float>(arch::kCbufElems),
                                       std::vector<float>(arch::kCbufElems)};
  std::array<int64_t, 2> last_nt_{};
};

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
  MiniMachine mm(p);
  for (size_t i = 0; i < xv.size(); ++i) mm.set_bf(lw.addr(x), nhwc_index(xs, static_cast<int64_t>(i)), xv[i]);
  for (size_t i = 0; i < gv.size(); ++i) mm.set_bf(lw.addr(dy), nhwc_index(ys, static_cast<int64_t>(i)), gv[i]);
  for (const ParamBinding& pb : p.params) {
    for (int64_t i = 0; i < pb.param->numel(); ++i)
      mm.set_f(p.map.regions[pb.value].addr(), i, pb.param->value[i]);
  }
  for (const WeightBinding& wb : p.weights) {
    const SparseWeight& sw = *wb.weight;
    auto put_form = [&](int vr, int ir, const NMCompressed& c) {
      const auto vals = nm_values_bf16(c);
      for (size_t i = 0; i < vals.size(); ++i) mm.set_bf(p.map.regions[vr].addr(), static_cast<int64_t>(i), to_f32(vals[i]));
      const auto packed = nm_pack_indices(c.index);
      std::memcpy(mm.at(p.map.regions[ir].addr()), packed.data(), packed.size());
    };
    if (wb.fwd_values >= 0) put_form(wb.fwd_values, wb.fwd_index, sw.fwd);
    if (wb.bwd_values >= 0) put_form(wb.bwd_values, wb.bwd_index, sw.bwd);
    if (wb.dense >= 0) {
      for (size_t i = 0; i < sw.dense.size(); ++i)
        mm.set_bf(p.map.regions[wb.dense].addr(), static_cast<int64_t>(i), sw.dense[i]);
    }
  }
  mm.run(p);

  // CPU reference.
  StepContext ctx;
  ctx.method = method;
  const Tensor yr = layer.forward(Tensor::from_f32(xs, xv), ctx);
  model.zero_grad();
  const Tensor dxr = layer.backward(Tensor::from_f32(ys, gv), ctx);

  std::vector<float> got(static_cast<size_t>(numel(ys)));
  for (size_t i = 0; i < got.size(); ++i) got[i] = mm.bf(lw.addr(y), nhwc_index(ys, static_cast<int64_t>(i)));
  expect_close(yr.to_f32(), got, "FF output");
  got.assign(static_cast<size_t>(numel(xs)), 0);
  for (size_t i = 0; i < got.size(); ++i) got[i] = mm.bf(lw.addr(dx), nhwc_index(xs, static_cast<int64_t>(i)));
  expect_close(dxr.to_f32(), got, "BP input gradient");
  for (const ParamBinding& pb : p.params) {
    got.assign(pb.param->grad.size(), 0);
    for (size_t i = 0; i < got.size(); ++i) got[i] = mm.f(p.map.regions[pb.grad].addr(), static_cast<int64_t>(i));
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
  // 1x1 stride 1: BP stores dX directly; P = 3 * 36 = 108.
  check_layer_products(R"({"type": "conv2d", "out": 16, "kernel": 1, "bias": false})", {16, 6, 6},
                       Method::bdwp, true);
}

// ---- sat compile ------------------------------------------------------------------------------------

namespace {

// `sat compile <args>`.
test::CliRun sat_cli(const std::string& args) { return test::run_sat("compile " + args); }

void expect_cli_error(const std::string& args, const std::string& needle) {
  test::expect_cli_error("compile " + args, needle);
}

}  // namespace

TEST(CompileCli, BadFlagsAreNamed) {
  expect_cli_error("", "missing required flag --model");
  expect_cli_error("--model nosuchmodel", "no model named 'nosuchmodel'");
  expect_cli_error("--model mlp --batch 0", "--batch must be >= 1");
  expect_cli_error("--model mlp --batch -2", "--batch must be >= 1");
  expect_cli_error("--model mlp --batch two", "--batch expects an integer, got 'two'");
  expect_cli_error("--model mlp --batch 100000", "--batch must be <= 65535");
  expect_cli_error("--model mlp --method sparse", "unknown training method 'sparse'");
  expect_cli_error("--model mlp --nm 2:7", "not in the supported set");
  expect_cli_error("--model mlp --frobnicate", "unknown flag --frobnicate");
  expect_cli_error("--model mlp --dump=yes", "flag --dump takes no value");
  expect_cli_error("--model vgg_small --batch 60000", "past its window");
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
}
