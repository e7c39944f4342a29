// softmax(q k^T * scale) v within each packed sequence (varlen, no padding), flash-attention style:
// one block per (64-query tile, head, sequence), key/value tiles streamed through shared memory, an
// online softmax in fp32, the output accumulated in fp32 and normalised once at the end.
//
// q, k, v: (total, heads, head_dim) with (heads, head_dim) contiguous and any token stride (views into a
// fused QKV projection); out: (total, heads, head_dim) contiguous; cu_seqlens: (batch + 1,) int32.
//
// Block: 4 warps; warp w owns query rows 16w .. 16w+15 of the tile, so within a key tile the warps
// only meet at the two __syncthreads around the K/V load; everything else is per warp (__syncwarp).
// The two products are fp16/bf16 tensor-core tiles through nvcuda::wmma (fp32 accumulate) or, for
// fp32, plain FMAs (tf32 would not meet fp32 accuracy). The wmma accumulator layout is opaque, so S
// and O live in shared memory (fp32) where lanes can address rows: lanes 2r and 2r+1 own row r's
// softmax statistics and rescale O's row r. Head dims are padded with zeros to D = 32, 64 or 128.
#include <type_traits>

#include "cuda_compat.h"
#include "dispatch.h"
#include "binding.h"

namespace emf {

constexpr int kAttnWarps = 4;
constexpr int kAttnThreads = 32 * kAttnWarps;
constexpr int kBlockM = 16 * kAttnWarps;  // query rows per block

__host__ __device__ constexpr size_t align128(size_t bytes) { return (bytes + 127) / 128 * 128; }

template <class T, int D> struct AttnTile {
  static constexpr bool kTensorCores = !std::is_same<T, float>::value;
  static constexpr int kBlockN = D >= 128 ? 32 : 64;            // keys per tile (shared memory budget)
  // Leading dimensions in elements, padded by 16 bytes against bank conflicts (and wmma's ldm rule).
  static constexpr int kLdT = D + 16 / sizeof(T);                // Q, K, V tiles
  static constexpr int kLdS = kBlockN + 4;                        // S (fp32; P in place when T = float)
  static constexpr int kLdP = kTensorCores ? kBlockN + 8 : kLdS;  // P in T for the tensor-core product
  static constexpr int kLdO = D + 4;                              // O accumulator (fp32)
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + align128(sizeof(T) * kBlockM * kLdT);
  static constexpr size_t kV = kK + align128(sizeof(T) * kBlockN * kLdT);
  static constexpr size_t kS = kV + align128(sizeof(T) * kBlockN * kLdT);
  static constexpr size_t kP = kS + align128(sizeof(float) * kBlockM * kLdS);
  static constexpr size_t kO = kP + (kTensorCores ? align128(sizeof(T) * kBlockM * kLdP) : 0);
  static constexpr size_t kBytes = kO + align128(sizeof(float) * kBlockM * kLdO);
};

// s (16 x kBlockN, fp32) = q (16 x D) . k (kBlockN x D)^T for one warp.
template <class T, int D>
__device__ __forceinline__ void warp_qk(const T* q, const T* k, float* s, int lane) {
  using Tile = AttnTile<T, D>;
  constexpr int BN = Tile::kBlockN, LdT = Tile::kLdT, LdS = Tile::kLdS;
  if constexpr (Tile::kTensorCores) {
    using namespace nvcuda;
    (void)lane;
#pragma unroll
    for (int j = 0; j < BN / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < D; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;  // K^T: K's rows are B's columns
        wmma::load_matrix_sync(a, q + kk, LdT);
        wmma::load_matrix_sync(b, k + j * 16 * LdT + kk, LdT);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(s + j * 16, acc, LdS, wmma::mem_row_major);
    }
  } else {
    for (int c = lane; c < BN; c += 32) {
      const T* krow = k + c * LdT;
      for (int r = 0; r < 16; ++r) {
        const T* qrow = q + r * LdT;
        float acc = 0.f;
#pragma unroll 8
        for (int d = 0; d < D; ++d) acc = fmaf(qrow[d], krow[d], acc);
        s[r * LdS + c] = acc;
      }
    }
  }
}

// o (16 x D, fp32) += p (16 x kBlockN) . v (kBlockN x D) for one warp.
template <class T, int D>
__device__ __forceinline__ void warp_pv(const T* p, const T* v, float* o, int lane) {
  using Tile = AttnTile<T, D>;
  constexpr int BN = Tile::kBlockN, LdT = Tile::kLdT, LdP = Tile::kLdP, LdO = Tile::kLdO;
  if constexpr (Tile::kTensorCores) {
    using namespace nvcuda;
    (void)lane;
#pragma unroll
    for (int j = 0; j < D / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, o + j * 16, LdO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < BN; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
        wmma::load_matrix_sync(a, p + kk, LdP);
        wmma::load_matrix_sync(b, v + kk * LdT + j * 16, LdT);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(o + j * 16, acc, LdO, wmma::mem_row_major);
    }
  } else {
    for (int c = lane; c < D; c += 32) {
      for (int r = 0; r < 16; ++r) {
        float acc = o[r * LdO + c];
#pragma unroll 8
        for (int j = 0; j < BN; ++j) acc = fmaf(p[r * LdP + j], v[j * LdT + c], acc);
        o[r * LdO + c] = acc;
      }
    }
  }
}

// Copies rows [0, kRows) x columns [0, D) of one head of a (tokens, heads * head_dim) matrix into a
// shared tile with leading dimension kLdT, zero-filling rows >= valid_rows and columns >= head_dim
// (zeros, not garbage: padded columns must add nothing to q.k, and padded V rows meet P = 0, where
// 0 * NaN would still be NaN). 128-bit copies when `vec` (the launcher checked alignment and that
// head_dim and the token stride are multiples of the vector width), element copies otherwise.
template <class T, int D, int kRows>
__device__ __forceinline__ void load_tile(T* tile, const T* src, int64_t stride, int valid_rows, int head_dim,
                                          bool vec, int tid) {
  constexpr int LdT = AttnTile<T, D>::kLdT;
  if (vec) {
    constexpr int V = kVec<T>, kChunks = D / V;
    for (int i = tid; i < kRows * kChunks; i += kAttnThreads) {
      const int r = i / kChunks, c = (i % kChunks) * V;
      uint4 chunk = make_uint4(0u, 0u, 0u, 0u);
      if (r < valid_rows && c < head_dim) chunk = *reinterpret_cast<const uint4*>(src + r * stride + c);
      *reinterpret_cast<uint4*>(tile + r * LdT + c) = chunk;
    }
  } else {
    const T zero = from_float<T>(0.f);
    for (int i = tid; i < kRows * D; i += kAttnThreads) {
      const int r = i / D, c = i % D;
      tile[r * LdT + c] = (r < valid_rows && c < head_dim) ? src[r * stride + c] : zero;
    }
  }
}

template <class T, int D>
__global__ void __launch_bounds__(kAttnThreads)
attention_varlen_kernel(T* __restrict__ out, const T* __restrict__ q, const T* __restrict__ k,
                        const T* __restrict__ v, const int32_t* __restrict__ cu_seqlens, int heads, int head_dim,
                        int64_t q_stride, int64_t k_stride, int64_t v_stride, float scale, bool vec) {
  using Tile = AttnTile<T, D>;
  constexpr int BN = Tile::kBlockN, LdT = Tile::kLdT, LdS = Tile::kLdS, LdP = Tile::kLdP, LdO = Tile::kLdO;
  extern __shared__ __align__(128) unsigned char emf_smem[];
  const int m0 = blockIdx.x * kBlockM, h = blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
  if (m0 >= len) return;  // block-uniform: this sequence is shorter than the grid's longest
  const int rows = min(kBlockM, len - m0);

  T* sQ = reinterpret_cast<T*>(emf_smem + Tile::kQ);
  T* sK = reinterpret_cast<T*>(emf_smem + Tile::kK);
  T* sV = reinterpret_cast<T*>(emf_smem + Tile::kV);
  float* sS = reinterpret_cast<float*>(emf_smem + Tile::kS);
  float* sO = reinterpret_cast<float*>(emf_smem + Tile::kO);
  T* sP;
  if constexpr (Tile::kTensorCores) sP = reinterpret_cast<T*>(emf_smem + Tile::kP);
  else sP = reinterpret_cast<T*>(sS);  // fp32: probabilities overwrite the scores in place

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  load_tile<T, D, kBlockM>(sQ, q + (start + m0) * q_stride + h * head_dim, q_stride, rows, head_dim, vec, tid);
  for (int i = tid; i < kBlockM * D; i += kAttnThreads) sO[(i / D) * LdO + i % D] = 0.f;

  const int row = warp * 16 + lane / 2, half = lane & 1;  // the row whose statistics this lane keeps
  float row_max = -INFINITY, row_sum = 0.f;
  const T* qw = sQ + warp * 16 * LdT;
  float* sw = sS + warp * 16 * LdS;
  const T* pw = sP + warp * 16 * LdP;
  float* ow = sO + warp * 16 * LdO;

  for (int n0 = 0; n0 < len; n0 += BN) {
    const int cols = min(BN, len - n0);
    __syncthreads();  // every warp is done with the previous K/V tile (and Q, O are initialised)
    const int64_t first = start + n0;
    load_tile<T, D, BN>(sK, k + first * k_stride + h * head_dim, k_stride, cols, head_dim, vec, tid);
    load_tile<T, D, BN>(sV, v + first * v_stride + h * head_dim, v_stride, cols, head_dim, vec, tid);
    __syncthreads();

    warp_qk<T, D>(qw, sK, sw, lane);
    __syncwarp();

    // Online softmax of this row over the tile's valid columns (the two lanes take alternate columns).
    float* srow = sS + row * LdS;
    float tile_max = -INFINITY;
    for (int c = half; c < cols; c += 2) tile_max = fmaxf(tile_max, srow[c] * scale);
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float new_max = fmaxf(row_max, tile_max);  // finite: every tile has a valid column
    const float correction = expf(row_max - new_max);  // 0 on the first tile
    float tile_sum = 0.f;
    for (int c = half; c < BN; c += 2) {
      const float p = c < cols ? expf(srow[c] * scale - new_max) : 0.f;
      tile_sum += p;
      if constexpr (Tile::kTensorCores) sP[row * LdP + c] = from_float<T>(p);
      else srow[c] = p;
    }
    tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
    row_sum = row_sum * correction + tile_sum;
    row_max = new_max;
    for (int c = half; c < D; c += 2) sO[row * LdO + c] *= correction;
    __syncwarp();

    warp_pv<T, D>(pw, sV, ow, lane);
  }
  // Normalise the warp's rows in place, then store them cooperatively: lanes take consecutive
  // chunks of a row, so the global writes are coalesced (128-bit when `vec`).
  __syncwarp();  // the accumulator rows were last written through the warp's fragments
  const float inv = 1.f / row_sum;
  for (int c = half; c < D; c += 2) sO[row * LdO + c] *= inv;
  __syncwarp();
  const int warp_rows = min(16, rows - warp * 16);  // may be <= 0 in the tile's last warps
  T* out_w = out + (static_cast<int64_t>(start + m0 + warp * 16) * heads + h) * head_dim;
  const int64_t out_stride = static_cast<int64_t>(heads) * head_dim;
  if (vec) {
    constexpr int V = kVec<T>, kChunks = D / V;
    for (int i = lane; i < 16 * kChunks; i += 32) {
      const int r = i / kChunks, c = (i % kChunks) * V;
      if (r < warp_rows && c < head_dim) store_vec(out_w + r * out_stride + c, ow + r * LdO + c);
    }
  } else {
    for (int i = lane; i < 16 * D; i += 32) {
      const int r = i / D, c = i % D;
      if (r < warp_rows && c < head_dim) out_w[r * out_stride + c] = from_float<T>(ow[r * LdO + c]);
    }
  }
}

namespace {
template <class T, int D>
cudaError_t launch_attention(void* out, const void* q, const void* k, const void* v, const int32_t* cu_seqlens,
                             int64_t batch, int64_t heads, int64_t head_dim, int64_t q_stride, int64_t k_stride,
                             int64_t v_stride, int64_t max_seqlen, float scale, cudaStream_t stream) {
  auto kernel = &attention_varlen_kernel<T, D>;
  constexpr size_t smem = AttnTile<T, D>::kBytes;
  cudaError_t e = allow_dynamic_smem(kernel, smem);
  if (e != cudaSuccess) return e;
  // 128-bit tile loads and stores need every row of every operand to start on a 16-byte boundary.
  constexpr int V = kVec<T>;
  const bool vec = head_dim % V == 0 && q_stride % V == 0 && k_stride % V == 0 && v_stride % V == 0 &&
                   aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
  const dim3 grid(static_cast<unsigned>((max_seqlen + kBlockM - 1) / kBlockM), static_cast<unsigned>(heads),
                  static_cast<unsigned>(batch));
  EMF_LAUNCH(kernel, grid, dim3(kAttnThreads), smem, stream, static_cast<T*>(out), static_cast<const T*>(q),
             static_cast<const T*>(k), static_cast<const T*>(v), cu_seqlens, static_cast<int>(heads),
             static_cast<int>(head_dim), q_stride, k_stride, v_stride, scale, vec);
  return cudaGetLastError();
}
}  // namespace

namespace cuda {
// q, k, v: (total, heads, head_dim), contiguous in (heads, head_dim), token strides in elements;
// out: (total, heads, head_dim) contiguous; cu_seqlens: (batch + 1,) int32, device memory.
cudaError_t attention_varlen(void* out, const void* q, const void* k, const void* v, const int32_t* cu_seqlens,
                             int64_t batch, int64_t heads, int64_t head_dim, int64_t q_stride, int64_t k_stride,
                             int64_t v_stride, int64_t max_seqlen, float softmax_scale, int dtype,
                             cudaStream_t stream) {
  if (head_dim < 1 || head_dim > kMaxHeadDim) return cudaErrorInvalidValue;
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (head_dim <= 32)
      return launch_attention<T, 32>(out, q, k, v, cu_seqlens, batch, heads, head_dim, q_stride, k_stride, v_stride,
                                     max_seqlen, softmax_scale, stream);
    if (head_dim <= 64)
      return launch_attention<T, 64>(out, q, k, v, cu_seqlens, batch, heads, head_dim, q_stride, k_stride, v_stride,
                                     max_seqlen, softmax_scale, stream);
    return launch_attention<T, 128>(out, q, k, v, cu_seqlens, batch, heads, head_dim, q_stride, k_stride, v_stride,
                                    max_seqlen, softmax_scale, stream);
  });
}
}  // namespace cuda
}  // namespace emf

