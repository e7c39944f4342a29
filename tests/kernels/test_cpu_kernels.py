"""What is specific to the `cpu` backend's compiled kernels (csrc/cpu); test_ops.py covers the shared
cases against the fp32 reference for every backend, this one included.

Here: the bindings' error paths, special values against torch, bit-exact storage conversions, every
ISA instantiation on this host, thread-count independence, large rows, and out-of-bounds writes.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import ernie_m_fast as emf
from cases import (DTYPES, ROWWISE_SHAPES, assert_close_to_reference, make_rowwise, ref_bias_gelu,
                   ref_layernorm_residual)
from ernie_m_fast.ops import torch_ops

pytestmark = pytest.mark.skipif("cpu" not in emf.ops.available_backends("cpu"),
                                reason="ernie_m_fast._C has no cpu kernels in this build")

if "cpu" in emf.ops.available_backends("cpu"):
    from ernie_m_fast import _C
else:  # keeps collection working; every test is skipped
    _C = None

CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
DTYPE_IDS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
ISAS = ("baseline", "avx2", "avx512")


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs a test under each instantiation; one the CPU lacks is capped at what it has (cpu_set_isa)."""
    previous = _C.cpu_set_isa(request.param)
    yield _C.cpu_info()["isa"]
    _C.cpu_set_isa(previous)


@pytest.fixture
def threads():
    def set_threads(n):
        _C.cpu_set_num_threads(n)

    yield set_threads
    _C.cpu_set_num_threads(0)


def ln_raw(out, x, r, w, b, rows, hidden, eps=1e-5, dtype=0):
    return _C.cpu_layernorm_residual(out, x, r, w, b, rows, hidden, eps, dtype, 0)


def gelu_raw(out, x, b, rows, hidden, tanh=False, dtype=0):
    return _C.cpu_bias_gelu(out, x, b, rows, hidden, tanh, dtype, 0)


# ---- binding error paths ------------------------------------------------------------------------

def test_bad_sizes_and_dtype_codes_raise_value_error():
    t = torch.zeros(4, 8)
    p = t.data_ptr()
    for rows, hidden, code, match in ((-1, 8, 0, "rows"), (4, 0, 0, "hidden"), (4, -3, 0, "hidden"),
                                      (4, 8, 3, "dtype code"), (4, 8, -1, "dtype code"),
                                      (2**62, 8, 0, "overflow")):
        with pytest.raises(ValueError, match=match):
            ln_raw(p, p, p, p, p, rows, hidden, dtype=code)
        with pytest.raises(ValueError, match=match):
            gelu_raw(p, p, p, rows, hidden, dtype=code)


def test_null_pointers_raise_value_error():
    t = torch.zeros(4, 8)
    p = t.data_ptr()
    with pytest.raises(ValueError, match="residual is a null pointer"):
        ln_raw(p, p, 0, p, p, 4, 8)
    with pytest.raises(ValueError, match="bias is a null pointer"):
        gelu_raw(p, p, 0, 4, 8)


def test_zero_rows_is_a_no_op():
    ln_raw(0, 0, 0, 0, 0, 0, 8)  # nothing is dereferenced
    gelu_raw(0, 0, 0, 0, 8)
    x = torch.empty(0, 16)
    assert emf.ops.layernorm_residual(x, x, torch.ones(16), torch.zeros(16), backend="cpu").shape == (0, 16)
    assert emf.ops.bias_gelu(torch.empty(3, 0, 16), torch.zeros(16), backend="cpu").shape == (3, 0, 16)


def test_test_hooks_validate_their_arguments():
    with pytest.raises(ValueError, match="ISA"):
        _C.cpu_set_isa("sse9")
    with pytest.raises(ValueError, match=">= 0"):
        _C.cpu_set_num_threads(-1)
    with pytest.raises(ValueError, match="dtype code"):
        _C.cpu_convert(0, 0, 0, 0, 7)
    with pytest.raises(ValueError, match="unknown function"):
        _C.cpu_math(0, 0, 0, "erf")


# ---- every ISA instantiation against the fp32 reference ------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", ROWWISE_SHAPES, ids=str)
def test_every_isa_layernorm_residual(isa, dtype, shape):
    x, r, w, b = make_rowwise(shape, dtype, seed=1)
    out = emf.ops.layernorm_residual(x, r, w, b, backend="cpu")
    assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), torch_ops.layernorm_residual(x, r, w, b),
                              dtype, f"layernorm_residual[cpu/{isa}]")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
