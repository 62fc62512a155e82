#include "sat/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "sat/io.hpp"

namespace sat {

namespace {

std::string csv_num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.8g", v);
  return buf;
}

nlohmann::json json_num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string fixed(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// 1, 2 or 5 times a power of ten, the smallest not below `raw`.
double nice_step(double raw) {
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw * (1 - 1e-9)) return m * p;
  }
  return 10 * p;
}

// A plotted range and the tick spacing inside it. The range is the data's plus a margin, so no
// point sits on the frame; ticks fall on multiples of `step` within it.
struct Axis {
  double lo = 0, hi = 1, step = 0.2;
  int decimals = 1;

  double first_tick() const { return std::ceil(lo / step - 1e-9) * step; }
};

int decimals_for(double step) { return std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9))); }

// About `target` tick intervals over [lo, hi]; an empty or degenerate range (one epoch, a
// constant series) is widened so that the data sit inside the panel.
Axis value_axis(double lo, double hi, int target) {
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double pad = std::fabs(hi) > 1e-12 ? std::fabs(hi) * 0.05 : 1.0;
    lo -= pad, hi += pad;
  }
  const double margin = (hi - lo) * 0.05;
  Axis a;
  a.lo = lo - margin;
  a.hi = hi + margin;
  a.step = nice_step((a.hi - a.lo) / target);
  a.decimals = decimals_for(a.step);
  return a;
}

// Epochs are integers: integer ticks, at least one (a single epoch gets [e - 1, e + 1]).
Axis epoch_axis(int first, int last) {
  Axis a;
  a.decimals = 0;
  if (last <= first) {
    a.lo = first - 1, a.hi = first + 1, a.step = 1;
    return a;
  }
  const double margin = std::max(0.25, (last - first) * 0.04);
  a.lo = first - margin;
  a.hi = last + margin;
  a.step = std::max(1.0, std::ceil(nice_step((last - first) / 8.0)));
  return a;
}

struct Series {
  std::string label, color;
  bool dashed = false;
  std::vector<double> y;
};

constexpr int kPanelW = 460, kPanelH = 390, kTop = 66, kLeft = 64, kRight = 16, kBottom = 56;

