// cuda_limits(): the kernels' size limits (kernel_limits.h), for ernie_m_fast.ops.native_backend.CUDA_LIMITS
// to be checked against. Each op's own binding lives in its .cu.
#include "binding.h"

EMF_BIND(m) {
  namespace py = pybind11;
  m.def("cuda_limits", []() {
    py::dict limits;
    limits["max_head_dim"] = emf::cuda::kMaxHeadDim;
    limits["max_layernorm_hidden"] = emf::cuda::kMaxLayerNormHidden;
    limits["max_batch"] = emf::cuda::kMaxGridYZ;
    limits["max_heads"] = emf::cuda::kMaxGridYZ;
    return limits;
  }, "The CUDA kernels' size limits (ernie_m_fast.ops.native_backend.CUDA_LIMITS mirrors them).");
}
