// Test-only kernels that prove the emulation's semantics (tests/kernels/test_cuda_sim.py). Written in
// CUDA like the real kernels; compiled only into ernie_m_fast._sim (csrc/sim/*.cu is not given to nvcc).
#include "../cuda/cuda_compat.h"
#include "selftest.h"

namespace emf {
// In namespace emf itself: the emulation resolves `extern __shared__ ... emf_smem[]` there.
__global__ void broken_kernel(int mode, const __half* misaligned) {
  const int lane = threadIdx.x % 32;
  if (mode == 0) {  // half the warp shuffles, the other half waits at the block barrier
    if (lane < 16) (void)__shfl_sync(0xffffffffu, lane, 0);
    else __syncthreads();
  } else if (mode == 1) {  // the two halves enter different collectives with the same mask
    if (lane < 16) (void)__shfl_sync(0xffffffffu, lane, 0);
    else __syncwarp();
  } else if (mode == 2) {  // the mask names lanes that have returned
    if (lane >= 16) return;
    (void)__shfl_sync(0xffffffffu, lane, 0);
  } else if (mode == 5) {  // 128 bytes (32 floats) of dynamic shared memory; lane 31 writes float 32
    extern __shared__ __align__(128) unsigned char emf_smem[];
    reinterpret_cast<float*>(emf_smem)[threadIdx.x + 1] = 1.0f;
  } else if (mode == 4) {
    nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, nvcuda::wmma::row_major> a;
    nvcuda::wmma::load_matrix_sync(a, misaligned, 16);
  }
}

namespace simtest {

__global__ void block_sum_kernel(const float* in, float* out, bool with_barrier) {
  __shared__ float partial[1024];
  const int t = threadIdx.x;
  partial[t] = in[t];
  if (with_barrier) __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    if (with_barrier) __syncthreads();
  }
  if (t == 0) *out = partial[0];
}

cudaError_t block_sum(const float* in, float* out, int n, bool with_barrier) {
  if (n < 1 || n > 1024 || (n & (n - 1))) return cudaErrorInvalidValue;
  auto kernel = &block_sum_kernel;
  EMF_LAUNCH(kernel, dim3(1), dim3(n), 0, nullptr, in, out, with_barrier);
  return cudaGetLastError();
}

__global__ void warp_ops_kernel(int* out, float* sums) {
  const int t = threadIdx.x, lane = t % 32, warp = t / 32, n = blockDim.x;
  const unsigned full = 0xffffffffu;
  out[0 * n + t] = __shfl_sync(full, t * 10, 31 - lane);
  out[1 * n + t] = __shfl_xor_sync(full, t, 5);
  out[2 * n + t] = __shfl_down_sync(full, t, 3);
  out[3 * n + t] = __shfl_up_sync(full, t, 2);
  out[4 * n + t] = __shfl_sync(full, t, 1, 8);
  out[5 * n + t] = __shfl_xor_sync(full, t, 4, 8);
  out[6 * n + t] = static_cast<int>(__ballot_sync(full, lane % 3 == 0));
  out[7 * n + t] = __any_sync(full, lane == 7 && warp == 1);
  out[8 * n + t] = __all_sync(full, lane < 31);
  // Two half-warp groups shuffling independently under their own masks.
  if (lane < 16)
    out[9 * n + t] = __shfl_sync(0x0000ffffu, t, 15 - lane);
  else
    out[9 * n + t] = __shfl_sync(0xffff0000u, t, 47 - lane);
  // Everyone reads a neighbour's shared-memory write: correct only thanks to __syncwarp.
  __shared__ int slots[64];
  slots[t] = t * 3;
  __syncwarp();
  out[10 * n + t] = slots[warp * 32 + (lane + 1) % 32];
  sums[t] = warp_sum(static_cast<float>(t));
}

cudaError_t warp_ops(int* out, float* sums) {
  auto kernel = &warp_ops_kernel;
  EMF_LAUNCH(kernel, dim3(1), dim3(64), 0, nullptr, out, sums);
  return cudaGetLastError();
}

cudaError_t broken(int mode) {
  auto kernel = &broken_kernel;
  alignas(32) static __half buffer[512];
  const unsigned threads = mode == 3 ? 2048 : 32;
  EMF_LAUNCH(kernel, dim3(1), dim3(threads), mode == 5 ? 128 : 0, nullptr, mode, buffer + 1);
  return cudaGetLastError();
}

// acc += a . b for one 16x16x16 tile, with the operand layouts given as types.
template <class T, class LayoutA, class LayoutB>
__device__ void mma_tile(const T* a, const T* b, nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>& acc) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, LayoutA> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LayoutB> fb;
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(acc, fa, fb, acc);
}