@pytest.mark.parametrize("shape", ROWWISE_SHAPES, ids=str)
def test_every_isa_bias_gelu(isa, dtype, shape, approximate):
    x, _, _, b = make_rowwise(shape, dtype, seed=2)
    out = emf.ops.bias_gelu(x, b, approximate=approximate, backend="cpu")
    assert_close_to_reference(out, ref_bias_gelu(x, b, approximate), torch_ops.bias_gelu(x, b, approximate),
                              dtype, f"bias_gelu[cpu/{isa}]")


# ---- the vectorised normal CDF and exp ------------------------------------------------------------------

def _ulp_error(got: torch.Tensor, ref64: torch.Tensor) -> torch.Tensor:
    """|got - ref| in units of the fp32 spacing at |ref| (the spacing of the smallest normal below it)."""
    ref32 = ref64.float().abs()
    tiny = torch.finfo(torch.float32).tiny
    spacing = (torch.nextafter(ref32, torch.tensor(math.inf)) - ref32).double().clamp_min(tiny * 2**-23)
    return (got.double() - ref64).abs() / spacing


def _dense_inputs(limit: float, n: int = 1_000_001) -> torch.Tensor:
    x = torch.linspace(-limit, limit, n)
    powers = torch.exp2(torch.arange(-130.0, 3.0, 0.05))  # tiny magnitudes, both signs
    return torch.cat([x, powers, -powers, torch.tensor([0.0, -0.0])])


def test_normal_cdf_close_to_fp64(isa):
    """Phi(v) = (1 + erf(v / sqrt(2))) / 2, the heart of exact GELU (v * Phi(v))."""
    x = _dense_inputs(12.0)
    out = torch.empty_like(x)
    _C.cpu_math(out.data_ptr(), x.data_ptr(), x.numel(), "normal_cdf")
    ref = 0.5 * (1 + torch.erf(x.double() / math.sqrt(2)))
    # Measured: 1.64 ulp for v >= 0 with FMA (avx2, avx512), 1.83 without (baseline); absolutely
    # 1.1e-7 everywhere (for v < 0, 1/2 + (Phi - 1/2) cancels and only an absolute bound holds).
    assert _ulp_error(out, ref)[x >= 0].max().item() <= 2.5
    assert (out.double() - ref).abs().max().item() <= 1.5e-7
    special = torch.tensor([math.nan, math.inf, -math.inf, 1e30, -1e30, 0.0])
    out = torch.empty_like(special)
    _C.cpu_math(out.data_ptr(), special.data_ptr(), special.numel(), "normal_cdf")
    assert math.isnan(out[0]) and out[1:].tolist() == [1.0, 0.0, 1.0, 0.0, 0.5]


def test_exp_within_1_5_ulp_of_fp64(isa):
    x = torch.linspace(-87.0, 88.0, 1_000_001)
    out = torch.empty_like(x)
    _C.cpu_math(out.data_ptr(), x.data_ptr(), x.numel(), "exp")
    assert _ulp_error(out, torch.exp(x.double())).max().item() <= 1.5  # measured 0.99
    special = torch.tensor([math.nan, math.inf, 89.0, 0.0])
    out = torch.empty_like(special)
    _C.cpu_math(out.data_ptr(), special.data_ptr(), special.numel(), "exp")
    assert math.isnan(out[0]) and out[1:].tolist() == [math.inf, math.inf, 1.0]


def test_gelu_fp32_close_to_fp64_everywhere(isa):
    """Dense sweep: the error stays at fp32 rounding of the result, except where 1 + erf cancels
    (large negative inputs), where it is bounded absolutely — as for torch's own formula."""
    x = _dense_inputs(12.0)
    zero = torch.zeros(x.numel())
    xd = x.double()
    for approximate in ("none", "tanh"):
        out = emf.ops.bias_gelu(x[None], zero, approximate=approximate, backend="cpu")[0]
        if approximate == "tanh":
            ref = 0.5 * xd * (1 + torch.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd**3)))
        else:
            ref = 0.5 * xd * (1 + torch.erf(xd / math.sqrt(2)))
        err = (out.double() - ref).abs()
        allowed = 4 * torch.finfo(torch.float32).eps * ref.abs() + 2e-7 * xd.abs().clamp_max(10) + 1e-30
        worst = (err / allowed).max().item()
        assert worst <= 1.0, f"{approximate}: error {worst:.3g}x the allowed bound"


# ---- special values against torch ----------------------------------------------------------------

