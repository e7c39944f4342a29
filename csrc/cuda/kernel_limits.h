// Size limits of the kernels in csrc/cuda, shared by their launchers and bindings and reported to
// Python by cuda_limits() (kernel_limits.cu; ernie_m_fast.ops.native_backend.CUDA_LIMITS mirrors them).
#pragma once

#include <cstdint>

namespace emf {
namespace cuda {

// Largest row the LayerNorm kernels accept (one fp32 row per warp in shared memory).
constexpr int64_t kMaxLayerNormHidden = 32768;

// Largest head_dim attention_varlen accepts.
constexpr int kMaxHeadDim = 128;

// Largest gridDim.y / gridDim.z: attention_varlen's heads and batch.
constexpr int64_t kMaxGridYZ = 65535;

}  // namespace cuda
}  // namespace emf
