// C-simulation testbench of sat_top, as Vitis HLS runs it (csim_design / vitis-run --csim) and as
// ctest runs it (hls_csim_testbench): a dense and a 2:4 sparse GEMM tile through LOAD -> GEMM ->
// STORE with tokens, checked against a plain loop; then a malformed stream (missing FINISH) must
// end with its status, not hang. Returns 0 on success (the HLS convention).
#include <cmath>
#include <cstdio>

#include "kernel.hpp"

namespace {

using namespace sat;

constexpr int kM = 20, kN = 12, kK = 40;
constexpr uint64_t kWords = 1 << 14;
uint16_t ddr[4][kWords];

void put(isa::Insn* s, int& n, const isa::Insn& in, uint8_t wait, uint8_t signal) {
  s[n] = in;
  isa::set_wait(s[n], wait);
  isa::set_signal(s[n], signal);
  ++n;
}

int run(const isa::Insn* s, int n, uint32_t status[isa::kStatusWords]) {
  static ap_uint<512> words[16];
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < arch::kInsnWords; ++j) words[i].range(32 * j + 31, 32 * j) = s[i].w[j];
  sat_top(words, static_cast<uint32_t>(n), ddr[0], ddr[1], ddr[2], ddr[3], kWords, kWords, kWords, kWords, status);
  return static_cast<int>(status[0]);
}

}  // namespace

