"""One parametrisation and one fp32 reference for every backend's kernels.

Tolerances follow flash-attention's rule: a kernel in a low-precision dtype may be at most about
twice as far from the fp32 reference as plain PyTorch in that same dtype is (plus a small absolute
floor for values that round to the same neighbours). In fp32 the bound is in units of rounding,
elementwise: a few ulp of each reference value plus a small floor (numerics.py says why each number).

Inputs made here sit between sentinel margins during kernel tests (numerics.guarded).
"""

from __future__ import annotations

import math

import torch

from numerics import check_fp32, guarded

DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# Absolute floors for the half dtypes: half an ulp at magnitude ~4 (the largest typical LayerNorm/GELU
# output here). fp32 has ulp-scaled bounds instead (numerics.fp32_allowed).
ATOL_FLOOR = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}

# Rows x hidden, including the "weird" sizes: a single row, a prime row count, tiny, non-power-of-two
# and odd hidden sizes, and a 3-D input.
ROWWISE_SHAPES = ((1, 8), (37, 8), (37, 200), (1, 1031), (37, 1031), (2, 5, 64))

# (sequence lengths in the batch, heads, head_dim): lengths 1, 5, 70, 129 and 513, very unequal batches.
ATTENTION_CASES = (
    ((1,), 1, 16),
    ((5,), 2, 32),
    ((70,), 2, 64),
    ((129,), 1, 128),
    ((1, 70, 5, 129), 2, 16),
    ((513, 1, 3), 1, 64),
    ((33, 17), 3, 128),
    ((2, 1, 1), 4, 32),
)


def case_id(case) -> str:
    lengths, heads, head_dim = case
    return f"len{'-'.join(map(str, lengths))}_h{heads}_d{head_dim}"


def make_rowwise(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = shape[-1]
    x = torch.randn(shape, generator=g) * 2.0
    residual = torch.randn(shape, generator=g)
    weight = 1.0 + 0.5 * torch.randn(hidden, generator=g)
    bias = 0.5 * torch.randn(hidden, generator=g)
    return [guarded(t.to(dtype), name) for t, name in zip((x, residual, weight, bias), ("x", "residual", "weight", "bias"))]


def make_attention(case, dtype, seed=0):
    lengths, heads, head_dim = case
    g = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    q, k, v = (guarded(torch.randn(total, heads, head_dim, generator=g).to(dtype), name) for name in "qkv")
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(lengths), 0)
    return q, k, v, guarded(cu, "cu_seqlens"), max(lengths)


def ref_layernorm_residual(x, residual, weight, bias, eps=1e-5):
    s = x.double() + residual.double()
    mean = s.mean(-1, keepdim=True)
    var = ((s - mean) ** 2).mean(-1, keepdim=True)
    return ((s - mean) / torch.sqrt(var + eps) * weight.double() + bias.double()).float()


def ref_bias_gelu(x, bias, approximate="none"):
    s = x.double() + bias.double()
    if approximate == "tanh":
        return (0.5 * s * (1 + torch.tanh(math.sqrt(2 / math.pi) * (s + 0.044715 * s**3)))).float()
    return (0.5 * s * (1 + torch.erf(s / math.sqrt(2)))).float()


def ref_attention(q, k, v, cu_seqlens, scale=None):
    """A per-sequence loop in float64: no packing trick shared with any backend."""
    head_dim = q.shape[-1]
    scale = head_dim**-0.5 if scale is None else scale
    out = torch.empty(q.shape, dtype=torch.float64)
    for b in range(cu_seqlens.numel() - 1):
        s, e = int(cu_seqlens[b]), int(cu_seqlens[b + 1])
        qs, ks, vs = (t[s:e].double().transpose(0, 1) for t in (q, k, v))  # (heads, len, d)
        p = torch.softmax(qs @ ks.transpose(-1, -2) * scale, dim=-1)
        out[s:e] = (p @ vs).transpose(0, 1)
    return out.float()


def assert_close_to_reference(out, ref, baseline, dtype, what="", backend=None):
    """out: the kernel's result; ref: fp32 reference; baseline: plain PyTorch in `dtype`.

    The `torch` backend *is* the baseline, so it is held to a bound of its own instead: in fp32 a fixed
    floor (numerics.TORCH_FLOOR_ULPS), in half precision four units of rounding of the largest
    reference value in `dtype`, plus the floor.
    """
    assert out.dtype == dtype, f"{what}: output dtype {out.dtype}, expected {dtype}"
    assert out.shape == ref.shape, f"{what}: output shape {tuple(out.shape)}, expected {tuple(ref.shape)}"
    base_err = (baseline.float() - ref).abs().max().item()
    if dtype == torch.float32:
        check_fp32(out, ref, None if backend == "torch" else base_err, what)
        return
    err = (out.float() - ref).abs().max().item()
    if backend == "torch":
        base_err = 2 * torch.finfo(dtype).eps * ref.abs().max().item()
    allowed = 2 * base_err + ATOL_FLOOR[dtype]
    assert math.isfinite(err) and err <= allowed, (
        f"{what}: max error {err:.3g} vs fp32 reference exceeds {allowed:.3g} "
        f"(PyTorch in {dtype} errs {base_err:.3g})"
    )
