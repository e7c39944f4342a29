"""Served pipelines without HTTP: the rows of concurrent /extract and /token-classify requests meet in
one batch, and each request gets exactly what `ernie_m_fast.pipeline` answers for its own texts.

The model thread is held (a gate) while the requests queue their rows, so the shared batch is
certain, not a matter of timing. Tolerance: scores within 1e-5, as in test_pipeline_routes (same
fp32 model; only which rows share a batch differs); labels, words and offsets exactly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

import ernie_m_fast as emf
from ernie_m_fast.serving.batcher import Batcher
from ernie_m_fast.serving.engine import Engine
from ernie_m_fast.serving.metrics import ServerMetrics
from ernie_m_fast.serving.pipelines import row_runner
from ernie_m_fast.serving.settings import ServerSettings
from test_pipeline_routes import same


class HeldModel:
    """The engine's run_batch, recording each batch and held until `release` is set."""

    def __init__(self, engine):
        self.engine = engine
        self.calls = []
        self.release = threading.Event()

    def __call__(self, kind, rows):
        self.calls.append((kind, [list(r) for r in rows]))
        assert self.release.wait(60)
        return self.engine.run_batch(kind, rows)


def serve_concurrently(model_dir, requests):
    """Run `requests` ((texts, task_args) pairs) through the served pipeline at once; the model thread is
    held until all of their first rows are queued. Returns (results in order, model calls, metrics)."""
    engine = Engine(ServerSettings(model=model_dir))
    model = HeldModel(engine)
    metrics = ServerMetrics()
    batcher = Batcher(model, max_batch_tokens=4096, metrics=metrics).start()

    async def scenario():
        loop = asyncio.get_running_loop()
        engine.pipeline.attach(row_runner(batcher, loop))
        hold = batcher.submit("embed", [[0, 5, 2]])  # the model thread takes it and waits at the gate
        while not model.calls:
            await asyncio.sleep(0.01)
        with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
            running = [loop.run_in_executor(pool, lambda t=texts, a=args: engine.pipeline(t, **a))
                       for texts, args in requests]
            while len({item.origin for item in batcher._queue}) < len(requests):
                await asyncio.sleep(0.01)
            model.release.set()
            await hold[0]
            return [await r for r in running]

    try:
        results = asyncio.run(scenario())
    finally:
        model.release.set()
        batcher.stop(timeout=30)
    return results, model.calls, metrics


def batch_requests_histogram(metrics):
    samples = {s.name: s.value for m in metrics.registry.collect() if m.name == "ernie_m_fast_batch_requests"
               for s in m.samples if not s.labels.get("le")}
    return samples["ernie_m_fast_batch_requests_count"], samples["ernie_m_fast_batch_requests_sum"]


def test_token_classify_rows_of_concurrent_requests_share_a_batch(ner_dir):
    requests = [(["Angela Merkel lives in Berlin.", "Paris"], {}),
                (["北京冬奥会 谷爱凌 获得金牌"], {"aggregation_strategy": "simple", "ignore_labels": []}),
                (["Hello there, Berlin", "a b c d e f"], {"aggregation_strategy": "first", "ignore_labels": []})]
    results, calls, metrics = serve_concurrently(ner_dir, requests)
    direct = emf.pipeline("token-classification", model=ner_dir)
    for (texts, args), got in zip(requests, results):
        assert same(got, direct(texts, **args)), (texts, got)
    assert any(entities for got in results for entities in got)  # the comparison saw entities
    assert [kind for kind, _ in calls] == ["embed", "token-classify"]  # every request's rows: one batch
    assert len(calls[1][1]) == 5
    count, total = batch_requests_histogram(metrics)
    assert (count, total) == (2, 1 + 3)  # the held batch served 1 request, the next one all 3


def test_extract_rows_of_concurrent_requests_share_batches_node_by_node(uie_dir):
    schema = [{"Person": ["City"]}, "Event"]
    requests = [(["Angela Merkel lives in Berlin.", "Paris"], {"schema": schema, "schema_lang": "en",
                                                               "position_prob": 0.3}),
                (["北京冬奥会 谷爱凌 获得金牌"], {"schema": ["Person", "Event"], "position_prob": 0.3})]
    results, calls, metrics = serve_concurrently(uie_dir, requests)
    direct = emf.pipeline("information-extraction", model=uie_dir)
    for (texts, args), got in zip(requests, results):
        assert same(got, direct(texts, **args)), (texts, got)
    assert any(result for got in results for result in got)  # spans were found
    assert calls[1][0] == "extract"
    assert len(calls[1][1]) == 2 + 1  # the first schema node (Person) for the texts of both requests together
    count, total = batch_requests_histogram(metrics)
    assert total > count  # some batch served more than one request


def test_a_served_pipeline_refuses_custom_forwards(ner_dir):
    engine = Engine(ServerSettings(model=ner_dir))
    with pytest.raises(ValueError, match="custom forwards are not served"):
        engine.pipeline("Berlin", forward_kwargs={"output_hidden_states": True})
    with pytest.raises(RuntimeError, match="not attached"):
        engine.pipeline("Berlin")
