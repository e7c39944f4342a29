// The compiled module ernie_m_fast._C. Kernel files register their own functions (registry.h);
// this file adds only what describes the build.
#include <pybind11/pybind11.h>

#include "registry.h"

#ifndef EMF_VERSION
#define EMF_VERSION "unknown"
#endif

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "ernie_m_fast compiled kernels (CPU always; CUDA when built with nvcc)";
  m.def("build_info", []() {
    py::dict info;
    info["version"] = EMF_VERSION;
#ifdef EMF_WITH_CUDA
    info["cuda"] = true;
    info["cuda_archs"] = std::string(EMF_CUDA_ARCHS);
#else
    info["cuda"] = false;
    info["cuda_archs"] = std::string();
#endif
#ifdef EMF_WITH_OPENMP
    info["openmp"] = true;
#else
    info["openmp"] = false;
#endif
    return info;
  });
  emf::bind_all(m);
}