template <class T>
__global__ void wmma_kernel(float* d, const T* a, const T* b, bool a_col_major, bool b_col_major) {
  using namespace nvcuda;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  // exercise all four operand layout combinations
  if (a_col_major && b_col_major) {
    mma_tile<T, wmma::col_major, wmma::col_major>(a, b, acc);
  } else if (a_col_major) {
    mma_tile<T, wmma::col_major, wmma::row_major>(a, b, acc);
  } else if (b_col_major) {
    mma_tile<T, wmma::row_major, wmma::col_major>(a, b, acc);
  } else {
    mma_tile<T, wmma::row_major, wmma::row_major>(a, b, acc);
  }
  wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

cudaError_t wmma_16x16x16(float* d, const void* a, const void* b, int dtype, bool a_col_major, bool b_col_major) {
  if (dtype == 1) {
    auto kernel = &wmma_kernel<__half>;
    EMF_LAUNCH(kernel, dim3(1), dim3(32), 0, nullptr, d, static_cast<const __half*>(a), static_cast<const __half*>(b),
               a_col_major, b_col_major);
  } else if (dtype == 2) {
    auto kernel = &wmma_kernel<__nv_bfloat16>;
    EMF_LAUNCH(kernel, dim3(1), dim3(32), 0, nullptr, d, static_cast<const __nv_bfloat16*>(a),
               static_cast<const __nv_bfloat16*>(b), a_col_major, b_col_major);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <class T> __global__ void convert_kernel(T* out, const float* in, int64_t n) {
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = from_float<T>(in[i]);
}

cudaError_t convert(void* out, const float* in, int64_t n, int dtype) {
  if (dtype == 1) {
    auto kernel = &convert_kernel<__half>;
    EMF_LAUNCH(kernel, dim3(4), dim3(64), 0, nullptr, static_cast<__half*>(out), in, n);
  } else if (dtype == 2) {
    auto kernel = &convert_kernel<__nv_bfloat16>;
    EMF_LAUNCH(kernel, dim3(4), dim3(64), 0, nullptr, static_cast<__nv_bfloat16*>(out), in, n);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

// Two warps swap halves of a shared tile twice. The read of the other warp's half sits before a warp
// collective and the next write after it, so in lockstep every warp has read before any warp writes
// again and the race never shows; a warp that runs ahead to the barrier overwrites its half first.
__global__ void warp_race_kernel(float* out, bool with_barrier) {
  __shared__ float tile[64];
  const int t = threadIdx.x;
  float acc = 0.f;
  for (int step = 1; step <= 2; ++step) {
    if (with_barrier) __syncthreads();  // nobody still reads the previous step's tile
    tile[t] = static_cast<float>(step * 100 + t);
    __syncthreads();
    const float other = tile[(t + 32) % 64];
    acc += __shfl_xor_sync(0xffffffffu, other, 1);
  }
  out[t] = acc;
}

cudaError_t warp_race(float* out, bool with_barrier) {
  auto kernel = &warp_race_kernel;
  EMF_LAUNCH(kernel, dim3(1), dim3(64), 0, nullptr, out, with_barrier);
  return cudaGetLastError();
}

// Block b writes its static shared slots only when b is even, then every block reads them: odd blocks
// must see the poison (NaN), not what the previous block left there.
__global__ void stale_static_shared_kernel(float* out) {
  __shared__ float slots[32];
  const int t = threadIdx.x;
  if (blockIdx.x % 2 == 0) slots[t] = static_cast<float>(blockIdx.x * 32 + t);
  __syncthreads();
  out[blockIdx.x * 32 + t] = slots[t];
}

cudaError_t stale_static_shared(float* out, int blocks) {
  auto kernel = &stale_static_shared_kernel;
  EMF_LAUNCH(kernel, dim3(blocks), dim3(32), 0, nullptr, out);
  return cudaGetLastError();
}

}  // namespace simtest
}  // namespace emf
