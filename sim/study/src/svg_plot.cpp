// SVG charts for the simulator's reports (svg_plot.hpp).
#include "sat_sim_study/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "sat/error.hpp"

namespace sat::plot {

namespace {

// Tableau 10: distinguishable on screen and in greyscale print, the order architects expect.
const char* const kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr size_t kColours = sizeof kPalette / sizeof kPalette[0];
// Approximate advance of one glyph at the 11 px body font, for sizing margins from label lengths.
constexpr double kGlyph = 6.5;
// Labels are clipped so one long layer name cannot stretch the chart.
constexpr size_t kMaxLabel = 40;
// Values beyond this are plotted as it, so sums and tick arithmetic can never overflow to inf.
constexpr double kMaxValue = 1e300;

const char* colour(size_t k) { return kPalette[k % kColours]; }

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", std::isfinite(v) ? v : 0.0);
  return b;
}

std::string tick(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", std::isfinite(v) ? v : 0.0);
  return b;
}

// XML 1.0 forbids most C0 controls even escaped, so they are dropped; whitespace ones become spaces.
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\t': case '\n': case '\r': o += ' '; break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) o += c;
    }
  }
  return o;
}

size_t glyphs(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

// Clips to n glyphs at a UTF-8 boundary: cutting inside a sequence would make the document invalid.
std::string clip(const std::string& s, size_t n) {
  if (glyphs(s) <= n) return s;
  size_t i = 0, seen = 0;
  for (; i < s.size(); ++i) {
    if ((s[i] & 0xc0) != 0x80 && seen++ == n - 1) break;
  }
  return s.substr(0, i) + "~";
}

std::string text(double x, double y, const std::string& s, const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (extra.empty() ? "" : " " + extra) + ">" + esc(s) +
         "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const std::string& extra, const char* cls = nullptr) {
  return std::string("<line") + (cls ? std::string(" class=\"") + cls + "\"" : "") + " x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\" " + extra +
         "/>\n";
}

std::string header(double w, double h, const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(w) + "\" height=\"" + num(h) + "\" viewBox=\"0 0 " +
         num(w) + " " + num(h) + "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" "
         "fill=\"white\"/>\n" + text(w / 2, 20, title, "text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\"");
}

std::string no_data(const std::string& title) {
  return header(400, 120, title) + text(200, 70, "no data", "text-anchor=\"middle\"") + "</svg>\n";
}

void check(const std::vector<std::string>& cats, const std::vector<Series>& series) {
  for (const auto& s : series) {
    if (s.values.size() != cats.size()) {
      throw Error("plot: series '" + s.name + "' has " + std::to_string(s.values.size()) + " values for " +
                  std::to_string(cats.size()) + " categories");
    }
  }
}

double clean(double v) { return std::isfinite(v) && v > 0 ? std::min(v, kMaxValue) : 0.0; }

// The plot area shared by both bar charts, and the whole canvas around it.
struct Frame {
  double left = 70, top = 40, width = 0, height = 300, slot = 0, ymax = 1, step = 1, canvas_w = 0, canvas_h = 0;
  double y(double v) const { return top + height - v / ymax * height; }
};

// Axes, y ticks and grid, x labels and legend; fills `f` with the geometry the bars are drawn in.
std::string frame(const std::vector<std::string>& cats, const std::vector<Series>& series, const std::string& y_label,
                  double ymax, size_t side_by_side, Frame& f, const std::string& ref_label = "") {
  size_t longest = 0, longest_name = 0;
  for (const auto& c : cats) longest = std::max(longest, std::min(glyphs(c), kMaxLabel + 1));
  for (const auto& s : series) longest_name = std::max(longest_name, std::min(glyphs(s.name), kMaxLabel + 1));
  longest_name = std::max(longest_name, std::min(glyphs(ref_label), kMaxLabel + 1));
  // Upright labels collide beyond a handful of categories; at -60 degrees a 22 px slot still
  // leaves ~19 px between neighbouring baselines, well over the font's height.
  const bool rotate = cats.size() > 8 || longest > 10;
  const double n = static_cast<double>(cats.size()), ns = static_cast<double>(series.size());
  f.slot = std::max(rotate ? 22.0 : 60.0, 24.0 * static_cast<double>(side_by_side));
  f.width = std::max(400.0, f.slot * n);
  f.slot = f.width / n;   // a few bars spread over the minimum width rather than bunch at its left
  // A rotated label reaches left of its bar by half its length (cos 60), so the first must fit.
  if (rotate) f.left = std::max(f.left, kGlyph * 0.5 * static_cast<double>(longest) + 10);
  if (!std::isfinite(ymax)) ymax = kMaxValue;   // only a sum of absurdly many capped values gets here
  f.step = nice_step(ymax);
  // The epsilon keeps a maximum that is an exact multiple of the step from gaining an empty tick.
  const double ticks = std::max(1.0, std::ceil(ymax / f.step - 1e-9));
  f.ymax = ticks * f.step;
  const double label_h = rotate ? kGlyph * 0.87 * static_cast<double>(longest) + 16 : 24;
  f.canvas_w = f.left + f.width + std::max(80.0, kGlyph * static_cast<double>(longest_name) + 45);
  f.canvas_h = std::max(f.top + f.height + label_h + 20, f.top + 16 * (ns + 1) + 20);

  std::string s;
  for (int i = 0; i <= static_cast<int>(std::min(ticks, 100.0)); ++i) {
    const double t = i * f.step;
    s += line(f.left, f.y(t), f.left + f.width, f.y(t), "stroke=\"#dddddd\"");
    s += text(f.left - 5, f.y(t) + 4, tick(t), "text-anchor=\"end\"");
  }
  s += line(f.left, f.top, f.left, f.top + f.height, "stroke=\"black\"");
  s += line(f.left, f.top + f.height, f.left + f.width, f.top + f.height, "stroke=\"black\"");
  const double ly = f.top + f.height / 2, lx = f.left - 50;
  s += text(lx, ly, y_label, "text-anchor=\"middle\" transform=\"rotate(-90 " + num(lx) + " " + num(ly) + ")\"");
  for (size_t i = 0; i < cats.size(); ++i) {
    const double x = f.left + f.slot * (static_cast<double>(i) + 0.5), y = f.top + f.height + 14;
    const std::string c = clip(cats[i], kMaxLabel);
    s += rotate ? text(x, y, c, "text-anchor=\"end\" transform=\"rotate(-60 " + num(x) + " " + num(y) + ")\"")
                : text(x, y, c, "text-anchor=\"middle\"");
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const double y = f.top + 16.0 * static_cast<double>(k), x = f.left + f.width + 15;
    s += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"10\" height=\"10\" fill=\"" + colour(k) + "\"/>\n" +
         text(x + 15, y + 9, clip(series[k].name, kMaxLabel));
  }
  // The reference is named in the legend, not on its line, where it would collide with the bars.
  if (!ref_label.empty()) {
    const double y = f.top + 16.0 * ns + 5, x = f.left + f.width + 15;
    s += line(x, y, x + 10, y, "stroke=\"#333333\" stroke-width=\"2\" stroke-dasharray=\"3 2\"") +
         text(x + 15, y + 4, clip(ref_label, kMaxLabel));
  }
  return s;
}

std::string bar(double x, double y, double w, double h, size_t k, const std::string& tip) {
  return "<rect class=\"bar\" x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
         "\" fill=\"" + colour(k) + "\"><title>" + esc(tip) + "</title></rect>\n";
}

bool drawable(const Point& p) { return std::isfinite(p.x) && std::isfinite(p.y) && p.x > 0 && p.y > 0; }

// Whole decades around [lo, hi] with some headroom, kept inside the doubles' normal range so the
// axis ends stay finite whatever the data.
LogAxis decades(double lo, double hi, double px0, double px1) {
  const double e0 = std::clamp(std::floor(std::log10(lo) - std::log10(2.0)), -307.0, 307.0);
  const double e1 = std::clamp(std::ceil(std::log10(hi) + std::log10(2.0)), e0 + 1, 308.0);
  return {std::pow(10.0, e0), std::pow(10.0, e1), px0, px1};
}

// Grid and labels at every decade, thinned to about a dozen so an absurd range stays legible.
template <typename Draw>
void each_decade(const LogAxis& a, Draw draw) {
  const int e0 = static_cast<int>(std::lround(std::log10(a.lo))), e1 = static_cast<int>(std::lround(std::log10(a.hi)));
  const int stride = std::max(1, (e1 - e0 + 11) / 12);
  for (int e = e0; e <= e1; e += stride) draw(std::pow(10.0, e));
}

}  // namespace

