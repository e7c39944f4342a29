// SIMT emulation: lets the unmodified kernel sources in csrc/cuda compile with the host C++ compiler
// and run on CPU memory with CUDA semantics, for the subset of CUDA those kernels use.
//
// What it emulates
// - Launch: EMF_LAUNCH(kernel, grid, block, smem, stream, args...) (csrc/cuda/cuda_compat.h) runs
//   every block of the grid, one after another, on the calling OS thread. Launch configurations are
//   validated as the driver does (block <= 1024 threads, grid.y/z <= 65535, dynamic shared memory <=
//   48 KiB unless cudaFuncSetAttribute raised the kernel's limit, at most the sm_80 opt-in maximum).
//   Errors are reported through cudaGetLastError(), like a failed launch.
// - Threads: every thread of a block is a fiber with its own stack (x86-64 / AArch64: a few
//   instructions of register save/restore; elsewhere ucontext). A fiber runs until it reaches a
//   barrier or a warp collective, so threads really interleave there: code that reads another
//   thread's shared-memory write without the barrier in between sees the stale value. Two kinds of
//   schedule (emf_sim::set_schedule): lockstep passes, each resuming every runnable thread once (so
//   warps advance one collective per pass together), and run-ahead, where one warp runs through its
//   warp collectives (__syncwarp, shuffles, mma_sync) until all its lanes reach a block barrier or
//   exit before the next warp starts, exposing races between warps whose two sides sit between
//   collectives; each in forward, reverse or seeded random order of threads and warps. A barrier nobody can
//   complete (divergent __syncthreads, a shuffle whose mask names a lane that went elsewhere or exited)
//   is reported as a deadlock, with every thread's state, instead of hanging.
// - Built-ins: threadIdx, blockIdx, blockDim, gridDim, warpSize; __global__/__device__/__host__/
//   __forceinline__/__launch_bounds__/__align__/__restrict__; __shared__ (static: one copy per block,
//   as block-scope thread_local storage shared by the block's fibers, filled with 0xFF bytes when the
//   block's first thread reaches the declaration (sim.cmake rewrites each static declaration to call
//   emf_sim::poison_static_shared), so a read before any write, or of the previous block's values,
//   shows up as NaN; dynamic: `extern __shared__`
//   arrays named emf_smem declared inside namespace emf, filled with 0xFF bytes (NaN) at every block
//   start so reads of unwritten shared memory show up, and checked after the block for writes past
//   the size the launch requested).
// - Synchronisation: __syncthreads (threads that have exited count as arrived, as on hardware),
//   __syncwarp(mask), __shfl_sync / __shfl_xor_sync / __shfl_down_sync / __shfl_up_sync (with width),
//   __ballot_sync / __all_sync / __any_sync. Every lane named in a mask must reach the same collective
//   with the same mask; reading a lane outside the mask is an error (undefined on hardware).
// - Types and maths: __half / __nv_bfloat16 (+ half2 / bfloat162) with round-to-nearest-even
//   conversions, float2/float4/uint2/uint4/int4 with CUDA's alignment, dim3/uint3, erff/tanhf/expf/
//   exp2f/rsqrtf/fmaxf/..., __expf and __fdividef (computed exactly: the emulation is *more* accurate
//   than the hardware intrinsics), __ldg.
// - nvcuda::wmma, shape 16x16x16 only: matrix_a/matrix_b in __half or __nv_bfloat16 (row_major or
//   col_major), float accumulators. Fragment element layout of the emulation: lane L holds elements
//   8L .. 8L+7 of the tile in row-major order (row = e / 16, col = e % 16, for matrix_b row = k). Real
//   hardware uses a different, undocumented layout, so kernels may only apply the same operation to
//   every element of a fragment. load/store_matrix_sync check the hardware's requirements (256-bit
//   aligned pointer, ldm a multiple of 16 bytes) and act per lane; mma_sync is a warp collective (the
//   last lane to arrive multiplies the whole tile in fp32 for all 32 lanes).
// - Runtime API: cudaStream_t (ignored: work is synchronous), cudaGetLastError, cudaGetErrorString,
//   cudaFuncSetAttribute(MaxDynamicSharedMemorySize), cudaGetDevice, cudaDeviceGetAttribute(shared
//   memory opt-in), cudaPeekAtLastError.
//
// Limits: no global-memory races are detected (blocks run one at a time, so inter-block races never
// show); no atomics, cooperative groups, PTX/inline asm, cp.async, TMA, wgmma, textures, or memory
// fences beyond what barriers imply; timing-dependent behaviour (e.g. warp-synchronous code without
// __syncwarp) is exposed only for the orders the scheduler tries. Static __shared__ variables must be
// declared one per statement inside a function (the rewrite refuses anything else). Threads switch
// only at barriers and warp collectives, so code between two of them runs atomically per thread. The
// hardware intrinsics' reduced precision (__expf) is not reproduced. Blocks run serially (no speed-up
// from host cores): fine for tests, not a way to run models.
#pragma once

