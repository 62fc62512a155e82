// A rank that joins an MPI job and then never takes part in a collective (a hung rank). The
// data-parallel tests launch it beside `sat train` (MPMD) to check that the other ranks end with
// a timeout error instead of waiting for ever.
#include <mpi.h>
#include <unistd.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  for (;;) pause();
}
