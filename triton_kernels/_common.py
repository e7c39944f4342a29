"""What every launcher in this package shares: where a kernel may run, and power-of-two block sizes.

Shape and dtype checks run once, at the entry of ernie_m_fast.ops (ernie_m_fast/checks.py, the
bottom layer this package imports for the interpreter flag too); launchers called directly trust
their inputs apart from the Triton-specific rule on devices.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from ernie_m_fast.checks import triton_interpreting as interpreting  # noqa: F401 (re-exported)


def check_device(**tensors: torch.Tensor) -> None:
    """Triton kernels run on CUDA tensors, or on CPU tensors when the interpreter executes them."""
    for name, t in tensors.items():
        if t.device.type == "cuda":
            continue
        if t.device.type == "cpu" and interpreting():
            continue
        where = "cuda tensors (or cpu tensors under TRITON_INTERPRET=1)"
        raise ValueError(f"{name} is on {t.device}; triton kernels take {where}")


def launch_device(t: torch.Tensor):
    """Context that makes t's GPU current: Triton launches on the current device, not the tensor's."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def rows_2d(t: torch.Tensor) -> torch.Tensor:
    """`t` as (rows, last_dim) with a unit stride along the last dimension; copies only if it must."""
    t2 = t.reshape(-1, t.shape[-1])
    if t2.shape[-1] > 1 and t2.stride(-1) != 1:
        t2 = t2.contiguous()
    return t2


def interpreter_rounds_bf16(dtype: torch.dtype) -> bool:
    """Whether a kernel must round fp32 -> bf16 itself (the ROUND_BF16 constexpr of every kernel).

    Triton 3.9's interpreter converts fp32 to bf16 by truncating the mantissa (toward zero, explicit
    fp_downcast_rounding="rtne" included), where a GPU rounds to nearest even: results would be up to
    one bf16 ulp off instead of half. Kernels launched under the interpreter with bf16 outputs round
    with `round_to_bf16_rne` first, which makes the truncating cast exact. Never on a GPU.
    """
    return dtype == torch.bfloat16 and interpreting()


@triton.jit
def round_to_bf16_rne(x):
    """fp32 -> fp32 holding the nearest-even bf16 value (NaN passes through), so a truncating cast is exact."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return tl.where(x != x, x, bits.to(tl.float32, bitcast=True))


@triton.jit
def fix_bf16_rounding(y, ROUND_BF16: tl.constexpr):
    """`y` ready for a cast to the output dtype: rounded by hand only when ROUND_BF16 (interpreter, bf16)."""
    if ROUND_BF16:
        y = round_to_bf16_rne(y)
    return y
