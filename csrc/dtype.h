// The dtype codes shared by every kernel launcher and the Python side (ernie_m_fast/ops/native_backend.py,
// DTYPE_CODES); checks.h turns a code into a DType with a plain error for unknown ones.
#pragma once

namespace emf {
enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };
}  // namespace emf
