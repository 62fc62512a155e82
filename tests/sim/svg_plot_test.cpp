// The study layer's SVG charts (sim/study svg_plot.hpp): documents are well formed (balanced
// elements, escaped text, valid UTF-8, no NaN/inf), bars count and scale with the data, the roofline
// places a point on the bandwidth roof at the roof's own pixel, bad input is refused, and hostile
// magnitudes neither hang nor leak non-finite numbers.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "sat/error.hpp"
#include "sat_sim_study/svg_plot.hpp"

using namespace sat::plot;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// A minimal XML check, enough for what the writer emits: every element closed in order, no stray
// '<' or '&' in text, attribute quotes balanced. Returns "" when well formed, else the first fault.
std::string xml_fault(const std::string& s) {
  std::vector<std::string> open;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      const size_t semi = s.find(';', i);
      const std::string ent = semi == std::string::npos ? "" : s.substr(i, semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;") return "bad entity at " + std::to_string(i);
      continue;
    }
    if (s[i] == '>') return "stray '>' at " + std::to_string(i);
    if (s[i] != '<') continue;
    size_t j = i + 1;
    bool quoted = false;
    for (; j < s.size() && (quoted || s[j] != '>'); ++j) {
      if (s[j] == '"') quoted = !quoted;
      if (!quoted && s[j] == '<') return "'<' inside a tag at " + std::to_string(j);
    }
    if (j == s.size()) return "unterminated tag at " + std::to_string(i);
    const std::string tag = s.substr(i + 1, j - i - 1);
    i = j;
    if (tag.empty()) return "empty tag";
    if (tag.back() == '/') continue;
    const std::string name = tag.substr(tag[0] == '/' ? 1 : 0, tag.find_first_of(" \n/", 1) - (tag[0] == '/' ? 1 : 0));
    if (tag[0] != '/') {
      open.push_back(name);
    } else if (open.empty() || open.back() != name) {
      return "</" + name + "> closes " + (open.empty() ? std::string("nothing") : "<" + open.back() + ">");
    } else {
      open.pop_back();
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> never closed";
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

// The checks every document must pass.
void expect_sound(const std::string& svg) {
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("viewBox=\"0 0 "), std::string::npos);
  EXPECT_EQ(count(svg, "<svg"), 1u);
  EXPECT_EQ(count(svg, "</svg>"), 1u);
  EXPECT_EQ(count(svg, "<text"), count(svg, "</text>"));
  EXPECT_EQ(xml_fault(svg), "");
  EXPECT_TRUE(valid_utf8(svg));
  for (const char* bad : {"nan", "NaN", "inf", "Inf"}) EXPECT_EQ(svg.find(bad), std::string::npos) << bad;
  for (char c : svg) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 && c != '\n') << "control char";
}

// The numeric value of attribute `attr` in the n-th element opening with `open`.
double attr(const std::string& svg, const std::string& open, size_t n, const std::string& attr) {
  size_t p = svg.find(open);
  for (size_t k = 0; k < n && p != std::string::npos; ++k) p = svg.find(open, p + 1);
  if (p == std::string::npos) ADD_FAILURE() << "no element " << n << " " << open;
  const size_t a = svg.find(" " + attr + "=\"", p);
  return a == std::string::npos ? NAN : std::strtod(svg.c_str() + a + attr.size() + 3, nullptr);
}

}  // namespace

