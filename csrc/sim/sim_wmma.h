// nvcuda::wmma for the SIMT emulation (included by sim.h): shape 16x16x16, __half / __nv_bfloat16
// operands, float accumulators. Emulated element layout: lane L holds tile elements 8L .. 8L+7 in
// row-major order (matrix_b: row = k). See sim.h for what kernels may rely on.
#pragma once

#include <cstdint>
#include <string>

namespace emf {
// Dynamic shared memory: kernels declare `extern __shared__ __align__(128) unsigned char emf_smem[];`
// inside namespace emf, which the emulation turns into a reference to this per-OS-thread buffer
// (defined in sim_runtime.cpp). GCC needs -fno-extern-tls-init (sim.cmake): otherwise its access
// wrapper for a block-scope `extern thread_local` calls a TLS initialiser that does not exist.
extern thread_local unsigned char __attribute__((aligned(128))) emf_smem[emf_sim::kOptinSmemLimit];
}  // namespace emf

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

constexpr int kTile = 16;
constexpr int kPerLane = kTile * kTile / emf_sim::kWarpSize;  // 8

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "the emulation supports wmma shape 16x16x16 only");
  static constexpr int num_elements = kPerLane;
  using element_type = T;
  T x[kPerLane];
};

namespace detail {
// Offset in memory of logical tile element (r, c) for a row- or col-major matrix with leading dimension ldm.
inline size_t offset(int r, int c, unsigned ldm, bool col_major) {
  return col_major ? static_cast<size_t>(c) * ldm + r : static_cast<size_t>(r) * ldm + c;
}
template <class T> inline void check_pointer(const T* p, unsigned ldm, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0)
    emf_sim::fail(std::string(what) + ": pointer must be 256-bit (32-byte) aligned");
  if ((ldm * sizeof(T)) % 16 != 0)
    emf_sim::fail(std::string(what) + ": ldm must be a multiple of 16 bytes");
}
template <class L> constexpr bool is_col_major() { return std::is_same<L, col_major>::value; }
}  // namespace detail

template <class Use, class T, class Layout, class V>
inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& f, const V& v) {
  for (int i = 0; i < kPerLane; ++i) f.x[i] = static_cast<T>(v);
}

// matrix_a / matrix_b: the layout is part of the fragment type.
template <class Use, class T, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "accumulator loads take a layout_t");
  detail::check_pointer(p, ldm, "wmma::load_matrix_sync");
  const int lane = emf_sim::self().lane;
  for (int i = 0; i < kPerLane; ++i) {
    const int e = lane * kPerLane + i;
    f.x[i] = p[detail::offset(e / kTile, e % kTile, ldm, detail::is_col_major<Layout>())];
  }
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t layout) {
  detail::check_pointer(p, ldm, "wmma::load_matrix_sync");
  const int lane = emf_sim::self().lane;
  for (int i = 0; i < kPerLane; ++i) {
    const int e = lane * kPerLane + i;
    f.x[i] = p[detail::offset(e / kTile, e % kTile, ldm, layout == mem_col_major)];
  }
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t layout) {
  detail::check_pointer(p, ldm, "wmma::store_matrix_sync");
  const int lane = emf_sim::self().lane;
  for (int i = 0; i < kPerLane; ++i) {
    const int e = lane * kPerLane + i;
    p[detail::offset(e / kTile, e % kTile, ldm, layout == mem_col_major)] = f.x[i];
  }
}

namespace detail {
template <class TA, class LA, class TB, class LB>
struct Mma {
  using A = fragment<matrix_a, 16, 16, 16, TA, LA>;
  using B = fragment<matrix_b, 16, 16, 16, TB, LB>;
  using C = fragment<accumulator, 16, 16, 16, float>;
  static inline char tag;
  // Runs once per mma, in the last lane to arrive: gathers the tiles from every lane's fragments.
  static void complete(emf_sim::Fiber* lanes, unsigned /*mask*/) {
    float a[kTile][kTile], b[kTile][kTile], c[kTile][kTile];
    for (int l = 0; l < emf_sim::kWarpSize; ++l) {
      const A& fa = *static_cast<const A*>(lanes[l].ptr[1]);
      const B& fb = *static_cast<const B*>(lanes[l].ptr[2]);
      const C& fc = *static_cast<const C*>(lanes[l].ptr[3]);
      for (int i = 0; i < kPerLane; ++i) {
        const int e = l * kPerLane + i;
        a[e / kTile][e % kTile] = static_cast<float>(fa.x[i]);
        b[e / kTile][e % kTile] = static_cast<float>(fb.x[i]);
        c[e / kTile][e % kTile] = fc.x[i];
      }
    }
    for (int l = 0; l < emf_sim::kWarpSize; ++l) {
      C& fd = *static_cast<C*>(lanes[l].ptr[0]);
      for (int i = 0; i < kPerLane; ++i) {
        const int e = l * kPerLane + i, r = e / kTile, n = e % kTile;
        float acc = c[r][n];
        for (int k = 0; k < kTile; ++k) acc += a[r][k] * b[k][n];
        fd.x[i] = acc;
      }
    }
  }
};
}  // namespace detail

template <class TA, class LA, class TB, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, TA, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, TB, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  static_assert(std::is_same<TA, TB>::value, "wmma::mma_sync: matrix_a and matrix_b element types differ");
  using M = detail::Mma<TA, LA, TB, LB>;
  emf_sim::Fiber& f = emf_sim::self();
  f.ptr[0] = &d;
  f.ptr[1] = const_cast<void*>(static_cast<const void*>(&a));
  f.ptr[2] = const_cast<void*>(static_cast<const void*>(&b));
  f.ptr[3] = const_cast<void*>(static_cast<const void*>(&c));
  emf_sim::warp_collective(0xffffffffu, &M::tag, &M::complete, "wmma::mma_sync");
}
}  // namespace wmma
}  // namespace nvcuda
