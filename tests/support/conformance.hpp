#pragma once
// The conformance suite of the accelerator backends: every backend that runs SAT's instruction
// streams on a Device (hls now; sim and fpga as they come) must pass it unchanged. A suite
// instantiates it with one line, e.g. in tests/hls/:
//   SAT_BACKEND_CONFORMANCE(hls);
// and compiles support/conformance_suite.cpp into its binary (sat_test_suite(... CONFORMANCE)).
// It checks, against the CPU reference: training steps of every method (masks exact), LeNet-5 for
// ten steps on Fashion-MNIST, a step of every shipped model, evaluation, gemm in every mode and
// supported N:M, the explicit sync point (state stays on the device; checkpoints hold it), the
// data-parallel split step (forward_backward + apply_update give train_step's bits), bad
// inputs refused with clear errors, and trace files (a LeNet-5 step replays with every region
// equal; corrupted, truncated and foreign traces are refused).
#include <gtest/gtest.h>

#include <string>

namespace sat::test {

class BackendConformance : public ::testing::TestWithParam<std::string> {};

}  // namespace sat::test

#define SAT_BACKEND_CONFORMANCE(name) \
  INSTANTIATE_TEST_SUITE_P(name, BackendConformance, ::testing::Values(std::string(#name)))
