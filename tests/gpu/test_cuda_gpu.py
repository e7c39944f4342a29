"""The `cuda` backend (csrc/cuda compiled by nvcc) on a real device against the fp32 reference, on the
same cases as every other backend (tests/kernels/cases.py). Skipped where there is no CUDA device."""

from __future__ import annotations

import pytest
import torch

import ernie_m_fast as emf

from cases import (ATTENTION_CASES, DTYPES, ROWWISE_SHAPES, assert_close_to_reference, case_id, make_attention,
                   make_rowwise, ref_attention, ref_bias_gelu, ref_layernorm_residual)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DTYPE_IDS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@pytest.fixture(autouse=True)
def _needs_cuda_backend():
    reasons = emf.ops.backends.unavailable_reasons("cuda", torch.device("cuda"))
    if reasons:
        pytest.skip("; ".join(reasons))


def _cuda(*tensors):
    return [t.cuda() for t in tensors]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", ROWWISE_SHAPES, ids=str)
def test_layernorm_residual(dtype, shape):
    x, r, w, b = make_rowwise(shape, dtype)
    out = emf.ops.layernorm_residual(*_cuda(x, r, w, b), eps=1e-5, backend="cuda")
    torch.cuda.synchronize()
    ref = ref_layernorm_residual(x, r, w, b, 1e-5)
    baseline = emf.ops.torch_ops.layernorm_residual(x, r, w, b, 1e-5)
    assert_close_to_reference(out.cpu(), ref, baseline, dtype, "layernorm_residual[cuda]")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", ROWWISE_SHAPES, ids=str)
def test_bias_gelu(approximate, dtype, shape):
    x, _, _, b = make_rowwise(shape, dtype)
    out = emf.ops.bias_gelu(*_cuda(x, b), approximate=approximate, backend="cuda")
    ref = ref_bias_gelu(x, b, approximate)
    baseline = emf.ops.torch_ops.bias_gelu(x, b, approximate)
    assert_close_to_reference(out.cpu(), ref, baseline, dtype, "bias_gelu[cuda]")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=case_id)
def test_attention_varlen(dtype, case):
    q, k, v, cu, max_len = make_attention(case, dtype)
    out = emf.ops.attention_varlen(*_cuda(q, k, v, cu), max_len, backend="cuda")
    ref = ref_attention(q, k, v, cu)
    baseline = emf.ops.torch_ops.attention_varlen(q, k, v, cu, max_len)
    assert_close_to_reference(out.cpu(), ref, baseline, dtype, "attention_varlen[cuda]")


def test_attention_varlen_strided_qkv_and_head_dim_59():
    """Views into a fused QKV projection (token stride 3 * heads * d) and a head dim that is not a
    multiple of 16 (zero-padded to 64 inside the kernel)."""
    q, k, v, cu, max_len = make_attention(((7, 97, 1025), 2, 59), torch.float16)
    fused = torch.stack([q, k, v], dim=1).cuda()
    out = emf.ops.attention_varlen(fused[:, 0], fused[:, 1], fused[:, 2], cu.cuda(), max_len, backend="cuda")
    ref = ref_attention(q, k, v, cu)
    baseline = emf.ops.torch_ops.attention_varlen(q, k, v, cu, max_len)
    assert_close_to_reference(out.cpu(), ref, baseline, torch.float16, "attention_varlen[cuda] strided")


def test_kernels_run_on_the_current_stream():
    x, r, w, b = _cuda(*make_rowwise((64, 768), torch.float16))
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = emf.ops.layernorm_residual(x, r, w, b, backend="cuda")
    stream.synchronize()
    ref = emf.ops.torch_ops.layernorm_residual(x.float(), r.float(), w.float(), b.float())
    assert (out.float() - ref).abs().max().item() < 2e-2
