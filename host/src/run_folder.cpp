#include "sat/run_folder.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "sat/error.hpp"

namespace fs = std::filesystem;

namespace sat {

namespace {

std::string errno_text() { return std::strerror(errno); }

// What the lock file says about the run that holds it ("pid 123: sat train ..."); best effort.
std::string lock_holder(int fd) {
  char buf[512];
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "another process";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  return s.empty() ? "another process" : s;
}

}  // namespace

const std::vector<std::string>& RunFolder::output_files() {
  static const std::vector<std::string> files = {"checkpoint.sat", "metrics.csv", "metrics.json", "curves.svg"};
  return files;
}

bool RunFolder::holds_run(const std::string& dir) {
  std::error_code ec;
  for (const std::string& f : output_files()) {
    if (fs::exists(fs::path(dir) / f, ec)) return true;
  }
  return false;
}

RunFolder::RunFolder(const std::string& dir, Mode mode, const std::string& holder) : dir_(dir) {
  if (dir.empty()) throw Error("run folder: the path is empty");
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (fs::exists(st) && !fs::is_directory(st)) {
    throw Error("run folder " + dir + " exists and is not a directory (--out names a folder)");
  }
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create the run folder " + dir + ": " + ec.message());

  const std::string lock_path = dir + "/.lock";
  // O_NOFOLLOW: the lock file is ours; a link planted there is not followed to somewhere else.
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) throw Error("cannot open the lock file " + lock_path + " of the run folder: " + errno_text());
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string who = lock_holder(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      throw Error("run folder " + dir + " is in use by another run (" + who +
                  "); wait for it to end or choose another --out");
    }
    throw Error("cannot lock the run folder " + dir + " (" + lock_path + "): " + std::strerror(err));
  }
  try {
    switch (mode) {
      case Mode::fresh:
        if (holds_run(dir)) {
          throw Error("run folder " + dir + " already holds a run; continue it with --resume, replace it with "
                      "--force, or choose another --out");
        }
        break;
      case Mode::resume:
        if (!fs::exists(checkpoint(), ec)) throw Error("--resume: no checkpoint at " + checkpoint());
        break;
      case Mode::force:
        for (const std::string& f : output_files()) {
          fs::remove(fs::path(dir) / f, ec);
          if (ec) throw Error("--force: cannot remove " + (fs::path(dir) / f).string() + ": " + ec.message());
        }
        break;
    }
    const std::string text = "pid " + std::to_string(::getpid()) + ": " + holder + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      throw Error("cannot write the lock file " + lock_path + ": " + errno_text());
    }
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

RunFolder::~RunFolder() {
  if (fd_ >= 0) {
    // Emptied, not removed: removing it could race with a run that opened it and waits to lock it.
    if (::ftruncate(fd_, 0) != 0) {}
    ::close(fd_);
  }
}

}  // namespace sat
