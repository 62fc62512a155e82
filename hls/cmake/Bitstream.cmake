# The bitstream flow: Vitis HLS (through `v++ -c`) compiles sat_top into a .xo, `v++ -l` links it
# onto the platform into build/sat.xclbin. Every value of the accelerator the tool configs need
# (part, clock, platform, DDR bundles, FIFO depth) comes from the contract generator
# (arch/gen/sat_arch_gen.cpp), which arch/CMakeLists.txt ran: the SAT_ARCH_* variables of
# sat_arch.cmake, and sat_arch.tcl for the Tcl flow. Nothing is repeated by hand.
include(${SAT_ARCH_GEN_DIR}/sat_arch.cmake)
set(SAT_CLOCK_MHZ ${SAT_ARCH_CLOCK_MHZ})
set(SAT_CLOCK_HZ ${SAT_ARCH_CLOCK_HZ})
set(SAT_PART ${SAT_ARCH_PART})
set(SAT_DDR_BUS_BITS ${SAT_ARCH_DDR_BUS_BITS})
set(SAT_TOKEN_DEPTH ${SAT_ARCH_TOKEN_DEPTH})
set(SAT_ARCH_TCL ${SAT_ARCH_GEN_DIR}/sat_arch.tcl)

set(SAT_PLATFORM "${SAT_ARCH_DEFAULT_PLATFORM}" CACHE STRING
    "Vitis platform the xclbin is linked for (default: kDefaultPlatform of arch/include/sat/arch/config.hpp)")

# One m_axi bundle per DDR channel on its own bank, the instruction stream on bank 0 (the top
# function's argument list, arch/include/sat/arch/interface.hpp).
set(SAT_VPP_SP "")
foreach(b IN LISTS SAT_ARCH_TOP_BUNDLES)
  string(REPLACE ":" ";" _b "${b}")
  list(GET _b 0 _bundle)
  list(GET _b 1 _bank)
  if(NOT SAT_VPP_SP STREQUAL "")
    string(APPEND SAT_VPP_SP "\n")
  endif()
  string(APPEND SAT_VPP_SP "sp=${SAT_ARCH_TOP_NAME}_1.m_axi_${_bundle}:DDR[${_bank}]")
endforeach()

set(SAT_HLS_SRC_DIR ${CMAKE_CURRENT_SOURCE_DIR}/src)
set(SAT_HLS_INCLUDE_FLAGS
    "-std=c++17 -I${CMAKE_CURRENT_SOURCE_DIR}/src -I${CMAKE_CURRENT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/arch/include")
set(SAT_HLS_SYN_FILES "")
set(SAT_HLS_KERNEL_SOURCES_ABS "")
foreach(src IN LISTS SAT_HLS_KERNEL_SOURCES)
  string(APPEND SAT_HLS_SYN_FILES "syn.file=${CMAKE_CURRENT_SOURCE_DIR}/${src}\n")
  string(APPEND SAT_HLS_KERNEL_SOURCES_ABS " ${CMAKE_CURRENT_SOURCE_DIR}/${src}")
endforeach()
set(SAT_HLS_TB_FILE ${CMAKE_CURRENT_SOURCE_DIR}/tb/sat_top_tb.cpp)

set(SAT_HLS_CFG_DIR ${CMAKE_CURRENT_BINARY_DIR}/cfg)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cfg/hls_config.cfg.in ${SAT_HLS_CFG_DIR}/hls_config.cfg @ONLY)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cfg/run_hls.tcl.in ${SAT_HLS_CFG_DIR}/run_hls.tcl @ONLY)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cfg/vpp_compile.cfg.in ${SAT_HLS_CFG_DIR}/vpp_compile.cfg @ONLY)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cfg/vpp_link.cfg.in ${SAT_HLS_CFG_DIR}/vpp_link.cfg @ONLY)

