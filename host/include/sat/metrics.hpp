#pragma once
// The metrics files of a training run: CSV and JSON logs of the per-epoch metrics and a
// self-contained SVG plot of loss and accuracy. Each is written whole through atomic_write_file,
// so a reader polling the files during a run never sees a half-written one. Formats:
// docs/formats.md.
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sat/train.hpp"

namespace sat {

// Header row epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_s, then one row
// per epoch; numbers with 8 significant digits, non-finite values as nan / inf / -inf.
void write_metrics_csv(const std::string& path, const std::vector<EpochMetrics>& history);

// {"run": run_info, "history": [{"epoch": 1, "train_loss": ..., ...}, ...]}; non-finite values
// become null.
void write_metrics_json(const std::string& path, const nlohmann::json& run_info,
                        const std::vector<EpochMetrics>& history);

// Two panels, loss (train and test) and accuracy (train and test) against epoch, with axes, ticks,
// labels and a legend; needs no external tool or font and renders with a single epoch too.
// Accuracies that are all fractions in [0, 1] are drawn as percent.
void write_metrics_svg(const std::string& path, const std::string& title, const std::vector<EpochMetrics>& history);

// The SVG document write_metrics_svg writes (for callers that embed or serve it).
std::string metrics_svg(const std::string& title, const std::vector<EpochMetrics>& history);

}  // namespace sat