// One panel at horizontal offset `ox`: frame, grid, ticks, axis labels, series and legend.
void panel(std::string& svg, int ox, const std::string& ylabel, const std::vector<int>& epochs,
           const std::vector<Series>& series) {
  const double px0 = ox + kLeft, px1 = ox + kPanelW - kRight, py0 = kTop, py1 = kPanelH - kBottom;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series) {
    for (double v : s.y) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  const Axis ya = std::isfinite(lo) ? value_axis(lo, hi, 5) : value_axis(0, 1, 5);
  const Axis xa = epochs.empty() ? epoch_axis(1, 1) : epoch_axis(epochs.front(), epochs.back());
  auto X = [&](double e) { return px0 + (e - xa.lo) / (xa.hi - xa.lo) * (px1 - px0); };
  auto Y = [&](double v) { return py1 - (v - ya.lo) / (ya.hi - ya.lo) * (py1 - py0); };

  svg += "<g font-family=\"sans-serif\" font-size=\"11\" fill=\"#222\">\n";
  for (int i = 0;; ++i) {
    const double v = ya.first_tick() + i * ya.step;
    if (v > ya.hi + ya.step * 1e-6) break;
    const double y = Y(v);
    svg += "<line x1=\"" + fixed(px0, 1) + "\" y1=\"" + fixed(y, 1) + "\" x2=\"" + fixed(px1, 1) + "\" y2=\"" +
           fixed(y, 1) + "\" stroke=\"#e4e4e4\"/>\n";
    svg += "<line x1=\"" + fixed(px0 - 5, 1) + "\" y1=\"" + fixed(y, 1) + "\" x2=\"" + fixed(px0, 1) + "\" y2=\"" +
           fixed(y, 1) + "\" stroke=\"#222\"/>\n";
    svg += "<text x=\"" + fixed(px0 - 8, 1) + "\" y=\"" + fixed(y + 4, 1) + "\" text-anchor=\"end\">" +
           fixed(v, ya.decimals) + "</text>\n";
  }
  for (int i = 0;; ++i) {
    const double e = xa.first_tick() + i * xa.step;
    if (e > xa.hi + 1e-6) break;
    const double x = X(e);
    svg += "<line x1=\"" + fixed(x, 1) + "\" y1=\"" + fixed(py1, 1) + "\" x2=\"" + fixed(x, 1) + "\" y2=\"" +
           fixed(py1 + 5, 1) + "\" stroke=\"#222\"/>\n";
    svg += "<text x=\"" + fixed(x, 1) + "\" y=\"" + fixed(py1 + 18, 1) + "\" text-anchor=\"middle\">" +
           fixed(e, 0) + "</text>\n";
  }
  svg += "<rect x=\"" + fixed(px0, 1) + "\" y=\"" + fixed(py0, 1) + "\" width=\"" + fixed(px1 - px0, 1) +
         "\" height=\"" + fixed(py1 - py0, 1) + "\" fill=\"none\" stroke=\"#222\"/>\n";
  svg += "<text x=\"" + fixed((px0 + px1) / 2, 1) + "\" y=\"" + fixed(py1 + 38, 1) +
         "\" text-anchor=\"middle\" font-size=\"13\">epoch</text>\n";
  svg += "<text transform=\"translate(" + fixed(ox + 16, 1) + " " + fixed((py0 + py1) / 2, 1) +
         ") rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">" + xml_escape(ylabel) + "</text>\n";
  svg += "</g>\n";

  // Polylines break at non-finite values; markers make a single epoch visible as a point.
  for (const auto& s : series) {
    const std::string stroke = "stroke=\"" + s.color + "\"";
    std::string pts;
    auto flush = [&] {
      if (pts.empty()) return;
      svg += "<polyline fill=\"none\" " + stroke + " stroke-width=\"2\"" +
             (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + " points=\"" + pts + "\"/>\n";
      pts.clear();
    };
    for (size_t i = 0; i < s.y.size() && i < epochs.size(); ++i) {
      if (!std::isfinite(s.y[i])) {
        flush();
        continue;
      }
      if (!pts.empty()) pts += ' ';
      pts += fixed(X(epochs[i]), 2);
      pts += ',';
      pts += fixed(Y(s.y[i]), 2);
    }
    flush();
    for (size_t i = 0; i < s.y.size() && i < epochs.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      svg += "<circle cx=\"" + fixed(X(epochs[i]), 2) + "\" cy=\"" + fixed(Y(s.y[i]), 2) + "\" r=\"3\" fill=\"" +
             s.color + "\"/>\n";
    }
  }

  // The legend sits above the frame, right-aligned, where no data can hide it.
  const double ly = py0 - 12;
  double lx = px1 - 84.0 * static_cast<double>(series.size()) + 12;
  svg += "<g font-family=\"sans-serif\" font-size=\"12\" fill=\"#222\">\n";
  for (const auto& s : series) {
    svg += "<line x1=\"" + fixed(lx, 1) + "\" y1=\"" + fixed(ly, 1) + "\" x2=\"" + fixed(lx + 26, 1) + "\" y2=\"" +
           fixed(ly, 1) + "\" stroke=\"" + s.color + "\" stroke-width=\"2\"" +
           (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
    svg += "<circle cx=\"" + fixed(lx + 13, 1) + "\" cy=\"" + fixed(ly, 1) + "\" r=\"3\" fill=\"" + s.color + "\"/>\n";
    svg += "<text x=\"" + fixed(lx + 32, 1) + "\" y=\"" + fixed(ly + 4, 1) + "\">" + xml_escape(s.label) + "</text>\n";
    lx += 84;
  }
  svg += "</g>\n";
}

}  // namespace

void write_metrics_csv(const std::string& path, const std::vector<EpochMetrics>& history) {
  std::string out = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_s\n";
  for (const auto& m : history) {
    out += std::to_string(m.epoch) + "," + csv_num(m.train_loss) + "," + csv_num(m.train_acc) + "," +
           csv_num(m.test_loss) + "," + csv_num(m.test_acc) + "," + csv_num(m.lr) + "," + csv_num(m.seconds) + "," +
           csv_num(m.images_per_s) + "\n";
  }
  atomic_write_file(path, out);
}

void write_metrics_json(const std::string& path, const nlohmann::json& run_info,
                        const std::vector<EpochMetrics>& history) {
  nlohmann::json j;
  j["run"] = run_info;
  j["history"] = nlohmann::json::array();
  for (const auto& m : history) {
    j["history"].push_back({{"epoch", m.epoch},
                            {"train_loss", json_num(m.train_loss)},
                            {"train_acc", json_num(m.train_acc)},
                            {"test_loss", json_num(m.test_loss)},
                            {"test_acc", json_num(m.test_acc)},
                            {"lr", json_num(m.lr)},
                            {"seconds", json_num(m.seconds)},
                            {"images_per_s", json_num(m.images_per_s)}});
  }
  atomic_write_file(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

std::string metrics_svg(const std::string& title, const std::vector<EpochMetrics>& history) {
  std::vector<int> epochs;
  Series train_loss{"train", "#1f77b4", false, {}}, test_loss{"test", "#ff7f0e", true, {}};
  Series train_acc{"train", "#1f77b4", false, {}}, test_acc{"test", "#ff7f0e", true, {}};
  bool fractions = true;
  for (const auto& m : history) {
    epochs.push_back(m.epoch);
    train_loss.y.push_back(m.train_loss);
    test_loss.y.push_back(m.test_loss);
    train_acc.y.push_back(m.train_acc);
    test_acc.y.push_back(m.test_acc);
    for (double a : {m.train_acc, m.test_acc}) {
      if (std::isfinite(a) && (a < 0 || a > 1)) fractions = false;
    }
  }
  if (fractions) {
    for (auto* s : {&train_acc, &test_acc}) {
      for (double& v : s->y) v *= 100;
    }
  }

  const int width = 2 * kPanelW;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                    std::to_string(kPanelH) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                    std::to_string(kPanelH) + "\">\n";
  svg += "<title>" + xml_escape(title) + "</title>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  svg += "<text x=\"" + std::to_string(width / 2) +
         "\" y=\"26\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"16\" fill=\"#111\">" +
         xml_escape(title) + "</text>\n";
  panel(svg, 0, "loss", epochs, {train_loss, test_loss});
  panel(svg, kPanelW, "accuracy (%)", epochs, {train_acc, test_acc});
  svg += "</svg>\n";
  return svg;
}

void write_metrics_svg(const std::string& path, const std::string& title, const std::vector<EpochMetrics>& history) {
  atomic_write_file(path, metrics_svg(title, history));
}

}  // namespace sat
