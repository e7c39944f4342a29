"""The op table (ernie_m_fast/ops/table.py) drives everything: every op of it on every backend this host
runs, against its own torch reference recomputed in fp64; dispatch by per-input reasons; the custom
ops it registers; and the new op added only through the table, bias_residual_layernorm.

Tolerances are cases.py's (flash-attention's rule): a kernel in a half precision may be at most
about twice as far from the fp64 reference as the torch reference in that same dtype, plus a
rounding floor; in fp32 a few ulp (numerics.py). cuda_sim runs under every emulation schedule.
"""

from __future__ import annotations

import pytest
import torch

import ernie_m_fast as emf
from ernie_m_fast.ops import backends, native_backend, table, torch_ops

from cases import DTYPES, ROWWISE_SHAPES, assert_close_to_reference, make_rowwise
from numerics import backend_runs

BACKEND_NAMES = emf.ops.available_backends("cpu")
BACKENDS = backend_runs(BACKEND_NAMES)  # pytest params: cuda_sim once per emulation schedule
DTYPE_IDS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
OP_NAMES = [op.name for op in table.OPS]


def _fp64_reference(op, args):
    """The op's torch reference on the inputs upcast to fp64: an independent, exact-ish oracle."""
    up = [a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    return op.reference(*up).float()


def _small(args) -> bool:
    """Examples cheap enough for every emulated backend (the interpreter and cuda_sim run in Python/fibers)."""
    return sum(a.numel() for a in args if isinstance(a, torch.Tensor)) <= 200_000


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_every_op_on_every_backend_matches_its_reference(op_name, dtype, backend):
    op = table.BY_NAME[op_name]
    fn = getattr(emf.ops, op_name)
    for args in filter(_small, op.examples(dtype)):
        out = fn(*args, backend=backend)
        assert_close_to_reference(out, _fp64_reference(op, args), op.reference(*args), dtype,
                                  f"{op_name}[{backend}]", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", ROWWISE_SHAPES, ids=str)
def test_bias_residual_layernorm_odd_shapes(backend, dtype, shape):
    x, r, w, b = make_rowwise(shape, dtype)
    bias = make_rowwise(shape, dtype, seed=1)[3]
    out = emf.ops.bias_residual_layernorm(x, bias, r, w, b, 1e-5, backend=backend)
    ref = _fp64_reference(table.BY_NAME["bias_residual_layernorm"], (x, bias, r, w, b, 1e-5))
    baseline = torch_ops.bias_residual_layernorm(x, bias, r, w, b, 1e-5)
    assert_close_to_reference(out, ref, baseline, dtype, f"bias_residual_layernorm[{backend}]", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bias_residual_layernorm_is_the_add_then_layernorm(backend):
    """The op equals layernorm_residual(x + bias, residual): the bias is added, not dropped or doubled."""
    x, r, w, b = make_rowwise((37, 200), torch.float32)
    bias = 3.0 * torch.randn(200, generator=torch.Generator().manual_seed(5))
    got = emf.ops.bias_residual_layernorm(x, bias, r, w, b, backend=backend)
    expected = emf.ops.layernorm_residual(x + bias, r, w, b, backend="torch")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_bias_residual_layernorm_bad_inputs_raise_before_any_backend():
    x, r, w, b = make_rowwise((4, 16), torch.float32)
    with pytest.raises(ValueError, match="bias must have shape"):
        emf.ops.bias_residual_layernorm(x, b[:3], r, w, b)
    with pytest.raises(ValueError, match="dtype"):
        emf.ops.bias_residual_layernorm(x, b.long(), r, w, b)


def test_every_backend_implements_every_op_by_name():
    assert backends.missing_implementations() == {}


def test_public_functions_and_custom_ops_come_from_the_table():
    for op in table.OPS:
        fn = getattr(emf.ops, op.name)
        assert op.name in emf.ops.__all__
        assert list(type(fn).__mro__) and fn.custom_op is not None
        assert hasattr(torch.ops.ernie_m_fast, op.name), f"custom op ernie_m_fast::{op.name} is not registered"


def test_cuda_limits_mirror_the_compiled_kernels():
    sim = pytest.importorskip("ernie_m_fast._sim")
    assert sim.cuda_limits() == native_backend.CUDA_LIMITS


@pytest.mark.skipif("cuda_sim" not in BACKEND_NAMES, reason="cuda_sim is not built")
def test_head_dim_over_the_cuda_limit_is_refused_before_any_launch():
    q = torch.randn(3, 1, 160)
    cu = torch.tensor([0, 3], dtype=torch.int32)
    assert backends.not_supported_reasons("cuda_sim", "attention_varlen", (q, q, q, cu, 3, None))
    with pytest.raises(ValueError, match="head_dim 160 is over the CUDA attention's limit of 128"):
        emf.ops.attention_varlen(q, q, q, cu, 3, backend="cuda_sim")


def test_auto_takes_the_next_backend_that_can(monkeypatch):
    """With `cuda_sim` first in the CPU order, a head_dim it cannot take falls through to the next."""
    if "cuda_sim" not in BACKEND_NAMES:
        pytest.skip("cuda_sim is not built")
    monkeypatch.setitem(backends.AUTO_ORDER, "cpu", ("cuda_sim", "torch"))
    q = torch.randn(3, 1, 160)
    cu = torch.tensor([0, 3], dtype=torch.int32)
    assert backends.choose("attention_varlen", "auto", q.device, (q, q, q, cu, 3, None)) == "torch"
    small = q[..., :64].contiguous()
    assert backends.choose("attention_varlen", "auto", q.device, (small, small, small, cu, 3, None)) == "cuda_sim"


def test_when_no_backend_can_the_error_lists_every_reason(monkeypatch):
    monkeypatch.setitem(backends.AUTO_ORDER, "cpu", ("cuda_sim", "cuda"))
    q = torch.randn(3, 1, 160)
    cu = torch.tensor([0, 3], dtype=torch.int32)
    with pytest.raises(ValueError, match="no backend can run attention_varlen") as info:
        backends.choose("attention_varlen", "auto", q.device, (q, q, q, cu, 3, None))
    assert "cuda_sim:" in str(info.value) and "cuda:" in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_gradients_through_every_op_equal_the_references(op_name, backend):
    """The custom ops' autograd formulas (ops/autograd.py): fp32 gradients of a random projection of
    the output equal those through the torch reference."""
    op = table.BY_NAME[op_name]
    args = next(a for a in op.examples(torch.float32) if _small(a))
    g = torch.Generator().manual_seed(3)

    def grads(which):
        leaves = [a.clone().requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                  for a in args]
        out = getattr(emf.ops, op_name)(*leaves, backend=which)
        (out * weights).sum().backward()
        return [a.grad for a in leaves if isinstance(a, torch.Tensor) and a.requires_grad]

    weights = torch.randn(op.reference(*args).shape, generator=g)
    for got, expected in zip(grads(backend), grads("torch")):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_public_ops_trace_into_one_graph_with_dispatch():
    """Binding, checks and dispatch (per-input reasons included) are plain Python that dynamo traces:
    the public ops compile with fullgraph=True, each kernel one custom-op node."""
    backend = "cpu" if "cpu" in BACKEND_NAMES else "torch"
    x, r, w, b = make_rowwise((6, 32), torch.float32)
    bias = make_rowwise((6, 32), torch.float32, seed=1)[3]

    def layer_tail(x, r):
        h = emf.ops.bias_residual_layernorm(x, bias, r, w, b, backend=backend)
        return emf.ops.bias_gelu(h, b, "tanh", backend="auto")

    torch._dynamo.reset()
    compiled = torch.compile(layer_tail, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x, r), layer_tail(x, r), atol=0, rtol=0)
