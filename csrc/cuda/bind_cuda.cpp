// Python bindings of the CUDA launchers (csrc/cuda/launchers.h). Compiled into ernie_m_fast._C when nvcc
// is found, and into ernie_m_fast._sim against the SIMT emulation: the same signatures either way.
#include "../registry.h"

EMF_BIND(m) { (void)m; }