EMF_BIND(m) {
  namespace py = pybind11;
  using namespace emf::cuda;
  using emf::require;
  m.def(
      "cuda_attention_varlen",
      [](uintptr_t out, uintptr_t q, uintptr_t k, uintptr_t v, uintptr_t cu_seqlens, int64_t batch, int64_t heads,
         int64_t head_dim, int64_t q_stride, int64_t k_stride, int64_t v_stride, int64_t max_seqlen,
         double softmax_scale, int dtype, uintptr_t stream) {
        const char* op = "attention_varlen";
        emf::checked_dtype(dtype);
        const std::string grid_max = std::to_string(kMaxGridYZ);
        require(batch >= 1 && batch <= kMaxGridYZ,
                std::string(op) + ": batch must be in [1, " + grid_max + "], got " + std::to_string(batch));
        require(heads >= 1 && heads <= kMaxGridYZ,
                std::string(op) + ": heads must be in [1, " + grid_max + "], got " + std::to_string(heads));
        require(head_dim >= 1 && head_dim <= kMaxHeadDim,
                std::string(op) + ": head_dim must be in [1, " + std::to_string(kMaxHeadDim) + "], got " +
                    std::to_string(head_dim));
        for (int64_t stride : {q_stride, k_stride, v_stride})
          require(stride >= heads * head_dim && stride <= kMaxInt,
                  std::string(op) + ": token strides must be at least heads * head_dim, got " + std::to_string(stride));
        require(max_seqlen >= 1 && max_seqlen <= kMaxInt,
                std::string(op) + ": max_seqlen must be >= 1, got " + std::to_string(max_seqlen));
        check_pointers(op, {{"out", out}, {"q", q}, {"k", k}, {"v", v}, {"cu_seqlens", cu_seqlens}});
        launch(op, [&] {
          return attention_varlen(ptr<void>(out), ptr<const void>(q), ptr<const void>(k), ptr<const void>(v),
                                  ptr<const int32_t>(cu_seqlens), batch, heads, head_dim, q_stride, k_stride,
                                  v_stride, max_seqlen, static_cast<float>(softmax_scale), dtype, as_stream(stream));
        });
      },
      py::arg("out"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("cu_seqlens"), py::arg("batch"),
      py::arg("heads"), py::arg("head_dim"), py::arg("q_stride"), py::arg("k_stride"), py::arg("v_stride"),
      py::arg("max_seqlen"), py::arg("softmax_scale"), py::arg("dtype"), py::arg("stream"),
      "softmax(q k^T * scale) v within each packed sequence; q/k/v (total, heads, head_dim) with token strides");
}
