#include "sat/checkpoint.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "sat/error.hpp"
#include "file_layout.hpp"
#include "json_field.hpp"
#include "sat/io.hpp"

namespace sat {

namespace {

using nlohmann::json;

constexpr char kMagic[8] = {'S', 'A', 'T', 'C', 'K', 'P', 'T', '1'};   // format word: reserved, 0

// JSON has no NaN or infinity; a diverged run still has to checkpoint, so those go as strings.
json num(double v) {
  if (std::isfinite(v)) return v;
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

// Header access with errors that name the checkpoint and the field.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& msg) const {
    throw Error("checkpoint " + path_ + " is corrupt: " + msg);
  }
  const json& at(const json& j, const char* key) const {
    if (!j.is_object() || !j.contains(key)) fail(std::string("header field \"") + key + "\" is missing");
    return j[key];
  }
  template <typename T>
  T get(const json& j, const char* key) const {
    T out{};
    if (!json_field::read(at(j, key), out)) {
      fail(std::string("header field \"") + key + "\" has the wrong type or is out of range");
    }
    return out;
  }
  double number(const json& j, const char* key) const {
    const json& v = at(j, key);
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
      const auto s = v.get<std::string>();
      if (s == "nan") return NAN;
      if (s == "inf") return INFINITY;
      if (s == "-inf") return -INFINITY;
    }
    fail(std::string("header field \"") + key + "\" is not a number");
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

json recipe_json(const Recipe& r) {
  return {{"epochs", r.epochs},         {"batch", r.batch},
          {"lr", num(r.lr)},            {"momentum", num(r.momentum)},
          {"weight_decay", num(r.weight_decay)}, {"srste_lambda", num(r.srste_lambda)},
          {"schedule", r.schedule},     {"step_every", r.step_every},
          {"step_gamma", num(r.step_gamma)}, {"warmup_epochs", num(r.warmup_epochs)},
          {"seed", r.seed}};
}

Recipe recipe_from(const Reader& rd, const json& j) {
  Recipe r;
  r.epochs = rd.get<int>(j, "epochs");
  r.batch = rd.get<int>(j, "batch");
  r.lr = rd.number(j, "lr");
  r.momentum = rd.number(j, "momentum");
  r.weight_decay = rd.number(j, "weight_decay");
  r.srste_lambda = rd.number(j, "srste_lambda");
  r.schedule = rd.get<std::string>(j, "schedule");
  r.step_every = rd.get<int>(j, "step_every");
  r.step_gamma = rd.number(j, "step_gamma");
  r.warmup_epochs = rd.number(j, "warmup_epochs");
  r.seed = rd.get<uint64_t>(j, "seed");
  return r;
}

json metrics_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch},         {"train_loss", num(m.train_loss)}, {"train_acc", num(m.train_acc)},
          {"test_loss", num(m.test_loss)}, {"test_acc", num(m.test_acc)}, {"lr", num(m.lr)},
          {"seconds", num(m.seconds)}, {"images_per_s", num(m.images_per_s)}};
}

EpochMetrics metrics_from(const Reader& rd, const json& j) {
  EpochMetrics m;
  m.epoch = rd.get<int>(j, "epoch");
  m.train_loss = rd.number(j, "train_loss");
  m.train_acc = rd.number(j, "train_acc");
  m.test_loss = rd.number(j, "test_loss");
  m.test_acc = rd.number(j, "test_acc");
  m.lr = rd.number(j, "lr");
  m.seconds = rd.number(j, "seconds");
  m.images_per_s = rd.number(j, "images_per_s");
  return m;
}

std::string nm_text(NM nm) { return nm.dense() ? "dense" : nm.str(); }

NM nm_from(const Reader& rd, const json& j, const char* key) {
  const auto text = rd.get<std::string>(j, key);
  try {
    return NM::parse(text);
  } catch (const Error& e) {
    rd.fail(std::string("header field \"") + key + "\": " + e.what());
  }
}

// A checkpoint whose prefix, size and checksum are verified, with its header parsed.
struct Verified {
  std::string bytes;
  json header;
  size_t data_offset = 0, data_bytes = 0;
};

