"""Softmax attention over packed variable-length sequences, flash-attention style (forward only).

Each program owns BLOCK_M queries of one (sequence, head) and walks that sequence's keys BLOCK_N at a
time with an online softmax (running max m, running sum l, rescaled accumulator), so no (L, L) score
matrix ever exists: traffic is one read of Q, one read of K and V per query block, one write of O.
Scores and the softmax are fp32; the two products run on the input dtype's tensor cores with fp32
accumulation (fp32 inputs use IEEE fp32 dots, not TF32, to stay within 1e-5 of the reference).

q, k, v may be views into one fused QKV projection: only the last dimension must be contiguous and
heads must be head_dim apart; the token stride is read from the tensors, never copied away.

Interpreter gap (Triton 3.9, triton-lang/triton#11584): the interpreter multiplies the raw uint16 bit
patterns of bf16 `tl.dot` operands (errors ~1e10 on unit-scale data). Under TRITON_INTERPRET=1 and
only for bf16, the launcher sets DOT_IN_FP32: q, k and v are upcast to fp32 (exact) and p is rounded
to the nearest bf16 value in fp32 before the dots, i.e. the same products a GPU's bf16 dot forms.
The pure bf16 path runs only on a GPU (tests/gpu/test_triton_gpu.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ._common import (check_device, fix_bf16_rounding, interpreter_rounds_bf16, interpreting, launch_device,
                      next_pow2)

MAX_HEAD_DIM = 256
LOG2_E = 1.4426950408889634


@triton.jit
def _attention_varlen_kernel(
    out_ptr,  # (total_tokens, heads, head_dim), token stride out_stride_t, head stride out_stride_h
    q_ptr,  # (total_tokens, heads, head_dim), token stride q_stride_t, head stride q_stride_h, unit last stride
    k_ptr,  # (total_tokens, heads, head_dim), token stride k_stride_t, head stride k_stride_h, unit last stride
    v_ptr,  # (total_tokens, heads, head_dim), token stride v_stride_t, head stride v_stride_h, unit last stride
    cu_seqlens_ptr,  # (batch + 1,) int32: sequence b is tokens [cu_seqlens[b], cu_seqlens[b + 1])
    heads,
    head_dim,
    q_stride_t,
    q_stride_h,
    k_stride_t,
    k_stride_h,
    v_stride_t,
    v_stride_h,
    out_stride_t,
    out_stride_h,
    qk_scale,  # softmax_scale * log2(e): the softmax runs on exp2
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,  # next power of two >= head_dim (>= 16); the padding lanes load zeros
    DOT_IN_FP32: tl.constexpr,  # interpreter + bf16 only: see the module docstring
    DOT_PRECISION: tl.constexpr,  # "ieee" when the dot operands are fp32 (never TF32), else "tf32" (unused)
    ROUND_BF16: tl.constexpr,  # interpreter + bf16 only: see _common.interpreter_rounds_bf16
):
    # (sequence, head) on grid axis 0, which may exceed 65535 (many short sequences x heads); the
    # query block on axis 1. Neighbouring programs read neighbouring heads of the same tokens.
    pid_bh = tl.program_id(0).to(tl.int64)
    pid_m = tl.program_id(1).to(tl.int64)
    batch_index = pid_bh // heads
    head = pid_bh % heads
    seq_start = tl.load(cu_seqlens_ptr + batch_index).to(tl.int64)
    seq_len = tl.load(cu_seqlens_ptr + batch_index + 1).to(tl.int64) - seq_start
    m_start = pid_m * BLOCK_M
    if m_start >= seq_len:  # the grid covers max_seqlen; shorter sequences leave programs idle
        return

    # 64-bit scalar bases for this (sequence, head, query block); the per-element offsets inside a
    # tile stay 32-bit (a tile spans at most BLOCK x token stride elements), which keeps the pointer
    # tensors cheap in registers.
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d < head_dim
    m_mask = offs_m < seq_len - m_start

    q_tile = q_ptr + (seq_start + m_start) * q_stride_t + head * q_stride_h
    q = tl.load(q_tile + offs_m[:, None] * q_stride_t + offs_d[None, :],
                mask=m_mask[:, None] & d_mask[None, :], other=0.0)  # (BLOCK_M, BLOCK_D)
    if DOT_IN_FP32:
        q = q.to(tl.float32)
    k_tile = k_ptr + seq_start * k_stride_t + head * k_stride_h
    v_tile = v_ptr + seq_start * v_stride_t + head * v_stride_h

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for n_start in range(0, seq_len, BLOCK_N):
        n_mask = offs_n < seq_len - n_start
        k_t = tl.load(k_tile + offs_n[None, :] * k_stride_t + offs_d[:, None],
                      mask=n_mask[None, :] & d_mask[:, None], other=0.0)  # (BLOCK_D, BLOCK_N)
        v = tl.load(v_tile + offs_n[:, None] * v_stride_t + offs_d[None, :],
                    mask=n_mask[:, None] & d_mask[None, :], other=0.0)  # (BLOCK_N, BLOCK_D)
        if DOT_IN_FP32:
            k_t = k_t.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.dot(q, k_t, input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N), log2 units
        s = tl.where(n_mask[None, :], s, float("-inf"))
        # Every block holds at least one real key, so m_new is finite and no exp2(-inf - -inf) occurs.
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        p = tl.math.exp2(s - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        if DOT_IN_FP32:
            p_op = fix_bf16_rounding(p, True)  # the bf16 values a GPU would feed its tensor cores
        else:
            p_op = p.to(v.dtype)
        acc = tl.dot(p_op, v, acc * alpha[:, None], input_precision=DOT_PRECISION)
        m_i = m_new
        k_tile += BLOCK_N * k_stride_t
        v_tile += BLOCK_N * v_stride_t

    acc = acc / l_i[:, None]
    o_tile = out_ptr + (seq_start + m_start) * out_stride_t + head * out_stride_h
    acc = fix_bf16_rounding(acc, ROUND_BF16)
    tl.store(o_tile + offs_m[:, None] * out_stride_t + offs_d[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=m_mask[:, None] & d_mask[None, :])


@dataclass(frozen=True)
class AttentionConfig:
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int
    dot_in_fp32: bool  # True only under the interpreter with bf16 inputs


# GPU tiles by (input is fp32, head_dim bucket): (BLOCK_M, BLOCK_N, num_warps, num_stages). Picked
# without a GPU from what ptxas reports for sm_80 and sm_90 (compile_check.py): the largest tiles that
# compile without register spills and fit sm_80's shared memory. fp32 tiles are smaller: twice the
# bytes per element, and IEEE fp32 dots run on FMA units, not tensor cores.
_GPU_TILES = {
    (False, 64): (128, 64, 8, 3),
    (False, 128): (128, 64, 8, 3),
    (False, 256): (64, 32, 8, 2),
    (True, 64): (32, 32, 4, 2),
    (True, 128): (64, 16, 4, 2),
    (True, 256): (32, 16, 4, 1),
}


def choose_config(max_seqlen: int, head_dim: int, dtype: torch.dtype, interpret: bool | None = None
                  ) -> AttentionConfig:
    """Tiles from a short table by (dtype, head_dim, max_seqlen); no autotuning.

    Under the interpreter a program's cost is Python overhead per op, not FLOPs, so tiles are the
    largest that keep masked work modest (64 x 64), and short sequences shrink them to fit.
    """
    interpret = interpreting() if interpret is None else interpret
    fits = max(16, next_pow2(max_seqlen))
    dot_in_fp32 = interpret and dtype == torch.bfloat16
    if interpret:
        return AttentionConfig(min(64, fits), min(64, fits), 4, 1, dot_in_fp32)
    bucket = 64 if head_dim <= 64 else 128 if head_dim <= 128 else 256
    block_m, block_n, num_warps, num_stages = _GPU_TILES[(dtype == torch.float32, bucket)]
    block_m, block_n = min(block_m, fits), min(block_n, fits)
    if block_m < 64:  # a sequence shorter than the tile: fewer rows, fewer warps
        num_warps = 4
    return AttentionConfig(block_m, block_n, num_warps, num_stages, dot_in_fp32)


def _check_cu_seqlens_on_host(cu_seqlens: torch.Tensor, total: int, max_seqlen: int) -> None:
    """Offsets must be sorted, start at 0, end at most at total_tokens (rows past the last offset are
    a static layout's filler), and no sequence exceed max_seqlen.

    Checked only for CPU tensors (interpreter runs): on a GPU it would cost a device sync per call.
    """
    cu = cu_seqlens.tolist()
    lengths = [b - a for a, b in zip(cu[:-1], cu[1:])]
    if cu[0] != 0 or cu[-1] > total or min(lengths) < 0:
        raise ValueError(f"cu_seqlens must rise from 0 to at most total_tokens={total}, got {cu}")
    if max(lengths) > max_seqlen:
        raise ValueError(f"a sequence has {max(lengths)} tokens but max_seqlen is {max_seqlen}")


def attention_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int,
                     softmax_scale: float | None = None, *, config: AttentionConfig | None = None) -> torch.Tensor:
    """softmax(q k^T * softmax_scale) v within each packed sequence.

    q, k, v: (total_tokens, heads, head_dim), fp32/fp16/bf16, unit stride over head_dim and heads
    head_dim apart; any token stride. cu_seqlens: (batch + 1,) int32. max_seqlen: the longest
    sequence (sizes the grid). softmax_scale defaults to 1 / sqrt(head_dim). head_dim <= 256.
    Returns (total_tokens, heads, head_dim), contiguous, in q's dtype. `config` overrides the tiles.
    """
    check_device(q=q, k=k, v=v, cu_seqlens=cu_seqlens)
    total, heads, head_dim = q.shape
    if head_dim > MAX_HEAD_DIM:
        raise ValueError(f"head_dim {head_dim} is over the triton kernel's limit of {MAX_HEAD_DIM}")
    if cu_seqlens.device.type == "cpu":
        _check_cu_seqlens_on_host(cu_seqlens, total, max_seqlen)
    scale = head_dim**-0.5 if softmax_scale is None else float(softmax_scale)
    out = torch.empty((total, heads, head_dim), dtype=q.dtype, device=q.device)
    batch = cu_seqlens.numel() - 1
    if total == 0 or heads == 0:
        return out
    cfg = config or choose_config(max_seqlen, head_dim, q.dtype)
    if cfg.dot_in_fp32 and not interpreting():
        raise ValueError("dot_in_fp32 is an interpreter-only workaround; a GPU runs bf16 dots natively")
    cu = cu_seqlens.contiguous()
    dot_precision = "ieee" if q.dtype == torch.float32 or cfg.dot_in_fp32 else "tf32"
    grid = (batch * heads, triton.cdiv(max_seqlen, cfg.block_m))
    if grid[1] > 65535:  # CUDA's limit on grid axis 1
        raise ValueError(f"max_seqlen {max_seqlen} needs {grid[1]} query blocks; the limit is 65535")
    with launch_device(q):
        _attention_varlen_kernel[grid](
            out, q, k, v, cu, heads, head_dim,
            q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1), out.stride(0), out.stride(1),
            scale * LOG2_E,
            BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_D=max(16, next_pow2(head_dim)),
            DOT_IN_FP32=cfg.dot_in_fp32, DOT_PRECISION=dot_precision, ROUND_BF16=interpreter_rounds_bf16(q.dtype),
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
    return out
