"""Every kernel test runs with guarded memory and, for cuda_sim runs, under its schedule (numerics.py)."""

from __future__ import annotations

import pytest

import numerics


@pytest.fixture(autouse=True)
def _guarded_memory():
    with numerics.guarded_memory():
        yield


def _set_schedule(schedule):
    """Sets a (order, seed) schedule; None keeps the emulation's default. Returns the undo."""
    if schedule is None:
        return lambda: None
    sim = pytest.importorskip("ernie_m_fast._sim", reason="ernie_m_fast._sim is not built")
    before = sim.sim_schedule()
    sim.sim_set_schedule(*schedule)
    return lambda: sim.sim_set_schedule(before)


@pytest.fixture(autouse=True)
def _sim_schedule_of_backend(request):
    """A test parametrised with numerics.backend_runs runs its cuda_sim case under that case's schedule."""
    callspec = getattr(request.node, "callspec", None)
    restore = _set_schedule(getattr(callspec.params.get("backend") if callspec else None, "schedule", None))
    yield
    restore()


@pytest.fixture(params=numerics.SIM_SCHEDULES, ids=numerics.schedule_id)
def sim_schedule(request):
    """For cuda_sim tests that name the backend themselves: run the test once per schedule."""
    restore = _set_schedule(request.param)
    yield request.param
    restore()
