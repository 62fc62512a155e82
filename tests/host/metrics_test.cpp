// Metrics files: CSV and JSON parse back; the SVG plot is well-formed with a line per series.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "temp_dir.hpp"
#include "sat/error.hpp"
#include "sat/io.hpp"
#include "sat/metrics.hpp"

using namespace sat;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

std::vector<EpochMetrics> history(int epochs) {
  std::vector<EpochMetrics> h;
  for (int e = 1; e <= epochs; ++e) {
    EpochMetrics m;
    m.epoch = e;
    m.train_loss = 1.2 / e + 0.123456789;
    m.train_acc = 0.7 + 0.02 * e;
    m.test_loss = 1.3 / e + 0.2;
    m.test_acc = 0.68 + 0.019 * e;
    m.lr = 0.05 * std::cos(e * 0.1);
    m.seconds = 12.5 + e;
    m.images_per_s = 60000 / (12.5 + e);
    h.push_back(m);
  }
  return h;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// A minimal XML well-formedness check: balanced, properly nested tags and known entities only.
::testing::AssertionResult well_formed(const std::string& xml) {
  std::vector<std::string> stack;
  size_t i = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      const size_t semi = xml.find(';', i);
      const std::string ent = semi == std::string::npos ? "" : xml.substr(i, semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;") {
        return ::testing::AssertionFailure() << "bad entity at " << i;
      }
      i = semi + 1;
      continue;
    }
    if (xml[i] != '<') {
      ++i;
      continue;
    }
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return ::testing::AssertionFailure() << "unclosed tag at " << i;
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty()) return ::testing::AssertionFailure() << "empty tag";
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) {
        return ::testing::AssertionFailure() << "</" << name << "> does not close <"
                                             << (stack.empty() ? "" : stack.back()) << ">";
      }
      stack.pop_back();
      continue;
    }
    if (count(tag, "\"") % 2) return ::testing::AssertionFailure() << "unbalanced quotes in <" << tag << ">";
    const bool self_closing = tag.back() == '/';
    const std::string name = tag.substr(0, tag.find_first_of(" /\n"));
    if (!self_closing) stack.push_back(name);
  }
  if (!stack.empty()) return ::testing::AssertionFailure() << "<" << stack.back() << "> never closed";
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(MetricsCsv, ParsesBack) {
  TempDir dir;
  auto h = history(3);
  h[1].test_loss = NAN;
  write_metrics_csv(dir.file("m.csv"), h);
  const auto lines = split(read_file(dir.file("m.csv")), '\n');
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_s");
  for (size_t r = 0; r < 3; ++r) {
    const auto f = split(lines[r + 1], ',');
    ASSERT_EQ(f.size(), 8u) << lines[r + 1];
    const EpochMetrics& m = h[r];
    EXPECT_EQ(std::stoi(f[0]), m.epoch);
    const double want[] = {m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.lr, m.seconds, m.images_per_s};
    for (int c = 0; c < 7; ++c) {
      const double got = std::strtod(f[c + 1].c_str(), nullptr);
      if (std::isnan(want[c])) EXPECT_EQ(f[c + 1], "nan");
      else EXPECT_NEAR(got, want[c], std::fabs(want[c]) * 1e-7) << "row " << r << " col " << c;
    }
  }
}

TEST(MetricsCsv, EmptyHistoryIsJustTheHeader) {
  TempDir dir;
  write_metrics_csv(dir.file("m.csv"), {});
  EXPECT_EQ(read_file(dir.file("m.csv")), "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_s\n");
}

TEST(MetricsJson, ParsesBack) {
  TempDir dir;
  auto h = history(2);
  h[0].test_acc = NAN;
  const nlohmann::json run = {{"model", "lenet5"}, {"method", "bdwp"}, {"nm", "2:8"}, {"backend", "cpu"}};
  write_metrics_json(dir.file("m.json"), run, h);
  const auto j = nlohmann::json::parse(read_file(dir.file("m.json")));
  EXPECT_EQ(j["run"], run);
  ASSERT_EQ(j["history"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto& row = j["history"][i];
    EXPECT_EQ(row["epoch"].get<int>(), h[i].epoch);
    EXPECT_EQ(row["train_loss"].get<double>(), h[i].train_loss);
    EXPECT_EQ(row["train_acc"].get<double>(), h[i].train_acc);
    EXPECT_EQ(row["test_loss"].get<double>(), h[i].test_loss);
    EXPECT_EQ(row["lr"].get<double>(), h[i].lr);
    EXPECT_EQ(row["seconds"].get<double>(), h[i].seconds);
    EXPECT_EQ(row["images_per_s"].get<double>(), h[i].images_per_s);
  }
  EXPECT_TRUE(j["history"][0]["test_acc"].is_null());
  EXPECT_EQ(j["history"][1]["test_acc"].get<double>(), h[1].test_acc);
}

TEST(MetricsSvg, WellFormedWithALinePerSeries) {
  TempDir dir;
  write_metrics_svg(dir.file("m.svg"), "lenet5 <bdwp 2:8> & friends", history(12));
  const std::string svg = read_file(dir.file("m.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 4u);               // train/test loss, train/test accuracy
  EXPECT_EQ(count(svg, "<circle"), 4u * 12u + 4u);       // a marker per point, one per legend entry
  EXPECT_NE(svg.find("lenet5 &lt;bdwp 2:8&gt; &amp; friends"), std::string::npos);
  for (const char* label : {">loss<", ">accuracy (%)<", ">epoch<", ">train<", ">test<"}) {
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  }
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(MetricsSvg, SingleEpochRenders) {
  const std::string svg = metrics_svg("one", history(1));
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 4u);
  EXPECT_EQ(count(svg, "<circle"), 4u + 4u);            // a one-point line shows as its marker
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  EXPECT_NE(svg.find(">1</text>"), std::string::npos);  // the epoch tick
}

TEST(MetricsSvg, MissingTestValuesAndEmptyHistory) {
  auto h = history(5);
  for (auto& m : h) m.test_loss = m.test_acc = NAN;
  h[2].train_loss = NAN;                                 // a gap splits the line
  const std::string svg = metrics_svg("no test", h);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 3u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);

  const std::string empty = metrics_svg("empty", {});
  EXPECT_TRUE(well_formed(empty));
  EXPECT_EQ(count(empty, "<polyline"), 0u);
  EXPECT_EQ(empty.find("nan"), std::string::npos);
}

TEST(MetricsSvg, PercentAccuraciesAreKept) {
  auto h = history(3);
  for (auto& m : h) m.train_acc *= 100, m.test_acc *= 100;
  const std::string svg = metrics_svg("pct", h);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find(">70<"), std::string::npos);       // a tick inside the 69.9..76 % data range
  EXPECT_EQ(svg.find(">7000<"), std::string::npos);
}

TEST(MetricsFiles, FailedWriteNamesThePath) {
  TempDir dir;
  const std::string target = dir.file("missing/m.csv");
  try {
    write_metrics_csv(target, history(1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
  }
}
