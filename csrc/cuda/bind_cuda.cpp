// Python bindings of the CUDA launchers (csrc/cuda/launchers.h). Compiled into ernie_m_fast._C when nvcc
// is found, and into ernie_m_fast._sim against the SIMT emulation: the same signatures either way.
//
// Arguments are validated here, before any launch (ValueError); a launch that the runtime rejects or
// a kernel that fails raises RuntimeError naming the kernel. The GIL is released around launches.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "../checks.h"
#include "../registry.h"
#include "launchers.h"

namespace py = pybind11;

namespace {

using emf::check_pointer;
using emf::require;

void check_dtype(int dtype) { emf::checked_dtype(dtype); }

cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

void raise_on_error(const char* op, cudaError_t launch_error) {
  // The launcher's own result, then anything still pending (an asynchronous failure from before).
  cudaError_t e = launch_error != cudaSuccess ? launch_error : cudaGetLastError();
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(op) + " kernel failed: " + cudaGetErrorString(e));
}

constexpr int64_t kMaxInt = 0x7fffffff;

void check_rows(const char* op, int64_t rows, int64_t hidden, int64_t max_hidden) {
  require(rows <= kMaxInt, std::string(op) + ": rows must be in [0, 2^31), got " + std::to_string(rows));
  emf::check_sizes(op, rows, hidden, max_hidden);
}

}  // namespace

