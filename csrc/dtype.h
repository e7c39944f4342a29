// The dtype codes shared by every kernel launcher and the Python side (ernie_m_fast/ops/_native.py).
#pragma once
#include <stdexcept>
#include <string>

namespace emf {
enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

inline DType dtype_from_code(int code) {
  if (code < 0 || code > 2) throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  return static_cast<DType>(code);
}
}  // namespace emf
