// The compiled module ernie_m_fast._sim: the csrc/cuda launchers under the SIMT emulation (each .cu
// registers its own binding through registry.h), build_info(), and the emulation's test-only self-tests.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "../registry.h"
#include "selftest.h"

#ifndef EMF_VERSION
#define EMF_VERSION "unknown"
#endif

namespace py = pybind11;

namespace {
void check(const char* what, cudaError_t e) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + " kernel failed: " + cudaGetErrorString(e));
}
template <class T> T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }
}  // namespace

PYBIND11_MODULE(_sim, m) {
  m.doc() = "ernie_m_fast CUDA kernels run on CPU under the SIMT emulation in csrc/sim (backend cuda_sim)";
  m.def("build_info", []() {
    py::dict info;
    info["version"] = EMF_VERSION;
    info["cuda"] = false;
    info["cuda_archs"] = std::string();
    info["sim"] = true;
#if defined(__x86_64__)
    info["fibers"] = "x86-64 register switch";
#else
    info["fibers"] = "ucontext";
#endif
    return info;
  });
  m.def("sim_selftest_block_sum", [](uintptr_t in, uintptr_t out, int n, bool with_barrier) {
    check("block_sum", emf::simtest::block_sum(ptr<const float>(in), ptr<float>(out), n, with_barrier));
  }, "Shared-memory tree sum of n floats in one block, with or without its __syncthreads (race demo)");
  m.def("sim_selftest_warp_ops", [](uintptr_t out, uintptr_t sums) {
    check("warp_ops", emf::simtest::warp_ops(ptr<int>(out), ptr<float>(sums)));
  }, "Shuffle / vote / __syncwarp results of 64 threads: out int32 (11, 64), sums float32 (64,)");
  m.def("sim_selftest_broken", [](int mode) { check("broken", emf::simtest::broken(mode)); },
        "Runs a deliberately broken kernel (0 deadlock, 1 divergent collectives, 2 exited lane, "
        "3 bad launch configuration, 4 misaligned wmma pointer, 5 write past the dynamic shared memory); raises RuntimeError");
  m.def("sim_selftest_wmma", [](uintptr_t d, uintptr_t a, uintptr_t b, int dtype, bool a_col, bool b_col) {
    check("wmma", emf::simtest::wmma_16x16x16(ptr<float>(d), ptr<const void>(a), ptr<const void>(b), dtype, a_col, b_col));
  }, "d (16x16 fp32 row-major) = a @ b through nvcuda::wmma; a/b fp16 (1) or bf16 (2), row- or col-major");
  m.def("sim_selftest_convert", [](uintptr_t out, uintptr_t in, int64_t n, int dtype) {
    check("convert", emf::simtest::convert(ptr<void>(out), ptr<const float>(in), n, dtype));
  }, "out[i] = (half or bfloat16) in[i] with the emulation's round-to-nearest-even conversions");
  m.def("sim_selftest_warp_race", [](uintptr_t out, bool with_barrier) {
    check("warp_race", emf::simtest::warp_race(ptr<float>(out), with_barrier));
  }, "64 threads swap tile halves between warps, with or without the loop-top __syncthreads; out float32 (64,)");
  m.def("sim_selftest_stale_static_shared", [](uintptr_t out, int blocks) {
    check("stale_static_shared", emf::simtest::stale_static_shared(ptr<float>(out), blocks));
  }, "Even blocks write static __shared__ slots, all read them; out float32 (blocks * 32,)");
  m.def("sim_set_schedule", &emf_sim::set_schedule, py::arg("order"), py::arg("seed") = 0,
        "How threads interleave: lockstep 'forward' (default), 'reverse', 'random' (seeded), or "
        "'runahead-forward', 'runahead-reverse', 'runahead-random' (a warp runs to the next block barrier first)");
  m.def("sim_schedule", &emf_sim::schedule, "The current scheduling order");
  emf::bind_all(m);
}
