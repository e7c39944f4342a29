"""LayerNorm(x [+ xbias] + residual) over the last dimension, fused: one read of x, residual, weight and
bias, one write. Two ops: layernorm_residual, and bias_residual_layernorm, whose xbias is a Linear's
bias added here instead of by the GEMM (the encoder's add & norm after out_proj and linear2).

Memory traffic per row of `hidden` elements: 2 reads + 1 write in the input dtype (the (hidden,) vectors
are shared by every row and stay in cache), against 3 reads + 2 writes for `x + residual` then LayerNorm
in eager PyTorch (5 reads + 2 writes with the bias add). Statistics are fp32 whatever the input dtype.

Each program normalises a tile of BLOCK_ROWS rows. A row of up to MAX_FUSED_BLOCK elements is held in
registers whole (SINGLE_PASS); a longer row is walked in BLOCK_N chunks twice: once merging per-chunk
mean and M2 (Chan et al.'s parallel variance update, no catastrophic cancellation), once normalising.

The same kernel serves embed_layernorm (embedding.py): with GATHER, x and residual rows are looked up
by index (word and position embedding tables) instead of being the output's own row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ._common import (check_device, fix_bf16_rounding, interpreter_rounds_bf16, interpreting, launch_device,
                      next_pow2, rows_2d)

# Longest row (as a power of two) kept in registers in one piece; longer rows take the chunked path.
MAX_FUSED_BLOCK = 8192


@triton.jit
def _row_sum(x_row, xbias_ptr, r_row, c, mask, col_mask, HAS_XBIAS: tl.constexpr):
    """fp32 x (+ xbias) + residual at columns c, 0 where masked."""
    s = tl.load(x_row + c[None, :], mask=mask, other=0.0).to(tl.float32)
    if HAS_XBIAS:
        s += tl.load(xbias_ptr + c, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    return s + tl.load(r_row + c[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _layernorm_residual_kernel(
    out_ptr,  # (rows, hidden), row stride out_row_stride, dtype of x
    x_ptr,  # (rows, hidden), row stride x_row_stride
    xbias_ptr,  # (hidden,): a Linear's bias added to x; only when HAS_XBIAS (bias_residual_layernorm)
    residual_ptr,  # (rows, hidden), row stride r_row_stride
    weight_ptr,  # (hidden,)
    bias_ptr,  # (hidden,)
    x_index_ptr,  # (rows,) int64: the x row each output row reads; only when GATHER (embed_layernorm)
    r_index_ptr,  # (rows,) int64: the residual row each output row reads; only when GATHER
    rows,
    hidden,
    x_row_stride,
    r_row_stride,
    out_row_stride,
    eps,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ROUND_BF16: tl.constexpr,  # interpreter only: see _common.interpreter_rounds_bf16
    SINGLE_PASS: tl.constexpr,
    GATHER: tl.constexpr,  # x and residual rows are looked up (embedding tables), not the output row
    HAS_XBIAS: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS).to(tl.int64)
    row_mask = row < rows
    if GATHER:
        x_src = tl.load(x_index_ptr + row, mask=row_mask, other=0).to(tl.int64)
        r_src = tl.load(r_index_ptr + row, mask=row_mask, other=0).to(tl.int64)
    else:
        x_src = row
        r_src = row
    x_row = x_ptr + x_src[:, None] * x_row_stride
    r_row = residual_ptr + r_src[:, None] * r_row_stride
    out_row = out_ptr + row[:, None] * out_row_stride
    cols = tl.arange(0, BLOCK_N)

    if SINGLE_PASS:
        mask = row_mask[:, None] & (cols[None, :] < hidden)
        s = _row_sum(x_row, xbias_ptr, r_row, cols, mask, cols < hidden, HAS_XBIAS)
        mean = tl.sum(s, axis=1) / hidden
        centred = tl.where(mask, s - mean[:, None], 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / hidden + eps)
        w = tl.load(weight_ptr + cols, mask=cols < hidden, other=0.0).to(tl.float32)
        b = tl.load(bias_ptr + cols, mask=cols < hidden, other=0.0).to(tl.float32)
        y = centred * rstd[:, None] * w[None, :] + b[None, :]
        y = fix_bf16_rounding(y, ROUND_BF16)
        tl.store(out_row + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)
    else:
        # Pass 1: running (count, mean, M2) per row, merged chunk by chunk.
        count = tl.zeros([BLOCK_ROWS], dtype=tl.float32)
        mean = tl.zeros([BLOCK_ROWS], dtype=tl.float32)
        m2 = tl.zeros([BLOCK_ROWS], dtype=tl.float32)
        for start in range(0, hidden, BLOCK_N):
            c = start + cols
            mask = row_mask[:, None] & (c[None, :] < hidden)
            s = _row_sum(x_row, xbias_ptr, r_row, c, mask, c < hidden, HAS_XBIAS)
            n_b = tl.sum((c < hidden).to(tl.float32), axis=0)
            mean_b = tl.sum(s, axis=1) / n_b
            d = tl.where(mask, s - mean_b[:, None], 0.0)
            m2_b = tl.sum(d * d, axis=1)
            n = count + n_b
            delta = mean_b - mean
            mean += delta * (n_b / n)
            m2 += m2_b + delta * delta * (count * n_b / n)
            count = n
        rstd = 1.0 / tl.sqrt(m2 / hidden + eps)
        # Pass 2: normalise and write.
        for start in range(0, hidden, BLOCK_N):
            c = start + cols
            col_mask = c < hidden
            mask = row_mask[:, None] & col_mask[None, :]
            s = _row_sum(x_row, xbias_ptr, r_row, c, mask, col_mask, HAS_XBIAS)
            w = tl.load(weight_ptr + c, mask=col_mask, other=0.0).to(tl.float32)
            b = tl.load(bias_ptr + c, mask=col_mask, other=0.0).to(tl.float32)
            y = (s - mean[:, None]) * rstd[:, None] * w[None, :] + b[None, :]
            y = fix_bf16_rounding(y, ROUND_BF16)
            tl.store(out_row + c[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


@dataclass(frozen=True)
class LayerNormConfig:
    block_rows: int
    block_n: int
    single_pass: bool
    num_warps: int


def choose_config(rows: int, hidden: int, interpret: bool | None = None) -> LayerNormConfig:
    """Block sizes from a short table by shape; no autotuning.

    On a GPU a program owns one row of >= 1024 elements (more rows when rows are short, so a program
    still moves ~1K elements), with warps growing with the row. Under the interpreter every program
    costs Python overhead, so a program takes up to ~16K elements (many rows) instead.
    """
    interpret = interpreting() if interpret is None else interpret
    full = next_pow2(hidden)
    single_pass = full <= MAX_FUSED_BLOCK
    block_n = full if single_pass else MAX_FUSED_BLOCK // 2
    per_program = 16384 if interpret else 1024
    block_rows = max(1, min(per_program // block_n, next_pow2(rows), 64))
    num_warps = 4 if block_n <= 1024 else 8 if block_n <= 4096 else 16
    return LayerNormConfig(block_rows, block_n, single_pass, num_warps)


def _launch(x, xbias, residual, weight, bias, eps, config):
    """One launch of the kernel over x's rows (xbias None: layernorm_residual); returns out shaped like x."""
    hidden = x.shape[-1]
    x2, r2 = rows_2d(x), rows_2d(residual)
    rows = x2.shape[0]
    out = torch.empty((rows, hidden), dtype=x.dtype, device=x.device)
    if rows == 0:
        return out.view(x.shape)
    cfg = config or choose_config(rows, hidden)
    if cfg.single_pass and cfg.block_n < hidden:
        raise ValueError(f"config.block_n={cfg.block_n} is shorter than hidden={hidden} on the single-pass path")
    grid = (triton.cdiv(rows, cfg.block_rows),)
    with launch_device(x):
        _layernorm_residual_kernel[grid](
            out, x2, x2 if xbias is None else xbias.contiguous(), r2, weight.contiguous(), bias.contiguous(), x2, r2,
            rows, hidden, x2.stride(0), r2.stride(0), out.stride(0), float(eps),
            BLOCK_ROWS=cfg.block_rows, BLOCK_N=cfg.block_n, ROUND_BF16=interpreter_rounds_bf16(x.dtype),
            SINGLE_PASS=cfg.single_pass, GATHER=False, HAS_XBIAS=xbias is not None, num_warps=cfg.num_warps,
        )
    return out.view(x.shape)


