"""The batcher alone (no HTTP): token budget, no holding back, own results, errors, kinds."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from ernie_m_fast.serving import errors
from ernie_m_fast.serving.batcher import Batcher
from ernie_m_fast.serving.engine import take_within_budget
from ernie_m_fast.serving.metrics import ServerMetrics


class GatedModel:
    """run_batch that records each batch and waits for the test to let it finish."""

    def __init__(self, fail_on=None):
        self.calls = []
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.fail_on = fail_on

    def __call__(self, kind, rows):
        self.calls.append((kind, [list(r) for r in rows]))
        self.started.release()
        assert self.release.acquire(timeout=30)
        if self.fail_on is not None and any(self.fail_on in r for r in rows):
            raise RuntimeError("boom")
        return np.array([[sum(r), len(r)] for r in rows], dtype=np.float32)  # a function of the row alone

    def wait_started(self):
        assert self.started.acquire(timeout=30)


async def _started(model):
    await asyncio.get_running_loop().run_in_executor(None, model.wait_started)


def test_take_within_budget():
    assert take_within_budget([4, 4, 4, 3], 10) == 2
    assert take_within_budget([12, 1], 10) == 1  # one item always fits
    assert take_within_budget([1] * 9, 100, max_items=4) == 4
    assert take_within_budget([5, 5], 10) == 2


def test_lone_request_runs_at_once_and_later_ones_batch_together():
    model = GatedModel()
    batcher = Batcher(model, max_batch_tokens=100).start()

    async def scenario():
        first = batcher.submit("embed", [[1, 2, 3]])
        await _started(model)  # the lone request is running: nothing waited for company
        assert model.calls == [("embed", [[1, 2, 3]])]
        later = batcher.submit("embed", [[4], [5, 6]]) + batcher.submit("embed", [[7, 8, 9, 10]])
        model.release.release()
        assert (await first[0]).tolist() == [6, 3]
        await _started(model)
        model.release.release()
        results = await asyncio.gather(*later)
        return [r.tolist() for r in results]

    assert asyncio.run(scenario()) == [[4, 1], [11, 2], [34, 4]]
    assert model.calls[1] == ("embed", [[4], [5, 6], [7, 8, 9, 10]])  # queued while busy -> one batch
    batcher.stop(timeout=10)


def test_batches_respect_the_token_budget_the_item_limit_and_kinds():
    model = GatedModel()
    batcher = Batcher(model, max_batch_tokens=10, max_batch_requests=3).start()

    async def scenario():
        futures = batcher.submit("embed", [[0]])
        await _started(model)  # hold the model thread while the queue fills
        futures += batcher.submit("embed", [[1] * 4, [2] * 4, [3] * 4, [4] * 3])
        futures += batcher.submit("predict", [[5], [6]])
        futures += batcher.submit("embed", [[7], [8], [9], [10]])
        for _ in range(6):
            model.release.release()
        results = await asyncio.gather(*futures)
        return [r.tolist() for r in results]

    results = asyncio.run(scenario())
    batcher.stop(timeout=10)
    kinds_and_rows = [(kind, [row[0] for row in rows]) for kind, rows in model.calls]
    assert kinds_and_rows == [("embed", [0]), ("embed", [1, 2]), ("embed", [3, 4]), ("predict", [5, 6]),
                              ("embed", [7, 8, 9]), ("embed", [10])]
    rows = [[0], [1] * 4, [2] * 4, [3] * 4, [4] * 3, [5], [6], [7], [8], [9], [10]]
    assert results == [[sum(r), len(r)] for r in rows]  # every future got its own row


def test_a_failing_batch_answers_its_requests_with_424_and_the_thread_lives_on():
    model = GatedModel(fail_on=666)
    batcher = Batcher(model, max_batch_tokens=100).start()

    async def scenario():
        bad = batcher.submit("embed", [[666], [1]])
        model.release.release()
        for future in bad:
            with pytest.raises(errors.ApiError) as info:
                await future
            assert info.value.status == 424 and info.value.error_type == "backend"
        good = batcher.submit("embed", [[2, 2]])
        model.release.release()
        return (await good[0]).tolist()

    assert asyncio.run(scenario()) == [4, 2]
    batcher.stop(timeout=10)


def test_stop_runs_what_is_queued_then_refuses():
    model = GatedModel()
    batcher = Batcher(model, max_batch_tokens=2).start()

    async def scenario():
        futures = batcher.submit("embed", [[1], [2], [3]])
        for _ in range(2):
            model.release.release()
        stopper = asyncio.get_running_loop().run_in_executor(None, batcher.stop, 30)
        results = await asyncio.gather(*futures)
        await stopper
        with pytest.raises(RuntimeError):
            batcher.submit("embed", [[4]])
        return [r.tolist() for r in results]

    assert asyncio.run(scenario()) == [[1, 1], [2, 1], [3, 1]]


def test_each_batch_counts_the_requests_its_rows_came_from():
    model = GatedModel()
    metrics = ServerMetrics()
    batcher = Batcher(model, max_batch_tokens=100, metrics=metrics).start()

    async def scenario():
        futures = batcher.submit("embed", [[1], [2]])  # batch 1: one request, two rows
        await _started(model)
        futures += batcher.submit("embed", [[3]]) + batcher.submit("embed", [[4], [5]])
        futures += batcher.submit("embed", [[6]])  # batch 2: three requests, four rows
        model.release.release()
        await _started(model)
        model.release.release()
        await asyncio.gather(*futures)

    asyncio.run(scenario())
    batcher.stop(timeout=10)
    assert [len(rows) for _, rows in model.calls] == [2, 4]
    histogram = {s.name: s.value for m in metrics.registry.collect() if m.name == "ernie_m_fast_batch_requests"
                 for s in m.samples if "le" not in s.labels}
    assert histogram["ernie_m_fast_batch_requests_count"] == 2
    assert histogram["ernie_m_fast_batch_requests_sum"] == 1 + 3