int main() {
  // A [kM][kK] on channel 0, W [kN][kK] on channel 1; 2:4 compressed W: values on channel 1 after
  // W, indices on channel 2; C (FP32) on channel 3.
  float a[kM][kK], w[kN][kK], ws[kN][kK];
  for (int i = 0; i < kM; ++i)
    for (int k = 0; k < kK; ++k) {
      a[i][k] = bf16_bits_to_f32(f32_to_bf16_bits(std::sin(0.37f * i + 0.11f * k)));
      ddr[0][i * kK + k] = f32_to_bf16_bits(a[i][k]);
    }
  const uint32_t vals = kN * kK, entries = kN * kK / 2;
  for (int j = 0; j < kN; ++j)
    for (int k = 0; k < kK; ++k) {
      w[j][k] = bf16_bits_to_f32(f32_to_bf16_bits(std::cos(0.23f * j - 0.07f * k)));
      ddr[1][j * kK + k] = f32_to_bf16_bits(w[j][k]);
      // 2:4 sparse form: keep in-group positions 1 and 3 (indices 1, 3 of every group).
      ws[j][k] = (k % 4 == 1 || k % 4 == 3) ? w[j][k] : 0.0f;
    }
  for (uint32_t e = 0; e < entries; ++e) {
    const int j = static_cast<int>(e / (kK / 2)), slot = static_cast<int>(e % (kK / 2));
    const int k = (slot / 2) * 4 + (slot % 2 ? 3 : 1);
    ddr[1][vals + e] = f32_to_bf16_bits(ws[j][k]);
    ddr[2][e / 4] = static_cast<uint16_t>(ddr[2][e / 4] | ((slot % 2 ? 3u : 1u) << (4 * (e % 4))));
  }

  for (int sparse = 0; sparse < 2; ++sparse) {
    isa::Insn s[8];
    int n = 0;
    isa::Insn ld = isa::make_insn(isa::OP_LD_2D, 0);
    ld.w[isa::f_LD_2D::rows] = kM;
    ld.w[isa::f_LD_2D::cols] = kK;
    ld.w[isa::f_LD_2D::addr] = isa::make_addr(0, 0);
    ld.w[isa::f_LD_2D::row_stride] = kK;
    ld.w[isa::f_LD_2D::col_stride] = 1;
    put(s, n, ld, 0, 0);
    if (!sparse) {
      isa::Insn lb = isa::make_insn(isa::OP_LD_2D, 1);
      lb.w[isa::f_LD_2D::rows] = kN;
      lb.w[isa::f_LD_2D::cols] = kK;
      lb.w[isa::f_LD_2D::addr] = isa::make_addr(1, 0);
      lb.w[isa::f_LD_2D::row_stride] = kK;
      lb.w[isa::f_LD_2D::col_stride] = 1;
      put(s, n, lb, 0, 1u << isa::UNIT_GEMM);
    } else {
      isa::Insn lb = isa::make_insn(isa::OP_LD_SPW);
      lb.w[isa::f_LD_SPW::rows] = kN;
      lb.w[isa::f_LD_SPW::groups] = kK / 4;
      lb.w[isa::f_LD_SPW::n] = 2;
      lb.w[isa::f_LD_SPW::m] = 4;
      lb.w[isa::f_LD_SPW::val_addr] = isa::make_addr(1, vals);
      lb.w[isa::f_LD_SPW::idx_addr] = isa::make_addr(2, 0);
      lb.w[isa::f_LD_SPW::line_groups] = kK / 4;
      put(s, n, lb, 0, 1u << isa::UNIT_GEMM);
    }
    isa::Insn g = isa::make_insn(isa::OP_GEMM, sparse ? 2 : 0);
    g.w[isa::f_GEMM::mt] = kM;
    g.w[isa::f_GEMM::nt] = kN;
    g.w[isa::f_GEMM::kt] = kK;
    g.w[isa::f_GEMM::n] = 2;
    g.w[isa::f_GEMM::m] = 4;
    put(s, n, g, 1u << isa::UNIT_LOAD, 1u << isa::UNIT_STORE);
    isa::Insn st = isa::make_insn(isa::OP_ST_2D, 1);
    st.w[isa::f_ST_2D::rows] = kM;
    st.w[isa::f_ST_2D::cols] = kN;
    st.w[isa::f_ST_2D::addr] = isa::make_addr(3, 0);
    st.w[isa::f_ST_2D::row_stride] = kN;
    st.w[isa::f_ST_2D::col_stride] = 1;
    put(s, n, st, 1u << isa::UNIT_GEMM, 0);
    put(s, n, isa::make_insn(isa::OP_FINISH), 0, 0);
    uint32_t status[isa::kStatusWords];
    if (run(s, n, status) != isa::STATUS_OK) {
      std::printf("FAIL: %s GEMM stream ended with status %u at instruction %u\n", sparse ? "sparse" : "dense",
                  status[0], status[1]);
      return 1;
    }
    for (int i = 0; i < kM; ++i)
      for (int j = 0; j < kN; ++j) {
        double want = 0, mag = 0;
        for (int k = 0; k < kK; ++k) {
          const double p = static_cast<double>(a[i][k]) * (sparse ? ws[j][k] : w[j][k]);
          want += p;
          mag += std::fabs(p);
        }
        const uint32_t u = ddr[3][2 * (i * kN + j)] | (static_cast<uint32_t>(ddr[3][2 * (i * kN + j) + 1]) << 16);
        const float got = f32_from_bits(u);
        if (!(std::fabs(got - want) <= 1e-6 * mag + 1e-30)) {
          std::printf("FAIL: %s C[%d][%d] = %.9g, want %.9g\n", sparse ? "sparse" : "dense", i, j, got, want);
          return 1;
        }
      }
  }
  // A stream without FINISH ends with STATUS_NO_FINISH.
  isa::Insn fill = isa::make_insn(isa::OP_V_FILL);
  fill.w[isa::f_V_FILL::y] = isa::make_addr(3, 0);
  fill.w[isa::f_V_FILL::count] = 4;
  uint32_t status[isa::kStatusWords];
  if (run(&fill, 1, status) != isa::STATUS_NO_FINISH) {
    std::printf("FAIL: a stream without FINISH ended with status %u\n", status[0]);
    return 1;
  }
  std::printf("sat_top testbench: dense and 2:4 sparse GEMM tiles and the missing-FINISH check passed\n");
  return 0;
}
