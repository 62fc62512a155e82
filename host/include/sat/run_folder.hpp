#pragma once
// A run folder (`sat train --out DIR`): the outputs of one training run (checkpoint.sat,
// metrics.csv, metrics.json, curves.svg). While a run writes them it holds the folder's lock, so
// that two runs never write one folder, and a new run never silently replaces an earlier one.
#include <string>
#include <vector>

namespace sat {

class RunFolder {
 public:
  enum class Mode {
    fresh,    // a new run: refused where the folder already holds one
    resume,   // continue the run the folder holds: its checkpoint must be there
    force,    // a new run that replaces the folder's earlier outputs (and only those files)
  };

  // Creates `dir` where missing and takes its lock (an advisory flock on DIR/.lock, released when
  // this object goes or the process ends, however it ends). Throws sat::Error, naming the folder:
  // where another process holds the lock (with that process's pid and command line), where `dir`
  // is not a directory or cannot be created, and where the folder's state does not fit `mode`.
  // `holder` says who holds the lock, for the message another run gets ("sat train --model ...").
  RunFolder(const std::string& dir, Mode mode, const std::string& holder);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::string& dir() const { return dir_; }
  std::string checkpoint() const { return dir_ + "/checkpoint.sat"; }

  // The files a run writes into its folder; --force removes exactly these.
  static const std::vector<std::string>& output_files();
  // Whether `dir` holds a run's outputs (any of output_files()).
  static bool holds_run(const std::string& dir);

 private:
  std::string dir_;
  int fd_ = -1;
};

}  // namespace sat
