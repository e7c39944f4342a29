"""What every kernel test checks besides its own assertion, in one place (used through cases.py and
tests/kernels/conftest.py, so test bodies stay as they are):

- fp32 bounds in units of rounding: a few ulp of each reference value plus a small floor, instead of
  a flat 1e-5 that hid a GELU constant off in its 4th digit (an error of 1e-5 at |y| ~ 2 is ~40 ulp).
- Guarded memory: kernel inputs (cases.make_*) and every CPU tensor that `torch.empty`/`torch.empty_like`
  allocates during a test (every backend's outputs) are views into larger buffers whose margins hold a
  sentinel (NaN for floats). A kernel that reads past its data reads NaN, which reaches the output and
  fails the comparison; one that writes past it changes a margin, which the test's teardown reports.
  Outputs start as NaN too, so an element a kernel never writes cannot pass as stale zeros.
- cuda_sim schedules: every test parametrised over backends runs `cuda_sim` once per schedule in
  SIM_SCHEDULES, lockstep and run-ahead (csrc/sim/sim.h), so races between warps show.
"""

from __future__ import annotations

import contextlib
import math

import torch

# ---- fp32 bounds ---------------------------------------------------------------------------------

# |out - ref| <= FP32_REL_ULPS * eps * |ref| + floor, elementwise, with
# floor = max(FP32_FLOOR_ULPS * eps * max(max|ref|, 1), 2 * (PyTorch's largest error)).
# - 8 ulp of the value: a row-wise kernel rounds its inputs, a few fp32 operations and its output
#   (measured: 1-2 ulp wherever the value is not a cancellation); flash-style attention also rescales
#   its running output once per key tile (online softmax), measured up to 5.5 ulp over 512 keys.
# - The floor covers results that are cancellations (LayerNorm's w * n + b, GELU for v << 0, attention
#   averages of unit values): their error scales with the operands (~1, the inputs' magnitude here) or
#   the largest value, not with the result. 4 ulp of that; measured kernels reach 1-2.
# - Twice PyTorch's own worst error, for ill-conditioned inputs (a row mean of 3000 with unit spread
#   loses 12 bits in x + residual before any kernel runs): no kernel can beat the input's rounding.
FP32_REL_ULPS = 8
FP32_FLOOR_ULPS = 4
# The `torch` backend is the baseline itself, so it gets a fixed floor: 8 ulp of the largest value
# (measured: 4.8 ulp for attention over 129-513 keys, whose output is an average of unit values).
TORCH_FLOOR_ULPS = 8


def fp32_allowed(ref: torch.Tensor, baseline_err: float | None) -> torch.Tensor:
    """Per-element bound for an fp32 result; baseline_err None means "this is the baseline" (torch)."""
    eps = torch.finfo(torch.float32).eps
    scale = max(ref.abs().max().item() if ref.numel() else 0.0, 1.0)
    if baseline_err is None:
        floor = TORCH_FLOOR_ULPS * eps * scale
    else:
        floor = max(FP32_FLOOR_ULPS * eps * scale, 2 * baseline_err)
    return FP32_REL_ULPS * eps * ref.abs() + floor


def check_fp32(out: torch.Tensor, ref: torch.Tensor, baseline_err: float | None, what: str) -> None:
    allowed = fp32_allowed(ref, baseline_err)
    err = (out.float() - ref).abs()
    bad = ~(err <= allowed)  # NaN counts as bad
    if bad.any():
        i = int(torch.where(bad, (err / allowed).nan_to_num(nan=math.inf), -1.0).flatten().argmax())
        flat_ref, flat_out = ref.flatten(), out.float().flatten()
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {err.numel()} elements beyond the fp32 bound; worst at flat index {i}: "
            f"got {flat_out[i].item():.9g}, reference {flat_ref[i].item():.9g}, error {err.flatten()[i].item():.3g} "
            f"> allowed {allowed.flatten()[i].item():.3g} ({FP32_REL_ULPS} ulp of the value + floor; PyTorch's "
            f"worst error {baseline_err if baseline_err is not None else 'n/a'})")


# ---- guarded memory ------------------------------------------------------------------------------

# 256 bytes each side: the view starts 256 bytes into a (64-byte aligned) allocation, so alignment-
# dependent kernel paths (128-bit loads) run as they would on a fresh tensor.
MARGIN_BYTES = 256
# Integers get a small negative sentinel: read as an index, offset or length it points into a margin
# or fails a check, instead of sending a kernel gigabytes away (a crash, not a test failure).
INT_SENTINEL = -7
_FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_INTS = (torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8)


# Float margins hold *signaling* NaNs with a payload, as raw bits: any arithmetic on one (a kernel
# that read a margin) yields a quiet NaN, whose bits differ, and inputs and outputs carry different
# payloads, so a value read out of an input's margin and written into an output's margin changes
# that margin's bits even when the kernel copies it without arithmetic. (A plain NaN sentinel let a
# GELU mask off by one read NaN past its input and write NaN past its output unseen.)
_FLOAT_BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
               torch.float64: torch.int64}
_SIGNALING_NAN = {  # exponent all ones, quiet bit clear, nonzero payload: (input margins, allocation margins)
    torch.float32: (0x7F80A5A5, 0x7F805A5A), torch.float16: (0x7CA5, 0x7C5A),
    torch.bfloat16: (0x7F85, 0x7F8A), torch.float64: (0x7FF0A5A5A5A5A5A5, 0x7FF05A5A5A5A5A5A),
}


