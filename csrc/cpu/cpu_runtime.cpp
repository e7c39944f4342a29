// Introspection and test hooks of the CPU kernels: which ISA and thread count they use, forcing a
// narrower ISA or a thread count (so one machine tests every instantiation), and the storage-type
// conversions on their own (so tests can compare them with torch's bit for bit).
#include <string>

#include "cpu_common.h"
#include "cpu_math.h"
#include "registry.h"

namespace emf {
namespace cpu {
namespace {

template <typename From, typename To>
struct Convert {
  static EMF_INLINE void rows(const From* __restrict in, To* __restrict out, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = store<To>(load(in[i]));
  }
};

// out[i] = (dst dtype)(src dtype)in[i], through the kernels' own load/store. Test-only.
void convert(uintptr_t out, uintptr_t in, int64_t n, int src_code, int dst_code) {
  const DType src = checked_dtype(src_code);
  const DType dst = checked_dtype(dst_code);
  if (n < 0) throw pybind11::value_error("cpu_convert: n must be >= 0, got " + std::to_string(n));
  if (n == 0) return;
  check_pointer("cpu_convert", "out", out);
  check_pointer("cpu_convert", "in", in);
  const Isa isa = active_isa();
  with_storage_type(src, [&](auto src_tag) {
    using From = decltype(src_tag);
    with_storage_type(dst, [&](auto dst_tag) {
      using To = decltype(dst_tag);
      run_isa<Convert<From, To>>(isa, reinterpret_cast<const From*>(in), reinterpret_cast<To*>(out), n);
    });
  });
}

template <bool kExp>
struct MathFn {
  static EMF_INLINE void rows(const float* __restrict in, float* __restrict out, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = kExp ? exp_f32(in[i]) : normal_cdf_f32(in[i]);
  }
};

// out[i] = Phi(x[i]) (normal CDF) or exp(x[i]) in fp32 with the kernels' own vectorised functions. Test-only.
void math_fn(uintptr_t out, uintptr_t in, int64_t n, const std::string& name) {
  if (name != "normal_cdf" && name != "exp") throw pybind11::value_error("cpu_math: unknown function '" + name + "'");
  if (n < 0) throw pybind11::value_error("cpu_math: n must be >= 0, got " + std::to_string(n));
  if (n == 0) return;
  check_pointer("cpu_math", "out", out);
  check_pointer("cpu_math", "in", in);
  const auto* x = reinterpret_cast<const float*>(in);
  auto* o = reinterpret_cast<float*>(out);
  if (name == "exp")
    run_isa<MathFn<true>>(active_isa(), x, o, n);
  else
    run_isa<MathFn<false>>(active_isa(), x, o, n);
}

Isa isa_from_name(const std::string& name) {
  if (name == "baseline") return Isa::kBaseline;
  if (name == "avx2") return Isa::kAvx2;
  if (name == "avx512") return Isa::kAvx512;
  throw pybind11::value_error("unknown ISA '" + name + "' (expected 'baseline', 'avx2', 'avx512' or 'auto')");
}

}  // namespace
}  // namespace cpu
}  // namespace emf

EMF_BIND(m) {
  namespace py = pybind11;
  using namespace emf::cpu;
  m.def("cpu_convert", &convert, py::arg("out"), py::arg("x"), py::arg("n"), py::arg("src_dtype"),
        py::arg("dst_dtype"), "Test-only: out[i] = x[i] converted between dtype codes with the CPU kernels' code.");
  m.def("cpu_math", &math_fn, py::arg("out"), py::arg("x"), py::arg("n"), py::arg("fn"),
        "Test-only: out[i] = fn(x[i]) for fn 'normal_cdf' or 'exp', float32, with the kernels' vectorised functions.");
  m.def(
      "cpu_info",
      []() {
        py::dict info;
        info["isa"] = isa_name(active_isa());
        info["detected_isa"] = isa_name(detected_isa());
        info["max_threads"] = max_threads();
        info["min_elements_per_thread"] = kMinElementsPerThread;
        return info;
      },
      "The ISA instantiation and thread limit the CPU kernels use now.");
  m.def(
      "cpu_set_isa",
      [](const std::string& name) {
        const std::string previous = isa_override().load() < 0 ? "auto" : isa_name(active_isa());
        isa_override().store(name == "auto" ? -1 : static_cast<int>(isa_from_name(name)));
        return previous;
      },
      py::arg("name"),
      "Test hook: run the 'baseline', 'avx2' or 'avx512' instantiation (capped at what the CPU supports), or "
      "'auto'. Returns the previous setting.");
  m.def(
      "cpu_set_num_threads",
      [](int n) {
        if (n < 0) throw py::value_error("cpu_set_num_threads: n must be >= 0 (0 = OpenMP's default)");
        return threads_override().exchange(n);
      },
      py::arg("n"), "Test hook: cap the CPU kernels at n threads (0 = omp_get_max_threads()). Returns the previous cap.");
}
