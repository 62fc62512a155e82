// spmm_bench: N:M sparse x dense (cpu::spmm_nm) against dense OpenBLAS sgemm on the shapes of the
// FF and BP products of LeNet-5, Linear, ResNet-18 and VGG layers. Prints a table; never asserts.
//
//   spmm_bench [--quick] [--ref] [--threads T] [--cpu] [--min-ms MS]
//
// --quick     only the small shapes      --ref    also time the single-thread spmm_nm_reference
// --threads   OpenMP and OpenBLAS threads (default: omp_get_max_threads())
// --cpu       measure process CPU time instead of wall time: with --threads 1 this is the kernel's
//             own time even when other jobs share the cores
// --min-ms    time each variant for at least this long (default 300); the best run is reported
//
// Dense and sparse runs of a shape alternate, so a noisy machine slows both alike: read the
// dense/spmm ratio rather than the absolute times. GFLOP/s counts the useful flops
// 2 * lines * nnz_per_line * cols of the sparse product.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "sat/cpu_kernels.hpp"
#include "sat/nm.hpp"


namespace {

using namespace sat;

struct Shape {
  const char* name;
  int64_t cout, k, p;
};

bool g_cpu_time = false;

double now_ms() {
  if (g_cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Best time of each function, run alternately until each has had min_ms in total (>= 3 runs).
std::vector<double> time_alternating(const std::vector<std::function<void()>>& fns, double min_ms) {
  std::vector<double> best(fns.size(), 1e300), total(fns.size(), 0.0);
  for (const auto& f : fns) f();  // warm-up
  for (int rep = 0;; ++rep) {
    for (size_t i = 0; i < fns.size(); ++i) {
      const double t0 = now_ms();
      fns[i]();
      const double t = now_ms() - t0;
      best[i] = std::min(best[i], t);
      total[i] += t;
    }
    bool done = rep >= 2;
    for (double t : total) done = done && t >= min_ms;
    if (done || rep >= 200) break;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, ref = false;
  double min_ms = 300;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--ref")) {
      ref = true;
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      const int t = std::atoi(argv[++i]);
      omp_set_num_threads(t);
    } else if (!std::strcmp(argv[i], "--cpu")) {
      g_cpu_time = true;
    } else if (!std::strcmp(argv[i], "--min-ms") && i + 1 < argc) {
      min_ms = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--ref] [--threads T] [--cpu] [--min-ms MS]\n",
                   argv[0]);
      return 2;
    }
  }

  // (cout, k, p) of the weight W[cout][k]; p = batch 128 x output positions.
  std::vector<Shape> shapes = {
      {"lenet.conv2", 64, 32 * 9, 128 * 14 * 14},
      {"linear", 256, 3136, 128},
      {"resnet.l4", 512, 512 * 9, 128 * 4 * 4},
      {"resnet.l3", 256, 256 * 9, 128 * 8 * 8},
  };
  if (!quick) {
    shapes.push_back({"resnet.l2", 128, 128 * 9, 128 * 16 * 16});
    shapes.push_back({"vgg.conv1_2", 64, 64 * 9, 128 * 32 * 32});
    shapes.push_back({"linear.fc", 512, 4608, 128});
  }
  // 2:8 everywhere; the other settings on the two LeNet-scale shapes.
  const std::vector<NM> all_nm = {{1, 2}, {2, 4}, {1, 8}, {2, 8}, {4, 8}, {1, 16}};

  std::printf("spmm_bench: %d threads, %s time, dense = oneDNN sgemm, N:M kernel path %s\n",
              omp_get_max_threads(), g_cpu_time ? "CPU" : "wall", cpu::simd_path());
  std::printf("%-12s %5s %5s %7s %-5s %4s %10s %10s %9s %8s%s\n", "shape", "Cout", "K", "P", "axis",
              "N:M", "dense ms", "spmm ms", "GFLOP/s", "dense/sp", ref ? "    ref ms" : "");

  std::mt19937 rng(42);
  std::normal_distribution<float> dist;
  for (const Shape& s : shapes) {
    std::vector<float> w(s.cout * s.k);
    for (auto& v : w) v = dist(rng);
    for (Axis axis : {Axis::K, Axis::Cout}) {
      // FF (axis K): Yt[cout][p] = W_F Xt[k][p];  BP (axis Cout): dXt[k][p] = W_B^T dYt[cout][p].
      const int64_t in_rows = axis == Axis::K ? s.k : s.cout;
      const int64_t out_rows = axis == Axis::K ? s.cout : s.k;
      std::vector<float> in(in_rows * s.p), out(out_rows * s.p);
      for (auto& v : in) v = dist(rng);
      const bool small = s.cout * s.k <= 64 * 288 || std::string(s.name) == "linear";
      for (NM nm : all_nm) {
        if (!(nm == NM{2, 8}) && !small) continue;
        const NMCompressed c = nm_compress(w.data(), s.cout, s.k, nm, axis);
        const bool ff = axis == Axis::K;
        std::vector<std::function<void()>> fns = {
            [&] {  // the dense product the layer runs without pruning (weight_ops.cpp)
              cpu::sgemm(!ff, false, ff ? s.cout : s.k, s.p, ff ? s.k : s.cout, 1.0f, w.data(),
                         s.k, in.data(), s.p, 0.0f, out.data(), s.p);
            },
            [&] { cpu::spmm_nm(c, in.data(), s.p, s.p, out.data(), s.p); },
        };
        if (ref)
          fns.push_back([&] { cpu::spmm_nm_reference(c, in.data(), s.p, s.p, out.data(), s.p); });
        const auto t = time_alternating(fns, min_ms);
        const double flops = 2.0 * static_cast<double>(c.nnz()) * static_cast<double>(s.p);
        std::printf("%-12s %5lld %5lld %7lld %-5s %4s %10.3f %10.3f %9.1f %8.2f", s.name,
                    static_cast<long long>(s.cout), static_cast<long long>(s.k),
                    static_cast<long long>(s.p), ff ? "FF" : "BP", nm.str().c_str(), t[0], t[1],
                    flops / t[1] * 1e-6, t[0] / t[1]);
        if (ref) std::printf(" %10.3f", t[2]);
        std::printf("\n");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
