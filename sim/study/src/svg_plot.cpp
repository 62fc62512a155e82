// SVG charts for the simulator's reports (svg_plot.hpp).
#include "sat_sim_study/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "sat/error.hpp"

namespace sat::plot {

namespace {

const char* const kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr int kColours = sizeof kPalette / sizeof kPalette[0];

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", std::isfinite(v) ? v : 0.0);
  return b;
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string text(double x, double y, const std::string& s, const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (extra.empty() ? "" : " " + extra) + ">" + esc(s) +
         "</text>\n";
}

std::string header(double w, double h, const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(w) + "\" height=\"" + num(h) + "\" viewBox=\"0 0 " +
         num(w) + " " + num(h) + "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" "
         "fill=\"white\"/>\n" + text(w / 2, 20, title, "text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\"");
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about five ticks up to `max`.
double nice_step(double max) {
  if (!(max > 0)) return 1;
  const double raw = max / 5, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

void check(const std::vector<std::string>& cats, const std::vector<Series>& series) {
  for (const auto& s : series) {
    if (s.values.size() != cats.size()) {
      throw Error("plot: series '" + s.name + "' has " + std::to_string(s.values.size()) + " values for " +
                  std::to_string(cats.size()) + " categories");
    }
  }
}

double clean(double v) { return std::isfinite(v) && v > 0 ? v : 0.0; }

// The frame shared by both bar charts: axes, y ticks and grid, x labels, legend. Returns the SVG
// body and fills the plot area's geometry.
struct Frame {
  double left = 70, top = 40, width = 0, height = 300, slot = 0, ymax = 1;
  double y(double v) const { return top + height - v / ymax * height; }
};

std::string frame(const std::vector<std::string>& cats, const std::vector<Series>& series, const std::string& y_label,
                  double ymax, Frame& f, double* total_w, double* total_h) {
  size_t longest = 0;
  for (const auto& c : cats) longest = std::max(longest, c.size());
  const bool rotate = cats.size() > 8 || longest > 10;
  f.slot = std::max(rotate ? 18.0 : 60.0, 24.0 * static_cast<double>(std::max<size_t>(series.size(), 1)));
  f.width = std::max(400.0, f.slot * static_cast<double>(cats.size()));
  const double step = nice_step(ymax);
  f.ymax = std::max(step, std::ceil(ymax / step) * step);
  const double label_h = rotate ? 6.0 * static_cast<double>(std::min<size_t>(longest, 40)) + 10 : 20;
  *total_w = f.left + f.width + 160;
  *total_h = f.top + f.height + label_h + 40;
  std::string s;
  for (double t = 0; t <= f.ymax + step / 2; t += step) {
    s += "<line x1=\"" + num(f.left) + "\" x2=\"" + num(f.left + f.width) + "\" y1=\"" + num(f.y(t)) + "\" y2=\"" +
         num(f.y(t)) + "\" stroke=\"#dddddd\"/>\n";
    char b[32];
    std::snprintf(b, sizeof b, "%g", t);
    s += text(f.left - 5, f.y(t) + 4, b, "text-anchor=\"end\"");
  }
  s += "<line x1=\"" + num(f.left) + "\" x2=\"" + num(f.left) + "\" y1=\"" + num(f.top) + "\" y2=\"" +
       num(f.top + f.height) + "\" stroke=\"black\"/>\n";
  s += text(16, f.top + f.height / 2, y_label,
            "text-anchor=\"middle\" transform=\"rotate(-90 16 " + num(f.top + f.height / 2) + ")\"");
  for (size_t i = 0; i < cats.size(); ++i) {
    const double x = f.left + f.slot * (static_cast<double>(i) + 0.5), y = f.top + f.height + 12;
    const std::string c = cats[i].size() > 40 ? cats[i].substr(0, 39) + "~" : cats[i];
    s += rotate ? text(x, y, c, "text-anchor=\"end\" transform=\"rotate(-60 " + num(x) + " " + num(y) + ")\"")
                : text(x, y, c, "text-anchor=\"middle\"");
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const double ly = f.top + 16.0 * static_cast<double>(k);
    s += "<rect x=\"" + num(f.left + f.width + 15) + "\" y=\"" + num(ly) + "\" width=\"10\" height=\"10\" fill=\"" +
         kPalette[k % kColours] + "\"/>\n" + text(f.left + f.width + 30, ly + 9, series[k].name);
  }
  return s;
}

std::string no_data(const std::string& title) {
  return header(400, 120, title) + text(200, 70, "no data", "text-anchor=\"middle\"") + "</svg>\n";
}

}  // namespace

double LogAxis::map(double v) const {
  return px0 + (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) * (px1 - px0);
}

std::string stacked_bars(const std::string& title, const std::vector<std::string>& categories,
                         const std::vector<Series>& series, const std::string& y_label) {
  check(categories, series);
  if (categories.empty() || series.empty()) return no_data(title);
  double ymax = 0;
  for (size_t i = 0; i < categories.size(); ++i) {
    double sum = 0;
    for (const auto& s : series) sum += clean(s.values[i]);
    ymax = std::max(ymax, sum);
  }
  Frame f;
  double w = 0, h = 0;
  const std::string body = frame(categories, series, y_label, ymax, f, &w, &h);
  std::string bars;
  for (size_t i = 0; i < categories.size(); ++i) {
    double base = 0;
    for (size_t k = 0; k < series.size(); ++k) {
      const double v = clean(series[k].values[i]);
      if (v == 0) continue;
      const double y1 = f.y(base + v), y0 = f.y(base);
      bars += "<rect class=\"bar\" x=\"" + num(f.left + f.slot * static_cast<double>(i) + f.slot * 0.15) + "\" y=\"" +
              num(y1) + "\" width=\"" + num(f.slot * 0.7) + "\" height=\"" + num(y0 - y1) + "\" fill=\"" +
              kPalette[k % kColours] + "\"><title>" + esc(categories[i] + " " + series[k].name) + "</title></rect>\n";
      base += v;
    }
  }
  return header(w, h, title) + body + bars + "</svg>\n";
}

std::string grouped_bars(const std::string& title, const std::vector<std::string>& categories,
                         const std::vector<Series>& series, const std::string& y_label, double ref_value,
                         const std::string& ref_label) {
  check(categories, series);
  if (categories.empty() || series.empty()) return no_data(title);
  double ymax = ref_label.empty() ? 0 : clean(ref_value);
  for (const auto& s : series)
    for (double v : s.values) ymax = std::max(ymax, clean(v));
  Frame f;
  double w = 0, h = 0;
  const std::string body = frame(categories, series, y_label, ymax, f, &w, &h);
  std::string bars;
  const double bw = f.slot * 0.8 / static_cast<double>(series.size());
  for (size_t i = 0; i < categories.size(); ++i) {
    for (size_t k = 0; k < series.size(); ++k) {
      const double v = clean(series[k].values[i]);
      const double x = f.left + f.slot * static_cast<double>(i) + f.slot * 0.1 + bw * static_cast<double>(k);
      bars += "<rect class=\"bar\" x=\"" + num(x) + "\" y=\"" + num(f.y(v)) + "\" width=\"" + num(bw) +
              "\" height=\"" + num(f.y(0) - f.y(v)) + "\" fill=\"" + kPalette[k % kColours] + "\"><title>" +
              esc(categories[i] + " " + series[k].name) + "</title></rect>\n";
    }
  }
  if (!ref_label.empty()) {
    const double y = f.y(clean(ref_value));
    bars += "<line x1=\"" + num(f.left) + "\" x2=\"" + num(f.left + f.width) + "\" y1=\"" + num(y) + "\" y2=\"" +
            num(y) + "\" stroke=\"#333333\" stroke-dasharray=\"6 4\"/>\n" +
            text(f.left + f.width - 4, y - 4, ref_label, "text-anchor=\"end\"");
  }
  return header(w, h, title) + body + bars + "</svg>\n";
}

std::string roofline(const std::string& title, double peak_gflops, double bandwidth_gbs,
                     const std::vector<Point>& points, const std::string& x_label, const std::string& y_label) {
  if (!(peak_gflops > 0) || !(bandwidth_gbs > 0)) throw Error("plot: a roofline needs a positive peak and bandwidth");
  const double ridge = peak_gflops / bandwidth_gbs;
  double xlo = ridge, xhi = ridge, ylo = peak_gflops, yhi = peak_gflops;
  for (const auto& p : points) {
    if (!(p.x > 0) || !(p.y > 0) || !std::isfinite(p.x) || !std::isfinite(p.y)) continue;
    xlo = std::min(xlo, p.x);
    xhi = std::max(xhi, p.x);
    ylo = std::min(ylo, p.y);
    yhi = std::max(yhi, p.y);
  }
  const LogAxis ax{std::pow(10.0, std::floor(std::log10(xlo / 2))), std::pow(10.0, std::ceil(std::log10(xhi * 2))),
                   70, 670};
  const LogAxis ay{std::pow(10.0, std::floor(std::log10(ylo / 2))), std::pow(10.0, std::ceil(std::log10(yhi * 2))),
                   440, 40};
  std::string s = header(860, 500, title);
  for (double d = ax.lo; d <= ax.hi * 1.001; d *= 10) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", d);
    s += "<line x1=\"" + num(ax.map(d)) + "\" x2=\"" + num(ax.map(d)) + "\" y1=\"40\" y2=\"440\" stroke=\"#dddddd\"/>\n" +
         text(ax.map(d), 456, b, "text-anchor=\"middle\"");
  }
  for (double d = ay.lo; d <= ay.hi * 1.001; d *= 10) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", d);
    s += "<line x1=\"70\" x2=\"670\" y1=\"" + num(ay.map(d)) + "\" y2=\"" + num(ay.map(d)) + "\" stroke=\"#dddddd\"/>\n" +
         text(64, ay.map(d) + 4, b, "text-anchor=\"end\"");
  }
  s += text(370, 480, x_label, "text-anchor=\"middle\"") +
       text(16, 240, y_label, "text-anchor=\"middle\" transform=\"rotate(-90 16 240)\"");
  // The roof: the bandwidth slope up to the ridge, then the peak.
  const double x0 = ax.lo, y0 = std::max(bandwidth_gbs * x0, ay.lo);
  const double xs = y0 / bandwidth_gbs;
  s += "<polyline class=\"roof\" fill=\"none\" stroke=\"black\" stroke-width=\"2\" points=\"" + num(ax.map(xs)) + "," +
       num(ay.map(y0)) + " " + num(ax.map(ridge)) + "," + num(ay.map(peak_gflops)) + " " + num(ax.map(ax.hi)) + "," +
       num(ay.map(peak_gflops)) + "\"/>\n";
  char b[96];
  std::snprintf(b, sizeof b, "peak %.0f GFLOPS, %.1f GB/s; ridge %.1f", peak_gflops, bandwidth_gbs, ridge);
  s += text(ax.map(ridge) + 6, ay.map(peak_gflops) - 6, b);
  std::map<std::string, int> colour;
  std::vector<std::pair<double, double>> labelled;
  for (const auto& p : points) {
    if (!(p.x > 0) || !(p.y > 0) || !std::isfinite(p.x) || !std::isfinite(p.y)) continue;
    const int c = colour.emplace(p.group, static_cast<int>(colour.size())).first->second;
    const double px = ax.map(p.x), py = ay.map(p.y);
    s += "<circle class=\"point\" cx=\"" + num(px) + "\" cy=\"" + num(py) + "\" r=\"4\" fill=\"" + kPalette[c % kColours] +
         "\"><title>" + esc(p.label) + "</title></circle>\n";
    // Label a point only where no earlier label sits close: every marker is drawn, every name is in
    // its tooltip.
    bool crowded = false;
    for (const auto& [lx, ly] : labelled) crowded |= std::abs(lx - px) < 60 && std::abs(ly - py) < 12;
    if (!crowded) {
      s += text(px + 6, py - 4, p.label.size() > 24 ? p.label.substr(0, 23) + "~" : p.label, "font-size=\"9\"");
      labelled.emplace_back(px, py);
    }
  }
  int k = 0;
  for (const auto& [g, c] : colour) {
    s += "<circle cx=\"690\" cy=\"" + num(50 + 16.0 * k) + "\" r=\"5\" fill=\"" + kPalette[c % kColours] + "\"/>\n" +
         text(700, 54 + 16.0 * k, g);
    ++k;
  }
  return s + "</svg>\n";
}

}  // namespace sat::plot
