// The backend registry: maps a backend name to the backend built into this binary, or to a clear
// error naming what is missing. The table itself is generated from the parts' sat_backend() and
// sat_backend_missing() declarations (cmake/Backends.cmake), so adding a backend edits no file here.
#include <string>

#include "backend_table.hpp"
#include "sat/error.hpp"

namespace sat {

namespace {

std::string available_names() {
  std::string out;
  for (const auto& row : registry::backend_table()) {
    if (!row.entry) continue;
    if (!out.empty()) out += ", ";
    out += row.name;
  }
  return out;
}

}  // namespace

std::unique_ptr<Backend> open_backend(const std::string& name) {
  std::string known;
  for (const auto& row : registry::backend_table()) {
    if (name == row.name) {
      if (row.entry) return row.entry().make();
      throw Error("backend '" + name + "' is not available in this build: it needs " + row.needs +
                  " (available: " + available_names() + ")");
    }
    known += known.empty() ? row.name : std::string(", ") + row.name;
  }
  throw Error("unknown backend '" + name + "' (known: " + known + ")");
}

std::unique_ptr<Device> open_device(const std::string& name) {
  std::string devices;
  for (const auto& row : registry::backend_table()) {
    if (row.entry && row.entry().make_device) devices += (devices.empty() ? "" : ", ") + std::string(row.name);
  }
  for (const auto& row : registry::backend_table()) {
    if (name != row.name) continue;
    if (!row.entry) {
      throw Error("backend '" + name + "' is not available in this build: it needs " + row.needs +
                  " (devices available: " + devices + ")");
    }
    const BackendEntry e = row.entry();
    if (!e.make_device) {
      throw Error("backend '" + name + "' does not run instruction streams; the accelerator devices are hls, sim "
                  "and fpga (available: " + devices + ")");
    }
    return e.make_device();
  }
  throw Error("unknown backend '" + name + "' (devices available: " + devices + ")");
}

std::vector<std::pair<std::string, std::string>> backend_status() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : registry::backend_table()) {
    out.emplace_back(row.name, row.entry ? std::string("available: ") + row.entry().summary
                                         : std::string("not built: needs ") + row.needs);
  }
  return out;
}

}  // namespace sat
