// out = LayerNorm(x + bias + residual) * weight + norm_bias over rows of `hidden` elements: a Linear's
// output without its bias, the bias, the residual add and the LayerNorm after it, in one kernel (the
// body is layernorm_rows.cuh's, shared with layernorm_residual.cu).
#include "binding.h"
#include "layernorm_rows.cuh"

namespace emf {
namespace cuda {
// out, x, residual: (rows, hidden) contiguous; bias, weight, norm_bias: (hidden,).
cudaError_t bias_residual_layernorm(void* out, const void* x, const void* bias, const void* residual,
                                    const void* weight, const void* norm_bias, int64_t rows, int64_t hidden, float eps,
                                    int dtype, cudaStream_t stream) {
  return launch_layernorm_rows(out, x, bias, residual, weight, norm_bias, rows, hidden, eps, dtype, stream);
}
}  // namespace cuda
}  // namespace emf

EMF_BIND(m) {
  namespace py = pybind11;
  using namespace emf::cuda;
  m.def(
      "cuda_bias_residual_layernorm",
      [](uintptr_t out, uintptr_t x, uintptr_t bias, uintptr_t residual, uintptr_t weight, uintptr_t norm_bias,
         int64_t rows, int64_t hidden, double eps, int dtype, uintptr_t stream) {
        const char* op = "bias_residual_layernorm";
        emf::checked_dtype(dtype);
        check_rows(op, rows, hidden, kMaxLayerNormHidden);
        emf::require(eps >= 0, std::string(op) + ": eps must be >= 0");
        if (rows == 0) return;
        check_pointers(op, {{"out", out}, {"x", x}, {"bias", bias}, {"residual", residual}, {"weight", weight},
                            {"norm_bias", norm_bias}});
        launch(op, [&] {
          return bias_residual_layernorm(ptr<void>(out), ptr<const void>(x), ptr<const void>(bias),
                                         ptr<const void>(residual), ptr<const void>(weight),
                                         ptr<const void>(norm_bias), rows, hidden, static_cast<float>(eps), dtype,
                                         as_stream(stream));
        });
      },
      py::arg("out"), py::arg("x"), py::arg("bias"), py::arg("residual"), py::arg("weight"), py::arg("norm_bias"),
      py::arg("rows"), py::arg("hidden"), py::arg("eps"), py::arg("dtype"), py::arg("stream"),
      "out = LayerNorm(x + bias + residual) * weight + norm_bias; pointers to (rows, hidden) / (hidden,) contiguous data");
}