TEST(SvgPlot, StackedBarsOneRectPerNonZeroSegmentAndLegend) {
  const std::vector<std::string> cats = {"conv1", "conv2", "fc"};
  const std::vector<Series> s = {{"FF", {1, 2, 3}}, {"BP", {4, 0, 6}}, {"WU", {7, 8, 9}}};
  const std::string svg = stacked_bars("time per layer", cats, s, "ms");
  expect_sound(svg);
  EXPECT_EQ(count(svg, "<rect class=\"bar\""), 3u * 3u - 1u);   // BP of conv2 is zero
  for (const char* name : {">FF</text>", ">BP</text>", ">WU</text>", ">time per layer</text>", ">ms</text>"})
    EXPECT_NE(svg.find(name), std::string::npos) << name;
  EXPECT_NE(svg.find("font-family=\"sans-serif\""), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#dddddd\""), std::string::npos);   // light grey grid
}

TEST(SvgPlot, BarHeightsProportionalToValues) {
  for (bool stacked : {true, false}) {
    const std::vector<Series> s = {{"a", {1, 3}}};
    const std::string svg = stacked ? stacked_bars("t", {"x", "y"}, s, "v") : grouped_bars("t", {"x", "y"}, s, "v");
    const double h1 = attr(svg, "<rect class=\"bar\"", 0, "height");
    const double h3 = attr(svg, "<rect class=\"bar\"", 1, "height");
    ASSERT_GT(h1, 10.0) << stacked;
    EXPECT_NEAR(h3 / h1, 3.0, 0.01) << stacked;
    // Both bars stand on the same baseline.
    EXPECT_NEAR(attr(svg, "<rect class=\"bar\"", 0, "y") + h1, attr(svg, "<rect class=\"bar\"", 1, "y") + h3, 0.11);
  }
}

TEST(SvgPlot, StackedSegmentsSitOnEachOther) {
  const std::string svg = stacked_bars("t", {"x"}, {{"a", {2}}, {"b", {5}}}, "v");
  const double y_a = attr(svg, "<rect class=\"bar\"", 0, "y"), y_b = attr(svg, "<rect class=\"bar\"", 1, "y");
  const double h_b = attr(svg, "<rect class=\"bar\"", 1, "height");
  EXPECT_NEAR(y_b + h_b, y_a, 0.11);
  EXPECT_NEAR(h_b / attr(svg, "<rect class=\"bar\"", 0, "height"), 2.5, 0.01);
}

TEST(SvgPlot, NiceStepsAreOneTwoFive) {
  EXPECT_DOUBLE_EQ(nice_step(10), 2);
  EXPECT_DOUBLE_EQ(nice_step(7), 2);
  EXPECT_DOUBLE_EQ(nice_step(3), 1);
  EXPECT_DOUBLE_EQ(nice_step(24), 5);
  EXPECT_DOUBLE_EQ(nice_step(0.9), 0.2);
  EXPECT_DOUBLE_EQ(nice_step(5000), 1000);
  EXPECT_DOUBLE_EQ(nice_step(0), 1);
  // A maximum of 7 is ticked 0, 2, 4, 6, 8 and no further.
  const std::string svg = grouped_bars("t", {"x"}, {{"a", {7}}}, "v");
  for (const char* t : {">0</text>", ">2</text>", ">4</text>", ">6</text>", ">8</text>"})
    EXPECT_NE(svg.find(t), std::string::npos) << t;
  EXPECT_EQ(svg.find(">10</text>"), std::string::npos);
}

TEST(SvgPlot, TextIsEscaped) {
  const std::string svg = stacked_bars("a <b> & \"c\"", {"x<&>y"}, {{"s&<>\"", {1}}}, "y<label>");
  expect_sound(svg);
  EXPECT_NE(svg.find("a &lt;b&gt; &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_NE(svg.find(">x&lt;&amp;&gt;y</text>"), std::string::npos);
  EXPECT_NE(svg.find("s&amp;&lt;&gt;&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("x<&>y"), std::string::npos);
  const std::string roof = roofline("r&d", 100, 10, {{"p<1>", 1, 5, "g&h"}}, "x<", "y>");
  expect_sound(roof);
  EXPECT_NE(roof.find(">p&lt;1&gt;</text>"), std::string::npos);
  EXPECT_NE(roof.find(">g&amp;h</text>"), std::string::npos);
}

TEST(SvgPlot, ClippedLabelsStayValidUtf8AndControlCharsAreDropped) {
  std::string name;
  for (int i = 0; i < 50; ++i) name += "\xc2\xb5";   // 50 x "µ", two bytes each: clipped mid-string
  const std::string svg = stacked_bars("t\x01", {name, "b\tc"}, {{"s\x7f", {1, 2}}}, "v");
  expect_sound(svg);
  const std::string roof = roofline("t", 100, 10, {{name, 1, 5, "g"}}, "x", "y");
  expect_sound(roof);
}

TEST(SvgPlot, ManyCategoriesWidenAndRotateLabels) {
  const auto chart = [](size_t n) {
    std::vector<std::string> cats;
    for (size_t i = 0; i < n; ++i) cats.push_back("layer" + std::to_string(i) + ".conv");
    return stacked_bars("t", cats, {{"a", std::vector<double>(n, 1.0)}}, "v");
  };
  const std::string few = stacked_bars("t", {"a", "b", "c"}, {{"s", {1, 2, 3}}}, "v");
  const std::string sixty = chart(60);
  expect_sound(sixty);
  EXPECT_GE(attr(few, "<svg", 0, "width"), 400.0);
  EXPECT_GE(attr(sixty, "<svg", 0, "width"), 60 * 15.0);   // at least 15 px a bar
  EXPECT_GT(attr(sixty, "<svg", 0, "width"), attr(chart(20), "<svg", 0, "width"));
  EXPECT_EQ(count(sixty, "rotate(-60"), 60u);
  EXPECT_EQ(count(few, "rotate(-60"), 0u);
}

TEST(SvgPlot, GroupedBarsDrawEveryBarAndTheReferenceLine) {
  const std::vector<Series> s = {{"measured", {1.75, 1.0, 2.0}}, {"model", {1.5, 0.5, 2.5}}};
  const std::string svg = grouped_bars("speedup", {"a", "b", "c"}, s, "x", 1.75, "paper 1.75x");
  expect_sound(svg);
  EXPECT_EQ(count(svg, "<rect class=\"bar\""), 6u);
  EXPECT_NE(svg.find(">paper 1.75x</text>"), std::string::npos);
  // The reference line is at the height of the bar of the same value.
  EXPECT_NEAR(attr(svg, "<line class=\"ref\"", 0, "y1"), attr(svg, "<rect class=\"bar\"", 0, "y"), 0.11);
  EXPECT_EQ(count(grouped_bars("speedup", {"a", "b", "c"}, s, "x"), "class=\"ref\""), 0u);
}

TEST(SvgPlot, LogAxisMapsDecadesLinearly) {
  const LogAxis x{1, 1000, 0, 300};
  EXPECT_NEAR(x.map(1), 0, 1e-9);
  EXPECT_NEAR(x.map(10), 100, 1e-9);
  EXPECT_NEAR(x.map(1000), 300, 1e-9);
  EXPECT_NEAR(x.map(std::sqrt(10.0)), 50, 1e-9);
  const LogAxis y{0.1, 100, 440, 40};   // pixels grow downwards
  EXPECT_NEAR(y.map(0.1), 440, 1e-9);
  EXPECT_NEAR(y.map(1), 440 - 400.0 / 3, 1e-9);
  EXPECT_NEAR(y.map(100), 40, 1e-9);
}

TEST(SvgPlot, RooflinePointOnTheRoofIsDrawnOnTheRoof) {
  const double peak = 400, bw = 25;   // ridge at 16 ops/byte
  const std::vector<Point> pts = {{"on bandwidth roof", 2, bw * 2, "ff"}, {"on peak", 64, peak, "bp"},
                                  {"below", 0.5, 1, "ff"}};
  const std::string svg = roofline("roof", peak, bw, pts, "ops/byte", "GFLOPS");
  expect_sound(svg);
  // Roof vertices, in pixels.
  const size_t p = svg.find("points=\"", svg.find("class=\"roof\""));
  ASSERT_NE(p, std::string::npos);
  std::vector<std::pair<double, double>> roof;
  for (const char* c = svg.c_str() + p + 8; *c != '"';) {
    char* end = nullptr;
    const double x = std::strtod(c, &end);
    const double y = std::strtod(end + 1, &end);
    roof.emplace_back(x, y);
    c = end;
    while (*c == ' ') ++c;
  }
  ASSERT_EQ(roof.size(), 3u);
  const auto roof_y = [&](double px) -> double {
    for (size_t i = 0; i + 1 < roof.size(); ++i)
      if (px >= roof[i].first && px <= roof[i + 1].first)
        return roof[i].second + (px - roof[i].first) / (roof[i + 1].first - roof[i].first) *
                                    (roof[i + 1].second - roof[i].second);
    ADD_FAILURE() << "x " << px << " outside the roof";
    return NAN;
  };
  for (size_t i = 0; i < 2; ++i) {
    const double cx = attr(svg, "<circle class=\"point\"", i, "cx"), cy = attr(svg, "<circle class=\"point\"", i, "cy");
    EXPECT_NEAR(cy, roof_y(cx), 0.2) << pts[i].label;
  }
  // A point under the roof is drawn below it (larger pixel y).
  EXPECT_GT(attr(svg, "<circle class=\"point\"", 2, "cy"), roof_y(attr(svg, "<circle class=\"point\"", 2, "cx")));
  // The ridge vertex is at (16, 400).
  EXPECT_NE(svg.find("ridge 16"), std::string::npos);
  EXPECT_NEAR(roof[1].second, roof[2].second, 0.01);
}

TEST(SvgPlot, RooflineDecadesCoverPointsAndRidgeAndSkipNonPositive) {
  const std::vector<Point> pts = {{"a", 0.5, 3, "ff"}, {"b", 50, 90, "bp"}, {"zero", 0, 5, "ff"},
                                  {"neg", 3, -1, "ff"}, {"nan", NAN, 1, "ff"}, {"inf", 2, INFINITY, "ff"}};
  const std::string svg = roofline("r", 100, 10, pts, "x", "y");
  expect_sound(svg);
  EXPECT_EQ(count(svg, "<circle class=\"point\""), 2u);
  for (const char* t : {">0.1</text>", ">1</text>", ">10</text>", ">100</text>"})
    EXPECT_NE(svg.find(t), std::string::npos) << t;
  // A roof with no points is still a chart.
  expect_sound(roofline("r", 100, 10, {}, "x", "y"));
}

TEST(SvgPlot, LabelsThinnedButEveryMarkerDrawn) {
  std::vector<Point> pts;
  for (int i = 0; i < 30; ++i) pts.push_back({"layer" + std::to_string(i), 4 + 0.001 * i, 20, "ff"});
  const std::string svg = roofline("r", 100, 10, pts, "x", "y");
  expect_sound(svg);
  EXPECT_EQ(count(svg, "<circle class=\"point\""), 30u);
  EXPECT_LT(count(svg, "font-size=\"9\""), 5u);
}

TEST(SvgPlot, BadInputIsRefused) {
  EXPECT_THROW(stacked_bars("t", {"a", "b"}, {{"s", {1}}}, "v"), sat::Error);
  EXPECT_THROW(grouped_bars("t", {"a"}, {{"s", {1, 2}}}, "v"), sat::Error);
  EXPECT_THROW(stacked_bars("t", {}, {{"s", {1}}}, "v"), sat::Error);
  try {
    stacked_bars("t", {"a", "b"}, {{"ok", {1, 2}}, {"short", {1}}}, "v");
    FAIL();
  } catch (const sat::Error& e) {
    EXPECT_NE(std::string(e.what()).find("short"), std::string::npos) << e.what();
  }
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (const auto& [peak, bw] : std::vector<std::pair<double, double>>{
           {0, 10}, {-1, 10}, {100, 0}, {100, -5}, {nan, 10}, {100, nan}, {inf, 10}, {100, inf}, {1e300, 1e-300}})
    EXPECT_THROW(roofline("r", peak, bw, {}, "x", "y"), sat::Error) << peak << " " << bw;
}

TEST(SvgPlot, EmptyInputSaysNoData) {
  for (const std::string& svg : {stacked_bars("t", {}, {}, "v"), grouped_bars("t", {}, {}, "v", 1, "ref"),
                                 stacked_bars("t", {"a"}, {}, "v")}) {
    expect_sound(svg);
    EXPECT_NE(svg.find(">no data</text>"), std::string::npos);
    EXPECT_EQ(count(svg, "class=\"bar\""), 0u);
  }
}

TEST(SvgPlot, HostileValuesNeitherHangNorLeakNonFinite) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  expect_sound(stacked_bars("t", {"a", "b"}, {{"s", {nan, inf}}, {"r", {-3, 2}}}, "v"));
  expect_sound(stacked_bars("t", {"a"}, {{"s", {1e308}}, {"r", {1e308}}}, "v"));   // the sum overflows
  expect_sound(grouped_bars("t", {"a", "b"}, {{"s", {DBL_MAX, 1}}}, "v", inf, "ref"));
  expect_sound(grouped_bars("t", {"a"}, {{"s", {1e-310}}}, "v"));   // subnormal
  expect_sound(roofline("r", 100, 10, {{"huge", 1e308, 1e308, "g"}, {"tiny", 1e-308, 1e-308, "g"}}, "x", "y"));
}

TEST(SvgPlot, Deterministic) {
  const std::vector<Series> s = {{"a", {1.234567, 2}}, {"b", {3, 4.5}}};
  EXPECT_EQ(stacked_bars("t", {"x", "y"}, s, "v"), stacked_bars("t", {"x", "y"}, s, "v"));
  EXPECT_EQ(grouped_bars("t", {"x", "y"}, s, "v", 2, "r"), grouped_bars("t", {"x", "y"}, s, "v", 2, "r"));
  const std::vector<Point> p = {{"p", 1, 2, "b"}, {"q", 3, 4, "a"}};
  EXPECT_EQ(roofline("r", 100, 10, p, "x", "y"), roofline("r", 100, 10, p, "x", "y"));
}
