// Host-side launchers of the kernels in csrc/cuda: raw pointers, sizes, a dtype code (csrc/dtype.h)
// and a stream. No pybind11 and no torch here; bind_cuda.cpp validates arguments and binds them.
// Each returns the launch's cudaError_t (cudaSuccess when the kernel was queued).
#pragma once

#include <cstdint>

#if defined(EMF_SIM)
#include "../sim/sim.h"
#else
#include <cuda_runtime_api.h>
#endif

namespace emf {
namespace cuda {

// out, x, residual: (rows, hidden) contiguous; weight, bias: (hidden,). out = LayerNorm(x + residual).
cudaError_t layernorm_residual(void* out, const void* x, const void* residual, const void* weight, const void* bias,
                               int64_t rows, int64_t hidden, float eps, int dtype, cudaStream_t stream);

// out, x, residual: (rows, hidden) contiguous; bias, weight, norm_bias: (hidden,).
// out = LayerNorm(x + bias + residual) * weight + norm_bias.
cudaError_t bias_residual_layernorm(void* out, const void* x, const void* bias, const void* residual,
                                    const void* weight, const void* norm_bias, int64_t rows, int64_t hidden, float eps,
                                    int dtype, cudaStream_t stream);

// Largest row the LayerNorm kernels accept (one fp32 row per warp in shared memory).
constexpr int64_t kMaxLayerNormHidden = 32768;

// out, x: (rows, hidden) contiguous; bias: (hidden,). out = gelu(x + bias), erf form or tanh form.
cudaError_t bias_gelu(void* out, const void* x, const void* bias, int64_t rows, int64_t hidden, bool tanh_approx,
                      int dtype, cudaStream_t stream);

// Largest head_dim attention_varlen accepts.
constexpr int kMaxHeadDim = 128;

// q, k, v: (total, heads, head_dim), contiguous in (heads, head_dim), token strides in elements;
// out: (total, heads, head_dim) contiguous; cu_seqlens: (batch + 1,) int32, device memory.
cudaError_t attention_varlen(void* out, const void* q, const void* k, const void* v, const int32_t* cu_seqlens,
                             int64_t batch, int64_t heads, int64_t head_dim, int64_t q_stride, int64_t k_stride,
                             int64_t v_stride, int64_t max_seqlen, float softmax_scale, int dtype,
                             cudaStream_t stream);

}  // namespace cuda
}  // namespace emf
