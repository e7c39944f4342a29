#include "cuda_compat.h"
#include "launchers.h"
namespace emf { namespace cuda {
cudaError_t attention_varlen(void*, const void*, const void*, const void*, const int32_t*, int64_t, int64_t, int64_t,
                             int64_t, int64_t, int64_t, int64_t, float, int, cudaStream_t) { return cudaErrorInvalidValue; }
}}
