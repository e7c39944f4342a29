// dtype code (csrc/dtype.h) -> storage type: the one place the instantiation list lives.
#pragma once

#include "cuda_compat.h"

namespace emf {
// Calls f(T{}) with T = float, __half or __nv_bfloat16; cudaErrorInvalidValue for an unknown code.
template <class F> cudaError_t dispatch_dtype(int dtype, F&& f) {
  switch (dtype) {
    case 0: return f(float{});
    case 1: return f(__half{});
    case 2: return f(__nv_bfloat16{});
    default: return cudaErrorInvalidValue;
  }
}

// Raises a kernel's dynamic shared-memory limit when it needs more than the default 48 KiB.
template <class Kernel> cudaError_t allow_dynamic_smem(Kernel kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  int device = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return e;
  if (bytes > static_cast<size_t>(optin)) return cudaErrorInvalidValue;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}
}  // namespace emf
