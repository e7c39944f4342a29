// out = LayerNorm(x [+ xbias] + residual) * weight + bias over rows of `hidden`, fused into one pass over
// memory. One body serves two ops: layernorm_residual (no xbias) and bias_residual_layernorm (xbias: a
// Linear's bias, added here instead of by the GEMM; its norm weight/bias are called weight/norm_bias).
//
// Traffic: read x and residual, write out (3 * rows * hidden elements); torch eager's separate add
// and layer_norm move 5 (7 with the bias add). Per row, the sum s is formed in fp32 into a thread-private row buffer
// (L1/L2-resident) while the mean and variance are accumulated (shifted one-pass sums, with an exact
// two-pass fallback over the buffer, see below); a last pass over the buffer writes the normalised
// row in the storage type.
// Row sums are blocked (cpu_common.h, blocked_sum): the error does not grow with the width.
#include <cmath>
#include <initializer_list>
#include <utility>
#include <vector>

#include "cpu_common.h"
#include "registry.h"

namespace emf {
namespace cpu {
namespace {

constexpr int64_t kShiftElements = 32;

template <typename T, bool kHasXBias>
struct LayerNormResidual {
  // x, residual, out: [rows, hidden]; xbias (kHasXBias only), weight, bias: [hidden] in fp32;
  // row: [hidden] scratch.
  static EMF_INLINE float sum_at(const T* __restrict xr, const float* __restrict xbias, const T* __restrict rr,
                                 int64_t i) {
    if constexpr (kHasXBias) return (load(xr[i]) + xbias[i]) + load(rr[i]);
    return load(xr[i]) + load(rr[i]);
  }