Verified verify(const std::string& path) {
  Verified v;
  v.bytes = read_file(path);
  const file_layout::Frame f = file_layout::verify_frame(v.bytes, path, "checkpoint", kMagic, kCheckpointVersion);
  v.data_offset = f.data_offset;
  v.data_bytes = f.data_bytes;
  try {
    const auto first = v.bytes.begin() + static_cast<std::ptrdiff_t>(f.header_offset);
    v.header = json::parse(first, first + static_cast<std::ptrdiff_t>(f.header_bytes));
  } catch (const json::exception& e) {
    throw Error("checkpoint " + path + " is corrupt: the header is not valid JSON: " + e.what());
  }
  if (!v.header.is_object()) throw Error("checkpoint " + path + " is corrupt: the header is not a JSON object");
  return v;
}

TrainState state_from(const Reader& rd, const json& h) {
  TrainState s;
  const auto method = rd.get<std::string>(h, "method");
  try {
    s.method = parse_method(method);
  } catch (const Error& e) {
    rd.fail(std::string("header field \"method\": ") + e.what());
  }
  s.nm = nm_from(rd, h, "nm");
  s.recipe = recipe_from(rd, rd.at(h, "recipe"));
  const json& st = rd.at(h, "state");
  s.epoch = rd.get<int>(st, "epoch");
  s.step_in_epoch = rd.get<int64_t>(st, "step_in_epoch");
  s.global_step = rd.get<int64_t>(st, "global_step");
  s.epoch_loss_sum = rd.number(st, "epoch_loss_sum");
  s.epoch_correct = rd.get<int64_t>(st, "epoch_correct");
  s.epoch_seen = rd.get<int64_t>(st, "epoch_seen");
  s.epoch_seconds = rd.number(st, "epoch_seconds");
  const json& hist = rd.at(h, "history");
  if (!hist.is_array()) rd.fail("header field \"history\" is not a list");
  for (const auto& row : hist) s.history.push_back(metrics_from(rd, row));
  return s;
}

}  // namespace

void save_checkpoint(const std::string& path, Model& model, const TrainState& state) {
  const std::vector<Param*> params = model.params();
  json plist = json::array();
  std::map<std::string, int> seen;
  size_t data_bytes = 0;
  for (const Param* p : params) {
    if (seen[p->name]++) {
      throw Error("cannot save checkpoint " + path + ": the model has two parameters named '" + p->name + "'");
    }
    if (p->numel() != numel(p->shape)) {
      throw Error("cannot save checkpoint " + path + ": parameter " + p->name + " holds " +
                  std::to_string(p->numel()) + " values but has shape " + shape_str(p->shape));
    }
    const size_t bytes = static_cast<size_t>(p->numel()) * sizeof(float);
    plist.push_back({{"name", p->name},
                     {"shape", p->shape},
                     {"trainable", p->trainable},
                     {"value_offset", data_bytes},
                     {"momentum_offset", data_bytes + bytes}});
    data_bytes += 2 * bytes;
  }

  json h;
  h["format"] = "SATCKPT1";
  h["version"] = kCheckpointVersion;
  h["model"] = {{"name", model.name},
                {"source", model.source},
                {"nm", nm_text(model.nm)},
                {"input", model.input},
                {"classes", model.classes}};
  h["method"] = method_name(state.method);
  h["nm"] = nm_text(state.nm);
  h["recipe"] = recipe_json(state.recipe);
  h["state"] = {{"epoch", state.epoch},
                {"step_in_epoch", state.step_in_epoch},
                {"global_step", state.global_step},
                {"epoch_loss_sum", num(state.epoch_loss_sum)},
                {"epoch_correct", state.epoch_correct},
                {"epoch_seen", state.epoch_seen},
                {"epoch_seconds", num(state.epoch_seconds)}};
  h["history"] = json::array();
  for (const auto& m : state.history) h["history"].push_back(metrics_json(m));
  h["params"] = std::move(plist);
  // Invalid UTF-8 in a model source would make dump() throw; replacing it keeps saving possible.
  const std::string header = h.dump(2, ' ', false, json::error_handler_t::replace);

  file_layout::FrameWriter out(kMagic, kCheckpointVersion, 0, header, data_bytes);
  size_t at = 0;
  for (const Param* p : params) {
    const size_t bytes = static_cast<size_t>(p->numel()) * sizeof(float);
    std::memcpy(out.data() + at, p->value.data(), bytes);
    // A Param without momentum storage has never been updated: its momentum is zero.
    if (p->momentum.size() == p->value.size()) std::memcpy(out.data() + at + bytes, p->momentum.data(), bytes);
    at += 2 * bytes;
  }
  atomic_write_file(path, out.seal());
}

