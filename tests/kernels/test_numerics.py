"""The shared checks of numerics.py catch what they claim to (each would otherwise pass silently)."""

from __future__ import annotations

import pytest
import torch

import numerics


def test_write_past_an_allocation_is_reported():
    memory = numerics.GuardedMemory()
    with memory.allocations():
        out = torch.empty(3, 5)
    memory.check()  # untouched: fine
    torch.as_strided(out, (16,), (1,))[15] = 1.0  # one element past the end, as a kernel would
    with pytest.raises(AssertionError, match=r"wrote outside .* at index 15 \(valid: 0 to 14\)"):
        memory.check()


def test_write_before_an_input_is_reported():
    memory = numerics.GuardedMemory()
    x = memory.guard(torch.arange(8, dtype=torch.int32), "ids")
    assert torch.equal(x, torch.arange(8, dtype=torch.int32))
    torch.as_strided(x, (9,), (1,), x.storage_offset() - 1)[0] = 0
    with pytest.raises(AssertionError, match="at index -1 "):
        memory.check()


def test_reads_past_a_guarded_input_see_the_sentinel():
    memory = numerics.GuardedMemory()
    x = memory.guard(torch.ones(4), "x")
    assert torch.as_strided(x, (5,), (1,))[4].isnan()
    assert x.data_ptr() % 64 == 0  # alignment-dependent kernel paths run as on a fresh tensor


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_nan_read_past_an_input_and_written_past_an_output_is_reported(dtype):
    """The blind spot of a plain NaN sentinel: a mask off by one reads NaN past its input, computes
    NaN, and writes it past its output, over a NaN. Margins hold signaling NaNs with a payload, so
    arithmetic (which quiets them) or a raw copy between an input's and an output's margin shows."""
    for compute in (lambda v: v * 0.5 + 1.0, lambda v: v):  # arithmetic, and a raw copy
        memory = numerics.GuardedMemory()
        x = memory.guard(torch.ones(4, dtype=dtype), "x")
        with memory.allocations():
            out = torch.empty(4, dtype=dtype)
        past_x, past_out = torch.as_strided(x, (5,), (1,)), torch.as_strided(out, (5,), (1,))
        assert past_x[4].isnan()
        past_out[:] = compute(past_x)
        with pytest.raises(AssertionError, match="at index 4 "):
            memory.check()


def test_fp32_bound_is_a_few_ulp():
    ref = torch.linspace(-3, 3, 1001)
    eps = torch.finfo(torch.float32).eps
    numerics.check_fp32(ref * (1 + 2 * eps), ref, 0.0, "2 ulp")
    with pytest.raises(AssertionError, match="beyond the fp32 bound"):
        numerics.check_fp32(ref + 1e-5, ref, 0.0, "1e-5 absolute")  # what the old flat bound let through
    with pytest.raises(AssertionError, match="beyond the fp32 bound"):
        numerics.check_fp32(torch.where(ref > 2.9, torch.nan, ref), ref, 0.0, "NaN in the output")


def test_backend_runs_expand_cuda_sim_per_schedule():
    params = numerics.backend_runs(["torch", "cuda_sim"])
    assert [p.id for p in params] == ["torch"] + [numerics.SimRun(s).id for s in numerics.SIM_SCHEDULES]
    assert all(p.values[0] == "cuda_sim" for p in params[1:])
    assert params[1].id == "cuda_sim" and params[1].values[0].schedule is None  # the emulation's default
    assert {p.values[0].schedule[0] for p in params[2:]} == {"runahead-forward", "runahead-reverse", "runahead-random"}
