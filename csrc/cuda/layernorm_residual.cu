// out = LayerNorm(x + residual) * weight + bias over rows of `hidden` elements: the kernel body is
// layernorm_rows.cuh's (shared with bias_residual_layernorm.cu), run without a bias.
#include "launchers.h"
#include "layernorm_rows.cuh"

namespace emf {
namespace cuda {
cudaError_t layernorm_residual(void* out, const void* x, const void* residual, const void* weight, const void* bias,
                               int64_t rows, int64_t hidden, float eps, int dtype, cudaStream_t stream) {
  return launch_layernorm_rows(out, x, nullptr, residual, weight, bias, rows, hidden, eps, dtype, stream);
}
}  // namespace cuda
}  // namespace emf
