// out = LayerNorm(x + xbias + residual) * weight + bias over rows of `hidden` elements; xbias may be
// null (layernorm_residual) or a (hidden,) vector (bias_residual_layernorm: a Linear's bias).
//
// One warp per row. The fp32 sum s = x (+ xbias) + residual is written once to shared memory
// (hidden floats per warp) and re-read for the centred variance and the output, so global memory is
// read once and the statistics are exact two-pass fp32 (no E[s^2] - mean^2 cancellation). Every lane
// reads back only the elements it wrote itself, so the passes need no barrier; the shuffles reduce
// the sums. Loads and stores are 128-bit where the row's pointers are 16-byte aligned, with a scalar
// tail. Shared by layernorm_residual.cu and bias_residual_layernorm.cu (one kernel body).
#pragma once

#include "binding.h"
#include "cuda_compat.h"
#include "dispatch.h"

namespace emf {

template <class T>
__global__ void __launch_bounds__(128)
layernorm_rows_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ xbias,
                      const T* __restrict__ residual, const T* __restrict__ weight, const T* __restrict__ bias,
                      int64_t rows, int hidden, float eps) {
  extern __shared__ __align__(128) unsigned char emf_smem[];
  constexpr int V = kVec<T>;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + warp;
  if (row >= rows) return;  // warp-uniform: no lane of this warp takes part in anything below
  float* s = reinterpret_cast<float*>(emf_smem) + static_cast<size_t>(warp) * hidden;
  const T* xr = x + row * hidden;
  const T* rr = residual + row * hidden;
  T* outr = out + row * hidden;
  const bool vec = aligned16(xr) && aligned16(rr) && aligned16(outr) && aligned16(weight) && aligned16(bias) &&
                   (xbias == nullptr || aligned16(xbias));
  const int body = vec ? hidden / V * V : 0;

  float sum = 0.f;
  for (int i = lane * V; i < body; i += 32 * V) {
    float a[V], b[V], c[V] = {};
    load_vec(xr + i, a);
    load_vec(rr + i, b);
    if (xbias != nullptr) load_vec(xbias + i, c);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      s[i + j] = (a[j] + c[j]) + b[j];
      sum += s[i + j];
    }
  }
  for (int i = body + lane; i < hidden; i += 32) {
    s[i] = (to_float(xr[i]) + (xbias != nullptr ? to_float(xbias[i]) : 0.f)) + to_float(rr[i]);
    sum += s[i];
  }
  const float mean = warp_sum(sum) / hidden;

  float sq = 0.f;
  for (int i = lane * V; i < body; i += 32 * V) {
#pragma unroll
    for (int j = 0; j < V; ++j) sq += (s[i + j] - mean) * (s[i + j] - mean);
  }
  for (int i = body + lane; i < hidden; i += 32) sq += (s[i] - mean) * (s[i] - mean);
  const float rstd = rsqrtf(warp_sum(sq) / hidden + eps);

  for (int i = lane * V; i < body; i += 32 * V) {
    float w[V], b[V], y[V];
    load_vec(weight + i, w);
    load_vec(bias + i, b);
#pragma unroll
    for (int j = 0; j < V; ++j) y[j] = (s[i + j] - mean) * rstd * w[j] + b[j];
    store_vec(outr + i, y);
  }
  for (int i = body + lane; i < hidden; i += 32)
    outr[i] = from_float<T>((s[i] - mean) * rstd * to_float(weight[i]) + to_float(bias[i]));
}

// Launches layernorm_rows_kernel: up to 4 rows (warps) per block, fewer when their fp32 rows would
// not fit in 48 KiB of shared memory.
inline cudaError_t launch_layernorm_rows(void* out, const void* x, const void* xbias, const void* residual,
                                         const void* weight, const void* bias, int64_t rows, int64_t hidden, float eps,
                                         int dtype, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  int warps = 4;
  while (warps > 1 && static_cast<size_t>(warps) * hidden * sizeof(float) > 48 * 1024) warps /= 2;
  const size_t smem = static_cast<size_t>(warps) * hidden * sizeof(float);
  const dim3 grid(static_cast<unsigned>((rows + warps - 1) / warps)), block(32 * warps);
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto kernel = &layernorm_rows_kernel<T>;
    cudaError_t e = allow_dynamic_smem(kernel, smem);
    if (e != cudaSuccess) return e;
    EMF_LAUNCH(kernel, grid, block, smem, stream, static_cast<T*>(out), static_cast<const T*>(x),
               static_cast<const T*>(xbias), static_cast<const T*>(residual), static_cast<const T*>(weight),
               static_cast<const T*>(bias), rows, static_cast<int>(hidden), eps);
    return cudaGetLastError();
  });
}

namespace cuda {

// The bound entry of both LayerNorm ops (cuda_layernorm_residual, cuda_bias_residual_layernorm):
// every check, then one launch. xbias 0 means none; `pointers` names the op's pointer arguments
// as its binding calls them, for the error messages.
inline void checked_layernorm_rows(const char* op, NamedPointers pointers, uintptr_t out, uintptr_t x,
                                   uintptr_t xbias, uintptr_t residual, uintptr_t weight, uintptr_t bias,
                                   int64_t rows, int64_t hidden, double eps, int dtype, uintptr_t stream) {
  require(eps >= 0, std::string(op) + ": eps must be >= 0");
  if (!check_rowwise(op, dtype, rows, hidden, kMaxLayerNormHidden, pointers)) return;
  launch(op, [&] {
    return launch_layernorm_rows(ptr<void>(out), ptr<const void>(x), ptr<const void>(xbias), ptr<const void>(residual),
                                 ptr<const void>(weight), ptr<const void>(bias), rows, hidden,
                                 static_cast<float>(eps), dtype, as_stream(stream));
  });
}

}  // namespace cuda
}  // namespace emf
