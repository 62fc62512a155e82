#pragma once
// Where the Vitis HLS headers exist (Vitis HLS, or g++ with Vitis's include directory), the kernel
// uses Xilinx's ap_int.h and hls_stream.h; elsewhere the small shim in hls/shim/ (same names, the
// subset the kernel uses). SAT_HLS_FORCE_SHIM selects the shim even where the headers exist.
#if !defined(SAT_HLS_FORCE_SHIM) && defined(__has_include)
#if __has_include(<ap_int.h>) && __has_include(<hls_stream.h>)
#define SAT_HLS_XILINX_HEADERS 1
#endif
#endif

#if defined(SAT_HLS_XILINX_HEADERS)
#include <ap_int.h>
#include <hls_stream.h>
#else
#include "sat_shim/ap_int.hpp"
#include "sat_shim/hls_stream.hpp"
#endif
