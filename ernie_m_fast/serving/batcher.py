"""One batcher: requests' inputs queue up, one model thread runs them in batches of real tokens.

Each input is an item (a kind of work and its token ids) with an asyncio future. The model thread
takes the oldest item and as many of the next items of the same kind as fit `max_batch_tokens`
real tokens (and `max_batch_requests` inputs, if set), runs them in one model call and answers each
future with its own row of the result. There is no batching timer: an idle model thread takes
whatever is queued at once, so a lone request is never held back waiting for company, and under
load the queue grows while a batch runs, so the next batch is bigger — batch size and queue wait
follow the load by themselves (TEI's continuous batching).

Work that batches itself (a task pipeline answering one whole request) is queued as a call:
`await batcher.call(fn)` runs `fn()` alone on the model thread, in queue order, so the model is
only ever used from that one thread.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Callable, Optional, Sequence

import numpy as np

from . import errors
from .engine import take_within_budget

_CALL = "call"  # the kind of an item whose row is a function to run alone


class _Item:
    __slots__ = ("kind", "row", "future", "queued_at")

    def __init__(self, kind, row, future, queued_at):
        self.kind, self.row, self.future, self.queued_at = kind, row, future, queued_at


def _answer(items: Sequence[_Item], results: Optional[np.ndarray], error: Optional[BaseException]) -> None:
    """On the event loop: each future gets its own row (or the batch's error)."""
    for i, item in enumerate(items):
        if item.future.done():  # the client went away and its handler was cancelled
            continue
        if error is not None:
            item.future.set_exception(errors.ApiError(424, errors.BACKEND, f"Inference failed: {error}"))
        else:
            item.future.set_result(results[i])


class Batcher:
    """`await batcher.run(kind, rows)` -> one result row per row, computed on the model thread."""

    def __init__(self, run_batch: Callable[[str, list], np.ndarray], max_batch_tokens: int,
                 max_batch_requests: Optional[int] = None, metrics=None):
        self._run_batch = run_batch
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_requests = max_batch_requests
        self._metrics = metrics
        self._queue: collections.deque[_Item] = collections.deque()
        self._wakeup = threading.Condition()
        self._stopping = False
        self._loop_of_requests: Optional[asyncio.AbstractEventLoop] = None  # the server's one event loop
        self._thread = threading.Thread(target=self._run_forever, name="ernie-m-fast-model", daemon=True)

    def start(self) -> "Batcher":
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Run what is queued, then end the model thread."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def queue_size(self) -> int:
        return len(self._queue)

    def submit(self, kind: str, rows: Sequence[Sequence[int]]) -> list[asyncio.Future]:
        """Queue one item per row (from the event loop); returns their futures in order."""
        if self._stopping:
            raise RuntimeError("the batcher is stopped")
        loop = asyncio.get_running_loop()
        if self._loop_of_requests is None:
            self._loop_of_requests = loop
        elif loop is not self._loop_of_requests:
            raise RuntimeError("a Batcher serves the event loop that first submitted to it")
        now = time.perf_counter()
        items = [_Item(kind, row, loop.create_future(), now) for row in rows]
        with self._wakeup:
            self._queue.extend(items)
            size = len(self._queue)
            self._wakeup.notify()
        if self._metrics is not None:
            self._metrics.queue_size.set(size)
        return [item.future for item in items]

    async def run(self, kind: str, rows: Sequence[Sequence[int]]) -> list[np.ndarray]:
        return list(await asyncio.gather(*self.submit(kind, rows)))

    async def call(self, fn: Callable[[], object]):
        """`fn()` on the model thread, alone, in queue order; its exceptions are raised here unchanged."""
        return await self.submit(_CALL, [fn])[0]

    def _next_batch(self) -> Optional[list[_Item]]:
        with self._wakeup:
            while not self._queue and not self._stopping:
                self._wakeup.wait()
            if not self._queue:
                return None
            kind = self._queue[0].kind
            if kind == _CALL:
                batch = [self._queue.popleft()]
                size = len(self._queue)
                if self._metrics is not None:
                    self._metrics.queue_size.set(size)
                return batch
            lengths = []
            for item in self._queue:  # the oldest items of the oldest item's kind, in order
                if item.kind != kind:
                    break
                lengths.append(len(item.row))
            count = take_within_budget(lengths, self.max_batch_tokens, self.max_batch_requests)
            batch = [self._queue.popleft() for _ in range(count)]
            size = len(self._queue)
        if self._metrics is not None:
            self._metrics.queue_size.set(size)
        return batch

    def _run_forever(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch[0].kind == _CALL:
                self._run_call(batch[0])
                continue
            started = time.perf_counter()
            results, error = None, None
            try:
                results = self._run_batch(batch[0].kind, [item.row for item in batch])
            except Exception as exc:  # answered to the batch's requests as a 424; the thread lives on
                error = exc
            if self._metrics is not None:
                self._metrics.observe_batch(batch, started, time.perf_counter())
            try:
                self._loop_of_requests.call_soon_threadsafe(_answer, batch, results, error)
            except RuntimeError:  # the event loop is closed: nobody is waiting any more
                pass

    def _run_call(self, item: _Item) -> None:
        started = time.perf_counter()
        try:
            result, error = item.row(), None
        except Exception as exc:  # the caller decides what it means (a bad schema is the client's fault)
            result, error = None, exc
        if self._metrics is not None:
            self._metrics.inference_duration.observe(time.perf_counter() - started)

        def answer():
            if item.future.done():
                return
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)

        try:
            self._loop_of_requests.call_soon_threadsafe(answer)
        except RuntimeError:
            pass
