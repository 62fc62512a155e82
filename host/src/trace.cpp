// Trace files (sat/trace.hpp, docs/formats.md "Trace files"): capture, reference run, write, read
// with validation, and replay with a region-by-region comparison.
#include "sat/trace.hpp"

#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "sat/accelerator.hpp"
#include "sat/arch/bf16_bits.hpp"
#include "sat/arch/interface.hpp"
#include "sat/data.hpp"
#include "sat/error.hpp"
#include "file_layout.hpp"
#include "json_field.hpp"
#include "sat/io.hpp"

namespace sat {

namespace {

using nlohmann::json;
using file_layout::hex32;

constexpr char kMagic[8] = {'S', 'A', 'T', 'T', 'R', 'A', 'C', 'E'};   // format word: the interface version

const char* dtype_name(DType d) { return d == DType::f32 ? "f32" : "bf16"; }

RegionKind parse_kind(const std::string& s, bool* ok) {
  for (RegionKind k : {RegionKind::input, RegionKind::labels, RegionKind::activation, RegionKind::gradient,
                       RegionKind::master, RegionKind::momentum, RegionKind::param_grad, RegionKind::weight_form,
                       RegionKind::stats, RegionKind::control}) {
    if (s == region_kind_name(k)) {
      *ok = true;
      return k;
    }
  }
  *ok = false;
  return RegionKind::activation;
}

bool all_zero(const std::vector<uint8_t>& v) {
  for (uint8_t b : v)
    if (b) return false;
  return true;
}

// The data section: blobs appended one after another, each zlib-compressed.
class BlobWriter {
 public:
  json add(const void* data, size_t n) {
    uLongf cap = compressBound(static_cast<uLong>(n));
    std::string z(cap, '\0');
    if (compress2(reinterpret_cast<Bytef*>(z.data()), &cap, static_cast<const Bytef*>(data), static_cast<uLong>(n),
                  6) != Z_OK) {
      throw Error("trace: zlib could not compress a block of " + std::to_string(n) + " bytes");
    }
    z.resize(cap);
    json ref = {{"at", data_.size()}, {"bytes", n}, {"stored", z.size()}};
    data_ += z;
    return ref;
  }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

class Reader {
 public:
  Reader(std::string path, const std::string& file, size_t data_offset, size_t data_bytes)
      : path_(std::move(path)), file_(file), data_offset_(data_offset), data_bytes_(data_bytes) {}