#include <algorithm>
#include <math.h>

#include <cmath>
#include <cstdio>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#define EMF_SIM 1

// ---------------------------------------------------------------------------------- qualifiers
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))  // valid amid decl-specifiers, unlike alignas
// Block-scope thread_local is implicitly static: one copy per OS thread, shared by the block's fibers.
#define __shared__ thread_local
#define __constant__  // an ordinary global: the host has no constant bank

// ---------------------------------------------------------------------------------- vector types
struct uint3 { unsigned int x, y, z; };
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) uint2 { unsigned int x, y; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// ---------------------------------------------------------------------------------- half / bfloat16
namespace emf_sim {
inline uint32_t float_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// float -> IEEE binary16, round to nearest even (subnormals, overflow to inf, NaN kept quiet).
inline uint16_t float_to_half_bits(float f) {
  const uint32_t x = float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0u));
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  const int e = static_cast<int>(a >> 23);
  if (e < 113) {  // |f| < 2^-14: a half subnormal (or zero); unit 2^-24
    if (e < 102) return static_cast<uint16_t>(sign);
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const int shift = 126 - e;  // 14..24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = ((static_cast<uint32_t>(e) - 112u) << 10) | ((a >> 13) & 0x3ffu);
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is correct
  return static_cast<uint16_t>(sign | h);
}

inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  if (e == 31) return bits_float(sign | 0x7f800000u | (m << 13));
  return bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

inline uint16_t float_to_bf16_bits(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float bf16_bits_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }
}  // namespace emf_sim

struct __half {
  uint16_t __x;
  __half() = default;
  __half(float f) : __x(emf_sim::float_to_half_bits(f)) {}
  operator float() const { return emf_sim::half_bits_to_float(__x); }
};
struct __nv_bfloat16 {
  uint16_t __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) : __x(emf_sim::float_to_bf16_bits(f)) {}
  operator float() const { return emf_sim::bf16_bits_to_float(__x); }
};
struct alignas(4) __half2 { __half x, y; };
struct alignas(4) __nv_bfloat162 { __nv_bfloat16 x, y; };
typedef __half half;
typedef __half2 half2;
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return static_cast<float>(h); }
inline __half2 __floats2half2_rn(float a, float b) { return {__half(a), __half(b)}; }
inline __half2 __float22half2_rn(float2 v) { return {__half(v.x), __half(v.y)}; }
inline float2 __half22float2(__half2 h) { return {static_cast<float>(h.x), static_cast<float>(h.y)}; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return static_cast<float>(b); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__nv_bfloat16(a), __nv_bfloat16(b)}; }
inline __nv_bfloat162 __float22bfloat162_rn(float2 v) { return {__nv_bfloat16(v.x), __nv_bfloat16(v.y)}; }
inline float2 __bfloat1622float2(__nv_bfloat162 b) { return {static_cast<float>(b.x), static_cast<float>(b.y)}; }

