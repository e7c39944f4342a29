// Vectorisable fp32 erf and exp for the GELU kernels. libm's erff/expf are scalar calls that stop
// GCC from vectorising a loop; these are branch-free polynomials (selects, no table lookups).
#pragma once

#include <cstdint>

#include "cpu_common.h"

namespace emf {
namespace cpu {

// erf(x), max error 0.95 ulp against fp64 erf (1.15 without FMA), measured over 1M points in [-5, 5]
// and powers of two down to 2^-130 (tests/kernels/test_cpu_kernels.py). Two polynomial pieces, both always
// evaluated and one selected, so the loop has no branches:
//   |x| < 1:         erf(x) = x + x * P(x^2),  P of degree 6 (relative fit error 1.2e-9)
//   1 <= |x| < 3.925: erf(x) = Q(|x| - m),     Q of degree 14 (absolute fit error 6.7e-9)
//   |x| >= 3.925:     erf(x) = +-1 (erf(3.925) rounds to 1 in fp32).
// Coefficients: Lawson-iterated least squares in fp64 against mpmath, rounded to fp32 (writing the
// first piece as x + x*P keeps P's leading coefficient 2/sqrt(pi) - 1 exact enough for <= 1 ulp).
// NaN propagates; erf(+-inf) = +-1.
EMF_INLINE float erf_f32(float x) {
  const float ax = std::fabs(x);
  const float a = ax > 3.925f ? 3.925f : ax;  // written so that NaN stays NaN

  const float y = a * a;
  float p = 7.853974967e-05f;
  p = p * y - 8.010230958e-04f;
  p = p * y + 5.188332405e-03f;
  p = p * y - 2.685381472e-02f;
  p = p * y + 1.128358543e-01f;
  p = p * y - 3.761262596e-01f;
  p = p * y + 1.283791661e-01f;
  const float small = a * p + a;

  const float t = a - 2.4625000954f;
  float q = 1.078209493e-06f;
  q = q * t + 1.347365668e-07f;
  q = q * t - 1.721608896e-05f;
  q = q * t + 2.416991993e-05f;
  q = q * t + 7.619794633e-05f;
  q = q * t - 2.976549440e-04f;
  q = q * t + 3.495760611e-04f;
  q = q * t + 4.662910360e-04f;
  q = q * t - 2.929336159e-03f;
  q = q * t + 6.755614188e-03f;
  q = q * t - 9.829379618e-03f;
  q = q * t + 9.733715095e-03f;
  q = q * t - 6.461154204e-03f;
  q = q * t + 2.623748733e-03f;
  q = q * t + 9.995032549e-01f;
  q = q > 1.0f ? 1.0f : q;

  const float magnitude = a < 1.0f ? small : q;
  return std::copysign(magnitude, x);
}

// exp(x) for x <= 88.72 to about 1 ulp (Cephes expf: Cody-Waite reduction by ln 2, degree-7
// polynomial); larger x gives +inf, +inf gives +inf, NaN gives NaN. Inputs below -87.33 are clamped
// there (result ~1e-38 instead of a subnormal or 0), which no caller here can tell apart.
EMF_INLINE float exp_f32(float x) {
  x = x > 88.8f ? 88.8f : x;   // n <= 128: 2^128 encodes as +inf
  x = x < -87.33f ? -87.33f : x;  // n >= -126: 2^n stays a normal number
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer, kept in the low bits
  const float shifted = x * 1.44269504089f + shifter;
  const int32_t n = static_cast<int32_t>(float_to_bits(shifted) - float_to_bits(shifter));
  const float nf = shifted - shifter;
  float r = x - nf * 0.693359375f;
  r = r - nf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const float scale = bits_to_float(static_cast<uint32_t>(n + 127) << 23);
  return p * scale;
}

}  // namespace cpu
}  // namespace emf
