#pragma once
// The Communicator of data-parallel training over MPI (Boost.MPI's environment and communicator,
// MPI-3's non-blocking collectives for the waits with a timeout). docs/distributed.md.
#include <memory>

#include "sat/distributed.hpp"

namespace sat {

// Initialises MPI (once per process) and returns the world communicator. Every collective waits at
// most `timeout_s` seconds. Throws sat::Error when MPI cannot start.
std::unique_ptr<Communicator> open_mpi_communicator(double timeout_s);

}  // namespace sat