// ---------------------------------------------------------------------------------- maths
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
template <class T> inline T __ldg(const T* p) { return *p; }
// CUDA's integer min/max overloads (device code calls them unqualified).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
// erff, tanhf, expf, exp2f, logf, sqrtf, fabsf, fmaf, fmaxf, fminf: the C library's, from <math.h>.

// ---------------------------------------------------------------------------------- runtime types
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};
typedef struct CUstream_st* cudaStream_t;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlock = 8, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };

namespace emf_sim {
constexpr int kWarpSize = 32;
constexpr size_t kDefaultSmemLimit = 48 * 1024;
constexpr size_t kOptinSmemLimit = 166912;  // sm_80's opt-in maximum: what fits there fits on sm_90

enum class State : int { Runnable, AtBlockBarrier, AtWarpCollective, Done };

struct Fiber;
struct Block;
// A warp collective: once every lane of `mask` waits in it, the last lane to arrive calls
// `complete(lanes of the warp, mask)`, which reads every participant's inputs and writes their outputs
// (the other lanes are suspended, so their Fiber fields and stacks are safe to touch).
using CompleteFn = void (*)(Fiber* lanes, unsigned mask);

struct Fiber {
  void* sp = nullptr;           // saved stack pointer (asm switch) or ucontext (fallback)
  void* stack = nullptr;        // lowest usable address of the stack mapping
  size_t stack_size = 0;
  uint3 tid{0, 0, 0};
  int linear = 0, lane = 0, warp = 0;
  State state = State::Done;
  // the collective this fiber waits in
  unsigned mask = 0;
  CompleteFn complete = nullptr;
  const void* tag = nullptr;    // identifies the collective's kind (and template instantiation)
  uint64_t in = 0, out = 0;
  int src = 0;
  void* ptr[4] = {nullptr, nullptr, nullptr, nullptr};
  const char* what = "";        // human-readable name of the collective, for deadlock reports
};

// The state of the block being run on this OS thread.
struct Block {
  uint3 block_idx{0, 0, 0};
  dim3 block_dim, grid_dim;
  Fiber* fibers = nullptr;
  int nthreads = 0, live = 0, at_barrier = 0;
  unsigned barrier_generation = 0;  // counts released __syncthreads (run-ahead schedules stop a warp there)
  const void* poisoned[16] = {};    // static __shared__ variables already poisoned in this block
  int npoisoned = 0;
  Fiber* current = nullptr;
  std::string error;  // set by a fiber that failed; the launch reports it
};

inline thread_local Block tls_block;
inline Block& block() { return tls_block; }
inline Fiber& self() { return *tls_block.current; }

// Implemented in sim_runtime.cpp.
void yield_to_scheduler();                 // suspend the current fiber
[[noreturn]] void fail(const std::string& message);  // abort the kernel with an error (from a fiber)
unsigned char* dynamic_smem_base();

inline void release_block_barrier() {
  Block& b = block();
  for (int i = 0; i < b.nthreads; ++i)
    if (b.fibers[i].state == State::AtBlockBarrier) b.fibers[i].state = State::Runnable;
  b.at_barrier = 0;
  ++b.barrier_generation;
}

// Called by every thread that reaches a static __shared__ declaration (inserted by sim.cmake's
// rewrite of the kernel source): the block's first fills the variable with 0xFF bytes (NaN as floats).
inline void poison_static_shared(void* p, size_t bytes) {
  Block& b = block();
  for (int i = 0; i < b.npoisoned; ++i)
    if (b.poisoned[i] == p) return;
  if (b.npoisoned == static_cast<int>(sizeof b.poisoned / sizeof b.poisoned[0]))
    fail("cuda_sim: more than 16 static __shared__ variables in one kernel");
  b.poisoned[b.npoisoned++] = p;
  std::memset(p, 0xff, bytes);
}

inline void syncthreads() {
  Block& b = block();
  Fiber& f = self();
  f.state = State::AtBlockBarrier;
  f.what = "__syncthreads";
  if (++b.at_barrier == b.live) release_block_barrier();
  yield_to_scheduler();
}

// Enter a warp collective; returns once every lane of `mask` has entered it and it has completed.
inline void warp_collective(unsigned mask, const void* tag, CompleteFn complete, const char* what) {
  Block& b = block();
  Fiber& f = self();
  if (!(mask & (1u << f.lane)))
    fail(std::string(what) + ": the calling lane " + std::to_string(f.lane) + " is not in the mask");
  Fiber* lanes = b.fibers + f.warp * kWarpSize;
  const int lanes_in_warp = std::min(kWarpSize, b.nthreads - f.warp * kWarpSize);
  if (lanes_in_warp < kWarpSize && (mask >> lanes_in_warp))
    fail(std::string(what) + ": the mask names lanes beyond the end of a partial warp");
  f.state = State::AtWarpCollective;
  f.mask = mask;
  f.tag = tag;
  f.complete = complete;
  f.what = what;
  bool all_here = true;
  for (int l = 0; l < kWarpSize && all_here; ++l) {
    if (!(mask & (1u << l))) continue;
    const Fiber& o = lanes[l];
    if (o.state == State::Done)
      fail(std::string(what) + ": the mask names lane " + std::to_string(l) + ", which has exited");
    all_here = o.state == State::AtWarpCollective && o.mask == mask;
  }
  if (all_here) {
    for (int l = 0; l < kWarpSize; ++l)
      if ((mask & (1u << l)) && lanes[l].tag != tag)
        fail(std::string("divergent warp collective: lane ") + std::to_string(l) + " is in " + lanes[l].what +
             " while lane " + std::to_string(f.lane) + " is in " + what);
    complete(lanes, mask);
    for (int l = 0; l < kWarpSize; ++l)
      if (mask & (1u << l)) lanes[l].state = State::Runnable;
  }
  yield_to_scheduler();
}

template <class T> inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffled types are at most 8 bytes");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <class T> inline T from_bits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

inline void complete_shuffle(Fiber* lanes, unsigned mask) {
  for (int l = 0; l < kWarpSize; ++l) {
    if (!(mask & (1u << l))) continue;
    const int s = lanes[l].src;
    if (!(mask & (1u << s))) fail("__shfl*_sync: lane " + std::to_string(l) + " reads lane " + std::to_string(s) +
                                  ", which is not in the mask (undefined on hardware)");
    lanes[l].out = lanes[s].in;
  }
}
inline void complete_ballot(Fiber* lanes, unsigned mask) {
  uint64_t bits = 0;
  for (int l = 0; l < kWarpSize; ++l)
    if ((mask & (1u << l)) && lanes[l].in) bits |= 1ull << l;
  for (int l = 0; l < kWarpSize; ++l)
    if (mask & (1u << l)) lanes[l].out = bits;
}
inline void complete_nothing(Fiber*, unsigned) {}

inline char tag_shuffle, tag_ballot, tag_syncwarp;

template <class T> inline T shuffle(unsigned mask, T var, int src_lane, const char* what) {
  Fiber& f = self();
  f.in = to_bits(var);
  f.src = src_lane;
  warp_collective(mask, &tag_shuffle, complete_shuffle, what);
  return from_bits<T>(self().out);
}

inline void check_width(int width, const char* what) {
  if (width < 1 || width > kWarpSize || (width & (width - 1)))
    fail(std::string(what) + ": width must be a power of two <= 32");
}
}  // namespace emf_sim

