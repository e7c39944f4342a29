// What each csrc/cuda/<op>.cu needs to bind its own launcher as `cuda_<op>` (EMF_BIND, registry.h):
// the argument checks of csrc/checks.h, the stream cast, and the launch with the GIL released and
// failures raised. Compiled by nvcc into ernie_m_fast._C and, against csrc/sim, into ernie_m_fast._sim:
// the same bindings either way.
//
// Arguments are validated before any launch (ValueError); a launch that the runtime rejects or a
// kernel that fails raises RuntimeError naming the kernel.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "../checks.h"
#include "../registry.h"
#include "cuda_compat.h"
#include "kernel_limits.h"

namespace emf {
namespace cuda {

constexpr int64_t kMaxInt = 0x7fffffff;

inline cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

template <class T> T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

// rows in [0, 2^31) (one block per row), hidden in [1, max_hidden].
inline void check_rows(const char* op, int64_t rows, int64_t hidden, int64_t max_hidden) {
  require(rows <= kMaxInt, std::string(op) + ": rows must be in [0, 2^31), got " + std::to_string(rows));
  check_sizes(op, rows, hidden, max_hidden);
}

using NamedPointers = std::initializer_list<std::pair<const char*, uintptr_t>>;

inline void check_pointers(const char* op, NamedPointers pointers) {
  for (auto [name, p] : pointers) check_pointer(op, name, p);
}

// The checks every row-wise op's binding makes before a launch: the dtype code, the sizes and, when
// there are rows, every pointer. False when there are no rows (nothing to launch).
inline bool check_rowwise(const char* op, int dtype, int64_t rows, int64_t hidden, int64_t max_hidden,
                          NamedPointers pointers) {
  checked_dtype(dtype);
  check_rows(op, rows, hidden, max_hidden);
  if (rows == 0) return false;
  check_pointers(op, pointers);
  return true;
}

inline void raise_on_error(const char* op, cudaError_t launch_error) {
  // The launcher's own result, then anything still pending (an asynchronous failure from before).
  cudaError_t e = launch_error != cudaSuccess ? launch_error : cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(op) + " kernel failed: " + cudaGetErrorString(e));
}

// Runs `launcher()` (returns cudaError_t) with the GIL released, then raises on failure.
template <class F> void launch(const char* op, F&& launcher) {
  cudaError_t e;
  {
    pybind11::gil_scoped_release release;
    e = launcher();
  }
  raise_on_error(op, e);
}

}  // namespace cuda
}  // namespace emf
