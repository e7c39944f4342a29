// out = LayerNorm(x + bias + residual) * weight + norm_bias over rows of `hidden` elements: a Linear's
// output without its bias, the bias, the residual add and the LayerNorm after it, in one kernel (the
// body and its checked launch are layernorm_rows.cuh's, shared with layernorm_residual.cu).
#include "layernorm_rows.cuh"

EMF_BIND(m) {
  namespace py = pybind11;
  m.def(
      "cuda_bias_residual_layernorm",
      [](uintptr_t out, uintptr_t x, uintptr_t bias, uintptr_t residual, uintptr_t weight, uintptr_t norm_bias,
         int64_t rows, int64_t hidden, double eps, int dtype, uintptr_t stream) {
        emf::cuda::checked_layernorm_rows("bias_residual_layernorm",
                                          {{"out", out}, {"x", x}, {"bias", bias}, {"residual", residual},
                                           {"weight", weight}, {"norm_bias", norm_bias}},
                                          out, x, bias, residual, weight, norm_bias, rows, hidden, eps, dtype, stream);
      },
      py::arg("out"), py::arg("x"), py::arg("bias"), py::arg("residual"), py::arg("weight"), py::arg("norm_bias"),
      py::arg("rows"), py::arg("hidden"), py::arg("eps"), py::arg("dtype"), py::arg("stream"),
      "out = LayerNorm(x + bias + residual) * weight + norm_bias; pointers to (rows, hidden) / (hidden,) contiguous data");
}
