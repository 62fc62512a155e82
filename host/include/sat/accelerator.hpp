#pragma once
// The host side of the accelerator, shared by every Device (sat/device.hpp): a compiled program
// made resident on a device (ProgramImage), the transfers of the model's state, a batch and the
// step's hyper-parameters between the host model and the program's memory map, and the one
// AcceleratorBackend that trains on any device. `hls`, `sim` and `fpga` are this backend over
// their own Device. Design: docs/architecture.md ("Devices").
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sat/backend.hpp"
#include "sat/compiler.hpp"
#include "sat/device.hpp"

namespace sat {

// A program's channel memories and stream on one device. Region transfers are checked against the
// region (an error names it) before they reach the device.
class ProgramImage {
 public:
  ProgramImage(Device& device, Program program);

  Device& device() const { return *device_; }
  const Program& program() const { return prog_; }
  DeviceMemory& memory() { return *mem_; }
  const Region& region(int index) const;

  // `bytes` bytes at `offset` inside region `index`; a negative index is ignored by write (an
  // absent optional region) and refused by read.
  void write(int index, const void* data, uint64_t bytes, uint64_t offset = 0);
  void read(int index, void* data, uint64_t bytes, uint64_t offset = 0);
  std::vector<uint8_t> read_region(int index);

  // Runs the step stream reading batch slot `slot` (Program::insns, or insns_b for slot 1), or the
  // prologue (Program::prologue). start() returns while the step runs where the device can.
  RunResult run(std::chrono::milliseconds timeout, int slot = 0);
  std::unique_ptr<DeviceRun> start(std::chrono::milliseconds timeout, int slot);
  RunResult run_prologue(std::chrono::milliseconds timeout);
  // The update stream of a program compiled with ScheduleOptions::update_apart (Program::update).
  RunResult run_update(std::chrono::milliseconds timeout);
  int batch_slots() const;   // 2 for a training program, else 1

 private:
  Device* device_;
  Program prog_;
  std::unique_ptr<DeviceMemory> mem_;
  DeviceStream& step_stream(int slot);
  // Runs `insns` (a stream loaded into `stream` on first use); `missing` names it when empty.
  RunResult run_once_loaded(std::unique_ptr<DeviceStream>& stream, const std::vector<isa::Insn>& insns,
                            const std::string& missing, std::chrono::milliseconds timeout);
  std::unique_ptr<DeviceStream> stream_, stream_b_, prologue_, update_;
};

// Throws sat::Error unless `r` ended with STATUS_OK on a kernel of this build's interface version:
// the device's message for a kernel error or a timeout (`what` says which run), "training diverged"
// when the update produced non-finite values.
void check_run(const Device& device, const RunResult& r, const std::string& what);

// Host -> image: every parameter value and momentum, and the weight forms the program reads (from
// the host model's SparseWeights; `strict`: a bound form that was never generated is an error).
void upload_state(ProgramImage& image, bool strict = true);
// Image -> host after a training run: parameters, momentum, BN running statistics, and the forms
// (and FF masks) the kernel's pre-generation wrote.
void download_state(ProgramImage& image);
// Data-parallel training's exchange around the gradient all-reduce (ScheduleOptions::update_apart):
// image -> host, every trainable parameter's FP32 gradient (Param::grad) and the non-trainable
// parameters' values (the running statistics the step moved); host -> image, the same, summed
// over the ranks and taken from rank 0.
void download_gradients(ProgramImage& image);
void upload_gradients(ProgramImage& image);
// The batch as the kernel reads it (BF16, channels last) and the labels, checked against the
// program's batch size and the class count, into batch slot `slot`.
void write_batch(ProgramImage& image, const Tensor& x, const std::vector<int>& y, int classes, int slot = 0);
// FP32 values as BF16 (round to nearest even) into region `index` (a gemm operand, ...).
void write_bf16(ProgramImage& image, int index, const std::vector<float>& values);
// The step's hyper-parameters (FP32 lr, momentum, weight decay, SR-STE lambda).
void write_hyper(ProgramImage& image, const UpdateConfig& cfg);
StepResult read_result(ProgramImage& image);

// The timeout of one device run: SAT_DEVICE_TIMEOUT_S seconds from the environment (0: none),
// else 3600 s. A malformed value is an error naming it.
std::chrono::milliseconds device_run_timeout();

// The training backend over `device`, named after it. The model's state lives on the device between
// steps; Backend::sync copies it back into the host model.
std::unique_ptr<Backend> make_accelerator_backend(std::unique_ptr<Device> device);

}  // namespace sat
