// out = LayerNorm(x + residual) * weight + bias over rows of `hidden` elements: the kernel body and
// its checked launch are layernorm_rows.cuh's (shared with bias_residual_layernorm.cu), without a bias.
#include "layernorm_rows.cuh"

EMF_BIND(m) {
  namespace py = pybind11;
  m.def(
      "cuda_layernorm_residual",
      [](uintptr_t out, uintptr_t x, uintptr_t residual, uintptr_t weight, uintptr_t bias, int64_t rows,
         int64_t hidden, double eps, int dtype, uintptr_t stream) {
        emf::cuda::checked_layernorm_rows(
            "layernorm_residual", {{"out", out}, {"x", x}, {"residual", residual}, {"weight", weight}, {"bias", bias}},
            out, x, /*xbias=*/0, residual, weight, bias, rows, hidden, eps, dtype, stream);
      },
      py::arg("out"), py::arg("x"), py::arg("residual"), py::arg("weight"), py::arg("bias"), py::arg("rows"),
      py::arg("hidden"), py::arg("eps"), py::arg("dtype"), py::arg("stream"),
      "out = LayerNorm(x + residual) * weight + bias; pointers to (rows, hidden) / (hidden,) contiguous data");
}