  [[noreturn]] void fail(const std::string& msg) const { throw Error("trace " + path_ + " is malformed: " + msg); }
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
  std::vector<uint8_t> blob(const json& ref, uint64_t expect_bytes, const std::string& what) const {
    const auto at_ = get<uint64_t>(ref, "at"), bytes = get<uint64_t>(ref, "bytes"), stored = get<uint64_t>(ref, "stored");
    if (bytes != expect_bytes) {
      fail(what + " holds " + std::to_string(bytes) + " bytes, expected " + std::to_string(expect_bytes));
    }
    if (at_ > data_bytes_ || stored > data_bytes_ - at_) fail(what + " lies outside the data section");
    // zlib expands at most about 1032:1; a larger claim is damage, not data (and must not allocate).
    if (bytes / 1032 > stored + 1) fail(what + " claims " + std::to_string(bytes) + " bytes from " + std::to_string(stored));
    std::vector<uint8_t> out(bytes);
    uLongf n = static_cast<uLongf>(bytes);
    const int rc = uncompress(out.data(), &n, reinterpret_cast<const Bytef*>(file_.data() + data_offset_ + at_),
                              static_cast<uLong>(stored));
    if (rc != Z_OK || n != bytes) fail(what + " does not decompress (zlib error " + std::to_string(rc) + ")");
    return out;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::string& file_;
  size_t data_offset_, data_bytes_;
};

// Element i of a region's contents as a double, for the size of a difference.
double element(const std::vector<uint8_t>& b, DType dt, int64_t i) {
  if (dt == DType::f32) {
    float f;
    std::memcpy(&f, b.data() + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, b.data() + 2 * i, 2);
  return bf16_bits_to_f32(h);
}

RegionDiff compare_region(const TraceRegion& tr, const std::vector<uint8_t>& got) {
  const Region& r = tr.region;
  RegionDiff d;
  d.name = r.name;
  d.kind = r.kind;
  d.dtype = r.dtype;
  d.channel = r.channel;
  d.offset = r.offset;
  d.bytes = r.bytes;
  const size_t esize = r.dtype == DType::f32 ? 4 : 2;
  d.elements = static_cast<int64_t>(r.bytes / esize);
  const std::vector<uint8_t>* want = nullptr;
  std::vector<uint8_t> zeros;
  if (!tr.expected.empty()) {
    want = &tr.expected;
  } else if (!tr.region.written) {   // an unwritten region keeps its initial contents
    if (tr.init.empty()) zeros.assign(r.bytes, 0);
    want = tr.init.empty() ? &zeros : &tr.init;
  }
  if (!want) {   // only the checksum is known
    d.exact_known = false;
    d.differing = -1;
    return d;
  }
  for (int64_t i = 0; i < d.elements; ++i) {
    if (std::memcmp(got.data() + i * esize, want->data() + i * esize, esize) == 0) continue;
    if (d.first < 0) d.first = i;
    ++d.differing;
    const double a = element(got, r.dtype, i), b = element(*want, r.dtype, i);
    const double diff = std::fabs(a - b);
    if (std::isnan(diff)) {
      d.max_abs = d.max_rel = NAN;
    } else if (!std::isnan(d.max_abs)) {
      d.max_abs = std::max(d.max_abs, diff);
      d.max_rel = std::max(d.max_rel, diff / std::max(std::fabs(b), 1e-30));
    }
  }
  if (d.differing == 0 && r.bytes % esize) d.differing = 1;   // a trailing odd byte differs
  return d;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

Trace capture_trace(ProgramImage& image, const std::string& description) {
  const Program& p = image.program();
  Trace t;
  t.interface_version = arch::kInterfaceVersion;
  t.description = description;
  for (int c = 0; c < arch::kDdrChannels; ++c) t.channel_bytes[c] = p.map.channel_bytes[c];
  t.insns = p.insns;
  for (size_t i = 0; i < p.map.regions.size(); ++i) {
    TraceRegion tr;
    tr.region = p.map.regions[i];
    tr.init = image.read_region(static_cast<int>(i));
    if (all_zero(tr.init)) tr.init.clear();
    t.regions.push_back(std::move(tr));
  }
  return t;
}

std::unique_ptr<ProgramImage> make_program_image(Model& model, const ScheduleOptions& opt, Device& device,
                                                 uint64_t seed, std::string* description) {
  auto image = std::make_unique<ProgramImage>(device, compile(model, opt));
  const Program& p = image->program();
  upload_state(*image);
  const Recipe& r = model.recipe;
  write_hyper(*image, UpdateConfig{opt.method, r.lr, r.momentum, r.weight_decay, r.srste_lambda});
  const int batch = opt.batch;
  auto data = make_synthetic_source(model.input, model.classes, batch, seed);
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  for (int i = 0; i < batch; ++i) idx[static_cast<size_t>(i)] = i;
  Tensor x;
  std::vector<int> y;
  data->batch(idx.data(), batch, x, y);
  write_batch(*image, x, y, model.classes);
  if (description) {
    // A dense run prunes nothing, whatever N:M the model file names.
    const std::string nm = opt.method == Method::dense ? "" : " " + (model.nm.dense() ? std::string("dense") : model.nm.str());
    *description = model.name + " " + method_name(opt.method) + nm + " batch " + std::to_string(batch) +
                   (p.options.training ? " training step" : " inference");
  }
  return image;
}

Trace make_program_trace(Model& model, const ScheduleOptions& opt, Device& reference, uint64_t seed) {
  std::string what;
  auto image = make_program_image(model, opt, reference, seed, &what);
  Trace t = capture_trace(*image, what);
  record_expected(t, reference);
  return t;
}

void record_expected(Trace& t, Device& device) {
  const auto mem = device.allocate(t.channel_bytes);
  for (const TraceRegion& tr : t.regions) {
    if (!tr.init.empty()) mem->write(static_cast<int>(tr.region.channel), tr.region.offset, tr.init.data(), tr.init.size());
  }
  const auto stream = device.load(t.insns);
  const RunResult r = device.run(*stream, *mem, device_run_timeout());
  check_run(device, r, "the reference run of the trace");
  t.reference = device.name();
  t.has_expected_status = true;
  t.expected_status = r.status;
  for (TraceRegion& tr : t.regions) {
    std::vector<uint8_t> after(tr.region.bytes);
    mem->read(static_cast<int>(tr.region.channel), tr.region.offset, after.data(), after.size());
    tr.has_expected = true;
    tr.expected_crc32 = checksum_crc32(after.data(), after.size());
    if (tr.region.written) tr.expected = std::move(after);
    else tr.expected.clear();
  }
}

void write_trace(const std::string& path, const Trace& t) {
  BlobWriter blobs;
  json h;
  h["format"] = "SATTRACE";
  h["version"] = kTraceFormatVersion;
  h["interface_version"] = hex32(t.interface_version);
  h["description"] = t.description;
  h["reference"] = t.reference;
  h["channel_bytes"] = json::array();
  for (uint64_t b : t.channel_bytes) h["channel_bytes"].push_back(b);
  h["instructions"] = t.insns.size();
  h["stream"] = blobs.add(t.insns.data(), t.insns.size() * sizeof(isa::Insn));
  if (t.has_expected_status) {
    h["expected_status"] = json::array();
    for (uint32_t w : t.expected_status) h["expected_status"].push_back(w);
  }
  h["regions"] = json::array();
  for (const TraceRegion& tr : t.regions) {
    const Region& r = tr.region;
    json j = {{"name", r.name},        {"kind", region_kind_name(r.kind)}, {"dtype", dtype_name(r.dtype)},
              {"channel", r.channel},  {"offset", r.offset},              {"bytes", r.bytes},
              {"written", r.written}};
    if (!tr.init.empty()) j["init"] = blobs.add(tr.init.data(), tr.init.size());
    if (tr.has_expected) {
      j["expected_crc32"] = hex32(tr.expected_crc32);
      if (!tr.expected.empty()) j["expected"] = blobs.add(tr.expected.data(), tr.expected.size());
    }
    h["regions"].push_back(std::move(j));
  }
  const std::string header = h.dump();
  file_layout::FrameWriter out(kMagic, kTraceFormatVersion, t.interface_version, header, blobs.data().size());
  std::memcpy(out.data(), blobs.data().data(), blobs.data().size());
  atomic_write_file(path, out.seal());
}

Trace read_trace(const std::string& path) {
  const std::string b = read_file(path);
  const file_layout::Frame f = file_layout::verify_frame(b, path, "trace", kMagic, kTraceFormatVersion);
  const uint32_t iface = f.word;
  const size_t data_offset = f.data_offset, data_bytes = f.data_bytes;
  if (iface != arch::kInterfaceVersion) {
    throw Error("trace " + path + " was compiled for another configuration: interface version " + hex32(iface) +
                ", this build is " + hex32(arch::kInterfaceVersion) +
                " (arch/include/sat/arch/interface.hpp); compile the trace again with this build's `sat compile --emit`");
  }
  json h;
  try {
    const auto first = b.begin() + static_cast<std::ptrdiff_t>(f.header_offset);
    h = json::parse(first, first + static_cast<std::ptrdiff_t>(f.header_bytes));
  } catch (const json::exception& e) {
    throw Error("trace " + path + " is malformed: the header is not valid JSON: " + e.what());
  }
  const Reader rd(path, b, data_offset, data_bytes);
  if (!h.is_object()) rd.fail("the header is not a JSON object");
  if (rd.get<std::string>(h, "format") != "SATTRACE") rd.fail("header field \"format\" is not \"SATTRACE\"");
  if (rd.get<std::string>(h, "interface_version") != hex32(iface)) {
    rd.fail("the header's interface version differs from the prefix's");
  }
  Trace t;
  t.interface_version = iface;
  t.description = rd.get<std::string>(h, "description");
  t.reference = rd.get<std::string>(h, "reference");
  const json& cb = rd.at(h, "channel_bytes");
  if (!cb.is_array() || cb.size() != arch::kDdrChannels) {
    rd.fail("\"channel_bytes\" must list " + std::to_string(arch::kDdrChannels) + " channels");
  }
  for (int c = 0; c < arch::kDdrChannels; ++c) {
    if (!cb[c].is_number_unsigned() || cb[c].get<uint64_t>() > arch::kChannelWindowBytes) {
      rd.fail("channel " + std::to_string(c) + "'s size is not a byte count within the channel window");
    }
    t.channel_bytes[c] = cb[c].get<uint64_t>();
  }
  const auto n = rd.get<uint64_t>(h, "instructions");
  if (n == 0 || n > data_bytes) rd.fail("\"instructions\" = " + std::to_string(n) + " is not a stream length");
  const std::vector<uint8_t> stream = rd.blob(rd.at(h, "stream"), n * sizeof(isa::Insn), "the stream");
  t.insns.resize(n);
  std::memcpy(t.insns.data(), stream.data(), stream.size());
  if (h.contains("expected_status")) {
    const json& st = h["expected_status"];
    if (!st.is_array() || st.size() != isa::kStatusWords) {
      rd.fail("\"expected_status\" must hold " + std::to_string(isa::kStatusWords) + " words");
    }
    for (int i = 0; i < isa::kStatusWords; ++i) {
      if (!st[i].is_number_unsigned() || st[i].get<uint64_t>() > 0xffffffffu) rd.fail("a status word is not a 32-bit number");
      t.expected_status[i] = st[i].get<uint32_t>();
    }
    t.has_expected_status = true;
  }
  const json& regions = rd.at(h, "regions");
  if (!regions.is_array()) rd.fail("\"regions\" is not a list");
  for (const json& j : regions) {
    TraceRegion tr;
    Region& r = tr.region;
    r.name = rd.get<std::string>(j, "name");
    const std::string where = "region '" + r.name + "'";
    bool ok = false;
    r.kind = parse_kind(rd.get<std::string>(j, "kind"), &ok);
    if (!ok) rd.fail(where + " has an unknown kind");
    const auto dt = rd.get<std::string>(j, "dtype");
    if (dt != "bf16" && dt != "f32") rd.fail(where + " has an unknown dtype '" + dt + "'");
    r.dtype = dt == "f32" ? DType::f32 : DType::bf16;
    r.channel = rd.get<uint32_t>(j, "channel");
    r.offset = rd.get<uint64_t>(j, "offset");
    r.bytes = rd.get<uint64_t>(j, "bytes");
    r.written = rd.get<bool>(j, "written");
    if (r.channel >= static_cast<uint32_t>(arch::kDdrChannels)) rd.fail(where + " is on channel " + std::to_string(r.channel));
    if (r.offset > t.channel_bytes[r.channel] || r.bytes > t.channel_bytes[r.channel] - r.offset) {
      rd.fail(where + " (" + std::to_string(r.bytes) + " bytes at " + std::to_string(r.offset) + ") leaves channel " +
              std::to_string(r.channel) + " (" + std::to_string(t.channel_bytes[r.channel]) + " bytes)");
    }
    if (j.contains("init")) tr.init = rd.blob(j["init"], r.bytes, where + "'s initial contents");
    if (j.contains("expected_crc32")) {
      const auto text = rd.get<std::string>(j, "expected_crc32");
      char* end = nullptr;
      const unsigned long v = std::strtoul(text.c_str(), &end, 16);
      if (text.size() != 10 || text.compare(0, 2, "0x") != 0 || *end != '\0') rd.fail(where + "'s checksum is not hex");
      tr.has_expected = true;
      tr.expected_crc32 = static_cast<uint32_t>(v);
      if (j.contains("expected")) tr.expected = rd.blob(j["expected"], r.bytes, where + "'s expected contents");
    }
    t.regions.push_back(std::move(tr));
  }
  return t;
}

ReplayReport replay_trace(const Trace& t, Device& device) {
  if (!t.has_expected_status) {
    throw Error("the trace holds no expected results (it was written without a reference run)");
  }
  ReplayReport rep;
  rep.device = device.name();
  const auto mem = device.allocate(t.channel_bytes);
  for (const TraceRegion& tr : t.regions) {
    if (!tr.init.empty()) mem->write(static_cast<int>(tr.region.channel), tr.region.offset, tr.init.data(), tr.init.size());
  }
  const auto stream = device.load(t.insns);
  rep.run = device.run(*stream, *mem, device_run_timeout());
  // The status words that describe the run's outcome (not the reserved ones).
  static const struct {
    int word;
    const char* name;
  } kCompared[] = {{isa::STW_CODE, "code"},         {isa::STW_INDEX, "instruction index"},
                   {isa::STW_EXECUTED, "executed"}, {isa::STW_NONFINITE, "non-finite updates"},
                   {isa::STW_OPCODE, "opcode"},     {isa::STW_FIELD, "field"},
                   {isa::STW_VALUE, "value"},       {isa::STW_DETAIL, "detail"},
                   {isa::STW_INTERFACE, "interface version"}};
  for (const auto& c : kCompared) {
    if (rep.run.status[c.word] != t.expected_status[c.word]) {
      rep.status_matches = false;
      rep.status_difference += std::string(rep.status_difference.empty() ? "" : ", ") + c.name + " " +
                               std::to_string(rep.run.status[c.word]) + " (expected " +
                               std::to_string(t.expected_status[c.word]) + ")";
    }
  }
  rep.regions = static_cast<int64_t>(t.regions.size());
  for (const TraceRegion& tr : t.regions) {
    if (!tr.has_expected) continue;
    ++rep.regions_checked;
    std::vector<uint8_t> got(tr.region.bytes);
    mem->read(static_cast<int>(tr.region.channel), tr.region.offset, got.data(), got.size());
    if (checksum_crc32(got.data(), got.size()) == tr.expected_crc32) continue;
    rep.differing.push_back(compare_region(tr, got));
  }
  return rep;
}

std::string ReplayReport::summary() const {
  std::string s;
  if (!differing.empty()) {
    s += "regions that differ (element type; differing elements; largest difference):\n";
    for (const RegionDiff& d : differing) {
      s += "  " + d.name + " (" + region_kind_name(d.kind) + ", channel " + std::to_string(d.channel) + ", " +
           std::to_string(d.bytes) + " bytes): ";
      if (!d.exact_known) {
        s += "checksum differs (no expected contents in the trace)\n";
        continue;
      }
      s += std::to_string(d.differing) + " of " + std::to_string(d.elements) + " " + (d.dtype == DType::f32 ? "f32" : "bf16") +
           " elements, first at [" + std::to_string(d.first) + "], max |diff| " + fmt("%.3g", d.max_abs) +
           " (relative " + fmt("%.3g", d.max_rel) + ")\n";
    }
  }
  if (!run.ok()) s += "the run did not end cleanly: " + run.message() + "\n";
  if (!status_matches) s += "status words differ: " + status_difference + "\n";
  const int64_t equal = regions_checked - static_cast<int64_t>(differing.size());
  s += "replay on " + device + ": " + std::to_string(equal) + " of " + std::to_string(regions_checked) +
       " regions equal";
  s += ok() ? ", status equal: the device matches the trace\n" : ": MISMATCH\n";
  return s;
}

}  // namespace sat
