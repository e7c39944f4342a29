"""One batcher: requests' inputs queue up, one model thread runs them in batches of real tokens.

Each input is an item (a kind of work and its token ids) with an asyncio future. The model thread
takes the oldest item and as many of the next items of the same kind as fit `max_batch_tokens`
real tokens (and `max_batch_requests` inputs, if set), runs them in one model call and answers each
future with its own row of the result. There is no batching timer: an idle model thread takes
whatever is queued at once, so a lone request is never held back waiting for company, and under
load the queue grows while a batch runs, so the next batch is bigger — batch size and queue wait
follow the load by themselves (TEI's continuous batching).

Every kind of work goes through here as rows: /embed and /predict inputs, and the model rows of
the /extract and /token-classify pipelines (`pipelines.py`), so concurrent requests of every route
share batches and the model is only ever used from the one model thread. A request's rows are
queued together (one `submit`), so they stay contiguous in the queue and in a batch; each batch
records how many requests it served (`ernie_m_fast_batch_requests`).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Callable, Optional, Sequence

from . import errors
from .engine import take_within_budget


class _Item:
    __slots__ = ("kind", "row", "future", "queued_at", "origin")

    def __init__(self, kind, row, future, queued_at, origin):
        self.kind, self.row, self.future, self.queued_at = kind, row, future, queued_at
        self.origin = origin  # which submit (request) queued it


def requests_in(items: Sequence[_Item]) -> int:
    """How many submits (requests) a batch's items came from: each submit's items are contiguous."""
    return sum(1 for i, item in enumerate(items) if i == 0 or item.origin != items[i - 1].origin)


def _answer(items: Sequence[_Item], results: Optional[Sequence], error: Optional[BaseException]) -> None:
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

    def __init__(self, run_batch: Callable[[str, list], Sequence], max_batch_tokens: int,
                 max_batch_requests: Optional[int] = None, metrics=None):
        self._run_batch = run_batch
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_requests = max_batch_requests
        self._metrics = metrics
        self._queue: collections.deque[_Item] = collections.deque()
        self._wakeup = threading.Condition()
        self._stopping = False
        self._submits = 0
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
        with self._wakeup:
            self._submits += 1
            items = [_Item(kind, row, loop.create_future(), now, self._submits) for row in rows]
            self._queue.extend(items)
            size = len(self._queue)
            self._wakeup.notify()
        if self._metrics is not None:
            self._metrics.queue_size.set(size)
        return [item.future for item in items]

    async def run(self, kind: str, rows: Sequence[Sequence[int]]) -> list:
        return list(await asyncio.gather(*self.submit(kind, rows)))

    def _next_batch(self) -> Optional[list[_Item]]:
        with self._wakeup:
            while not self._queue and not self._stopping:
                self._wakeup.wait()
            if not self._queue:
                return None
            kind = self._queue[0].kind
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
            started = time.perf_counter()
            results, error = None, None
            try:
                results = self._run_batch(batch[0].kind, [item.row for item in batch])
            except Exception as exc:  # answered to the batch's requests as a 424; the thread lives on
                error = exc
            if self._metrics is not None:
                self._metrics.observe_batch(batch, requests_in(batch), started, time.perf_counter())
            try:
                self._loop_of_requests.call_soon_threadsafe(_answer, batch, results, error)
            except RuntimeError:  # the event loop is closed: nobody is waiting any more
                pass
