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

// The dataflow region's process calls and wait loops (top.cpp, run_dataflow). For Vitis and for the
// compile check they are exactly the plain call and nothing; the threaded host model
// (SAT_HLS_THREADED, shim/sat_shim/threaded.hpp) runs each call on its own thread, names the
// region's streams for its deadlock report, joins the threads where the region ends, and lets a
// wait loop whose iteration found nothing sleep until a stream it polled changes.
#if defined(SAT_HLS_THREADED)
#if defined(SAT_HLS_XILINX_HEADERS) || !defined(__SYNTHESIS__)
#error "SAT_HLS_THREADED runs the synthesis path on the shim: define __SYNTHESIS__ and SAT_HLS_FORCE_SHIM"
#endif
#define SAT_DATAFLOW_REGION(name) ::hls::threaded::Region sat_dataflow_region_(name)
#define SAT_DATAFLOW_NAME(s) sat_dataflow_region_.name(s, #s)
#define SAT_DATAFLOW_CALL(fn, ...) sat_dataflow_region_.spawn(#fn, &fn, __VA_ARGS__)
#define SAT_DATAFLOW_IDLE() ::hls::threaded::idle()
#else
#define SAT_DATAFLOW_REGION(name)
#define SAT_DATAFLOW_NAME(s)
#define SAT_DATAFLOW_CALL(fn, ...) fn(__VA_ARGS__)
#define SAT_DATAFLOW_IDLE()
#endif