# The C-simulation testbench Vitis HLS runs (csim); built and run here as a ctest too.
add_executable(sat_hls_tb ${SAT_HLS_TB_FILE})
target_include_directories(sat_hls_tb PRIVATE src shim)
target_link_libraries(sat_hls_tb PRIVATE sat_hls_kernel)
set_target_properties(sat_hls_tb PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_compile_options(sat_hls_tb PRIVATE -ffp-contract=off -Wno-unknown-pragmas)
if(SAT_BUILD_TESTS)
  add_test(NAME hls_csim_testbench COMMAND sat_hls_tb)
endif()

set(SAT_XCLBIN ${PROJECT_BINARY_DIR}/sat.xclbin)
set(SAT_XO ${CMAKE_CURRENT_BINARY_DIR}/sat_top.xo)

# What is missing for the bitstream, in words (empty when nothing is).
set(SAT_XCLBIN_MISSING "")
if(NOT SAT_VPP)
  string(APPEND SAT_XCLBIN_MISSING
    "  - v++ (AMD Vitis 202x.y, e.g. 2023.2) is not on PATH: install Vitis from the AMD download center "
    "(https://www.xilinx.com/support/download.html) and run 'source <Vitis install>/settings64.sh' "
    "before configuring, or pass -DSAT_VPP=/path/to/v++\n")
endif()
if(NOT DEFINED ENV{XILINX_XRT})
  string(APPEND SAT_XCLBIN_MISSING
    "  - XILINX_XRT is not set: install XRT for the platform and run 'source /opt/xilinx/xrt/setup.sh'\n")
endif()
set(_sat_platform_dirs $ENV{PLATFORM_REPO_PATHS} /opt/xilinx/platforms)
set(_sat_platform_found "")
foreach(dir IN LISTS _sat_platform_dirs)
  if(EXISTS ${dir}/${SAT_PLATFORM}/${SAT_PLATFORM}.xpfm)
    set(_sat_platform_found ${dir}/${SAT_PLATFORM}/${SAT_PLATFORM}.xpfm)
  endif()
endforeach()
if(NOT _sat_platform_found)
  string(APPEND SAT_XCLBIN_MISSING
    "  - platform ${SAT_PLATFORM} (${SAT_PLATFORM}.xpfm) is not under PLATFORM_REPO_PATHS or /opt/xilinx/platforms: "
    "install the Alveo U200 development target platform (deployment + development packages from the "
    "Alveo U200 page, https://www.xilinx.com/products/boards-and-kits/alveo/u200.html), or choose an installed "
    "one with -DSAT_PLATFORM=<name> ('platforminfo -l' lists them)\n")
endif()

if(SAT_XCLBIN_MISSING STREQUAL "")
  add_custom_command(OUTPUT ${SAT_XO}
    COMMAND ${SAT_VPP} -c -t hw --platform ${SAT_PLATFORM} --config ${SAT_HLS_CFG_DIR}/vpp_compile.cfg
            -k sat_top -I${CMAKE_CURRENT_SOURCE_DIR}/src -I${PROJECT_SOURCE_DIR}/arch/include
            -o ${SAT_XO} ${SAT_HLS_KERNEL_SOURCES}
    DEPENDS ${SAT_HLS_KERNEL_SOURCES} ${SAT_ARCH_HEADERS} ${SAT_HLS_CFG_DIR}/vpp_compile.cfg
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
    COMMENT "v++ -c: Vitis HLS synthesis of sat_top for ${SAT_PLATFORM} (tens of minutes)"
    VERBATIM)
  # The interface version goes into the xclbin's KEYVALUE_METADATA, where the XRT driver checks it
  # before loading (driver/src/xclbin_check.cpp, docs/fpga.md): xclbinutil from the Vitis/XRT
  # install (Debian's xclbinutil is a wrapper around a binary it does not ship).
  add_custom_command(OUTPUT ${SAT_XCLBIN}
    COMMAND ${SAT_VPP} -l -t hw --platform ${SAT_PLATFORM} --config ${SAT_HLS_CFG_DIR}/vpp_link.cfg
            -o ${SAT_XCLBIN}.unstamped ${SAT_XO}
    COMMAND xclbinutil --input ${SAT_XCLBIN}.unstamped
            --key-value USER:sat_interface_version:${SAT_ARCH_INTERFACE_VERSION} --output ${SAT_XCLBIN} --force
    DEPENDS ${SAT_XO} ${SAT_HLS_CFG_DIR}/vpp_link.cfg
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
    COMMENT "v++ -l: implementation on ${SAT_PLATFORM} (several hours; see docs/fpga-build.md), then the interface version"
    VERBATIM)
  add_custom_target(xclbin DEPENDS ${SAT_XCLBIN})
  sat_optional("hls bitstream (v++)" "target 'xclbin' builds ${SAT_XCLBIN} for ${SAT_PLATFORM}")
else()
  string(CONCAT _msg "cannot build ${SAT_XCLBIN}: the Vitis bitstream flow needs what is missing here:\n"
         "${SAT_XCLBIN_MISSING}"
         "then re-run cmake. The configs the flow uses are generated in ${SAT_HLS_CFG_DIR} "
         "(docs/fpga-build.md). The C-simulation (sat_hls_kernel, sat_hls_tb) builds without Vitis.")
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/xclbin_missing.txt "${_msg}\n")
  add_custom_target(xclbin
    COMMAND ${CMAKE_COMMAND} -E cat ${CMAKE_CURRENT_BINARY_DIR}/xclbin_missing.txt
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
  if(NOT SAT_VPP)
    sat_optional("hls bitstream (v++)" "skipped: v++ not found (target 'xclbin' explains what is missing)")
  else()
    sat_optional("hls bitstream (v++)" "incomplete: target 'xclbin' explains what is missing")
  endif()
endif()
