// `sat op`: single primitives on .npy files, the stable contract the cross-checks (PyTorch, other
// backends, the RTL testbenches) are written against. Changing a flag or a shape convention here
// breaks them: extend, do not alter.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "board_flags.hpp"
#include "commands.hpp"
#include "sat/backend.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"
#include "sat/layer.hpp"
#include "sat/model.hpp"
#include "sat/nm.hpp"
#include "sat/npy.hpp"
#include "sat/ops.hpp"

namespace sat::cli {

namespace {

const char* kOpUsage =
    "usage: sat op <op> [flags]\n"
    "\n"
    "Runs one primitive on .npy files (float32, C order) and writes .npy results.\n"
    "\n"
    "ops:\n"
    "  gemm    one product of a training step (ff, bp or wu) with N:M pruning\n"
    "  prune   N:M-prune a weight matrix along K or Cout\n"
    "  layer   forward and backward of one layer described in JSON\n"
    "\n"
    "`sat op <op> --help` lists an op's flags.\n";

CommandSpec gemm_spec() {
  CommandSpec c("op gemm", "--mode ff|bp|wu --nm N:M --a A.npy --b B.npy --out C.npy [--backend NAME] [--report R.json]",
                "One product of a BDWP training step; W [Cout][K] is pruned N:M along the axis shown:\n"
                "  ff: A = X  [B][K],    B = W [Cout][K]   C = X * prune_k(W)^T     [B][Cout]\n"
                "  bp: A = dY [B][Cout], B = W [Cout][K]   C = dY * prune_cout(W)   [B][K]\n"
                "  wu: A = dY [B][Cout], B = X [B][K]      C = dY^T * X             [Cout][K]  (dense)\n"
                "Inputs are float32 and are rounded to BF16 on entry; the mask is chosen on the float32 values\n"
                "before rounding (N largest |w| per group of M, ties to the lower index). Accumulation is FP32;\n"
                "C is written as float32.");
  c.value("mode", "ff|bp|wu", "the product")
      .value("nm", "N:M", "e.g. 2:8; M:M or \"dense\" for no pruning (required for ff and bp, ignored for wu)")
      .value("a", "FILE", "first operand (.npy)")
      .value("b", "FILE", "second operand (.npy)")
      .value("out", "FILE", "the result (.npy float32, written atomically)")
      .value("backend", "NAME", "the backend that runs it (default cpu)")
      .value("report", "R.json", "the device's counters of the run (cycles, clock_mhz, macs, dram_bytes_read, "
                                 "dram_bytes_written, busy and stall per unit; docs/sim.md) from sim; the "
                                 "kernel's own counters from hls and fpga (docs/fpga.md)");
  add_board_flags(c);
  return c;
}

CommandSpec prune_spec() {
  CommandSpec c("op prune", "--nm N:M --axis k|cout --in W.npy --out Wp.npy",
                "Writes W [Cout][K] with the pruned entries set to zero. In every group of M consecutive\n"
                "entries along K (--axis k: the forward form W_F) or along Cout (--axis cout: the backward form\n"
                "W_B) the N largest |w| are kept, ties going to the lower index. Kept values are written\n"
                "unchanged (float32, not rounded).");
  c.value("nm", "N:M", "e.g. 2:8; M:M or \"dense\" keeps everything")
      .value("axis", "k|cout", "the axis the groups of M run along")
      .value("in", "FILE", "W (.npy, 2-D)")
      .value("out", "FILE", "the pruned W (.npy float32, written atomically)");
  return c;
}

CommandSpec layer_spec() {
  CommandSpec c("op layer",
                "--spec JSON --input-shape C,H,W --method dense|srste|bdwp --nm N:M --x X.npy --dy DY.npy "
                "[--params DIR] --out DIR",
                "Builds one layer, named \"op\", from its JSON description (docs/model-format.md), runs forward\n"
                "in training mode on X and backward with DY, and writes to the --out directory:\n"
                "  y.npy              the output [B, ...]\n"
                "  dx.npy             dL/dX, the shape of X\n"
                "  grad_<param>.npy   dL/dparam of every trainable parameter (grad_weight.npy, grad_bias.npy)\n"
                "Parameters are initialised with seed 1, or with --params loaded from DIR/<param>.npy\n"
                "(weight.npy, bias.npy, ...: <param> is the parameter's name after \"op.\"; every trainable\n"
                "parameter must be there with its exact shape, non-trainable ones such as running statistics\n"
                "are loaded when present). The sparse forms are regenerated for --method. Numerics are the\n"
                "training path's: X, DY and the outputs are BF16 values, accumulation is FP32.");
  c.value("spec", "JSON", "the layer, as JSON text ('{\"type\": \"linear\", \"out\": 32}') or a file holding it; "
                          "an \"nm\" field there overrides --nm")
      .value("input-shape", "DIMS", "per-sample input shape, comma-separated (e.g. 16,8,8 or 64)")
      .value("method", "M", "dense, srste or bdwp")
      .value("nm", "N:M", "the N:M setting (e.g. 2:8, or dense)")
      .value("x", "FILE", "input [B, ...input-shape] (.npy)")
      .value("dy", "FILE", "gradient of the output, the output's shape (.npy)")
      .value("params", "DIR", "load parameters from DIR/<param>.npy")
      .value("out", "DIR", "output directory (created if missing)");
  return c;
}

int op_gemm(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = gemm_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  const std::string mode_text = args.str("mode");
  GemmMode mode;
  try {
    mode = parse_gemm_mode(mode_text);
  } catch (const Error& e) {
    args.fail(std::string("--mode: ") + e.what());
  }
  const NM nm = nm_flag(args, mode == GemmMode::wu ? "dense" : "");
  const std::string out = args.str("out");
  const auto backend = open_backend(backend_flag(args, "cpu"));
  const NpyArray a = npy_read(args.str("a"));
  const NpyArray b = npy_read(args.str("b"));
  Shape c_shape;
  const std::vector<float> c = backend->gemm(mode, nm, a.data, a.shape, b.data, b.shape, &c_shape);
  std::optional<DeviceCounters> counters;
  if (args.has("report")) {
    counters = backend->last_counters();
    if (!counters) {
      args.fail("--report: backend '" + backend->name() + "' runs no accelerator device and has no counters "
                "(use --backend hls, sim or fpga)");
    }
  }
  npy_write(out, c_shape, c);
  if (counters) atomic_write_file(args.str("report"), counters_json(*counters));
  return 0;
}

int op_prune(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = prune_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  const NM nm = nm_flag(args, "");
  const std::string axis_text = args.str("axis");
  if (axis_text != "k" && axis_text != "cout") {
    args.fail("--axis: expected k or cout, got '" + axis_text + "'");
  }
  const Axis axis = axis_text == "k" ? Axis::K : Axis::Cout;
  const std::string in_path = args.str("in"), out = args.str("out");
  const NpyArray w = npy_read(in_path);
  if (w.shape.size() != 2) {
    args.input_error(in_path + ": W must be 2-D [Cout][K], got " + shape_str(w.shape));
  }
  const int64_t cout = w.shape[0], k = w.shape[1];
  if (nm.dense()) {
    npy_write(out, w.shape, w.data);
    return 0;
  }
  const int64_t len = axis == Axis::K ? k : cout;
  if (len < 1 || len % nm.m != 0) {
    args.input_error("N:M " + nm.str() + " along " + axis_name(axis) + ": " + in_path + " is " +
              shape_str(w.shape) + " and " + axis_name(axis) + " = " + std::to_string(len) +
              " does not divide by M = " + std::to_string(nm.m));
  }
  npy_write(out, w.shape, nm_prune(w.data.data(), cout, k, nm, axis));
  return 0;
}

Shape parse_dims(const Args& args, const std::string& text) {
  Shape s;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v < 1) {
      args.fail("--input-shape: expected positive sizes separated by commas (e.g. 16,8,8), got '" +
                text + "'");
    }
    s.push_back(v);
  }
  if (s.empty()) args.fail("--input-shape is empty");
  return s;
}