def layernorm_residual(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       eps: float = 1e-5, *, config: LayerNormConfig | None = None) -> torch.Tensor:
    """LayerNorm(x + residual) over the last dimension.

    x, residual: (..., hidden), same dtype (fp32/fp16/bf16) and device; weight, bias: (hidden,), any of
    those dtypes. Returns a contiguous tensor shaped and typed like x. `config` overrides the block choice
    (tests and benchmarks use it to reach the chunked path on small rows).
    """
    check_device(x=x, residual=residual, weight=weight, bias=bias)
    return _launch(x, None, residual, weight, bias, eps, config)


def bias_residual_layernorm(x: torch.Tensor, bias: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                            norm_bias: torch.Tensor, eps: float = 1e-5, *,
                            config: LayerNormConfig | None = None) -> torch.Tensor:
    """LayerNorm(x + bias + residual) * weight + norm_bias over the last dimension.

    x, residual: (..., hidden), one dtype (fp32/fp16/bf16) and device; bias (the Linear's), weight,
    norm_bias: (hidden,). Returns a contiguous tensor shaped and typed like x. Inputs are validated by
    ernie_m_fast.ops; `config` as for layernorm_residual.
    """
    check_device(x=x, bias=bias, residual=residual, weight=weight, norm_bias=norm_bias)
    return _launch(x, bias, residual, weight, norm_bias, eps, config)