// ---------------------------------------------------------------------------------- built-ins
#define threadIdx (::emf_sim::self().tid)
#define blockIdx (::emf_sim::block().block_idx)
#define blockDim (::emf_sim::block().block_dim)
#define gridDim (::emf_sim::block().grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads() { emf_sim::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  emf_sim::warp_collective(mask, &emf_sim::tag_syncwarp, emf_sim::complete_nothing, "__syncwarp");
}
template <class T> inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  emf_sim::check_width(width, "__shfl_sync");
  const int lane = emf_sim::self().lane;
  const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return emf_sim::shuffle(mask, var, src, "__shfl_sync");
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  emf_sim::check_width(width, "__shfl_xor_sync");
  const int lane = emf_sim::self().lane;
  int src = lane ^ lane_mask;
  if (src >= ((lane / width) + 1) * width) src = lane;  // later groups are out of reach: own value
  return emf_sim::shuffle(mask, var, src & 31, "__shfl_xor_sync");
}
template <class T> inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  emf_sim::check_width(width, "__shfl_down_sync");
  const int lane = emf_sim::self().lane;
  const int src = (lane % width) + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : lane;
  return emf_sim::shuffle(mask, var, src, "__shfl_down_sync");
}
template <class T> inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  emf_sim::check_width(width, "__shfl_up_sync");
  const int lane = emf_sim::self().lane;
  const int src = (lane % width) >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : lane;
  return emf_sim::shuffle(mask, var, src, "__shfl_up_sync");
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  emf_sim::self().in = predicate != 0;
  emf_sim::warp_collective(mask, &emf_sim::tag_ballot, emf_sim::complete_ballot, "__ballot_sync");
  return static_cast<unsigned>(emf_sim::self().out);
}
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == mask; }
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }

