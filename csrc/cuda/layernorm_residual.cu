// out = LayerNorm(x + residual) * weight + bias over rows of `hidden` elements: the kernel body is
// layernorm_rows.cuh's (shared with bias_residual_layernorm.cu), run without a bias.
#include "binding.h"
#include "layernorm_rows.cuh"

namespace emf {
namespace cuda {
// out, x, residual: (rows, hidden) contiguous; weight, bias: (hidden,).
cudaError_t layernorm_residual(void* out, const void* x, const void* residual, const void* weight, const void* bias,
                               int64_t rows, int64_t hidden, float eps, int dtype, cudaStream_t stream) {
  return launch_layernorm_rows(out, x, nullptr, residual, weight, bias, rows, hidden, eps, dtype, stream);
}
}  // namespace cuda
}  // namespace emf

EMF_BIND(m) {
  namespace py = pybind11;
  using namespace emf::cuda;
  m.def(
      "cuda_layernorm_residual",
      [](uintptr_t out, uintptr_t x, uintptr_t residual, uintptr_t weight, uintptr_t bias, int64_t rows,
         int64_t hidden, double eps, int dtype, uintptr_t stream) {
        const char* op = "layernorm_residual";
        emf::checked_dtype(dtype);
        check_rows(op, rows, hidden, kMaxLayerNormHidden);
        emf::require(eps >= 0, std::string(op) + ": eps must be >= 0");
        if (rows == 0) return;
        check_pointers(op, {{"out", out}, {"x", x}, {"residual", residual}, {"weight", weight}, {"bias", bias}});
        launch(op, [&] {
          return layernorm_residual(ptr<void>(out), ptr<const void>(x), ptr<const void>(residual),
                                    ptr<const void>(weight), ptr<const void>(bias), rows, hidden,
                                    static_cast<float>(eps), dtype, as_stream(stream));
        });
      },
      py::arg("out"), py::arg("x"), py::arg("residual"), py::arg("weight"), py::arg("bias"), py::arg("rows"),
      py::arg("hidden"), py::arg("eps"), py::arg("dtype"), py::arg("stream"),
      "out = LayerNorm(x + residual) * weight + bias; pointers to (rows, hidden) / (hidden,) contiguous data");
}