// The --spec JSON and where it came from ("--spec" or the file), for error messages.
std::pair<nlohmann::json, std::string> parse_spec(const Args& args) {
  const std::string spec = args.str("spec");
  const size_t first = spec.find_first_not_of(" \t\r\n");
  std::string text = spec, origin = "--spec";
  if (first == std::string::npos || spec[first] != '{') {
    std::ifstream in(spec);
    if (!in) args.fail("--spec: '" + spec + "' is neither JSON text ({...}) nor a readable file");
    std::stringstream buf;
    buf << in.rdbuf();
    text = buf.str();
    origin = spec;
  }
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) args.fail("--spec: " + origin + ": a layer is a JSON object with a \"type\"");
    return {std::move(j), origin};
  } catch (const nlohmann::json::parse_error& e) {
    args.fail("--spec: " + origin + ": not valid JSON: " + e.what());
  }
}

int op_layer(const std::vector<std::string>& argv) {
  const std::optional<Args> parsed = layer_spec().parse(argv);
  if (!parsed) return kExitOk;
  const Args& args = *parsed;
  const auto [spec_json, spec_origin] = parse_spec(args);
  const Shape in_shape = parse_dims(args, args.str("input-shape"));
  const Method method = method_flag(args, "");
  const NM nm = nm_flag(args, "");
  const std::filesystem::path out_dir = args.str("out");
  const NpyArray x = npy_read(args.str("x"));
  const NpyArray dy = npy_read(args.str("dy"));

  LayerOp op(spec_json, spec_origin, in_shape, nm);
  try {
    op.check_shapes(x.shape, dy.shape, args.str("x") + ": X", args.str("dy") + ": DY");
  } catch (const Error& e) {
    args.input_error(e.what() + std::string(" (--input-shape ") + args.str("input-shape") + ")");
  }
  if (const auto dir = args.opt("params")) {
    for (Param* p : op.params()) {
      const std::filesystem::path file = std::filesystem::path(*dir) / (op.key(*p) + ".npy");
      if (!p->trainable && !std::filesystem::exists(file)) continue;
      NpyArray v;
      try {
        v = npy_read(file.string());
      } catch (const Error& e) {
        args.input_error("--params: parameter " + p->name + ": " + e.what());
      }
      if (v.shape != p->shape) {
        args.input_error("--params: " + file.string() + " is " + shape_str(v.shape) + ", but parameter " +
                  p->name + " is " + shape_str(p->shape));
      }
      p->value = std::move(v.data);
    }
  }
  for (const std::string& note : op.dense_notes(method)) std::fprintf(stderr, "note: %s\n", note.c_str());
  Tensor y, dx;
  op.run(method, Tensor::from_f32(x.shape, x.data), Tensor::from_f32(dy.shape, dy.data), y, dx);

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) args.input_error("--out: cannot create directory " + out_dir.string() + ": " + ec.message());
  npy_write((out_dir / "y.npy").string(), y.shape(), y.to_f32());
  npy_write((out_dir / "dx.npy").string(), dx.shape(), dx.to_f32());
  for (const Param* p : op.params()) {
    if (p->trainable) npy_write((out_dir / ("grad_" + op.key(*p) + ".npy")).string(), p->shape, p->grad);
  }
  return 0;
}

}  // namespace

int cmd_op(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fputs(kOpUsage, stderr);
    return 2;
  }
  const std::string op = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (op == "--help" || op == "-h") {
    std::fputs(kOpUsage, stdout);
    return 0;
  }
  if (op == "gemm") return op_gemm(rest);
  if (op == "prune") return op_prune(rest);
  if (op == "layer") return op_layer(rest);
  throw UsageError("sat op: unknown op '" + op + "' (known: gemm, prune, layer; see sat op --help)");
}

}  // namespace sat::cli
