// out = gelu(x + bias) over rows of `hidden` elements; the exact erf form or the tanh approximation.
//
// One block per row (grid.x = rows, so any row count fits), 128-bit loads and stores where the row's
// pointers are 16-byte aligned, a scalar tail, fp32 maths.
#include "cuda_compat.h"
#include "dispatch.h"
#include "binding.h"

namespace emf {

__device__ __forceinline__ float gelu(float v, bool tanh_approx) {
  if (tanh_approx) return 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  return 0.5f * v * (1.f + erff(v * 0.7071067811865476f));
}

template <class T>
__global__ void __launch_bounds__(128)
bias_gelu_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ bias, int hidden,
                 bool tanh_approx) {
  constexpr int V = kVec<T>;
  const int64_t row = blockIdx.x;
  const T* xr = x + row * hidden;
  T* outr = out + row * hidden;
  const bool vec = aligned16(xr) && aligned16(outr) && aligned16(bias);
  const int body = vec ? hidden / V * V : 0;
  for (int i = threadIdx.x * V; i < body; i += blockDim.x * V) {
    float a[V], b[V];
    load_vec(xr + i, a);
    load_vec(bias + i, b);
#pragma unroll
    for (int j = 0; j < V; ++j) a[j] = gelu(a[j] + b[j], tanh_approx);
    store_vec(outr + i, a);
  }
  for (int i = body + threadIdx.x; i < hidden; i += blockDim.x)
    outr[i] = from_float<T>(gelu(to_float(xr[i]) + to_float(bias[i]), tanh_approx));
}

namespace cuda {
// out, x: (rows, hidden) contiguous; bias: (hidden,). out = gelu(x + bias), erf form or tanh form.
cudaError_t bias_gelu(void* out, const void* x, const void* bias, int64_t rows, int64_t hidden, bool tanh_approx,
                      int dtype, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto kernel = &bias_gelu_kernel<T>;
    EMF_LAUNCH(kernel, dim3(static_cast<unsigned>(rows)), dim3(128), 0, stream, static_cast<T*>(out),
               static_cast<const T*>(x), static_cast<const T*>(bias), static_cast<int>(hidden), tanh_approx);
    return cudaGetLastError();
  });
}
}  // namespace cuda
}  // namespace emf

EMF_BIND(m) {
  namespace py = pybind11;
  using namespace emf::cuda;
  m.def(
      "cuda_bias_gelu",
      [](uintptr_t out, uintptr_t x, uintptr_t bias, int64_t rows, int64_t hidden, bool tanh_approx, int dtype,
         uintptr_t stream) {
        const char* op = "bias_gelu";
        if (!check_rowwise(op, dtype, rows, hidden, kMaxInt, {{"out", out}, {"x", x}, {"bias", bias}})) return;
        launch(op, [&] {
          return bias_gelu(ptr<void>(out), ptr<const void>(x), ptr<const void>(bias), rows, hidden, tanh_approx,
                           dtype, as_stream(stream));
        });
      },
      py::arg("out"), py::arg("x"), py::arg("bias"), py::arg("rows"), py::arg("hidden"), py::arg("tanh"),
      py::arg("dtype"), py::arg("stream"), "out = gelu(x + bias); pointers to (rows, hidden) / (hidden,) contiguous data");
}
