// Shared machinery of the fused CPU kernels (backend `cpu`): storage-type conversions, the ISA
// dispatch and the OpenMP row partition (argument checks: csrc/checks.h).
//
// The extension is built for the baseline x86-64 ISA (SSE2) so that one wheel runs everywhere. Each
// kernel body is therefore written once, as an always-inline template, and instantiated three times:
// baseline, AVX2+FMA and AVX-512 (a `target` attribute on a thin wrapper). The widest ISA the CPU
// supports is picked once at runtime, as torch's own CPU kernels do. The loops are plain fp32 code
// that GCC vectorises (`#pragma omp simd`); there are no intrinsics, so the same source also builds
// on non-x86 hosts, where only the baseline instantiation exists.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "checks.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__)
#define EMF_INLINE inline __attribute__((always_inline))
#define EMF_INLINE_LAMBDA __attribute__((always_inline))  // after a lambda's parameter list
#else
#define EMF_INLINE inline
#define EMF_INLINE_LAMBDA
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define EMF_X86_DISPATCH 1
#define EMF_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define EMF_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
#endif

namespace emf {
namespace cpu {

struct Bf16 {  // storage of torch.bfloat16
  uint16_t bits;
};
struct F16 {  // storage of torch.float16
  uint16_t bits;
};
static_assert(sizeof(Bf16) == 2 && sizeof(F16) == 2, "16-bit storage types must be 2 bytes");

// ---- bit-exact conversions (round to nearest even, as torch's .to() does) ------------------------

EMF_INLINE float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

EMF_INLINE uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

EMF_INLINE float load(float v) { return v; }

EMF_INLINE float load(Bf16 v) { return bits_to_float(static_cast<uint32_t>(v.bits) << 16); }

// Integer-only, so a flush-denormals-to-zero mode (torch.set_flush_denormal) cannot change it:
// half subnormals are m * 2^-24, computed as an exact int -> float conversion and a power-of-two scale.
EMF_INLINE float load(F16 v) {
  const uint32_t h = v.bits;
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  const uint32_t normal = ((exponent + 112u) << 23) | (mantissa << 13);  // rebias 15 -> 127
  const uint32_t inf_nan = 0x7f800000u | (mantissa << 13);                // payload kept, as F16C does
  const uint32_t subnormal = float_to_bits(static_cast<float>(static_cast<int32_t>(mantissa)) * 0x1p-24f);
  const uint32_t magnitude = exponent == 0 ? subnormal : (exponent == 31 ? inf_nan : normal);
  return bits_to_float(sign | magnitude);
}

template <typename T>
EMF_INLINE T store(float f);

template <>
EMF_INLINE float store<float>(float f) {
  return f;
}

// NaN becomes the canonical quiet NaN 0x7fc0, as c10::BFloat16 does; everything else rounds to
// nearest even on the upper 16 bits (infinities and overflow-to-infinity included).
template <>
EMF_INLINE Bf16 store<Bf16>(float f) {
  const uint32_t u = float_to_bits(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const bool is_nan = (u & 0x7fffffffu) > 0x7f800000u;
  return Bf16{static_cast<uint16_t>(is_nan ? 0x7fc0u : rounded)};
}

// Round to nearest even (F. Giesen's float_to_half_fast3_rtne): overflow -> inf, NaN -> 0x7e00 with
// the sign kept (c10::Half), subnormal halves rounded by the FPU through one exact addition.
template <>
EMF_INLINE F16 store<F16>(float f) {
  uint32_t u = float_to_bits(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  const uint32_t overflow = u > 0x7f800000u ? 0x7e00u : 0x7c00u;
  const uint32_t subnormal = float_to_bits(bits_to_float(u) + 0.5f) - 0x3f000000u;
  const uint32_t normal = (u + 0xc8000fffu + ((u >> 13) & 1u)) >> 13;  // rebias 127 -> 15, RNE
  const uint32_t magnitude = u >= 0x47800000u ? overflow : (u < 0x38800000u ? subnormal : normal);
  return F16{static_cast<uint16_t>((sign >> 16) | magnitude)};
}

// ---- ISA dispatch -----------------------------------------------------------------------------

enum class Isa : int { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

inline Isa detected_isa() {
#ifdef EMF_X86_DISPATCH
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
      return Isa::kAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
      return Isa::kAvx2;
    return Isa::kBaseline;
  }();
  return isa;
#else
  return Isa::kBaseline;
#endif
}

// Test hook (`_C.cpu_set_isa`): run a narrower instantiation than the CPU supports. -1 = detected.
inline std::atomic<int>& isa_override() {
  static std::atomic<int> value{-1};
  return value;
}

inline Isa active_isa() {
  const int forced = isa_override().load(std::memory_order_relaxed);
  const Isa detected = detected_isa();
  return forced < 0 ? detected : static_cast<Isa>(std::min(forced, static_cast<int>(detected)));
}

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "baseline";
  }
}

// Runs K::rows(args...) compiled for `isa`. K::rows and everything it calls are EMF_INLINE, so the
// whole loop nest is compiled under the wrapper's target attribute.
template <class K, class... A>
void run_baseline(A... args) {
  K::rows(args...);
}
#ifdef EMF_X86_DISPATCH
template <class K, class... A>
EMF_TARGET_AVX2 void run_avx2(A... args) {
  K::rows(args...);
}
template <class K, class... A>
EMF_TARGET_AVX512 void run_avx512(A... args) {
  K::rows(args...);
}
#endif

template <class K, class... A>
void run_isa(Isa isa, A... args) {
#ifdef EMF_X86_DISPATCH
  if (isa == Isa::kAvx512) return run_avx512<K>(args...);
  if (isa == Isa::kAvx2) return run_avx2<K>(args...);
#endif
  run_baseline<K>(args...);
}

// ---- threading --------------------------------------------------------------------------------

// Test hook (`_C.cpu_set_num_threads`): 0 = omp_get_max_threads().
inline std::atomic<int>& threads_override() {
  static std::atomic<int> value{0};
  return value;
}

inline int max_threads() {
  const int forced = threads_override().load(std::memory_order_relaxed);
  if (forced > 0) return forced;
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Below ~32K elements per thread, waking a second thread costs more than it saves (a fork/join of
// libgomp is a few microseconds; 32K fp32 elements take ~10 us on one core).
constexpr int64_t kMinElementsPerThread = 32 * 1024;

// How many threads a call over [rows, hidden] uses: never more than one per kMinElementsPerThread.
inline int plan_threads(int64_t rows, int64_t hidden) {
  const int64_t by_size = std::max<int64_t>(1, rows / std::max<int64_t>(1, kMinElementsPerThread / hidden));
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({max_threads(), by_size, rows})));
}

// Calls body(first_row, end_row, thread_index) over a static contiguous partition of [0, rows) among
// `threads` threads (from plan_threads). Every row is computed by the same code whatever the
// partition, so results do not depend on the thread count.
template <class Body>
void parallel_rows(int threads, int64_t rows, Body&& body) {
  if (threads <= 1) {
    body(int64_t{0}, rows, 0);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int n = omp_get_num_threads();
    const int64_t begin = rows * t / n;
    const int64_t end = rows * (t + 1) / n;
    if (begin < end) body(begin, end, t);
  }
#else
  body(int64_t{0}, rows, 0);
#endif
}

// Calls f(T{}) with T the storage type of `dtype` (float, F16 or Bf16).
template <class F>
void with_storage_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      return f(float{});
    case DType::kFloat16:
      return f(F16{});
    case DType::kBFloat16:
      return f(Bf16{});
  }
}

