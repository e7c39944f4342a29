"""GELU(x + bias), fused: one read of x, one write (bias is shared by every row and stays in cache).

approximate="none" is the exact erf form (transformers' "gelu"); "tanh" is the tanh approximation,
written as s * sigmoid(2u) (= 0.5 s (1 + tanh u)), which needs only exp and stays finite for any |u|.
`tl.math.erf` is a libdevice call on the GPU and math.erf (vectorised) under the interpreter: correct
in both, just slow-ish in the interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ._common import (check_device, fix_bf16_rounding, interpreter_rounds_bf16, interpreting, launch_device,
                      next_pow2, rows_2d)

APPROXIMATIONS = {"none": 0, "tanh": 1}


@triton.jit
def _bias_gelu_kernel(
    out_ptr,  # (rows, hidden), contiguous, dtype of x
    x_ptr,  # (rows, hidden), row stride x_row_stride
    bias_ptr,  # (hidden,)
    rows,
    hidden,
    x_row_stride,
    out_row_stride,
    APPROX_TANH: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ROUND_BF16: tl.constexpr,  # interpreter only: see _common.interpreter_rounds_bf16
):
    row = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS).to(tl.int64)
    col = tl.program_id(1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N).to(tl.int64)
    col_mask = col < hidden
    mask = (row < rows)[:, None] & col_mask[None, :]
    s = tl.load(x_ptr + row[:, None] * x_row_stride + col[None, :], mask=mask, other=0.0).to(tl.float32)
    s += tl.load(bias_ptr + col, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    if APPROX_TANH:
        u = 0.7978845608028654 * (s + 0.044715 * s * s * s)  # sqrt(2 / pi) * (s + 0.044715 s^3)
        # exp clamped at 80: beyond it y is already s * 1e-35 (~0), and exp(89) would overflow fp32
        y = s / (1.0 + tl.exp(tl.minimum(-2.0 * u, 80.0)))
    else:
        y = 0.5 * s * (1.0 + tl.math.erf(s * 0.7071067811865476))  # 1 / sqrt(2)
    y = fix_bf16_rounding(y, ROUND_BF16)
    tl.store(out_ptr + row[:, None] * out_row_stride + col[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


@dataclass(frozen=True)
class BiasGeluConfig:
    block_rows: int
    block_n: int
    num_warps: int


def choose_config(rows: int, hidden: int, interpret: bool | None = None) -> BiasGeluConfig:
    """A 2-D tile of ~4K elements per program on a GPU (~16K under the interpreter, fewer programs)."""
    interpret = interpreting() if interpret is None else interpret
    per_program = 16384 if interpret else 4096
    block_n = min(next_pow2(hidden), 2048 if not interpret else 4096)
    block_rows = max(1, min(per_program // block_n, next_pow2(rows)))
    num_warps = 4 if block_rows * block_n <= 2048 else 8
    return BiasGeluConfig(block_rows, block_n, num_warps)


def bias_gelu(x: torch.Tensor, bias: torch.Tensor, approximate: str = "none", *,
              config: BiasGeluConfig | None = None) -> torch.Tensor:
    """GELU(x + bias). x: (..., hidden) fp32/fp16/bf16; bias: (hidden,). Returns x's shape and dtype, contiguous."""
    check_device(x=x, bias=bias)
    hidden = x.shape[-1]
    x2 = rows_2d(x)
    b = bias.contiguous()
    rows = x2.shape[0]
    out = torch.empty((rows, hidden), dtype=x.dtype, device=x.device)
    if rows == 0 or hidden == 0:
        return out.view(x.shape)
    cfg = config or choose_config(rows, hidden)
    grid = (triton.cdiv(rows, cfg.block_rows), triton.cdiv(hidden, cfg.block_n))
    with launch_device(x):
        _bias_gelu_kernel[grid](
            out, x2, b, rows, hidden, x2.stride(0), out.stride(0),
            APPROX_TANH=APPROXIMATIONS[approximate] == 1, BLOCK_ROWS=cfg.block_rows, BLOCK_N=cfg.block_n,
            ROUND_BF16=interpreter_rounds_bf16(x.dtype),
            num_warps=cfg.num_warps,
        )
    return out.view(x.shape)