TrainState load_checkpoint(const std::string& path, Model& model) {
  const Verified v = verify(path);
  const Reader rd(path);
  TrainState state = state_from(rd, v.header);

  struct Entry {
    Shape shape;
    size_t value_offset, momentum_offset;
  };
  std::map<std::string, Entry> saved;
  const json& plist = rd.at(v.header, "params");
  if (!plist.is_array()) rd.fail("header field \"params\" is not a list");
  for (const auto& pj : plist) {
    Entry e{rd.get<Shape>(pj, "shape"), rd.get<size_t>(pj, "value_offset"), rd.get<size_t>(pj, "momentum_offset")};
    const auto name = rd.get<std::string>(pj, "name");
    for (int64_t d : e.shape) {
      if (d < 0) rd.fail("parameter " + name + " has a negative dimension");
    }
    int64_t elements = 0;
    try {
      elements = numel(e.shape);
    } catch (const Error& err) {
      rd.fail("parameter " + name + ": " + err.what());
    }
    // Bounded by the data section before the multiplication: a shape of 2^62 elements would wrap
    // the byte count to 0 and pass the range checks below.
    if (static_cast<uint64_t>(elements) > v.data_bytes / sizeof(float)) {
      rd.fail("parameter " + name + " " + shape_str(e.shape) + " is larger than the data section");
    }
    const size_t bytes = static_cast<size_t>(elements) * sizeof(float);
    if (e.value_offset > v.data_bytes || bytes > v.data_bytes - e.value_offset || e.momentum_offset > v.data_bytes ||
        bytes > v.data_bytes - e.momentum_offset) {
      rd.fail("parameter " + name + " lies outside the data section");
    }
    if (!saved.emplace(name, std::move(e)).second) rd.fail("parameter " + name + " appears twice");
  }

  // Everything is checked before anything is written, so a refused checkpoint leaves the model as
  // it was.
  const std::vector<Param*> params = model.params();
  for (const Param* p : params) {
    const auto it = saved.find(p->name);
    if (it == saved.end()) {
      throw Error("checkpoint " + path + " does not match the model: parameter " + p->name + " " +
                  shape_str(p->shape) + " is in the model but not in the checkpoint");
    }
    if (it->second.shape != p->shape) {
      throw Error("checkpoint " + path + " does not match the model: parameter " + p->name + " has shape " +
                  shape_str(it->second.shape) + " in the checkpoint but " + shape_str(p->shape) + " in the model");
    }
  }
  if (saved.size() != params.size()) {
    for (const auto& [name, e] : saved) {
      bool found = false;
      for (const Param* p : params) found = found || p->name == name;
      if (!found) {
        throw Error("checkpoint " + path + " does not match the model: parameter " + name + " " + shape_str(e.shape) +
                    " is in the checkpoint but not in the model");
      }
    }
  }

  const char* data = v.bytes.data() + v.data_offset;
  for (Param* p : params) {
    const Entry& e = saved.at(p->name);
    const size_t n = static_cast<size_t>(numel(p->shape));
    p->value.resize(n);
    p->momentum.resize(n);
    p->grad.assign(n, 0.0f);
    std::memcpy(p->value.data(), data + e.value_offset, n * sizeof(float));
    std::memcpy(p->momentum.data(), data + e.momentum_offset, n * sizeof(float));
  }
  return state;
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  const Verified v = verify(path);
  const Reader rd(path);
  CheckpointInfo info;
  const json& m = rd.at(v.header, "model");
  info.model_name = rd.get<std::string>(m, "name");
  info.model_source = rd.get<std::string>(m, "source");
  info.model_nm = nm_from(rd, m, "nm");
  info.state = state_from(rd, v.header);
  return info;
}

namespace {
void require_source(const CheckpointInfo& info, const std::string& path) {
  if (info.model_source.empty()) {
    throw Error("checkpoint " + path + " holds no model source (model '" + info.model_name +
                "' was built in code); rebuild it the same way and use load_checkpoint");
  }
}
}  // namespace

std::string checkpoint_model_source(const std::string& path) {
  CheckpointInfo info = read_checkpoint_info(path);
  require_source(info, path);
  return std::move(info.model_source);
}

Model model_from_checkpoint(const std::string& path, TrainState* state) {
  const CheckpointInfo info = read_checkpoint_info(path);
  require_source(info, path);
  Model model = Model::from_json_text(info.model_source, path, info.model_nm);
  TrainState s = load_checkpoint(path, model);
  model.regenerate(s.method);
  if (state) *state = std::move(s);
  return model;
}

}  // namespace sat
