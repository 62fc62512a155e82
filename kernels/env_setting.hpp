#pragma once
// A setting of the CUDA backend read from the environment as one of two named values (the
// comparisons' switches: SAT_CUDA_FUSE, SAT_CUDA_IMPLICIT, ...): `on` gives true, `off` false,
// unset or empty gives `unset`; anything else is refused, naming the variable and both values.
#include <cstdlib>
#include <string>

#include "sat/error.hpp"

namespace sat::cuda {

inline bool env_switch(const char* name, const char* on, const char* off, bool unset) {
  const char* e = std::getenv(name);
  if (!e || !*e) return unset;
  const std::string v = e;
  if (v == on) return true;
  if (v == off) return false;
  throw Error(std::string(name) + "='" + v + "': expected '" + on + "' or '" + off + "'");
}

}  // namespace sat::cuda
