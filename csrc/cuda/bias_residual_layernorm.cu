// out = LayerNorm(x + bias + residual) * weight + norm_bias over rows of `hidden` elements: a Linear's
// output without its bias, the bias, the residual add and the LayerNorm after it, in one kernel (the
// body is layernorm_rows.cuh's, shared with layernorm_residual.cu).
#include "launchers.h"
#include "layernorm_rows.cuh"

namespace emf {
namespace cuda {
cudaError_t bias_residual_layernorm(void* out, const void* x, const void* bias, const void* residual,
                                    const void* weight, const void* norm_bias, int64_t rows, int64_t hidden, float eps,
                                    int dtype, cudaStream_t stream) {
  return launch_layernorm_rows(out, x, bias, residual, weight, norm_bias, rows, hidden, eps, dtype, stream);
}
}  // namespace cuda
}  // namespace emf
