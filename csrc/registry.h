// Self-registration of Python bindings: each kernel file adds its own functions to the module, so
// adding a kernel never touches bindings.cpp.
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

namespace emf {
using Binder = void (*)(pybind11::module_&);

inline std::vector<Binder>& binders() {
  static std::vector<Binder> all;  // function-local: safe against static-initialisation order
  return all;
}

inline int add_binder(Binder b) {
  binders().push_back(b);
  return 0;
}

inline void bind_all(pybind11::module_& m) {
  for (Binder b : binders()) b(m);
}
}  // namespace emf

#define EMF_CONCAT_IMPL(a, b) a##b
#define EMF_CONCAT(a, b) EMF_CONCAT_IMPL(a, b)
// EMF_BIND(m) { m.def(...); }  — at namespace scope in any source file linked into the module.
#define EMF_BIND(m)                                                              \
  static void EMF_CONCAT(emf_bind_, __LINE__)(pybind11::module_ & m);            \
  static const int EMF_CONCAT(emf_bind_reg_, __LINE__) =                         \
      ::emf::add_binder(&EMF_CONCAT(emf_bind_, __LINE__));                       \
  static void EMF_CONCAT(emf_bind_, __LINE__)(pybind11::module_ & m)
