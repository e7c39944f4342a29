"""The triton kernels compiled for and run on a real CUDA device: the pure bf16 attention path (no
interpreter upcast), encoder-sized shapes, against the fp32 reference; then each kernel timed against
PyTorch eager with the ratios printed (`pytest -m gpu -s` shows them).

Skipped with a reason where there is no CUDA device (there, tests/kernels covers the same kernels under
TRITON_INTERPRET=1).
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; no GPU on this host"),
]

triton = pytest.importorskip("triton")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "kernels"))
from cases import (assert_close_to_reference, make_attention, make_rowwise, ref_attention,  # noqa: E402
                   ref_bias_gelu, ref_layernorm_residual)

import ernie_m_fast as emf  # noqa: E402
from ernie_m_fast.ops import torch_ops  # noqa: E402
from ernie_m_fast.ops.table import OPS  # noqa: E402

DEVICE = torch.device("cuda")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
DTYPE_IDS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def _on_device(tensors):
    return [t.to(DEVICE) if isinstance(t, torch.Tensor) else t for t in tensors]


@pytest.fixture(autouse=True, scope="module")
def _real_kernels_only():
    from ernie_m_fast.triton_kernels import _common

    if _common.interpreting():
        pytest.skip("TRITON_INTERPRET is set: these tests are for compiled kernels")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", [(1, 8), (37, 1031), (4096, 768), (2048, 1024), (3, 9000)], ids=str)
def test_layernorm_residual_gpu(dtype, shape):
    x, r, w, b = _on_device(make_rowwise(shape, dtype))
    out = emf.ops.layernorm_residual(x, r, w, b, backend="triton")
    ref = ref_layernorm_residual(x, r, w, b)
    assert_close_to_reference(out, ref, torch_ops.layernorm_residual(x, r, w, b), dtype, "layernorm_residual")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", [(1, 8), (37, 1031), (4096, 3072)], ids=str)
def test_bias_gelu_gpu(dtype, shape, approximate):
    x, _, _, b = _on_device(make_rowwise(shape, dtype))
    out = emf.ops.bias_gelu(x, b, approximate=approximate, backend="triton")
    assert_close_to_reference(out, ref_bias_gelu(x, b, approximate), torch_ops.bias_gelu(x, b, approximate), dtype,
                              "bias_gelu")


ATTENTION_GPU_CASES = (
    ((1,), 1, 16),
    ((513, 1, 3), 2, 64),
    ((512, 384, 200, 17, 1), 12, 64),
    ((129, 70), 4, 128),
    ((97, 1025), 2, 59),
    ((64, 5), 3, 32),
)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("case", ATTENTION_GPU_CASES, ids=lambda c: f"len{'-'.join(map(str, c[0]))}_h{c[1]}_d{c[2]}")
def test_attention_varlen_gpu(dtype, case):
    from ernie_m_fast.triton_kernels import attention

    q, k, v, cu, max_len = _on_device(make_attention(case, dtype))
    cfg = attention.choose_config(max_len, q.shape[-1], dtype)
    assert not cfg.dot_in_fp32, "the GPU must run the native bf16 dots, never the interpreter upcast"
    out = emf.ops.attention_varlen(q, k, v, cu, max_len, backend="triton")
    ref = ref_attention(q.cpu(), k.cpu(), v.cpu(), cu.cpu())
    baseline = torch_ops.attention_varlen(q, k, v, cu, max_len)
    assert_close_to_reference(out.cpu(), ref, baseline.cpu(), dtype, "attention_varlen")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=DTYPE_IDS.get)
def test_attention_varlen_fused_qkv_views_gpu(dtype):
    lengths, heads, head_dim = (300, 7, 128), 12, 64
    q, k, v, cu, max_len = _on_device(make_attention((lengths, heads, head_dim), dtype))
    total = q.shape[0]
    qkv = torch.cat([t.reshape(total, -1) for t in (q, k, v)], dim=1).view(total, 3, heads, head_dim)
    out = emf.ops.attention_varlen(qkv[:, 0], qkv[:, 1], qkv[:, 2], cu, max_len, backend="triton")
    ref = ref_attention(q.cpu(), k.cpu(), v.cpu(), cu.cpu())
    assert_close_to_reference(out.cpu(), ref, torch_ops.attention_varlen(q, k, v, cu, max_len).cpu(), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_embed_layernorm_gpu(dtype):
    from ernie_m_fast import triton_kernels

    g = torch.Generator().manual_seed(0)
    tokens, vocab, positions, hidden = 3000, 250002, 514, 768  # ErnieM base tables
    words = torch.randn(vocab, hidden, generator=g).to(dtype)
    pos_table = (0.5 * torch.randn(positions, hidden, generator=g)).to(dtype)
    ids, pos = torch.randint(0, vocab, (tokens,), generator=g), torch.randint(0, positions, (tokens,), generator=g)
    _, _, w, b = make_rowwise((1, hidden), dtype)
    args = _on_device([ids, pos, words, pos_table, w, b])
    out = triton_kernels.embed_layernorm(*args, 1e-5)
    ref = ref_layernorm_residual(words[ids], pos_table[pos], w, b)
    assert_close_to_reference(out.cpu(), ref, torch_ops.embed_layernorm(*args, 1e-5).cpu(), dtype, "embed_layernorm")


def test_triton_custom_ops_trace_under_torch_compile_gpu():
    """The public ops, dispatch included, trace into one graph (fullgraph) with each kernel behind its
    torch.library custom op as a single node."""
    from ernie_m_fast import ops

    x, r, w, b = _on_device(make_rowwise((64, 768), torch.bfloat16))

    def layer_tail(x, r):
        return ops.bias_gelu(ops.layernorm_residual(x, r, w, b, 1e-5, backend="triton"), b, "none", backend="auto")

    compiled = torch.compile(layer_tail, fullgraph=True)
    torch.testing.assert_close(compiled(x, r), layer_tail(x, r))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=DTYPE_IDS.get)
def test_triton_vs_eager_timing_gpu(dtype):
    """Prints each kernel's speed-up over eager PyTorch, measured in the same run; asserts only that
    it ran (speed depends on the card). Compare ratios only across runs on the same card."""
    from ernie_m_fast.bench import kernels

    rows = kernels.run(device=DEVICE, dtype=dtype, backends=["triton"])
    print(f"\n[{torch.cuda.get_device_name(DEVICE)}]\n" + kernels.format_rows(rows))
    assert {r["op"] for r in rows} == {op.name for op in OPS}  # every op of the table
    assert all(r["backend_ms"] > 0 for r in rows)
