#pragma once
// NumPy .npy files: the exchange format of `sat op` and of the cross-checks against PyTorch.
//
// Read: format versions 1.0, 2.0 and 3.0; C order only; dtypes '<f4' (float32), and, converted to
// float on load, '<f8' (float64, rounded to nearest), '<i4' and '<i8' (integers; values beyond
// 2^24 lose precision). Any other dtype (big-endian, float16, bool, ...), fortran_order True, a bad
// magic string, an unparsable header or a data section shorter than the shape needs is a sat::Error
// that names the file and the problem. Bytes after the data are ignored, as numpy does.
// Write: format 1.0, '<f4', C order; atomic (a temporary file in the same directory, then rename),
// so a reader never sees a half-written file.
#include <cstddef>
#include <string>
#include <vector>

#include "sat/tensor.hpp"

namespace sat {

struct NpyArray {
  Shape shape;                  // () is a scalar with one element
  std::vector<float> data;      // row-major, numel(shape) values
  std::string dtype;            // the descr of the file, e.g. "<f4"
};

NpyArray npy_read(const std::string& path);
// The same from the file's bytes in memory; `path` names them in messages.
NpyArray npy_parse(const void* data, size_t size, const std::string& path);

// `data` holds numel(shape) values; throws sat::Error if not, or if the file cannot be written.
void npy_write(const std::string& path, const Shape& shape, const float* data);
void npy_write(const std::string& path, const Shape& shape, const std::vector<float>& data);

}  // namespace sat