def _fill_sentinel(buf: torch.Tensor, kind: int) -> None:
    """kind 0: an input's margins; 1: an allocation's (the kernels' outputs and scratch)."""
    if buf.dtype in _FLOATS:
        buf.view(_FLOAT_BITS[buf.dtype]).fill_(_SIGNALING_NAN[buf.dtype][kind])
    else:
        buf.fill_(INT_SENTINEL if buf.dtype in _INTS and buf.dtype != torch.uint8 else 0xA5)


class GuardedMemory:
    """Hands out tensors inside sentinel-filled buffers and checks later that the margins are intact."""

    def __init__(self):
        self._buffers: list[tuple[str, torch.Tensor, int, int, torch.Tensor]] = []
        self._empty = torch.empty  # the real one: allocations() replaces torch.empty while it runs

    def _new(self, shape, dtype: torch.dtype, name: str, kind: int = 1) -> torch.Tensor:
        n = math.prod(shape)
        margin = MARGIN_BYTES // dtype.itemsize
        buf = self._empty(n + 2 * margin, dtype=dtype)
        _fill_sentinel(buf, kind)
        pattern = buf[:margin].clone()  # the sentinel's exact bits (NaN compares unequal to itself)
        self._buffers.append((name, buf, margin, n, pattern))
        return buf[margin:margin + n].view(shape)

    def guard(self, t: torch.Tensor, name: str = "input") -> torch.Tensor:
        """A copy of t (contiguous, same values) placed between sentinel margins."""
        if t.device.type != "cpu" or (t.dtype not in _FLOATS and t.dtype not in _INTS) or t.requires_grad:
            return t
        return self._new(tuple(t.shape), t.dtype, name, kind=0).copy_(t)

    def check(self) -> None:
        for name, buf, margin, n, pattern in self._buffers:
            bits = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[buf.element_size()]
            before, after = buf[:margin].view(bits), buf[margin + n:].view(bits)
            expected = pattern.view(bits)
            for side, got in (("before", before), ("after", after)):
                changed = (got != expected).nonzero().flatten()
                if changed.numel():
                    index = n + int(changed[0]) if side == "after" else int(changed[-1]) - margin
                    raise AssertionError(
                        f"a kernel wrote outside a {name} of {n} {buf.dtype} elements: {changed.numel()} sentinel "
                        f"element(s) changed, the nearest at index {index} (valid: 0 to {n - 1})")

    @contextlib.contextmanager
    def allocations(self):
        """Routes torch.empty / torch.empty_like for CPU tensors through guarded buffers."""
        real_empty, real_empty_like = torch.empty, torch.empty_like

        def wrap(t: torch.Tensor, kwargs) -> torch.Tensor:
            if (type(t) is not torch.Tensor or t.device.type != "cpu" or not t.is_contiguous() or t.numel() == 0
                    or t.requires_grad or "out" in kwargs or (t.dtype not in _FLOATS and t.dtype not in _INTS)):
                return t
            return self._new(tuple(t.shape), t.dtype, "torch.empty allocation")

        def empty(*args, **kwargs):
            return wrap(real_empty(*args, **kwargs), kwargs)

        def empty_like(*args, **kwargs):
            return wrap(real_empty_like(*args, **kwargs), kwargs)

        torch.empty, torch.empty_like = empty, empty_like
        try:
            yield self
        finally:
            torch.empty, torch.empty_like = real_empty, real_empty_like


_ACTIVE: GuardedMemory | None = None


@contextlib.contextmanager
def guarded_memory():
    """For one test: inputs made by cases.make_* and every torch.empty allocation are guarded; the
    margins are checked when the test ends (tests/kernels/conftest.py)."""
    global _ACTIVE
    memory = GuardedMemory()
    _ACTIVE = memory
    try:
        with memory.allocations():
            yield memory
    finally:
        _ACTIVE = None
    memory.check()


def guarded(t: torch.Tensor, name: str = "input") -> torch.Tensor:
    """t between sentinel margins while a test's guarded_memory() is active; t itself otherwise."""
    return _ACTIVE.guard(t, name) if _ACTIVE is not None else t


# ---- cuda_sim schedules --------------------------------------------------------------------------

# (schedule, seed): None is the emulation's default (lockstep forward, or what EMF_SIM_SCHEDULE says),
# then run-ahead in all three warp orders.
SIM_SCHEDULES = (None, ("runahead-forward", 0), ("runahead-reverse", 0), ("runahead-random", 1))


def schedule_id(schedule: tuple[str, int] | None) -> str:
    if schedule is None:
        return "default"
    order, seed = schedule
    return order + (str(seed) if order.endswith("random") else "")


class SimRun(str):
    """The backend name "cuda_sim" (a str, so test bodies pass it on unchanged) run under one schedule;
    conftest's autouse fixture sets the schedule for the test."""

    schedule: tuple[str, int] | None

    def __new__(cls, schedule: tuple[str, int] | None):
        run = super().__new__(cls, "cuda_sim")
        run.schedule = schedule
        return run

    @property
    def id(self) -> str:
        return "cuda_sim" if self.schedule is None else f"cuda_sim-{schedule_id(self.schedule)}"


def backend_runs(backends) -> list:
    """pytest params for a list of backend names: cuda_sim once per schedule, the others once."""
    import pytest

    runs = []
    for name in backends:
        if name == "cuda_sim":
            runs += [pytest.param(run, id=run.id) for run in map(SimRun, SIM_SCHEDULES)]
        else:
            runs.append(pytest.param(name, id=name))
    return runs
