"""Bounded load on the real server over 127.0.0.1: every answer is that input's own, nothing is
dropped, /metrics agrees; and SIGTERM during load drains (every admitted request completes, exit 0).

Tolerance: 1e-5 as in test_routes (same fp32 model; only the batch's row count differs).
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import torch

from ernie_m_fast.serving.loadgen import run_load_sync
from ernie_m_fast.tiny import bundled_corpus_lines
from serving_helpers import DirectModel

ATOL = 1e-5
CLIENTS = 64
REQUESTS = 2000


@pytest.fixture(scope="module")
def corpus():
    lines = [line for line in bundled_corpus_lines() if len(line) < 120]
    texts = []
    for line in lines:  # whole lines and shorter prefixes: lengths vary, so batches mix lengths
        texts += [line, line[: max(1, len(line) // 3)]]
    return list(dict.fromkeys(texts))[:120]


@pytest.fixture(scope="module")
def expected(base_dir, corpus):
    direct = DirectModel(base_dir)
    vectors = {text: direct.embedding(text) for text in corpus}
    stacked = torch.stack(list(vectors.values()))
    distances = torch.cdist(stacked, stacked) + torch.eye(len(stacked)) * 1e9
    assert distances.min() > 1e-3, "inputs too alike for a mix-up to show"
    return vectors


def make_requests(corpus, count, seed=0):
    """(path, body, texts): mostly single inputs, some client batches of 2-4, cycling through the corpus."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        size = 1 if i % 5 else int(torch.randint(2, 5, (1,), generator=g))
        picks = torch.randint(0, len(corpus), (size,), generator=g).tolist()
        texts = [corpus[p] for p in picks]
        out.append(("/embed", json.dumps({"inputs": texts[0] if size == 1 else texts}).encode(), texts))
    return out


def check_answer(body: bytes, texts, expected):
    vectors = json.loads(body)
    assert len(vectors) == len(texts)
    for text, vector in zip(texts, vectors):
        assert torch.allclose(torch.tensor(vector), expected[text], atol=ATOL, rtol=0), text


def test_load_every_answer_is_its_own_and_metrics_match(start_server, base_dir, corpus, expected):
    server = start_server(base_dir, "--max-batch-tokens", "2048", "--max-concurrent-requests", "512")
    requests = make_requests(corpus, REQUESTS)
    before = server.metrics()
    result = run_load_sync("127.0.0.1", server.port, [(p, b) for p, b, _ in requests], CLIENTS)
    after = server.metrics()

    assert len(result.outcomes) == REQUESTS  # nothing dropped
    assert sorted(o.index for o in result.outcomes) == list(range(REQUESTS))
    failures = [o for o in result.outcomes if o.status != 200]
    assert not failures, failures[:3]
    for outcome in result.outcomes:
        check_answer(outcome.body, requests[outcome.index][2], expected)

    def delta(key):
        return after.get(key, 0.0) - before.get(key, 0.0)

    inputs = sum(len(texts) for _, _, texts in requests)
    assert delta('ernie_m_fast_requests_total{route="/embed",status="200"}') == REQUESTS
    assert delta('ernie_m_fast_request_duration_seconds_count{route="/embed",status="200"}') == REQUESTS
    assert delta('ernie_m_fast_inputs_total{route="/embed"}') == inputs
    assert delta("ernie_m_fast_batch_size_sum") == inputs  # the model thread ran each input exactly once
    batches = delta("ernie_m_fast_batch_size_count")
    assert 0 < batches < inputs  # concurrent requests were batched together
    assert after["ernie_m_fast_queue_size"] == 0
    assert server.proc.poll() is None and server.request("GET", "/health")[0] == 200
    print(f"\nload: {CLIENTS} clients, {REQUESTS} requests ({inputs} inputs) in {result.wall_seconds:.2f}s: "
          f"{result.requests_per_second():.0f} req/s, p50 {result.percentile(50) * 1e3:.2f} ms, "
          f"p99 {result.percentile(99) * 1e3:.2f} ms, {inputs / batches:.1f} inputs per batch")


def test_sigterm_during_load_finishes_every_admitted_request_and_exits_0(start_server, base_dir, corpus, expected):
    server = start_server(base_dir, "--max-batch-tokens", "2048")
    requests = make_requests(corpus, REQUESTS, seed=1)
    results = {}

    def drive():
        results["load"] = run_load_sync("127.0.0.1", server.port, [(p, b) for p, b, _ in requests], CLIENTS,
                                        stop_on_refusal=True)

    # the load generator appends outcomes as they complete; watch the server's log instead of racing it
    driver = threading.Thread(target=drive)
    driver.start()
    deadline = time.monotonic() + 120
    while server.log().count("POST /embed 200") < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.proc.send_signal(15)
    exit_code = server.proc.wait(timeout=120)
    driver.join(timeout=120)
    assert not driver.is_alive()
    log = server.log()

    assert exit_code == 0, log[-2000:]
    in_flight = int(re.search(r"signal 15: draining, (\d+) requests in flight", log).group(1))
    admitted, completed, left = map(int, re.search(
        r"drained: admitted=(\d+) completed=(\d+) still_in_flight=(\d+)", log).groups())
    assert in_flight > 0, "SIGTERM arrived with nothing in flight: the drain was not exercised"
    assert left == 0 and admitted == completed

    outcomes = results["load"].outcomes
    answered = [o for o in outcomes if o.status == 200]
    assert all(o.status in (200, 503, None) for o in outcomes), {o.status for o in outcomes}
    for outcome in answered:
        check_answer(outcome.body, requests[outcome.index][2], expected)
    # every request the server answered 200 reached its client: nothing admitted was cut off
    assert len(answered) == log.count("POST /embed 200")
    assert len(answered) < REQUESTS