double nice_step(double max) {
  if (!(max > 0) || !std::isfinite(max)) return 1;
  const double raw = max / 5, p = std::pow(10.0, std::floor(std::log10(raw)));
  if (!(p > 0) || !std::isfinite(p)) return 1;   // `max` so small that its fifth is below the doubles
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

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
  const std::string body = frame(categories, series, y_label, ymax, 1, f);
  std::string bars;
  for (size_t i = 0; i < categories.size(); ++i) {
    double base = 0;
    for (size_t k = 0; k < series.size(); ++k) {
      const double v = clean(series[k].values[i]);
      if (v == 0) continue;   // a zero-height rect would still be a hover target and a count
      const double y1 = f.y(base + v), y0 = f.y(base);
      bars += bar(f.left + f.slot * (static_cast<double>(i) + 0.15), y1, f.slot * 0.7, y0 - y1, k,
                  categories[i] + " " + series[k].name + ": " + tick(v));
      base += v;
    }
  }
  return header(f.canvas_w, f.canvas_h, title) + body + bars + "</svg>\n";
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
  const std::string body = frame(categories, series, y_label, ymax, series.size(), f, ref_label);
  std::string bars;
  const double bw = f.slot * 0.8 / static_cast<double>(series.size());
  for (size_t i = 0; i < categories.size(); ++i) {
    for (size_t k = 0; k < series.size(); ++k) {
      // Zero bars are kept (unlike stacked segments): a missing bar would shift the reader's eye
      // to the neighbour's series.
      const double v = clean(series[k].values[i]);
      const double x = f.left + f.slot * (static_cast<double>(i) + 0.1) + bw * static_cast<double>(k);
      bars += bar(x, f.y(v), bw, f.y(0) - f.y(v), k, categories[i] + " " + series[k].name + ": " + tick(v));
    }
  }
  if (!ref_label.empty()) {
    const double y = f.y(clean(ref_value));
    bars += line(f.left, y, f.left + f.width, y, "stroke=\"#333333\" stroke-dasharray=\"6 4\"", "ref");
  }
  return header(f.canvas_w, f.canvas_h, title) + body + bars + "</svg>\n";
}

