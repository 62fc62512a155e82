#pragma once
// The generated table of this build's backends (cmake/Backends.cmake writes backend_table.cpp).
#include <vector>

#include "sat/backend_registry.hpp"

namespace sat::registry {

struct TableRow {
  const char* name;
  BackendEntry (*entry)();   // null where the backend is not built
  const char* needs;         // what building it requires, where it is not built
};

const std::vector<TableRow>& backend_table();

}  // namespace sat::registry
