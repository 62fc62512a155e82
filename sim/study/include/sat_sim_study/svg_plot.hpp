#pragma once
// Small, dependency-free SVG charts for the simulator's reports: stacked and grouped bars, and a
// log-log roofline. Each returns a standalone SVG document (deterministic bytes for equal input).
#include <string>
#include <vector>

namespace sat::plot {

struct Series {
  std::string name;
  std::vector<double> values;   // one per category
};

// Every chart throws sat::Error when a series' value count differs from the category count; no
// categories or no series give a document that says "no data". Non-finite or negative values plot
// as 0. Names and labels may be any text (escaped; long ones clipped on the chart).

// One bar per category, one coloured segment per series; legend, y ticks, rotated x labels.
std::string stacked_bars(const std::string& title, const std::vector<std::string>& categories,
                         const std::vector<Series>& series, const std::string& y_label);
// Side-by-side bars per category; a dashed horizontal reference line when ref_label is not empty.
std::string grouped_bars(const std::string& title, const std::vector<std::string>& categories,
                         const std::vector<Series>& series, const std::string& y_label, double ref_value = 0,
                         const std::string& ref_label = "");

struct Point {
  std::string label;
  double x = 0, y = 0;
  std::string group;   // picks the marker colour
};
// x: operational intensity, y: attained GFLOPS, both log scale; the roof min(peak, bandwidth * x).
// Points with a non-positive or non-finite coordinate are not drawn. Throws sat::Error unless peak
// and bandwidth are positive and finite.
std::string roofline(const std::string& title, double peak_gflops, double bandwidth_gbs,
                     const std::vector<Point>& points, const std::string& x_label, const std::string& y_label);

// The pure pieces of the charts' geometry, public so tests can check placement without parsing.
// A log axis mapping [lo, hi] (both > 0) onto pixels [px0, px1]; px1 < px0 for a y axis.
struct LogAxis {
  double lo, hi, px0, px1;
  double map(double v) const;
};
// A tick step of 1, 2 or 5 times a power of ten giving about five ticks from 0 to `max`; 1 when
// `max` is not a positive finite number.
double nice_step(double max);

}  // namespace sat::plot
