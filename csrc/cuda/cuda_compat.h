// What every kernel file includes: the CUDA headers under nvcc, the SIMT emulation (csrc/sim) when
// the same source is compiled for the host as part of ernie_m_fast._sim.
#pragma once

#if defined(EMF_SIM)
#include "../sim/sim.h"
// Kernel launches go through this macro so that the emulation can run them; `kernel` is a plain
// function pointer (take `auto k = &my_kernel<T>;` first: template commas would split the macro).
#define EMF_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::emf_sim::launch(kernel, grid, block, smem, stream, __VA_ARGS__)
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>
#define EMF_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#endif

#include <cstdint>

namespace emf {
// fp32 <-> storage type; all arithmetic in the kernels is fp32.
template <class T> __device__ __forceinline__ float to_float(T v);
template <> __device__ __forceinline__ float to_float<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// 128-bit vectors: kVec<T> elements per 16-byte load or store.
template <class T> constexpr int kVec = 16 / sizeof(T);

__host__ __device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Loads kVec<T> consecutive elements (16-byte aligned) as floats.
template <class T> __device__ __forceinline__ void load_vec(const T* p, float* v) {
  union { uint4 u; T t[kVec<T>]; } pack;
  pack.u = *reinterpret_cast<const uint4*>(p);
#pragma unroll
  for (int i = 0; i < kVec<T>; ++i) v[i] = to_float<T>(pack.t[i]);
}

template <class T> __device__ __forceinline__ void store_vec(T* p, const float* v) {
  union { uint4 u; T t[kVec<T>]; } pack;
#pragma unroll
  for (int i = 0; i < kVec<T>; ++i) pack.t[i] = from_float<T>(v[i]);
  *reinterpret_cast<uint4*>(p) = pack.u;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
}  // namespace emf