SPECIALS = [math.nan, math.inf, -math.inf, -1e30, 1e30, -0.0, 0.0, -60.0, 60.0, 1e-30, 0.5]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_gelu_special_values_match_torch(dtype, approximate):
    """Compared element by element with torch's scalar path (one-element tensors): torch's own
    vectorised erf path turns +inf into NaN, its scalar path (and the maths) give +inf."""
    x = torch.tensor(SPECIALS).to(dtype)
    x = x.repeat(5)  # long enough for the vector loop and its tail
    out = emf.ops.bias_gelu(x[None], torch.zeros(x.numel(), dtype=dtype), approximate=approximate,
                            backend="cpu")[0]
    expected = torch.stack([F.gelu(v.reshape(1), approximate=approximate)[0] for v in x])
    assert torch.equal(out.isnan(), expected.isnan())
    finite = ~expected.isnan()
    torch.testing.assert_close(out[finite], expected[finite], atol=0, rtol=4 * torch.finfo(dtype).eps)
    assert torch.equal(out[finite].isinf(), expected[finite].isinf())


# Half an output ulp at |y| ~ 4 in each dtype, doubled: the finite rows are ordinary results.
ATOL_LN = {torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_layernorm_nan_and_inf_rows_match_torch(dtype):
    x, r, w, b = make_rowwise((6, 40), dtype, seed=3)
    x[1, 5] = math.nan
    r[2, 0] = math.inf
    x[3, 39] = -math.inf
    x[4, 7], r[4, 7] = math.inf, -math.inf  # inf - inf = NaN in the sum
    out = emf.ops.layernorm_residual(x, r, w, b, backend="cpu")
    expected = torch_ops.layernorm_residual(x.float(), r.float(), w.float(), b.float())
    assert torch.equal(out.isnan(), expected.isnan())
    assert out[1:5].isnan().all() and not out[[0, 5]].isnan().any()
    torch.testing.assert_close(out[[0, 5]].float(), expected[[0, 5]], atol=ATOL_LN[dtype], rtol=0)


def _offset_rows(rows, hidden, g):
    return 3e3 + torch.randn(rows, hidden, generator=g)  # mean >> std: no E[x^2] - E[x]^2 in fp32 survives this


def _outlier_head_rows(rows, hidden, g):
    x = torch.randn(rows, hidden, generator=g)
    x[:, :40] += 50.0  # the first elements (the kernel's shift) sit far from the row mean: exact pass taken
    return x


def _mixed_rows(rows, hidden, g):
    x = torch.randn(rows, hidden, generator=g) * torch.logspace(-3, 3, rows)[:, None]
    x[::3, :8] -= 20.0
    return x


@pytest.mark.parametrize("make_x", [_offset_rows, _outlier_head_rows, _mixed_rows], ids=lambda f: f.__name__[1:])
@pytest.mark.parametrize("hidden", [7, 32, 33, 1031])
def test_layernorm_variance_paths(isa, make_x, hidden):
    """The one-pass shifted variance and its exact two-pass fallback both hold the fp32 tolerance."""
    g = torch.Generator().manual_seed(hidden)
    x = make_x(12, hidden, g)
    r = torch.randn(12, hidden, generator=g)
    w, b = 1.0 + 0.5 * torch.randn(hidden, generator=g), 0.5 * torch.randn(hidden, generator=g)
    out = emf.ops.layernorm_residual(x, r, w, b, backend="cpu")
    assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), torch_ops.layernorm_residual(x, r, w, b),
                              torch.float32, f"layernorm_residual[{make_x.__name__}]")


def test_layernorm_constant_rows_give_bias():
    """Zero variance: two-pass variance is exactly 0, so the output is exactly the bias."""
    x = torch.full((3, 64), 7.25)
    r = torch.full((3, 64), -1.0)
    w, b = torch.randn(64), torch.randn(64)
    out = emf.ops.layernorm_residual(x, r, w, b, backend="cpu")
    assert torch.equal(out, b.expand(3, 64))


# ---- bit-exact conversions -----------------------------------------------------------------------

def _convert(x: torch.Tensor, dst: torch.dtype) -> torch.Tensor:
    out = torch.empty(x.shape, dtype=dst)
    _C.cpu_convert(out.data_ptr(), x.data_ptr(), x.numel(), CODE[x.dtype], CODE[dst])
    return out


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view({4: torch.int32, 2: torch.int16}[t.element_size()])


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16], ids=DTYPE_IDS.get)
def test_all_16_bit_patterns_widen_and_round_trip_exactly(isa, half):
    patterns = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(half)
    wide = _convert(patterns, torch.float32)
    expected = patterns.float()
    nan = expected.isnan()
    assert torch.equal(wide.isnan(), nan)
    assert torch.equal(_bits(wide)[~nan], _bits(expected)[~nan])
    back = _convert(wide, half)
    assert torch.equal(_bits(back)[~nan], _bits(patterns)[~nan])
    assert back[nan].isnan().all()