// ---------------------------------------------------------------------------------- runtime API
namespace emf_sim {
// Per-kernel dynamic shared memory limits raised by cudaFuncSetAttribute, and the last error.
void set_max_dynamic_smem(const void* kernel, int bytes);
size_t max_dynamic_smem(const void* kernel);
void set_last_error(cudaError_t code, const std::string& message);
cudaError_t get_last_error(bool reset);
const char* error_string(cudaError_t code);

// How a block's threads are interleaved. Lockstep: "forward" (thread 0 first, the default),
// "reverse", or "random" (a seeded shuffle per pass). Run-ahead: "runahead-forward" (warp 0 runs
// to the next block barrier first), "runahead-reverse", "runahead-random" (seeded shuffles of warps
// and lanes). EMF_SIM_SCHEDULE sets the initial value. Correct kernels give the same answer under
// all six; racy ones fail under at least one.
void set_schedule(const std::string& order, uint64_t seed);
std::string schedule();

struct KernelBody {
  virtual void run() = 0;
  virtual ~KernelBody() = default;
};
// Runs the grid (sim_runtime.cpp). Reports failures through the last error.
void run_grid(const void* kernel_id, dim3 grid, dim3 block, size_t dynamic_smem, KernelBody& body);

template <class F, class... Args> struct BoundKernel : KernelBody {
  F kernel;
  std::tuple<Args...> args;
  BoundKernel(F k, Args... a) : kernel(k), args(a...) {}
  void run() override { std::apply(kernel, args); }
};

template <class... Params, class... Args>
inline void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t /*stream*/,
                   Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
  BoundKernel<void (*)(Params...), std::decay_t<Params>...> bound(kernel, static_cast<Params>(args)...);
  run_grid(reinterpret_cast<const void*>(kernel), grid, block, smem, bound);
}
}  // namespace emf_sim

inline cudaError_t cudaGetLastError() { return emf_sim::get_last_error(true); }
inline cudaError_t cudaPeekAtLastError() { return emf_sim::get_last_error(false); }
inline const char* cudaGetErrorString(cudaError_t code) { return emf_sim::error_string(code); }
inline cudaError_t cudaGetDevice(int* device) { *device = 0; return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int /*device*/) {
  switch (attr) {
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(emf_sim::kDefaultSmemLimit); return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(emf_sim::kOptinSmemLimit); return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}
template <class... Params>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(Params...), cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<size_t>(value) > emf_sim::kOptinSmemLimit) {
    emf_sim::set_last_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: invalid value");
    return cudaErrorInvalidValue;
  }
  emf_sim::set_max_dynamic_smem(reinterpret_cast<const void*>(kernel), value);
  return cudaSuccess;
}

#include "sim_wmma.h"