std::string roofline(const std::string& title, double peak_gflops, double bandwidth_gbs,
                     const std::vector<Point>& points, const std::string& x_label, const std::string& y_label) {
  const double ridge = peak_gflops / bandwidth_gbs;
  if (!(peak_gflops > 0) || !(bandwidth_gbs > 0) || !std::isfinite(peak_gflops) || !std::isfinite(bandwidth_gbs) ||
      !std::isfinite(ridge) || !(ridge > 0)) {
    throw Error("plot: a roofline needs a positive, finite peak (" + tick(peak_gflops) + " GFLOPS) and bandwidth (" +
                tick(bandwidth_gbs) + " GB/s)");
  }
  double xlo = ridge, xhi = ridge, ylo = peak_gflops, yhi = peak_gflops;
  for (const auto& p : points) {
    if (!drawable(p)) continue;
    xlo = std::min(xlo, p.x);
    xhi = std::max(xhi, p.x);
    ylo = std::min(ylo, p.y);
    yhi = std::max(yhi, p.y);
  }
  const double L = 70, R = 670, T = 40, B = 440;
  const LogAxis ax = decades(xlo, xhi, L, R), ay = decades(ylo, yhi, B, T);
  std::string s = header(860, 500, title);
  each_decade(ax, [&](double d) {
    s += line(ax.map(d), T, ax.map(d), B, "stroke=\"#dddddd\"") + text(ax.map(d), B + 16, tick(d), "text-anchor=\"middle\"");
  });
  each_decade(ay, [&](double d) {
    s += line(L, ay.map(d), R, ay.map(d), "stroke=\"#dddddd\"") + text(L - 6, ay.map(d) + 4, tick(d), "text-anchor=\"end\"");
  });
  s += "<rect x=\"70\" y=\"40\" width=\"600\" height=\"400\" fill=\"none\" stroke=\"black\"/>\n";
  s += text((L + R) / 2, B + 36, x_label, "text-anchor=\"middle\"") +
       text(16, (T + B) / 2, y_label, "text-anchor=\"middle\" transform=\"rotate(-90 16 240)\"");
  // The roof starts where the bandwidth slope enters the plot: at the left edge, or at the bottom
  // when the slope is still below the lowest decade there.
  const double y0 = std::max(bandwidth_gbs * ax.lo, ay.lo), x0 = y0 / bandwidth_gbs;
  s += "<polyline class=\"roof\" fill=\"none\" stroke=\"black\" stroke-width=\"2\" points=\"" + num(ax.map(x0)) + "," +
       num(ay.map(y0)) + " " + num(ax.map(ridge)) + "," + num(ay.map(peak_gflops)) + " " + num(R) + "," +
       num(ay.map(peak_gflops)) + "\"/>\n";
  char b[128];
  std::snprintf(b, sizeof b, "peak %.4g GFLOPS, %.4g GB/s; ridge %.3g ops/byte", peak_gflops, bandwidth_gbs, ridge);
  // Anchored on the side with room, so the note stays inside the plot whichever end the ridge is at.
  const bool right_half = ax.map(ridge) > (L + R) / 2;
  s += "<circle cx=\"" + num(ax.map(ridge)) + "\" cy=\"" + num(ay.map(peak_gflops)) + "\" r=\"3\" fill=\"black\"/>\n" +
       text(ax.map(ridge) + (right_half ? -6 : 6), ay.map(peak_gflops) - 8, b,
            right_half ? "text-anchor=\"end\"" : "");
  std::map<std::string, size_t> group_colour;
  struct Box { double x0, y0, x1, y1; };
  std::vector<Box> taken;   // every marker first, then each label placed
  for (const auto& p : points) {
    if (!drawable(p)) continue;
    const size_t c = group_colour.emplace(p.group, group_colour.size()).first->second;
    const double px = ax.map(p.x), py = ay.map(p.y);
    s += "<circle class=\"point\" cx=\"" + num(px) + "\" cy=\"" + num(py) + "\" r=\"4\" fill=\"" + colour(c) +
         "\"><title>" + esc(p.label) + "</title></circle>\n";
    taken.push_back({px - 4, py - 4, px + 4, py + 4});
  }
  // A name is written only where it covers no marker and no earlier name: every point is drawn and
  // every name is in its marker's tooltip, but a pile of overlapping text helps no one.
  size_t marker = 0;
  for (const auto& p : points) {
    if (!drawable(p)) continue;
    const Box own = taken[marker++];
    const std::string name = clip(p.label, 24);
    const Box b{own.x1 + 2, own.y0 - 6, own.x1 + 3 + 5.5 * static_cast<double>(glyphs(name)), own.y0 + 5};
    const bool crowded = std::any_of(taken.begin(), taken.end(), [&](const Box& o) {
      return (o.x0 != own.x0 || o.y0 != own.y0) && o.x0 < b.x1 && b.x0 < o.x1 && o.y0 < b.y1 && b.y0 < o.y1;
    });
    if (crowded) continue;
    // The white halo keeps a name legible where it crosses the roof or the grid.
    s += text(b.x0, b.y1 - 2, name, "font-size=\"9\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"");
    taken.push_back(b);
  }
  double ly = 50;
  for (const auto& [g, c] : group_colour) {
    if (g.empty()) continue;
    s += "<circle cx=\"690\" cy=\"" + num(ly) + "\" r=\"5\" fill=\"" + colour(c) + "\"/>\n" +
         text(700, ly + 4, clip(g, 24));
    ly += 16;
  }
  return s + "</svg>\n";
}

}  // namespace sat::plot