EMF_BIND(m) {
  m.def(
      "cuda_layernorm_residual",
      [](uintptr_t out, uintptr_t x, uintptr_t residual, uintptr_t weight, uintptr_t bias, int64_t rows,
         int64_t hidden, double eps, int dtype, uintptr_t stream) {
        const char* op = "layernorm_residual";
        check_dtype(dtype);
        check_rows(op, rows, hidden, emf::cuda::kMaxLayerNormHidden);
        require(eps >= 0, std::string(op) + ": eps must be >= 0");
        if (rows == 0) return;
        for (auto [name, p] : {std::pair<const char*, uintptr_t>{"out", out}, {"x", x}, {"residual", residual},
                               {"weight", weight}, {"bias", bias}})
          check_pointer(op, name, p);
        cudaError_t e;
        {
          py::gil_scoped_release release;
          e = emf::cuda::layernorm_residual(reinterpret_cast<void*>(out), reinterpret_cast<const void*>(x),
                                            reinterpret_cast<const void*>(residual), reinterpret_cast<const void*>(weight),
                                            reinterpret_cast<const void*>(bias), rows, hidden, static_cast<float>(eps),
                                            dtype, as_stream(stream));
        }
        raise_on_error(op, e);
      },
      py::arg("out"), py::arg("x"), py::arg("residual"), py::arg("weight"), py::arg("bias"), py::arg("rows"),
      py::arg("hidden"), py::arg("eps"), py::arg("dtype"), py::arg("stream"),
      "out = LayerNorm(x + residual) * weight + bias; pointers to (rows, hidden) / (hidden,) contiguous data");

  m.def(
      "cuda_bias_residual_layernorm",
      [](uintptr_t out, uintptr_t x, uintptr_t bias, uintptr_t residual, uintptr_t weight, uintptr_t norm_bias,
         int64_t rows, int64_t hidden, double eps, int dtype, uintptr_t stream) {
        const char* op = "bias_residual_layernorm";
        check_dtype(dtype);
        check_rows(op, rows, hidden, emf::cuda::kMaxLayerNormHidden);
        require(eps >= 0, std::string(op) + ": eps must be >= 0");
        if (rows == 0) return;
        for (auto [name, p] : {std::pair<const char*, uintptr_t>{"out", out}, {"x", x}, {"bias", bias},
                               {"residual", residual}, {"weight", weight}, {"norm_bias", norm_bias}})
          check_pointer(op, name, p);
        cudaError_t e;
        {
          py::gil_scoped_release release;
          e = emf::cuda::bias_residual_layernorm(
              reinterpret_cast<void*>(out), reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(bias),
              reinterpret_cast<const void*>(residual), reinterpret_cast<const void*>(weight),
              reinterpret_cast<const void*>(norm_bias), rows, hidden, static_cast<float>(eps), dtype, as_stream(stream));
        }
        raise_on_error(op, e);
      },
      py::arg("out"), py::arg("x"), py::arg("bias"), py::arg("residual"), py::arg("weight"), py::arg("norm_bias"),
      py::arg("rows"), py::arg("hidden"), py::arg("eps"), py::arg("dtype"), py::arg("stream"),
      "out = LayerNorm(x + bias + residual) * weight + norm_bias; pointers to (rows, hidden) / (hidden,) contiguous data");

  m.def("cuda_limits", []() {
    py::dict limits;
    limits["max_head_dim"] = emf::cuda::kMaxHeadDim;
    limits["max_layernorm_hidden"] = emf::cuda::kMaxLayerNormHidden;
    limits["max_batch"] = 65535;
    limits["max_heads"] = 65535;
    return limits;
  }, "The CUDA kernels' size limits (ernie_m_fast.ops.native_backend.CUDA_LIMITS mirrors them).");

  m.def(
      "cuda_bias_gelu",
      [](uintptr_t out, uintptr_t x, uintptr_t bias, int64_t rows, int64_t hidden, bool tanh_approx, int dtype,
         uintptr_t stream) {
        const char* op = "bias_gelu";
        check_dtype(dtype);
        check_rows(op, rows, hidden, kMaxInt);
        if (rows == 0) return;
        for (auto [name, p] : {std::pair<const char*, uintptr_t>{"out", out}, {"x", x}, {"bias", bias}})
          check_pointer(op, name, p);
        cudaError_t e;
        {
          py::gil_scoped_release release;
          e = emf::cuda::bias_gelu(reinterpret_cast<void*>(out), reinterpret_cast<const void*>(x),
                                   reinterpret_cast<const void*>(bias), rows, hidden, tanh_approx, dtype,
                                   as_stream(stream));
        }
        raise_on_error(op, e);
      },
      py::arg("out"), py::arg("x"), py::arg("bias"), py::arg("rows"), py::arg("hidden"), py::arg("tanh"),
      py::arg("dtype"), py::arg("stream"), "out = gelu(x + bias); pointers to (rows, hidden) / (hidden,) contiguous data");

  m.def(
      "cuda_attention_varlen",
      [](uintptr_t out, uintptr_t q, uintptr_t k, uintptr_t v, uintptr_t cu_seqlens, int64_t batch, int64_t heads,
         int64_t head_dim, int64_t q_stride, int64_t k_stride, int64_t v_stride, int64_t max_seqlen,
         double softmax_scale, int dtype, uintptr_t stream) {
        const char* op = "attention_varlen";
        check_dtype(dtype);
        require(batch >= 1 && batch <= 65535, std::string(op) + ": batch must be in [1, 65535], got " + std::to_string(batch));
        require(heads >= 1 && heads <= 65535, std::string(op) + ": heads must be in [1, 65535], got " + std::to_string(heads));
        require(head_dim >= 1 && head_dim <= emf::cuda::kMaxHeadDim,
                std::string(op) + ": head_dim must be in [1, " + std::to_string(emf::cuda::kMaxHeadDim) + "], got " +
                    std::to_string(head_dim));
        for (int64_t stride : {q_stride, k_stride, v_stride})
          require(stride >= heads * head_dim && stride <= kMaxInt,
                  std::string(op) + ": token strides must be at least heads * head_dim, got " + std::to_string(stride));
        require(max_seqlen >= 1 && max_seqlen <= kMaxInt,
                std::string(op) + ": max_seqlen must be >= 1, got " + std::to_string(max_seqlen));
        for (auto [name, p] : {std::pair<const char*, uintptr_t>{"out", out}, {"q", q}, {"k", k}, {"v", v},
                               {"cu_seqlens", cu_seqlens}})
          check_pointer(op, name, p);
        cudaError_t e;
        {
          py::gil_scoped_release release;
          e = emf::cuda::attention_varlen(reinterpret_cast<void*>(out), reinterpret_cast<const void*>(q),
                                          reinterpret_cast<const void*>(k), reinterpret_cast<const void*>(v),
                                          reinterpret_cast<const int32_t*>(cu_seqlens), batch, heads, head_dim,
                                          q_stride, k_stride, v_stride, max_seqlen, static_cast<float>(softmax_scale),
                                          dtype, as_stream(stream));
        }
        raise_on_error(op, e);
      },
      py::arg("out"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("cu_seqlens"), py::arg("batch"),
      py::arg("heads"), py::arg("head_dim"), py::arg("q_stride"), py::arg("k_stride"), py::arg("v_stride"),
      py::arg("max_seqlen"), py::arg("softmax_scale"), py::arg("dtype"), py::arg("stream"),
      "softmax(q k^T * scale) v within each packed sequence; q/k/v (total, heads, head_dim) with token strides");
}
