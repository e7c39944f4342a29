// Test-only kernels of the SIMT emulation (csrc/sim/selftest_kernels.cu), compiled into _sim only.
#pragma once

#include <cstdint>

#include "sim.h"

namespace emf {
namespace simtest {
// Sums n <= 1024 floats with a shared-memory tree reduction in one block of n threads, with or without
// the barriers the reduction needs.
cudaError_t block_sum(const float* in, float* out, int n, bool with_barrier);
// 64 threads (two warps) each write kWarpOps results of shuffles/votes to out[op * 64 + thread].
constexpr int kWarpOps = 11;
cudaError_t warp_ops(int* out, float* sums);
// Deliberately broken kernels: 0 deadlock (shuffle vs __syncthreads), 1 divergent collectives,
// 2 shuffle naming an exited lane, 3 invalid launch configuration, 4 misaligned wmma pointer,
// 5 write past the dynamic shared memory the launch requested.
cudaError_t broken(int mode);
// One warp: d (16x16 row-major float) = a (16x16) @ b (16x16), a/b in dtype 1 (fp16) or 2 (bf16),
// stored row-major or column-major as the flags say.
cudaError_t wmma_16x16x16(float* d, const void* a, const void* b, int dtype, bool a_col_major, bool b_col_major);
// out[i] = (T) in[i] for dtype 1 or 2: the emulation's float -> half / bfloat16 conversions.
cudaError_t convert(void* out, const float* in, int64_t n, int dtype);
// 64 threads; out[t] = the sum of the other warp's tile values over two steps, each read before a warp
// collective and overwritten after it; with_barrier adds the loop-top __syncthreads that makes it correct.
cudaError_t warp_race(float* out, bool with_barrier);
// `blocks` blocks of 32 threads; even blocks write their static __shared__ slots, every block reads them.
cudaError_t stale_static_shared(float* out, int blocks);
}  // namespace simtest
}  // namespace emf
