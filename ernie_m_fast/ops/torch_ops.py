"""The `torch` backend: plain PyTorch, line for line the reference math, and the autograd path.

Every function named after an op in ops/table.py is that op's reference (its annotated signature
is the op's signature); every other backend is tested against them, and they against an fp64
recomputation. The attention variants the model needs beyond the op live here too: with
probabilities and dropout (`attention_varlen_probs`), through SDPA (`attention_varlen_sdpa`, the
`cpu` backend's attention), and for query-only rows (`query_only_attention`).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from ..packing import padded_layout


def layernorm_residual(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm(x + residual) over the last dimension; x, residual: (..., hidden); weight, bias: (hidden,)."""
    return F.layer_norm(x + residual, (x.shape[-1],), weight, bias, eps)


def bias_residual_layernorm(x: torch.Tensor, bias: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                            norm_bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm(residual + (x + bias)) * weight + norm_bias: a Linear's output without its bias added,
    its bias, the residual branch and the LayerNorm after them (the encoder's add & norm), fused.

    x, residual: (..., hidden); bias, weight, norm_bias: (hidden,).
    """
    return F.layer_norm(residual + (x + bias), (x.shape[-1],), weight, norm_bias, eps)


def bias_gelu(x: torch.Tensor, bias: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """GELU(x + bias); approximate="none" is the exact erf form (transformers' "gelu"), "tanh" the tanh form."""
    return F.gelu(x + bias, approximate=approximate)


def attention_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int,
                     softmax_scale: Optional[float] = None) -> torch.Tensor:
    """Softmax attention within each packed sequence (no mask across sequences, no padding).

    q, k, v: (total_tokens, heads, head_dim), contiguous in (heads, head_dim); the token stride may
    be larger (views into a fused QKV projection are accepted). cu_seqlens: (batch + 1,) int32
    offsets into total_tokens (sequences may be empty); max_seqlen: at least the longest sequence.
    softmax_scale defaults to 1 / sqrt(head_dim). Returns (total_tokens, heads, head_dim),
    contiguous; rows past cu_seqlens[-1] belong to no sequence and their output is unspecified
    (static-shape layouts put filler rows there, see ernie_m_fast.cuda_graphs).
    """
    return attention_varlen_probs(q, k, v, cu_seqlens, max_seqlen, softmax_scale)


def attention_varlen_probs(q, k, v, cu_seqlens, max_seqlen: int, softmax_scale=None, dropout_p: float = 0.0,
                           return_probs: bool = False):
    """softmax(q k^T * scale) v within each packed sequence, optionally with dropout on the probabilities.

    q, k, v: (total_tokens, heads, head_dim); cu_seqlens: (batch + 1,) int32 offsets (zero-length
    sequences allowed; rows past cu_seqlens[-1] get zeros).
    Returns out (total_tokens, heads, head_dim) and, with return_probs, the probabilities
    (batch, heads, max_seqlen, max_seqlen) with exact zeros outside each sequence.
    The order of operations is transformers' ErnieM: (q k^T) / sqrt(d), additive mask, softmax, @ v.
    """
    total, heads, head_dim = q.shape
    index, valid = padded_layout(cu_seqlens, max_seqlen)
    batch = index.shape[0]

    def to_padded(t):  # (B, heads, L, d)
        return t[index.reshape(-1)].view(batch, max_seqlen, heads, head_dim).transpose(1, 2)

    qp, kp, vp = to_padded(q), to_padded(k), to_padded(v)
    scores = torch.matmul(qp, kp.transpose(-1, -2))
    if softmax_scale is None:
        scores = scores / math.sqrt(head_dim)
    else:
        scores = scores * softmax_scale
    # The mask is added and the softmax taken in fp32 (transformers adds a float32 mask too), so
    # half-precision inputs neither overflow to -inf - -inf nor lose the masked keys' exact zeros.
    key_mask = torch.zeros(valid.shape, dtype=torch.float32, device=q.device)
    key_mask.masked_fill_(~valid, torch.finfo(torch.float32).min)
    scores = scores.float() + key_mask[:, None, None, :]
    probs = torch.softmax(scores, dim=-1).to(v.dtype)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p, training=True)
    ctx = torch.matmul(probs, vp).transpose(1, 2)  # (B, L, heads, d)
    # back to packed rows by a gather of static shape (a boolean mask would give torch.compile a
    # data-dependent shape): token t of sequence b sits at slot b * L + (t - cu_seqlens[b])
    # Rows past cu_seqlens[-1] belong to no sequence (static-shape layouts leave filler there): zeros.
    tokens = torch.arange(total, device=q.device)
    seq = torch.searchsorted(cu_seqlens[1:].long(), tokens, right=True).clamp(max=batch - 1)
    slot = (seq * max_seqlen + tokens - cu_seqlens[seq].long()).clamp(0, batch * max_seqlen - 1)
    out = ctx.reshape(batch * max_seqlen, heads, head_dim)[slot]
    out = out * (tokens < cu_seqlens[-1])[:, None, None].to(out.dtype)
    if return_probs:
        probs = probs * valid[:, None, :, None]
        return out, probs
    return out


def attention_varlen_sdpa(q, k, v, cu_seqlens, max_seqlen: int, softmax_scale=None):
    """attention_varlen through torch's fused SDPA, one call per sequence (no padding at all).

    The `cpu` backend's attention: on CPU this beats padding to (B, L) by ~6x for unequal lengths.
    Reads cu_seqlens on the host, so it is meant for CPU tensors (and runs inside a custom op,
    opaque to torch.compile). Rows past cu_seqlens[-1] get zeros.
    """
    offsets = cu_seqlens.tolist()
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    out[offsets[-1]:] = 0  # only rows no sequence covers (a static layout's filler) need a value
    for start, end in zip(offsets[:-1], offsets[1:]):
        if end > start:
            # (1, heads, len, d): SDPA's fused (flash) CPU kernel takes 4-D inputs only; 3-D ones fall
            # back to the unfused math path (bmm, softmax, bmm), 1.7x slower at 16 tokens, 6x at 256
            qs, ks, vs = (t[start:end].transpose(0, 1).unsqueeze(0) for t in (q, k, v))
            out[start:end] = F.scaled_dot_product_attention(qs, ks, vs, scale=softmax_scale)[0].transpose(0, 1)
    return out


def embed_layernorm(input_ids: torch.Tensor, position_ids: torch.Tensor, word_embeddings: torch.Tensor,
                    position_embeddings: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                    eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm(word_embeddings[input_ids] + position_embeddings[position_ids]) over the hidden dimension.

    input_ids, position_ids: integer tensors of one shape (e.g. (total_tokens,) packed), already offset
    (ErnieM's +2 on positions is the caller's); word_embeddings: (vocab, hidden); position_embeddings:
    (max_positions, hidden), same dtype; weight, bias: (hidden,). Returns (*input_ids.shape, hidden).
    """
    x = F.embedding(input_ids, word_embeddings) + F.embedding(position_ids, position_embeddings)
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def gather_then_layernorm(layernorm_residual_impl, input_ids, position_ids, word_embeddings, position_embeddings,
                          weight, bias, eps):
    """embed_layernorm for a backend without a fused gather: torch gathers, the backend's own
    layernorm_residual fuses the add and the LayerNorm."""
    words = F.embedding(input_ids, word_embeddings)
    positions = F.embedding(position_ids, position_embeddings)
    return layernorm_residual_impl(words, positions, weight, bias, eps)


def query_only_attention(q, k, v, cu_seqlens, max_seqlen: int, query_rows, scale: float, dropout_p: float = 0.0):
    """Attention of query-only rows over the keyed rows of their own sequence (see ernie_m_fast.packing).

    q: (E, heads, d); k, v: (T, heads, d) keyed rows; query_rows: (E,) the sequence of each query.
    Masked keys get no weight, as in transformers.
    """
    index, valid = padded_layout(cu_seqlens, max_seqlen)
    key_index, key_valid = index[query_rows], valid[query_rows]  # (E, Lk)
    keys, values = k[key_index], v[key_index]  # (E, Lk, heads, d)
    scores = torch.einsum("ehd,elhd->ehl", q, keys).float() * scale
    scores = scores.masked_fill(~key_valid[:, None, :], float("-inf"))
    probs = torch.softmax(scores, dim=-1).to(v.dtype)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p, training=True)
    return torch.einsum("ehl,elhd->ehd", probs, values)
