# ernie_m_fast._sim: the csrc/cuda kernel sources compiled by the host C++ compiler against the SIMT
# emulation in csrc/sim (backend "cuda_sim"), each with the binding it registers (EMF_BIND), plus
# test-only kernels from csrc/sim/*.cu. Needs no nvcc. ERNIE_M_FAST_SIM=OFF (environment or -D) skips it.
emf_option(ERNIE_M_FAST_SIM ON)

if(ERNIE_M_FAST_SIM)
  set(EMF_SIM_DIR "${CMAKE_CURRENT_LIST_DIR}")
  get_filename_component(EMF_CSRC_DIR "${EMF_SIM_DIR}/.." ABSOLUTE)
  file(GLOB EMF_SIM_KERNEL_SOURCES CONFIGURE_DEPENDS "${EMF_CSRC_DIR}/cuda/*.cu" "${EMF_SIM_DIR}/*.cu")
  file(GLOB EMF_SIM_KERNEL_HEADERS CONFIGURE_DEPENDS "${EMF_CSRC_DIR}/cuda/*.cuh")
  # A source file's LANGUAGE is a per-directory property, so each .cu is compiled as C++ through a
  # generated wrapper rather than by re-labelling the .cu (which the _C target compiles with nvcc). The
  # wrapper is the .cu with its static __shared__ declarations instrumented (instrument.py says why),
  # regenerated whenever the .cu changes.
  set(EMF_SIM_WRAPPERS)
  foreach(cu IN LISTS EMF_SIM_KERNEL_SOURCES)
    get_filename_component(stem "${cu}" NAME_WE)
    set(wrapper "${CMAKE_CURRENT_BINARY_DIR}/sim_wrappers/${stem}.sim.cpp")
    add_custom_command(OUTPUT "${wrapper}"
                       COMMAND "${Python_EXECUTABLE}" "${EMF_SIM_DIR}/instrument.py" "${cu}" "${wrapper}"
                       DEPENDS "${cu}" ${EMF_SIM_KERNEL_HEADERS} "${EMF_SIM_DIR}/instrument.py" VERBATIM)
    list(APPEND EMF_SIM_WRAPPERS "${wrapper}")
  endforeach()

  pybind11_add_module(_sim MODULE WITH_SOABI
    "${EMF_SIM_DIR}/sim_module.cpp" "${EMF_SIM_DIR}/sim_runtime.cpp" ${EMF_SIM_WRAPPERS})
  # csrc/sim too: the wrappers live in the build tree, so the .cu files' relative includes resolve from -I.
  target_include_directories(_sim PRIVATE "${EMF_CSRC_DIR}" "${EMF_CSRC_DIR}/cuda" "${EMF_SIM_DIR}")
  target_compile_definitions(_sim PRIVATE EMF_SIM=1 EMF_VERSION="${EMF_VERSION}" EMF_MODULE_NAME=_sim)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    # No -ffast-math: the kernels rely on IEEE infinities (masked attention scores).
    target_compile_options(_sim PRIVATE -O2 -fno-math-errno -Wno-unknown-pragmas)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # `extern __shared__` becomes a block-scope `extern thread_local`, whose GCC access wrapper would
    # otherwise call a (non-existent) dynamic initialiser: the buffer is zero-initialised, it has none.
    target_compile_options(_sim PRIVATE -fno-extern-tls-init)
  endif()
  install(TARGETS _sim LIBRARY DESTINATION .)
endif()