  static EMF_INLINE void rows(const T* __restrict x, const float* __restrict xbias, const T* __restrict residual,
                              const float* __restrict weight, const float* __restrict bias, T* __restrict out,
                              float* __restrict row, int64_t hidden, float eps, int64_t first, int64_t end) {
    for (int64_t r = first; r < end; ++r) {
      const T* __restrict xr = x + r * hidden;
      const T* __restrict rr = residual + r * hidden;
      T* __restrict outr = out + r * hidden;

      // Pass 1 (memory): the row sum s = x + residual into the buffer, with the sums of d = s - shift
      // and d^2, shift being the mean of the row's first few elements. Then var = E[d^2] - E[d]^2
      // loses at most ~3 bits to cancellation when E[d]^2 <= E[d^2] / 8, which holds unless those
      // first elements are far off the row mean; otherwise (and for non-finite rows) pass 2 takes
      // the exact two-pass variance over the buffer.
      const int64_t shift_count = hidden < kShiftElements ? hidden : kShiftElements;
      float shift = 0.0f;
      for (int64_t i = 0; i < shift_count; ++i) shift += sum_at(xr, xbias, rr, i);
      shift /= static_cast<float>(shift_count);

      // blocked_sum's scheme, for two sums at once and the row buffer written in the same pass.
      double sum_d = 0.0, sum_d2 = 0.0;
      for (int64_t i0 = 0; i0 < hidden; i0 += kSumBlock) {
        const int64_t i1 = i0 + kSumBlock < hidden ? i0 + kSumBlock : hidden;
        float block_d = 0.0f, block_d2 = 0.0f;
#pragma omp simd reduction(+ : block_d, block_d2)
        for (int64_t i = i0; i < i1; ++i) {
          const float s = sum_at(xr, xbias, rr, i);
          row[i] = s;
          const float d = s - shift;
          block_d += d;
          block_d2 += d * d;
        }
        sum_d += block_d;
        sum_d2 += block_d2;
      }
      const double mean_d = sum_d / static_cast<double>(hidden);
      const double mean_d2 = sum_d2 / static_cast<double>(hidden);
      const float mean = static_cast<float>(shift + mean_d);
      float variance = static_cast<float>(mean_d2 - mean_d * mean_d);

      if (!(mean_d * mean_d <= 0.125 * mean_d2)) {
        // Pass 2 (buffer, rare): exact centring.
        const double squares = blocked_sum(hidden, [&](int64_t i) EMF_INLINE_LAMBDA {
          const float d = row[i] - mean;
          return d * d;
        });
        variance = static_cast<float>(squares / static_cast<double>(hidden));
      }
      const float rstd = 1.0f / std::sqrt(variance + eps);

#pragma omp simd
      for (int64_t i = 0; i < hidden; ++i) outr[i] = store<T>((row[i] - mean) * rstd * weight[i] + bias[i]);
    }
  }
};

// Checks, the fp32 parameter vectors, per-thread row buffers and the parallel loop over rows, for
// either op; xbias == 0: none. `pointers` names the op's pointer arguments for the error messages.
void run_layernorm(const char* op, std::initializer_list<std::pair<const char*, uintptr_t>> pointers, uintptr_t out,
                   uintptr_t x, uintptr_t xbias, uintptr_t residual, uintptr_t weight, uintptr_t bias, int64_t rows,
                   int64_t hidden, double eps, int dtype_code) {
  const DType dtype = checked_dtype(dtype_code);
  check_sizes(op, rows, hidden);
  if (rows == 0) return;
  for (auto [name, p] : pointers) check_pointer(op, name, p);

  pybind11::gil_scoped_release no_gil;
  with_storage_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    std::vector<float> xbias_storage, weight_storage, bias_storage;
    const float* c = xbias ? params_as_float(reinterpret_cast<const T*>(xbias), hidden, xbias_storage) : nullptr;
    const float* w = params_as_float(reinterpret_cast<const T*>(weight), hidden, weight_storage);
    const float* b = params_as_float(reinterpret_cast<const T*>(bias), hidden, bias_storage);
    // One row buffer per thread, allocated here: nothing may throw inside the parallel region.
    const int threads = plan_threads(rows, hidden);
    std::vector<float> row_buffers(static_cast<size_t>(threads) * static_cast<size_t>(hidden));
    const Isa isa = active_isa();
    parallel_rows(threads, rows, [&](int64_t first, int64_t end, int thread) {
      auto rows_of = [&](auto kernel) {
        run_isa<decltype(kernel)>(isa, reinterpret_cast<const T*>(x), c, reinterpret_cast<const T*>(residual), w, b,
                                  reinterpret_cast<T*>(out), row_buffers.data() + thread * hidden, hidden,
                                  static_cast<float>(eps), first, end);
      };
      if (c != nullptr) rows_of(LayerNormResidual<T, true>{});
      else rows_of(LayerNormResidual<T, false>{});
    });
  });
}

void layernorm_residual(uintptr_t out, uintptr_t x, uintptr_t residual, uintptr_t weight, uintptr_t bias, int64_t rows,
                        int64_t hidden, double eps, int dtype, uintptr_t /*stream: unused on CPU*/) {
  run_layernorm("cpu_layernorm_residual",
                {{"out", out}, {"x", x}, {"residual", residual}, {"weight", weight}, {"bias", bias}}, out, x, 0,
                residual, weight, bias, rows, hidden, eps, dtype);
}

void bias_residual_layernorm(uintptr_t out, uintptr_t x, uintptr_t bias, uintptr_t residual, uintptr_t weight,
                             uintptr_t norm_bias, int64_t rows, int64_t hidden, double eps, int dtype,
                             uintptr_t /*stream: unused on CPU*/) {
  run_layernorm("cpu_bias_residual_layernorm",
                {{"out", out}, {"x", x}, {"bias", bias}, {"residual", residual}, {"weight", weight},
                 {"norm_bias", norm_bias}},
                out, x, bias, residual, weight, norm_bias, rows, hidden, eps, dtype);
}

}  // namespace
}  // namespace cpu
}  // namespace emf

EMF_BIND(m) {
  namespace py = pybind11;
  m.def("cpu_layernorm_residual", &emf::cpu::layernorm_residual, py::arg("out"), py::arg("x"), py::arg("residual"),
        py::arg("weight"), py::arg("bias"), py::arg("rows"), py::arg("hidden"), py::arg("eps"), py::arg("dtype"),
        py::arg("stream") = 0,
        "out = LayerNorm(x + residual) * weight + bias over [rows, hidden] (raw pointers, contiguous, one dtype; "
        "dtype 0/1/2 = float32/float16/bfloat16; fp32 math).");
  m.def("cpu_bias_residual_layernorm", &emf::cpu::bias_residual_layernorm, py::arg("out"), py::arg("x"),
        py::arg("bias"), py::arg("residual"), py::arg("weight"), py::arg("norm_bias"), py::arg("rows"),
        py::arg("hidden"), py::arg("eps"), py::arg("dtype"), py::arg("stream") = 0,
        "out = LayerNorm(x + bias + residual) * weight + norm_bias over [rows, hidden] (raw pointers, contiguous, "
        "one dtype; dtype 0/1/2 = float32/float16/bfloat16; fp32 math).");
}
