// out = LayerNorm(x + bias + residual) * weight + norm_bias over rows of `hidden`: a Linear's output
// without its bias (bias is added here instead of by the GEMM), the residual add and the LayerNorm
// after it, fused into one pass over memory.
//
// Traffic: read x and residual, write out (3 * rows * hidden elements); torch eager's bias add,
// residual add and layer_norm move 7. Per row, s = x + bias + residual is formed in fp32 into a
// thread-private buffer (L1/L2-resident); the statistics are exact two-pass over that buffer (mean,
// then centred squares), each a blocked sum (cpu_common.h) whose rounding error does not grow with
// hidden; a last pass writes the normalised row in the storage type.
#include <cmath>
#include <vector>

#include "cpu_common.h"
#include "registry.h"

namespace emf {
namespace cpu {
namespace {

template <typename T>
struct BiasResidualLayerNorm {
  // x, residual, out: [rows, hidden]; bias, weight, norm_bias: [hidden] in fp32; row: [hidden] scratch.
  static EMF_INLINE void rows(const T* __restrict x, const float* __restrict bias, const T* __restrict residual,
                              const float* __restrict weight, const float* __restrict norm_bias, T* __restrict out,
                              float* __restrict row, int64_t hidden, float eps, int64_t first, int64_t end) {
    const double n = static_cast<double>(hidden);
    for (int64_t r = first; r < end; ++r) {
      const T* __restrict xr = x + r * hidden;
      const T* __restrict rr = residual + r * hidden;
      T* __restrict outr = out + r * hidden;
#pragma omp simd
      for (int64_t i = 0; i < hidden; ++i) row[i] = (load(xr[i]) + bias[i]) + load(rr[i]);
      const float mean = static_cast<float>(blocked_sum(hidden, [&](int64_t i) EMF_INLINE_LAMBDA { return row[i]; }) / n);
      const float variance = static_cast<float>(blocked_sum(hidden, [&](int64_t i) EMF_INLINE_LAMBDA {
                                                  const float d = row[i] - mean;
                                                  return d * d;
                                                }) / n);
      const float rstd = 1.0f / std::sqrt(variance + eps);
#pragma omp simd
      for (int64_t i = 0; i < hidden; ++i) outr[i] = store<T>((row[i] - mean) * rstd * weight[i] + norm_bias[i]);
    }
  }
};

void bias_residual_layernorm(uintptr_t out, uintptr_t x, uintptr_t bias, uintptr_t residual, uintptr_t weight,
                             uintptr_t norm_bias, int64_t rows, int64_t hidden, double eps, int dtype_code,
                             uintptr_t /*stream: unused on CPU*/) {
  constexpr const char* op = "cpu_bias_residual_layernorm";
  const DType dtype = checked_dtype(dtype_code);
  check_sizes(op, rows, hidden);
  if (rows == 0) return;
  for (auto [name, p] : {std::pair<const char*, uintptr_t>{"out", out}, {"x", x}, {"bias", bias},
                         {"residual", residual}, {"weight", weight}, {"norm_bias", norm_bias}})
    check_pointer(op, name, p);

  pybind11::gil_scoped_release no_gil;
  with_storage_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    std::vector<float> bias_storage, weight_storage, norm_bias_storage;
    const float* c = params_as_float(reinterpret_cast<const T*>(bias), hidden, bias_storage);
    const float* w = params_as_float(reinterpret_cast<const T*>(weight), hidden, weight_storage);
    const float* b = params_as_float(reinterpret_cast<const T*>(norm_bias), hidden, norm_bias_storage);
    // One row buffer per thread, allocated here: nothing may throw inside the parallel region.
    const int threads = plan_threads(rows, hidden);
    std::vector<float> row_buffers(static_cast<size_t>(threads) * static_cast<size_t>(hidden));
    const Isa isa = active_isa();
    parallel_rows(threads, rows, [&](int64_t first, int64_t end, int thread) {
      run_isa<BiasResidualLayerNorm<T>>(isa, reinterpret_cast<const T*>(x), c, reinterpret_cast<const T*>(residual),
                                        w, b, reinterpret_cast<T*>(out), row_buffers.data() + thread * hidden, hidden,
                                        static_cast<float>(eps), first, end);
    });
  });
}

}  // namespace
}  // namespace cpu
}  // namespace emf

EMF_BIND(m) {
  namespace py = pybind11;
  m.def("cpu_bias_residual_layernorm", &emf::cpu::bias_residual_layernorm, py::arg("out"), py::arg("x"),
        py::arg("bias"), py::arg("residual"), py::arg("weight"), py::arg("norm_bias"), py::arg("rows"),
        py::arg("hidden"), py::arg("eps"), py::arg("dtype"), py::arg("stream") = 0,
        "out = LayerNorm(x + bias + residual) * weight + norm_bias over [rows, hidden] (raw pointers, contiguous, "
        "one dtype; dtype 0/1/2 = float32/float16/bfloat16; fp32 math).");
}
