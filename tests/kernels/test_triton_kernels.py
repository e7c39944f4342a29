"""Triton-specific checks beyond the shared cases: launch-config choice, the chunked LayerNorm path,
GPU tile shapes and small tiles run under the interpreter, strided/odd attention inputs, the
interpreter-only bf16 workarounds (and that the interpreter gaps they cover still exist), and errors.

Runs where the `triton` backend runs on CPU tensors, i.e. under TRITON_INTERPRET=1 (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import ernie_m_fast as emf

pytest.importorskip("triton")
if "triton" not in emf.ops.available_backends("cpu"):
    pytest.skip("triton kernels run on cpu tensors only under TRITON_INTERPRET=1", allow_module_level=True)

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from ernie_m_fast import triton_kernels as tk  # noqa: E402
from ernie_m_fast.ops import torch_ops  # noqa: E402
from ernie_m_fast.triton_kernels import _common, attention, gelu, layernorm  # noqa: E402

from cases import (DTYPES, assert_close_to_reference, make_attention, make_rowwise, ref_attention,  # noqa: E402
                   ref_bias_gelu, ref_layernorm_residual)

DTYPE_IDS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


# ---------------------------------------------------------------- launch configs


def test_layernorm_config_table():
    gpu = layernorm.choose_config(4096, 768, interpret=False)
    assert (gpu.block_rows, gpu.block_n, gpu.single_pass, gpu.num_warps) == (1, 1024, True, 4)
    assert layernorm.choose_config(4096, 8, interpret=False).block_rows == 64  # short rows share a program
    assert layernorm.choose_config(3, 8, interpret=False).block_rows == 4  # ...but no more than there are
    assert layernorm.choose_config(1, 4096, interpret=False).num_warps == 8
    big = layernorm.choose_config(2, layernorm.MAX_FUSED_BLOCK + 1, interpret=False)
    assert not big.single_pass and big.block_n < layernorm.MAX_FUSED_BLOCK
    assert layernorm.choose_config(4096, 768, interpret=True).block_rows == 16  # fewer, bigger programs


def test_gelu_config_table():
    gpu = gelu.choose_config(4096, 3072, interpret=False)
    assert gpu.block_n == 2048 and gpu.block_rows * gpu.block_n == 4096
    assert gelu.choose_config(1, 8, interpret=False).block_rows == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_attention_dot_upcast_only_under_interpreter_and_bf16(dtype):
    for head_dim in (16, 64, 128, 256):
        assert attention.choose_config(512, head_dim, dtype, interpret=False).dot_in_fp32 is False
        assert attention.choose_config(512, head_dim, dtype, interpret=True).dot_in_fp32 is (dtype == torch.bfloat16)


def test_attention_gpu_tiles():
    cfg = attention.choose_config(512, 64, torch.float16, interpret=False)
    assert (cfg.block_m, cfg.block_n, cfg.num_warps) == (128, 64, 8)
    assert attention.choose_config(512, 128, torch.bfloat16, interpret=False).num_warps == 8
    short = attention.choose_config(5, 64, torch.float16, interpret=False)
    assert (short.block_m, short.block_n) == (16, 16)  # tiles shrink to the longest sequence (>= 16)
    fp32 = attention.choose_config(512, 64, torch.float32, interpret=False)
    assert fp32.block_m * fp32.block_n < cfg.block_m * cfg.block_n


def test_bf16_rounding_fix_only_under_interpreter(monkeypatch):
    assert _common.interpreter_rounds_bf16(torch.bfloat16)
    assert not _common.interpreter_rounds_bf16(torch.float16)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert not _common.interpreter_rounds_bf16(torch.bfloat16)


# ---------------------------------------------------------------- LayerNorm paths


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape,block_n", [((37, 200), 64), ((5, 1031), 256), ((3, 17), 16)], ids=str)
def test_layernorm_chunked_path(dtype, shape, block_n):
    x, r, w, b = make_rowwise(shape, dtype)
    cfg = layernorm.LayerNormConfig(block_rows=4, block_n=block_n, single_pass=False, num_warps=4)
    out = tk.layernorm_residual(x, r, w, b, 1e-5, config=cfg)
    ref = ref_layernorm_residual(x, r, w, b)
    assert_close_to_reference(out, ref, torch_ops.layernorm_residual(x, r, w, b), dtype, "chunked layernorm")


def test_layernorm_hidden_over_fused_limit_takes_chunked_path():
    shape = (2, layernorm.MAX_FUSED_BLOCK + 3)
    assert not layernorm.choose_config(*shape).single_pass
    x, r, w, b = make_rowwise(shape, torch.float32)
    x = x + 100.0  # a large mean: the chunk merge must not cancel catastrophically
    out = tk.layernorm_residual(x, r, w, b)
    assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), torch_ops.layernorm_residual(x, r, w, b),
                              torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_layernorm_gpu_config_under_interpreter(dtype):
    x, r, w, b = make_rowwise((37, 200), dtype)
    out = tk.layernorm_residual(x, r, w, b, config=layernorm.choose_config(37, 200, interpret=False))
    assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), torch_ops.layernorm_residual(x, r, w, b),
                              dtype)


def test_layernorm_strided_rows_and_fp32_params_with_bf16_input():
    x, r, w, b = make_rowwise((6, 48), torch.bfloat16)
    wide = torch.randn(6, 80).to(torch.bfloat16)
    wide[:, :48] = x
    xs = wide[:, :48]  # row stride 80: used as is
    out = tk.layernorm_residual(xs, r, w.float(), b.float())
    assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), torch_ops.layernorm_residual(x, r, w, b),
                              torch.bfloat16)


def test_empty_rows():
    x, r, w, b = make_rowwise((0, 16), torch.float32)
    assert tk.layernorm_residual(x, r, w, b).shape == (0, 16)
    assert tk.bias_gelu(x, b).shape == (0, 16)


def test_gelu_small_tiles_and_3d():
    x, _, _, b = make_rowwise((3, 7, 100), torch.float16)
    out = tk.bias_gelu(x, b, "tanh", config=gelu.BiasGeluConfig(block_rows=2, block_n=32, num_warps=4))
    assert_close_to_reference(out, ref_bias_gelu(x, b, "tanh"), torch_ops.bias_gelu(x, b, "tanh"), torch.float16)


def test_gelu_extremes_stay_finite():
    x = torch.tensor([[-1e4, -30.0, -5.0, 0.0, 1e-4, 5.0, 30.0, 1e4]])
    b = torch.zeros(8)
    for approximate in ("none", "tanh"):
        out = tk.bias_gelu(x, b, approximate)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, torch.nn.functional.gelu(x, approximate=approximate), atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------- attention paths


def _check_attention(q, k, v, cu, max_len, dtype, config=None, scale=None):
    out = tk.attention_varlen(q, k, v, cu, max_len, scale, config=config)
    ref = ref_attention(q, k, v, cu, scale)
    baseline = torch_ops.attention_varlen(q.contiguous(), k.contiguous(), v.contiguous(), cu, max_len, scale)
    assert out.is_contiguous()
    assert_close_to_reference(out, ref, baseline, dtype, "attention_varlen[triton]")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("head_dim", [1, 8, 59, 80, 256])
def test_attention_odd_head_dims(dtype, head_dim):
    _check_attention(*make_attention(((37, 3), 2, head_dim), dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_attention_gpu_tiles_under_interpreter(dtype):
    q, k, v, cu, max_len = make_attention(((200, 1, 131), 2, 64), dtype)
    cfg = attention.choose_config(max_len, 64, dtype, interpret=False)
    cfg = dataclasses.replace(cfg, dot_in_fp32=dtype == torch.bfloat16)  # the interpreter still needs it
    _check_attention(q, k, v, cu, max_len, dtype, cfg)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_attention_small_tiles_many_blocks(dtype):
    q, k, v, cu, max_len = make_attention(((70, 16, 17, 1), 1, 32), dtype)
    cfg = dataclasses.replace(attention.choose_config(max_len, 32, dtype), block_m=16, block_n=16)
    _check_attention(q, k, v, cu, max_len, dtype, cfg)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_attention_views_into_fused_qkv_projection(dtype):
    """q/k/v sliced out of one (T, 3 * heads * d) GEMM output, exactly as the encoder passes them."""
    lengths, heads, head_dim = (5, 40, 1), 3, 32
    q, k, v, cu, max_len = make_attention((lengths, heads, head_dim), dtype)
    total = q.shape[0]
    qkv = torch.cat([q.reshape(total, -1), k.reshape(total, -1), v.reshape(total, -1)], dim=1)
    qv, kv, vv = qkv.view(total, 3, heads, head_dim).unbind(1)
    assert qv.stride(0) == 3 * heads * head_dim and not qv.is_contiguous()
    out = tk.attention_varlen(qv, kv, vv, cu, max_len)
    ref = ref_attention(q, k, v, cu)
    assert_close_to_reference(out, ref, torch_ops.attention_varlen(q, k, v, cu, max_len), dtype)


def test_attention_empty_sequence_in_batch_and_large_scores():
    q, k, v, _, _ = make_attention(((10,), 2, 16), torch.float32)
    cu = torch.tensor([0, 4, 4, 10], dtype=torch.int32)  # the middle sequence is empty
    _check_attention(q * 30, k * 30, v, cu, 6, torch.float32)  # scores ~ +-1e3: the online max must hold


def test_attention_max_seqlen_longer_than_needed():
    q, k, v, cu, _ = make_attention(((9, 4), 2, 16), torch.float16)
    _check_attention(q, k, v, cu, 300, torch.float16)  # idle programs exit at once


def test_attention_grid_puts_sequences_times_heads_on_the_unbounded_axis():
    """CUDA caps grid axes 1 and 2 at 65535; 70000 one-token sequences x 12 heads must still launch."""
    from ernie_m_fast.triton_kernels import compile_check

    q = torch.zeros(70000, 12, 16)
    cu = torch.arange(70001, dtype=torch.int32)
    launches = []
    with compile_check.recording(launches):
        tk.attention_varlen(q, q, q, cu, 1)
    (_, _, _, grid), = launches
    assert grid == (70000 * 12, 1)


def test_attention_rejects_bad_cu_seqlens_and_head_dim():
    q, k, v, cu, max_len = make_attention(((9, 4), 1, 16), torch.float32)
    with pytest.raises(ValueError, match="max_seqlen"):
        tk.attention_varlen(q, k, v, cu, 5)
    with pytest.raises(ValueError, match="total_tokens"):
        tk.attention_varlen(q, k, v, torch.tensor([0, 9, 14], dtype=torch.int32), max_len)  # past the end
    with pytest.raises(ValueError, match="total_tokens"):
        tk.attention_varlen(q, k, v, torch.tensor([0, 9, 7], dtype=torch.int32), max_len)  # decreasing
    big = torch.zeros(2, 1, 264)
    with pytest.raises(ValueError, match="head_dim"):
        tk.attention_varlen(big, big, big, torch.tensor([0, 2], dtype=torch.int32), 2)


def test_cpu_tensors_refused_without_interpreter(monkeypatch):
    x, r, w, b = make_rowwise((2, 8), torch.float32)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="cuda tensors"):
        tk.layernorm_residual(x, r, w, b)
    with pytest.raises(ValueError, match="cuda tensors"):
        tk.bias_gelu(x, b)


# ---------------------------------------------------------------- the interpreter gaps themselves


@triton.jit
def _dot_probe(a_ptr, b_ptr, c_ptr, UPCAST: tl.constexpr):
    r = tl.arange(0, 16)
    a = tl.load(a_ptr + r[:, None] * 16 + r[None, :])
    b = tl.load(b_ptr + r[:, None] * 16 + r[None, :])
    if UPCAST:
        a, b = a.to(tl.float32), b.to(tl.float32)
    tl.store(c_ptr + r[:, None] * 16 + r[None, :], tl.dot(a, b))


@triton.jit
def _cast_probe(x_ptr, out_ptr, n, FIX: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    tl.store(out_ptr + offs, _common.fix_bf16_rounding(x, FIX).to(tl.bfloat16), mask=offs < n)


@pytest.mark.skipif(not _common.interpreting(), reason="documents Triton interpreter behaviour")
def test_interpreter_gaps_still_exist_and_workarounds_hold():
    """If either gap assertion fails, Triton fixed it: the matching interpreter-only constexpr can go."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(16, 16, generator=g).to(torch.bfloat16) for _ in range(2))
    ref = a.float() @ b.float()
    for upcast in (False, True):
        c = torch.empty(16, 16)
        _dot_probe[(1,)](a, b, c, upcast)
        err = (c - ref).abs().max().item()
        assert (err < 1e-4) if upcast else (err > 1e3), f"bf16 dot (upcast={upcast}) errs {err:.3g}"
    x = torch.tensor([1 + 0.7 / 128, 1 + 1.5 / 128, 1.5 - 0.3 / 128, -3.3, float("inf"), 0.0])
    for fix in (False, True):
        out = torch.empty(x.shape, dtype=torch.bfloat16)
        _cast_probe[(1,)](x, out, x.numel(), fix, BLOCK=8)
        same = torch.equal(out, x.to(torch.bfloat16))
        assert same if fix else not same, f"fp32 -> bf16 cast (fix={fix}) gives {out.tolist()}"


