#pragma once
// Which SIMD paths Highway builds (host/src/cpu/simd.cpp says why these): included before any
// Highway header by every source that uses one, so that all agree on HWY_TARGETS.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4)
#endif
