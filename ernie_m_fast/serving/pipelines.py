"""/extract and /token-classify: the task pipelines, with their model rows batched across requests.

A pipeline turns a request's texts into token-id rows (UIE-M: one per prompt, text and window; NER:
one per window), runs the rows through the model and decodes each text's result from its rows'
outputs. Served, the decoding logic is the pipeline's own (`ernie_m_fast.pipeline` answers the same),
but the model rows go to the server's one batcher as row-level work of their own kind, so rows of
concurrent requests share token-budget batches with each other, and each request gets back exactly
its own rows' outputs. The pipeline's Python (tokenization, windows, span decoding) runs on a pool
thread per request, off the event loop and off the model thread; the model is only ever called on
the model thread.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Optional, Sequence

import numpy as np

from ..pipelines.information_extraction import InformationExtractionPipeline
from ..pipelines.token_classification import TokenClassificationPipeline

# (kind, rows) -> one tuple of output arrays per row; blocks the calling (pool) thread
RowRunner = Callable[[str, Sequence[Sequence[int]]], list]


class BatchedRows:
    """Mixin for a Pipeline: `run_rows` hands the rows to the server's batcher instead of the model."""

    kind = ""  # the batcher's kind of work for this pipeline's rows
    _row_runner: Optional[RowRunner] = None

    def attach(self, row_runner: RowRunner) -> None:
        self._row_runner = row_runner

    def run_rows(self, rows, params, forward=None, token_level=None):
        if forward is not None or token_level is not None or params["forward_kwargs"]:
            raise ValueError("a served pipeline runs its rows through the server's batcher, with the pipeline's own "
                             "forward; custom forwards are not served")
        if self._row_runner is None:
            raise RuntimeError("the served pipeline is not attached to a batcher")
        return self._row_runner(self.kind, rows) if rows else []

    def forward_rows(self, input_ids, attention_mask) -> tuple:
        """The pipeline's model call on one padded batch (on the model thread): its `_forward` outputs."""
        return self._forward(input_ids, attention_mask)


class ServedInformationExtraction(BatchedRows, InformationExtractionPipeline):
    kind = "extract"


class ServedTokenClassification(BatchedRows, TokenClassificationPipeline):
    kind = "token-classify"


SERVED_PIPELINES = {"extract": ServedInformationExtraction, "token-classify": ServedTokenClassification}


def row_runner(batcher, loop: asyncio.AbstractEventLoop) -> RowRunner:
    """A blocking `(kind, rows) -> outputs` for pool threads: the rows go through `batcher.run` on `loop`."""

    def run(kind: str, rows: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, ...]]:
        return asyncio.run_coroutine_threadsafe(batcher.run(kind, [list(r) for r in rows]), loop).result()

    return run