// Parameters (weight, bias) as fp32, converted once per call rather than once per row.
template <typename T>
const float* params_as_float(const T* p, int64_t n, std::vector<float>& storage) {
  storage.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) storage[i] = load(p[i]);
  return storage.data();
}
inline const float* params_as_float(const float* p, int64_t, std::vector<float>&) { return p; }

// ---- row sums ---------------------------------------------------------------------------------

// A vectorised reduction over a whole row gives each of the 4 (SSE) to 16 (AVX-512) vector lanes a
// sequential sum of n / lanes terms, whose rounding error grows linearly with n (at 1M elements a
// LayerNorm was 300x further from fp64 than torch). Rows are therefore summed in blocks of kSumBlock
// elements, fp32 lanes within a block (16 to 64 terms per lane) and the block sums in fp64: the error
// is that of one short block at any width, on every ISA, for one fp64 add per block.
constexpr int64_t kSumBlock = 256;

// Sum of term(i) over [0, n). `term` must be inlinable (a lambda marked EMF_INLINE_LAMBDA) so that
// the block loop vectorises under the caller's ISA.
template <class F>
EMF_INLINE double blocked_sum(int64_t n, F&& term) {
  double total = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += kSumBlock) {
    const int64_t i1 = i0 + kSumBlock < n ? i0 + kSumBlock : n;
    float block = 0.0f;
#pragma omp simd reduction(+ : block)
    for (int64_t i = i0; i < i1; ++i) block += term(i);
    total += block;
  }
  return total;
}

}  // namespace cpu
}  // namespace emf
