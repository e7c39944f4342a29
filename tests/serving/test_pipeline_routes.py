"""/extract and /token-classify over HTTP answer what ernie_m_fast.pipeline answers in-process, also
under concurrent load, where rows of different requests share model batches (/metrics shows it).

Tolerance: scores and probabilities within 1e-5 (the same fp32 model and the same token-budget
batches in both processes); labels, words and offsets exactly.
"""

from __future__ import annotations

import json

import pytest

import ernie_m_fast as emf
from ernie_m_fast.serving.loadgen import run_load_sync
from serving_helpers import NER_LABELS

TEXTS = ["Angela Merkel lives in Berlin.", "北京冬奥会 谷爱凌 获得金牌", "Paris"]


def same(got, want):
    """Equal JSON-like values; floats within 1e-5."""
    if isinstance(want, float):
        return isinstance(got, (int, float)) and abs(got - want) <= 1e-5
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return isinstance(got, list) and len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    return got == want


@pytest.fixture(scope="module")
def ner_server(start_server, ner_dir):
    return start_server(ner_dir)


@pytest.fixture(scope="module")
def uie_server(start_server, uie_dir):
    return start_server(uie_dir, "--max-client-batch-size", "4")


@pytest.mark.parametrize("strategy", ["none", "simple", "first"])
def test_token_classify_equals_the_pipeline(ner_server, ner_dir, strategy):
    ner = emf.pipeline("token-classification", model=ner_dir)
    want = ner(TEXTS, aggregation_strategy=strategy, ignore_labels=[])
    status, got, _ = ner_server.request("POST", "/token-classify",
                                        {"inputs": TEXTS, "aggregation_strategy": strategy, "ignore_labels": []})
    assert status == 200 and same(got, want), (got, want)
    assert any(entities for entities in got)  # the comparison saw entities, not only empty lists
    assert {e.get("entity", e.get("entity_group")).split("-")[-1] for row in got for e in row} <= {
        label.split("-")[-1] for label in NER_LABELS.values()}
    status, single, _ = ner_server.request("POST", "/token-classify", {"inputs": TEXTS[0]})
    assert status == 200 and same(single, [ner(TEXTS[0])])


def test_extract_equals_the_pipeline(uie_server, uie_dir):
    schema = [{"Person": ["City"]}, "Event"]
    ie = emf.pipeline("information-extraction", model=uie_dir, schema=schema, schema_lang="en", position_prob=0.3)
    want = ie(TEXTS)
    status, got, _ = uie_server.request("POST", "/extract", {"inputs": TEXTS, "schema": schema,
                                                             "schema_lang": "en", "position_prob": 0.3})
    assert status == 200 and same(got, want), (got, want)
    assert any(result for result in got)  # spans were found, so the comparison means something


@pytest.mark.parametrize("body", [
    {"inputs": "a", "schema": 5},
    {"inputs": "a", "schema": [""]},
    {"inputs": "a", "schema": ["x"], "position_prob": 1.5},
    {"inputs": "a", "schema": ["x"], "schema_lang": "fr"},
    {"inputs": "a"},
])
def test_extract_refuses_bad_arguments(uie_server, body):
    status, answer, _ = uie_server.request("POST", "/extract", body)
    assert status == 422 and answer["error_type"] == "validation", answer


def test_each_pipeline_route_needs_its_head(ner_server, uie_server):
    status, answer, _ = ner_server.request("POST", "/extract", {"inputs": "a", "schema": ["x"]})
    assert (status, answer["error_type"]) == (424, "backend")
    status, answer, _ = uie_server.request("POST", "/token-classify", {"inputs": "a"})
    assert (status, answer["error_type"]) == (424, "backend")
    assert uie_server.request("POST", "/embed", {"inputs": "a"})[0] == 200  # every checkpoint embeds


CONCURRENT_TEXTS = ["Angela Merkel lives in Berlin.", "北京冬奥会 谷爱凌 获得金牌", "Paris", "Hello there, Berlin and Paris",
                    "a b c d e f g", "谷爱凌 获得金牌"]


def concurrent_requests(route, make_args, count=48):
    """(path, body, texts, args): 1-3 texts each, arguments varying with the request."""
    out = []
    for i in range(count):
        texts = [CONCURRENT_TEXTS[(i + k) % len(CONCURRENT_TEXTS)] for k in range(1 + i % 3)]
        args = make_args(i)
        out.append((route, json.dumps({"inputs": texts, **args}).encode(), texts, args))
    return out


def assert_own_answers_and_shared_batches(server, requests, expected_of, clients=16):
    before = server.metrics()
    load = run_load_sync("127.0.0.1", server.port, [(path, body) for path, body, _, _ in requests], clients)
    assert sorted(o.index for o in load.outcomes) == list(range(len(requests)))  # nothing dropped
    for outcome in load.outcomes:
        assert outcome.status == 200, outcome.body
        _, _, texts, args = requests[outcome.index]
        got, want = json.loads(outcome.body), expected_of(texts, args)
        assert same(got, want), (texts, args, got, want)
    after = server.metrics()
    batches = after["ernie_m_fast_batch_requests_count"] - before.get("ernie_m_fast_batch_requests_count", 0)
    served = after["ernie_m_fast_batch_requests_sum"] - before.get("ernie_m_fast_batch_requests_sum", 0)
    assert served > batches, "no batch held rows of more than one request"


def test_concurrent_token_classify_requests_get_their_own_answers_and_share_batches(ner_server, ner_dir):
    ner = emf.pipeline("token-classification", model=ner_dir)
    strategies = ["none", "simple", "first", "max"]
    requests = concurrent_requests("/token-classify", lambda i: {"aggregation_strategy": strategies[i % 4],
                                                                 "ignore_labels": [] if i % 2 else ["O", "B-PER"]})
    assert_own_answers_and_shared_batches(ner_server, requests, lambda texts, args: ner(texts, **args))


def test_concurrent_extract_requests_get_their_own_answers_and_share_batches(uie_server, uie_dir):
    ie = emf.pipeline("information-extraction", model=uie_dir)
    schemas = [[{"Person": ["City"]}, "Event"], ["City"], {"Event": ["Person"]}]
    requests = concurrent_requests("/extract", lambda i: {"schema": schemas[i % 3], "position_prob": 0.3,
                                                          "schema_lang": "en" if i % 2 else "ch"})
    assert_own_answers_and_shared_batches(uie_server, requests, lambda texts, args: ie(texts, **args))
