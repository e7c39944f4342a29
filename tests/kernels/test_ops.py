"""Every backend available on this CPU host against the fp32 reference, on the shared cases.

Backends are discovered (`available_backends("cpu")`), so a new backend is tested the moment it is
available; test_backends_present checks none silently dropped out of the build.
"""

from __future__ import annotations

import pytest
import torch

import ernie_m_fast as emf
from ernie_m_fast.ops import torch_ops

from cases import (ATTENTION_CASES, DTYPES, ROWWISE_SHAPES, assert_close_to_reference, case_id, make_attention,
                   make_rowwise, ref_attention, ref_bias_gelu, ref_layernorm_residual)
from numerics import backend_runs, guarded

BACKEND_NAMES = emf.ops.available_backends("cpu")
BACKENDS = backend_runs(BACKEND_NAMES)  # pytest params: cuda_sim once per emulation schedule
DTYPE_IDS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", ROWWISE_SHAPES, ids=str)
def test_layernorm_residual(backend, dtype, shape):
    x, r, w, b = make_rowwise(shape, dtype)
    out = emf.ops.layernorm_residual(x, r, w, b, eps=1e-5, backend=backend)
    ref = ref_layernorm_residual(x, r, w, b, 1e-5)
    baseline = torch_ops.layernorm_residual(x, r, w, b, 1e-5)
    assert_close_to_reference(out, ref, baseline, dtype, f"layernorm_residual[{backend}]", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", ROWWISE_SHAPES, ids=str)
def test_bias_gelu(backend, approximate, dtype, shape):
    x, _, _, b = make_rowwise(shape, dtype)
    out = emf.ops.bias_gelu(x, b, approximate=approximate, backend=backend)
    ref = ref_bias_gelu(x, b, approximate)
    baseline = torch_ops.bias_gelu(x, b, approximate)
    assert_close_to_reference(out, ref, baseline, dtype, f"bias_gelu[{backend}]", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=case_id)
def test_attention_varlen(backend, dtype, case):
    q, k, v, cu, max_len = make_attention(case, dtype)
    out = emf.ops.attention_varlen(q, k, v, cu, max_len, backend=backend)
    ref = ref_attention(q, k, v, cu)
    baseline = torch_ops.attention_varlen(q, k, v, cu, max_len)
    assert_close_to_reference(out, ref, baseline, dtype, f"attention_varlen[{backend}]", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_varlen_strided_qkv(backend):
    """q/k/v as views into one fused (tokens, 3, heads, d) projection, as the encoder passes them."""
    q, k, v, cu, max_len = make_attention(((7, 30), 2, 32), torch.float32)
    fused = torch.stack([q, k, v], dim=1)  # (T, 3, heads, d): token stride 3 * heads * d
    out = emf.ops.attention_varlen(fused[:, 0], fused[:, 1], fused[:, 2], cu, max_len, backend=backend)
    ref = ref_attention(q, k, v, cu)
    assert_close_to_reference(out, ref, torch_ops.attention_varlen(q, k, v, cu, max_len), torch.float32, "strided", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_attention_varlen_self_attention_large_scores(backend, dtype):
    """q = k at 5x unit scale: each query's own key outscores every other by ~140, so one wrong score
    in a tile's running max (a read of S before the lanes that own it stored it) overflows exp to
    inf instead of changing only the rounding; the output is each token's own v row."""
    q, _, v, cu, max_len = make_attention(((70, 129), 2, 64), dtype)
    q = guarded((q.float() * 5).to(dtype), "q")
    out = emf.ops.attention_varlen(q, q, v, cu, max_len, backend=backend)
    ref = ref_attention(q, q, v, cu)
    baseline = torch_ops.attention_varlen(q, q, v, cu, max_len)
    assert_close_to_reference(out, ref, baseline, dtype, f"self-attention[{backend}]", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_varlen_custom_scale(backend):
    q, k, v, cu, max_len = make_attention(((9, 4), 2, 16), torch.float32)
    out = emf.ops.attention_varlen(q, k, v, cu, max_len, softmax_scale=0.3, backend=backend)
    ref = ref_attention(q, k, v, cu, scale=0.3)
    assert_close_to_reference(out, ref, torch_ops.attention_varlen(q, k, v, cu, max_len, 0.3), torch.float32, "scale", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs_raise_value_error(backend):
    x, r, w, b = make_rowwise((4, 16), torch.float32)
    with pytest.raises(ValueError, match="shape"):
        emf.ops.layernorm_residual(x, r[:, :8], w, b, backend=backend)
    with pytest.raises(ValueError, match="dtype"):
        emf.ops.layernorm_residual(x, r.half(), w, b, backend=backend)
    with pytest.raises(ValueError, match="bias"):
        emf.ops.bias_gelu(x, b[:3], backend=backend)
    with pytest.raises(ValueError, match="int"):
        emf.ops.bias_gelu(x.long(), b, backend=backend)
    q, k, v, cu, max_len = make_attention(((3, 4), 1, 16), torch.float32)
    with pytest.raises(ValueError, match="cu_seqlens"):
        emf.ops.attention_varlen(q, k, v, cu.long(), max_len, backend=backend)
    with pytest.raises(ValueError, match="same shape"):
        emf.ops.attention_varlen(q, k[:3], v, cu, max_len, backend=backend)


def test_unknown_backend_lists_known_ones():
    x, r, w, b = make_rowwise((2, 8), torch.float32)
    with pytest.raises(ValueError, match="known: torch"):
        emf.ops.layernorm_residual(x, r, w, b, backend="nope")


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_varlen_empty_sequences_and_filler_rows(backend):
    """Static layouts (ernie_m_fast.cuda_graphs) pass empty sequences and rows past cu_seqlens[-1]:
    the real rows must come out exactly as without them."""
    q, k, v, cu, _ = make_attention(((3, 7), 2, 32), torch.float32)
    filler = torch.randn(5, 2, 32)
    qf, kf, vf = (torch.cat([t, filler]) for t in (q, k, v))
    cu_static = torch.tensor([0, 3, 3, 10, 10, 10], dtype=torch.int32)  # empty sequences, then filler rows
    out = emf.ops.attention_varlen(qf, kf, vf, cu_static, 16, backend=backend)
    assert out.shape == qf.shape
    ref = ref_attention(q, k, v, cu)
    assert_close_to_reference(out[:10], ref, torch_ops.attention_varlen(q, k, v, cu, 7), torch.float32,
                              "static layout", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("hidden", [8, 200, 1031])
def test_embed_layernorm(backend, dtype, hidden):
    g = torch.Generator().manual_seed(0)
    words, positions = torch.randn(50, hidden, generator=g), torch.randn(20, hidden, generator=g)
    _, _, w, b = make_rowwise((1, hidden), dtype)
    ids = torch.randint(0, 50, (37,), generator=g)
    pos = torch.randint(2, 20, (37,), generator=g)
    words, positions = words.to(dtype), positions.to(dtype)
    out = emf.ops.embed_layernorm(ids, pos, words, positions, w, b, 1e-5, backend=backend)
    ref = ref_layernorm_residual(words[ids], positions[pos], w, b, 1e-5)
    baseline = torch_ops.embed_layernorm(ids, pos, words, positions, w, b, 1e-5)
    assert_close_to_reference(out, ref, baseline, dtype, f"embed_layernorm[{backend}]", backend)
