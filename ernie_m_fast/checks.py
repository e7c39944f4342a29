"""The bottom layer of the fused ops: their input checks and the TRITON_INTERPRET flag.

`ernie_m_fast.ops` validates every call here once, at its entry, before any backend runs (plain
messages, ValueError); `triton_kernels` reads the interpreter flag from here. This module imports
only torch, so both can depend on it without depending on each other.
"""

from __future__ import annotations

import os

import torch

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def triton_interpreting() -> bool:
    """True when Triton runs kernels through its NumPy interpreter (TRITON_INTERPRET=1), not a GPU."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def check_float_tensor(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"{name} has dtype {t.dtype}; supported: float32, float16, bfloat16")


def check_same(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}")
    if a.dtype != b.dtype:
        raise ValueError(f"{name_a} has dtype {a.dtype} but {name_b} has dtype {b.dtype}")


def check_layernorm_residual(x, residual, weight, bias, eps=1e-5) -> None:
    check_float_tensor("x", x)
    check_float_tensor("residual", residual)
    check_same("x", x, "residual", residual)
    if x.shape != residual.shape:
        raise ValueError(f"x has shape {tuple(x.shape)} but residual has shape {tuple(residual.shape)}")
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last dimension, got shape {tuple(x.shape)}")
    _check_norm_params(weight, bias, x.shape[-1], "x", x)


def _check_norm_params(weight, bias, hidden: int, like_name: str, like: torch.Tensor) -> None:
    """A LayerNorm's weight and bias: float, (hidden,), on the same device as `like`."""
    for name, p in (("weight", weight), ("bias", bias)):
        check_float_tensor(name, p)
        if p.device != like.device:
            raise ValueError(f"{name} is on {p.device} but {like_name} is on {like.device}")
        if p.shape != (hidden,):
            raise ValueError(f"{name} must have shape ({hidden},), got {tuple(p.shape)}")


def check_bias_residual_layernorm(x, bias, residual, weight, norm_bias, eps=1e-5) -> None:
    check_layernorm_residual(x, residual, weight, norm_bias)
    check_float_tensor("bias", bias)
    if bias.device != x.device:
        raise ValueError(f"bias is on {bias.device} but x is on {x.device}")
    if bias.shape != (x.shape[-1],):
        raise ValueError(f"bias must have shape ({x.shape[-1]},), got {tuple(bias.shape)}")


def check_bias_gelu(x, bias, approximate: str = "none") -> None:
    check_float_tensor("x", x)
    check_float_tensor("bias", bias)
    if bias.device != x.device:
        raise ValueError(f"bias is on {bias.device} but x is on {x.device}")
    if x.dim() < 1 or bias.shape != (x.shape[-1],):
        raise ValueError(f"bias must have shape ({x.shape[-1] if x.dim() else '?'},), got {tuple(bias.shape)}")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def check_attention_varlen(q, k, v, cu_seqlens, max_seqlen, softmax_scale=None) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(name, t)
        if t.dim() != 3:
            raise ValueError(f"{name} must be (total_tokens, heads, head_dim), got shape {tuple(t.shape)}")
        if t.stride(-1) != 1 or t.stride(-2) != t.shape[-1]:
            raise ValueError(f"{name} must be contiguous in its last two dimensions (heads, head_dim)")
    check_same("q", q, "k", k)
    check_same("q", q, "v", v)
    if q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must have the same shape, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if not isinstance(cu_seqlens, torch.Tensor) or cu_seqlens.dtype != torch.int32 or cu_seqlens.dim() != 1:
        raise ValueError("cu_seqlens must be a 1-D int32 tensor of length batch + 1")
    if cu_seqlens.device != q.device:
        raise ValueError(f"cu_seqlens is on {cu_seqlens.device} but q is on {q.device}")
    if cu_seqlens.numel() < 2:
        raise ValueError("cu_seqlens must hold at least two offsets (one sequence)")
    if not isinstance(max_seqlen, int) or max_seqlen < 1:
        raise ValueError(f"max_seqlen must be a positive int, got {max_seqlen!r}")
    if softmax_scale is not None and not isinstance(softmax_scale, (int, float)):
        raise ValueError(f"softmax_scale must be a float or None, got {softmax_scale!r}")


def check_embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps=1e-5) -> None:
    for name, ids in (("input_ids", input_ids), ("position_ids", position_ids)):
        if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"{name} must be an int64 or int32 tensor")
    if input_ids.shape != position_ids.shape:
        raise ValueError(f"input_ids has shape {tuple(input_ids.shape)} "
                         f"but position_ids has shape {tuple(position_ids.shape)}")
    for name, table in (("word_embeddings", word_embeddings), ("position_embeddings", position_embeddings)):
        check_float_tensor(name, table)
        if table.dim() != 2:
            raise ValueError(f"{name} must be (rows, hidden), got shape {tuple(table.shape)}")
    check_same("word_embeddings", word_embeddings, "position_embeddings", position_embeddings)
    hidden = word_embeddings.shape[1]
    if position_embeddings.shape[1] != hidden:
        raise ValueError(f"word_embeddings has hidden size {hidden} but position_embeddings has "
                         f"{position_embeddings.shape[1]}")
    for name, t in (("input_ids", input_ids), ("position_ids", position_ids)):
        if t.device != word_embeddings.device:
            raise ValueError(f"{name} is on {t.device} but word_embeddings is on {word_embeddings.device}")
    _check_norm_params(weight, bias, hidden, "word_embeddings", word_embeddings)
