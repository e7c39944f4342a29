"""The fused operations of the encoder, one entry point each, dispatched to a backend.

    layernorm_residual(x, residual, weight, bias, eps=1e-5, backend="auto")   # LayerNorm(x + residual)
    embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps=1e-5,
                    backend="auto")                                          # LayerNorm(W[ids] + P[pos])
    bias_gelu(x, bias, approximate="none", backend="auto")                    # gelu(x + bias)
    attention_varlen(q, k, v, cu_seqlens, max_seqlen, softmax_scale=None, backend="auto")
    available_backends(device)

Inputs are validated once here (ops/checks.py) for every backend. `backend="torch"` calls plain
PyTorch directly, so autograd works through it; every other backend runs behind a torch.library
custom op with a fake implementation, so torch.compile and CUDA graphs see one node per call.
"""

from __future__ import annotations

import torch

from . import backends, checks, torch_ops
from .backends import available_backends

__all__ = ["layernorm_residual", "embed_layernorm", "bias_gelu", "attention_varlen", "available_backends", "resolve_backend"]

resolve_backend = backends.resolve


@torch.library.custom_op("ernie_m_fast::layernorm_residual", mutates_args=())
def _layernorm_residual_op(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                           eps: float, backend: str) -> torch.Tensor:
    return backends.get(backend).layernorm_residual(x, residual, weight, bias, eps)


@_layernorm_residual_op.register_fake
def _(x, residual, weight, bias, eps, backend):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("ernie_m_fast::bias_gelu", mutates_args=())
def _bias_gelu_op(x: torch.Tensor, bias: torch.Tensor, approximate: str, backend: str) -> torch.Tensor:
    return backends.get(backend).bias_gelu(x, bias, approximate)


@_bias_gelu_op.register_fake
def _(x, bias, approximate, backend):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("ernie_m_fast::attention_varlen", mutates_args=())
def _attention_varlen_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                         max_seqlen: int, softmax_scale: float, backend: str) -> torch.Tensor:
    return backends.get(backend).attention_varlen(q, k, v, cu_seqlens, max_seqlen, softmax_scale)


@_attention_varlen_op.register_fake
def _(q, k, v, cu_seqlens, max_seqlen, softmax_scale, backend):
    return q.new_empty(q.shape)


@torch.library.custom_op("ernie_m_fast::embed_layernorm", mutates_args=())
def _embed_layernorm_op(input_ids: torch.Tensor, position_ids: torch.Tensor, word_embeddings: torch.Tensor,
                        position_embeddings: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                        backend: str) -> torch.Tensor:
    impl = backends.get(backend)
    if hasattr(impl, "embed_layernorm"):
        return impl.embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps)
    # backends without a fused gather delegate it to torch and fuse the add + LayerNorm
    words = torch.nn.functional.embedding(input_ids, word_embeddings)
    positions = torch.nn.functional.embedding(position_ids, position_embeddings)
    return impl.layernorm_residual(words, positions, weight, bias, eps)


@_embed_layernorm_op.register_fake
def _(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps, backend):
    return word_embeddings.new_empty(tuple(input_ids.shape) + (word_embeddings.shape[1],))


def layernorm_residual(x, residual, weight, bias, eps: float = 1e-5, backend: str = "auto"):
    """LayerNorm(x + residual) over the last dimension; x, residual: (..., hidden); weight, bias: (hidden,)."""
    checks.check_layernorm_residual(x, residual, weight, bias)
    name = backends.resolve(backend, x.device)
    if name == "torch":
        return torch_ops.layernorm_residual(x, residual, weight, bias, eps)
    return _layernorm_residual_op(x, residual, weight, bias, float(eps), name)


def bias_gelu(x, bias, approximate: str = "none", backend: str = "auto"):
    """GELU(x + bias); approximate="none" is exact erf GELU, "tanh" the tanh approximation."""
    checks.check_bias_gelu(x, bias, approximate)
    name = backends.resolve(backend, x.device)
    if name == "torch":
        return torch_ops.bias_gelu(x, bias, approximate)
    return _bias_gelu_op(x, bias, approximate, name)


def attention_varlen(q, k, v, cu_seqlens, max_seqlen: int, softmax_scale=None, backend: str = "auto"):
    """Softmax attention within each packed sequence (no mask across sequences, no padding).

    q, k, v: (total_tokens, heads, head_dim), contiguous in (heads, head_dim); the token stride may
    be larger (views into a fused QKV projection are accepted). cu_seqlens: (batch + 1,) int32
    offsets into total_tokens (sequences may be empty); max_seqlen: at least the longest sequence.
    softmax_scale defaults to 1 / sqrt(head_dim). Returns (total_tokens, heads, head_dim),
    contiguous; rows past cu_seqlens[-1] belong to no sequence and their output is unspecified
    (static-shape layouts put filler rows there, see ernie_m_fast.cuda_graphs).
    """
    checks.check_attention_varlen(q, k, v, cu_seqlens, max_seqlen)
    scale = float(softmax_scale) if softmax_scale is not None else q.shape[-1] ** -0.5
    name = backends.resolve(backend, q.device)
    if name == "torch":
        return torch_ops.attention_varlen(q, k, v, cu_seqlens, max_seqlen, softmax_scale)
    return _attention_varlen_op(q, k, v, cu_seqlens, int(max_seqlen), scale, name)


def embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps: float = 1e-5,
                    backend: str = "auto"):
    """LayerNorm(word_embeddings[input_ids] + position_embeddings[position_ids]): the embedding layer.

    input_ids, position_ids: int64/int32 of one shape (packed: (total_tokens,)), positions already
    offset; the tables: (rows, hidden); weight, bias: (hidden,). Returns (*input_ids.shape, hidden).
    Backends without a fused gather (all but triton) gather with torch and fuse the add + LayerNorm.
    """
    checks.check_embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias)
    name = backends.resolve(backend, word_embeddings.device)
    if name == "torch":
        return torch_ops.embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias,
                                         eps)
    return _embed_layernorm_op(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias,
                               float(eps), name)
