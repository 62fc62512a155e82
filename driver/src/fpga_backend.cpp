// The `fpga` backend: the shared AcceleratorBackend over the XRT device, opened with the options
// of the environment (SAT_XCLBIN, SAT_FPGA_DEVICE; the CLI's --xclbin and --device set them).
#include "sat/backend_registry.hpp"
#include "sat_driver/xrt_device.hpp"

namespace sat::driver {

std::unique_ptr<Device> make_fpga_device() { return open_xrt_device(xrt_options_from_env()); }

}  // namespace sat::driver

SAT_DEVICE_BACKEND(fpga, &sat::driver::make_fpga_device,
                   "the SAT kernel on a VCU1525/U200 through XRT (--xclbin FILE; `sat devices` lists the cards)")
