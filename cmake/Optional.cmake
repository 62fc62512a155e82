# Detection of the optional toolchains. Each part builds where its tool is found and is
# reported as skipped where not; nothing here may fail the configure step.
function(sat_optional name status)
  set_property(GLOBAL APPEND PROPERTY SAT_OPTIONAL_REPORT "  ${name}: ${status}")
endfunction()

include(CheckLanguage)
check_language(CUDA)
find_program(SAT_VERILATOR verilator)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  # PkgConfig::SYSTEMC, which the installed package recreates by the same name (cmake/satConfig.cmake.in).
  pkg_check_modules(SYSTEMC QUIET IMPORTED_TARGET GLOBAL systemc)
endif()
find_path(SAT_XRT_INCLUDE xrt/xrt_device.h PATHS /usr/include/xrt /opt/xilinx/xrt/include)
find_program(SAT_YOSYS yosys)
find_program(SAT_VPP v++)

function(sat_report_optional)
  get_property(report GLOBAL PROPERTY SAT_OPTIONAL_REPORT)
  message(STATUS "SAT optional parts:")
  foreach(line IN LISTS report)
    message(STATUS "${line}")
  endforeach()
endfunction()