# ---------------------------------------------------------------- embed_layernorm (triton only for now)


def _make_embedding(tokens, vocab, positions, hidden, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    words = torch.randn(vocab, hidden, generator=g).to(dtype)
    pos_table = (0.5 * torch.randn(positions, hidden, generator=g)).to(dtype)
    ids = torch.randint(0, vocab, (tokens,), generator=g)
    pos = torch.randint(0, positions, (tokens,), generator=g)
    _, _, w, b = make_rowwise((1, hidden), dtype, seed)
    return ids, pos, words, pos_table, w, b


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("tokens,hidden", [(1, 8), (37, 200), (45, 1031)], ids=str)
def test_embed_layernorm(dtype, tokens, hidden):
    ids, pos, words, pos_table, w, b = _make_embedding(tokens, 50, 20, hidden, dtype)
    out = tk.embed_layernorm(ids, pos, words, pos_table, w, b, 1e-5)
    ref = ref_layernorm_residual(words[ids], pos_table[pos], w, b)
    baseline = torch_ops.embed_layernorm(ids, pos, words, pos_table, w, b, 1e-5)
    assert_close_to_reference(out, ref, baseline, dtype, "embed_layernorm[triton]")


def test_embed_layernorm_chunked_int32_ids_2d_shape():
    ids, pos, words, pos_table, w, b = _make_embedding(12, 30, 10, 300, torch.float16)
    ids, pos = ids.view(3, 4).int(), pos.view(3, 4).int()
    cfg = layernorm.LayerNormConfig(block_rows=2, block_n=64, single_pass=False, num_warps=4)
    out = tk.embed_layernorm(ids, pos, words, pos_table, w, b, config=cfg)
    assert out.shape == (3, 4, 300)
    ref = ref_layernorm_residual(words[ids.long()], pos_table[pos.long()], w, b)
    assert_close_to_reference(out, ref, torch_ops.embed_layernorm(ids, pos, words, pos_table, w, b), torch.float16)


def test_embed_layernorm_rejects_bad_inputs():
    ids, pos, words, pos_table, w, b = _make_embedding(5, 30, 10, 16, torch.float32)
    with pytest.raises(ValueError, match="position_ids must lie in"):
        tk.embed_layernorm(ids, pos + 10, words, pos_table, w, b)
    # the shared checks run once, at the ops entry (ernie_m_fast/checks.py), before the launcher
    with pytest.raises(ValueError, match="int64 or int32"):
        emf.ops.embed_layernorm(ids.float(), pos, words, pos_table, w, b, backend="triton")
    with pytest.raises(ValueError, match="dtype"):
        emf.ops.embed_layernorm(ids, pos, words, pos_table.half(), w, b, backend="triton")
    with pytest.raises(ValueError, match="shape"):
        emf.ops.embed_layernorm(ids, pos[:3], words, pos_table, w, b, backend="triton")