def _fp32_edge_patterns() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    random_bits = torch.randint(-(2**31), 2**31 - 1, (1 << 20,), generator=g, dtype=torch.int64).to(torch.int32)
    # Ties and near-ties at both 16-bit (bf16) and 13-bit (fp16) rounding positions, around every exponent.
    exponents = torch.arange(0, 256, dtype=torch.int32) << 23
    low = torch.tensor([0, 1, 0x0FFF, 0x1000, 0x1001, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001, 0x18000, 0x7FFFFF],
                       dtype=torch.int32)
    mantissas = torch.randint(0, 1 << 23, (8,), generator=g, dtype=torch.int32)
    edges = (exponents[:, None, None] | ((mantissas[None, :, None] & ~0x1FFFF) | low[None, None, :])).reshape(-1)
    specials = torch.tensor([65504.0, 65519.99, 65520.0, 2.0**-24, 2.0**-25, 1.5 * 2.0**-25, 2.0**-14,
                             3.3895e38, 3.4e38, math.inf, math.nan, 1e-45, 0.0]).view(torch.int32)
    all_bits = torch.cat([random_bits, edges, specials])
    return torch.cat([all_bits, all_bits | (-(2**31))]).view(torch.float32)  # and every one negated


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16], ids=DTYPE_IDS.get)
def test_fp32_narrowing_rounds_like_torch(isa, half):
    x = _fp32_edge_patterns()
    got = _convert(x, half)
    expected = x.to(half)
    nan = x.isnan()
    assert torch.equal(got.isnan(), nan)
    assert torch.equal(_bits(got)[~nan], _bits(expected)[~nan])


def test_fp16_widening_ignores_flush_denormal():
    """fp16 subnormals widen to normal fp32 values; the conversion must not depend on DAZ/FTZ."""
    patterns = torch.arange(1, 1024, dtype=torch.int16).view(torch.float16)  # every positive subnormal
    expected = patterns.float()
    flushed = torch.set_flush_denormal(True)
    try:
        got = _convert(patterns, torch.float32)
    finally:
        torch.set_flush_denormal(False)
    if not flushed:
        pytest.skip("this CPU cannot flush denormals")
    assert torch.equal(got, expected)


# ---- threads, sizes, bounds ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_thread_count_does_not_change_results(threads, dtype):
    x, r, w, b = make_rowwise((301, 1031), dtype, seed=4)  # 310K elements: several threads' worth
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append((emf.ops.layernorm_residual(x, r, w, b, backend="cpu"),
                        emf.ops.bias_gelu(x, b, backend="cpu"), emf.ops.bias_gelu(x, b, "tanh", backend="cpu")))
    for other in results[1:]:
        for a, c in zip(results[0], other):
            assert torch.equal(a, c)


@pytest.mark.parametrize("hidden", [65537, 1 << 18, 1 << 20])
def test_large_hidden(isa, hidden):
    """Wide rows on every ISA: the row sums are blocked (csrc/cpu/layernorm_residual.cpp), so the error
    does not grow with the width (before: 1.5e-4 on AVX2 and 3.4e-4 on the baseline ISA at 1M)."""
    x, r, w, b = make_rowwise((3, hidden), torch.float32, seed=5)
    out = emf.ops.layernorm_residual(x, r, w, b, backend="cpu")
    assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), torch_ops.layernorm_residual(x, r, w, b),
                              torch.float32, "layernorm_residual, large hidden")
    out = emf.ops.bias_gelu(x, b, backend="cpu")
    assert_close_to_reference(out, ref_bias_gelu(x, b), torch_ops.bias_gelu(x, b), torch.float32,
                              "bias_gelu, large hidden")
    bias = make_rowwise((3, hidden), torch.float32, seed=6)[3]
    out = emf.ops.bias_residual_layernorm(x, bias, r, w, b, backend="cpu")
    ref = torch_ops.bias_residual_layernorm(x.double(), bias.double(), r.double(), w.double(), b.double()).float()
    assert_close_to_reference(out, ref, torch_ops.bias_residual_layernorm(x, bias, r, w, b), torch.float32,
                              "bias_residual_layernorm, large hidden")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS.get)
def test_writes_stay_inside_the_output(dtype):
    rows, hidden, pad = 67, 77, 64
    x, r, w, b = make_rowwise((rows, hidden), dtype, seed=6)
    sentinel = torch.full((rows * hidden + 2 * pad,), 12345.0).to(dtype)
    code = CODE[dtype]
    for call in (lambda out: ln_raw(out, x.data_ptr(), r.data_ptr(), w.data_ptr(), b.data_ptr(), rows, hidden,
                                    dtype=code),
                 lambda out: gelu_raw(out, x.data_ptr(), b.data_ptr(), rows, hidden, dtype=code)):
        buf = sentinel.clone()
        call(buf[pad:].data_ptr())
        assert (buf[:pad] == 12345.0).all() and (buf[pad + rows * hidden:] == 12345.0).all()
