// Argument checks of every compiled launcher binding (csrc/cpu, csrc/cuda): one place,
// plain messages naming the op, thrown as pybind11::value_error (Python's ValueError) before any work.
// The Python side has already validated tensors (ernie_m_fast/checks.py); these guard the raw
// pointers and sizes at the C++ boundary.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>

#include "dtype.h"

namespace emf {

inline void require(bool ok, const std::string& message) {
  if (!ok) throw pybind11::value_error(message);
}

inline DType checked_dtype(int code) {
  require(code >= 0 && code <= 2, "unknown dtype code " + std::to_string(code) +
                                      " (expected 0 = float32, 1 = float16, 2 = bfloat16)");
  return static_cast<DType>(code);
}

// rows >= 0, hidden >= 1, rows * hidden fits int64; max_hidden bounds hidden (a kernel's own limit).
inline void check_sizes(const char* op, int64_t rows, int64_t hidden,
                        int64_t max_hidden = std::numeric_limits<int64_t>::max()) {
  require(rows >= 0, std::string(op) + ": rows must be >= 0, got " + std::to_string(rows));
  require(hidden > 0, std::string(op) + ": hidden must be > 0, got " + std::to_string(hidden));
  require(hidden <= max_hidden, std::string(op) + ": hidden must be in [1, " + std::to_string(max_hidden) +
                                    "], got " + std::to_string(hidden));
  require(rows <= std::numeric_limits<int64_t>::max() / hidden, std::string(op) + ": rows * hidden overflows int64");
}

inline void check_pointer(const char* op, const char* name, uintptr_t p) {
  require(p != 0, std::string(op) + ": " + name + " is a null pointer");
}

}  // namespace emf
