// The N:M core on its own (sat/nm.hpp): prune a small weight matrix N:M along K, compress it to the
// values + in-group indices format (docs/nm-format.md) and back, and print the keep-mask.
// Usage: prune_nm [N:M]   (default 2:8; the M must be one the accelerator supports)
#include <cstdio>
#include <vector>

#include <sat/error.hpp>
#include <sat/nm.hpp>

int main(int argc, char** argv) try {
  const sat::NM nm = sat::NM::parse(argc > 1 ? argv[1] : "2:8");
  sat::validate_nm(nm);
  const int64_t cout = 4, k = 2 * nm.m;
  std::vector<float> w(cout * k);
  for (int64_t i = 0; i < cout * k; ++i) w[i] = static_cast<float>((i * 37 % 23) - 11) / 8;  // no ties

  const std::vector<uint8_t> mask = sat::nm_mask(w.data(), cout, k, nm, sat::Axis::K);
  const sat::NMCompressed c = sat::nm_compress(w.data(), cout, k, nm, sat::Axis::K);
  std::vector<float> back(w.size());
  sat::nm_decompress(c, back.data());

  std::printf("W[%lld][%lld] pruned %s along K, keep-mask:\n", static_cast<long long>(cout),
              static_cast<long long>(k), nm.str().c_str());
  int64_t kept = 0;
  bool round_trip = sat::nm_mask_of(c) == mask;
  for (int64_t r = 0; r < cout; ++r) {
    for (int64_t j = 0; j < k; ++j) {
      std::printf("%s%c", j % nm.m == 0 ? " " : "", mask[r * k + j] ? '1' : '.');
      kept += mask[r * k + j];
      if (mask[r * k + j] ? back[r * k + j] == 0 : back[r * k + j] != 0) round_trip = false;
    }
    std::printf("\n");
  }
  std::printf("kept %lld of %lld, compressed %lld values; decompressed %s\n", static_cast<long long>(kept),
              static_cast<long long>(w.size()), static_cast<long long>(c.nnz()),
              round_trip ? "matches the mask" : "DIFFERS from the mask");
  return round_trip ? 0 : 1;
} catch (const sat::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
