"""LayerNorm(x + bias + residual): a Linear's output without its bias, the bias, the residual add and
the LayerNorm after it, fused (the encoder's add & norm after out_proj and linear2).

Memory traffic per row of `hidden` elements: 2 reads (x, residual) + 1 write in the input dtype, the
three (hidden,) vectors staying in cache; eager PyTorch's bias add, residual add and layer_norm move
7. Statistics are fp32 and exact two-pass: a program walks its rows in BLOCK_N chunks three times
(sum, centred squares, normalise and write), accumulating per lane, so any width fits; a row that fits
one chunk is read from cache on the later passes. Block sizes are the LayerNorm's (layernorm.py).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import check_device, fix_bf16_rounding, interpreter_rounds_bf16, launch_device, rows_2d
from .layernorm import LayerNormConfig, choose_config


@triton.jit
def _row_sum(x_row, r_row, bias_ptr, row_mask, cols, start, hidden):
    """fp32 (x + bias) + residual for one chunk of columns, zero where masked, and the mask."""
    c = start + cols
    col_mask = c < hidden
    mask = row_mask[:, None] & col_mask[None, :]
    s = tl.load(x_row + c[None, :], mask=mask, other=0.0).to(tl.float32)
    s += tl.load(bias_ptr + c, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    s += tl.load(r_row + c[None, :], mask=mask, other=0.0).to(tl.float32)
    return tl.where(mask, s, 0.0), mask, c, col_mask


@triton.jit
def _bias_residual_layernorm_kernel(
    out_ptr,  # (rows, hidden), row stride out_row_stride, dtype of x
    x_ptr,  # (rows, hidden), row stride x_row_stride: the Linear's output without its bias
    bias_ptr,  # (hidden,): the Linear's bias
    residual_ptr,  # (rows, hidden), row stride r_row_stride
    weight_ptr,  # (hidden,): the LayerNorm's weight
    norm_bias_ptr,  # (hidden,): the LayerNorm's bias
    rows,
    hidden,
    x_row_stride,
    r_row_stride,
    out_row_stride,
    eps,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ROUND_BF16: tl.constexpr,  # interpreter only: see _common.interpreter_rounds_bf16
):
    row = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS).to(tl.int64)
    row_mask = row < rows
    x_row = x_ptr + row[:, None] * x_row_stride
    r_row = residual_ptr + row[:, None] * r_row_stride
    out_row = out_ptr + row[:, None] * out_row_stride
    cols = tl.arange(0, BLOCK_N)

    total = tl.zeros([BLOCK_ROWS, BLOCK_N], dtype=tl.float32)
    for start in range(0, hidden, BLOCK_N):
        s, mask, c, col_mask = _row_sum(x_row, r_row, bias_ptr, row_mask, cols, start, hidden)
        total += s
    mean = tl.sum(total, axis=1) / hidden
    squares = tl.zeros([BLOCK_ROWS, BLOCK_N], dtype=tl.float32)
    for start in range(0, hidden, BLOCK_N):
        s, mask, c, col_mask = _row_sum(x_row, r_row, bias_ptr, row_mask, cols, start, hidden)
        d = tl.where(mask, s - mean[:, None], 0.0)
        squares += d * d
    rstd = 1.0 / tl.sqrt(tl.sum(squares, axis=1) / hidden + eps)
    for start in range(0, hidden, BLOCK_N):
        s, mask, c, col_mask = _row_sum(x_row, r_row, bias_ptr, row_mask, cols, start, hidden)
        w = tl.load(weight_ptr + c, mask=col_mask, other=0.0).to(tl.float32)
        b = tl.load(norm_bias_ptr + c, mask=col_mask, other=0.0).to(tl.float32)
        y = (s - mean[:, None]) * rstd[:, None] * w[None, :] + b[None, :]
        y = fix_bf16_rounding(y, ROUND_BF16)
        tl.store(out_row + c[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


def bias_residual_layernorm(x: torch.Tensor, bias: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                            norm_bias: torch.Tensor, eps: float = 1e-5, *,
                            config: LayerNormConfig | None = None) -> torch.Tensor:
    """LayerNorm(x + bias + residual) * weight + norm_bias over the last dimension.

    x, residual: (..., hidden), one dtype (fp32/fp16/bf16) and device; bias, weight, norm_bias:
    (hidden,). Returns a contiguous tensor shaped and typed like x. Inputs are validated by
    ernie_m_fast.ops. Blocks come from the LayerNorm's table (layernorm.choose_config): this kernel
    walks any row in BLOCK_N chunks, so its single-pass flag does not apply; `config` overrides it.
    """
    check_device(x=x, bias=bias, residual=residual, weight=weight, norm_bias=norm_bias)
    hidden = x.shape[-1]
    x2, r2 = rows_2d(x), rows_2d(residual)
    rows = x2.shape[0]
    out = torch.empty((rows, hidden), dtype=x.dtype, device=x.device)
    if rows == 0:
        return out.view(x.shape)
    cfg = config or choose_config(rows, hidden)
    grid = (triton.cdiv(rows, cfg.block_rows),)
    with launch_device(x):
        _bias_residual_layernorm_kernel[grid](
            out, x2, bias.contiguous(), r2, weight.contiguous(), norm_bias.contiguous(), rows, hidden,
            x2.stride(0), r2.stride(0), out.stride(0), float(eps),
            BLOCK_ROWS=cfg.block_rows, BLOCK_N=cfg.block_n, ROUND_BF16=interpreter_rounds_bf16(x.dtype),
            num_warps=cfg.num_warps,
        )
    return out.view(x.shape)
