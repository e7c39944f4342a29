"""Every route and every error status of the real server, over HTTP on 127.0.0.1.

Tolerance: the server runs the same fp32 model as the direct call, on batches of other sizes, so
results differ only by GEMM blocking over a different number of rows (~1e-7 observed); 1e-5.
"""

from __future__ import annotations

import json
import socket

import pytest
import torch

from serving_helpers import API_KEY, LABELS, DirectModel

ATOL = 1e-5
TEXTS = ["Hello world", "多语言 text", "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ", "Der schnelle braune Fuchs.", "a"]


@pytest.fixture(scope="module")
def server(start_server, classifier_dir):
    return start_server(classifier_dir, "--max-client-batch-size", "4", "--max-input-length", "32",
                        "--max-batch-tokens", "64", "--max-concurrent-requests", "1", api_key=API_KEY)


@pytest.fixture(scope="module")
def direct(classifier_dir):
    return DirectModel(classifier_dir)


def close(got, expected):
    return torch.allclose(torch.tensor(got, dtype=torch.float64), expected.double(), atol=ATOL, rtol=0)


def assert_error(response, status, error_type=None):
    got_status, body, headers = response
    assert got_status == status, body
    assert headers["content-type"].startswith("application/json")
    assert set(body) == {"error", "error_type"} and isinstance(body["error"], str) and body["error"], body
    if error_type:
        assert body["error_type"] == error_type, body


# ---------------------------------------------------------------------- successful routes
def test_embed_equals_direct_model_output(server, direct):
    status, body, _ = server.request("POST", "/embed", {"inputs": TEXTS[:4]})
    assert status == 200 and len(body) == 4
    for text, vector in zip(TEXTS, body):
        assert close(vector, direct.embedding(text)), text
    status, single, _ = server.request("POST", "/embed", {"inputs": TEXTS[4], "normalize": False, "dimensions": 5})
    assert status == 200 and len(single) == 1 and len(single[0]) == 5
    assert close(single[0], direct.embedding(TEXTS[4], normalize=False)[:5])


def test_embed_all_gives_every_tokens_hidden_state(server, direct):
    status, body, _ = server.request("POST", "/embed_all", {"inputs": TEXTS[:3]})
    assert status == 200 and len(body) == 3
    for text, states in zip(TEXTS, body):
        with torch.inference_mode():
            want = direct.model.base_model(input_ids=direct.ids(text)).last_hidden_state[0]
        assert len(states) == want.shape[0] and close(states, want), text  # [CLS] ... [SEP], unpooled
    status, single, _ = server.request("POST", "/embed_all", {"inputs": TEXTS[0]})
    assert status == 200 and len(single) == 1 and close(single[0], torch.tensor(body[0]))


def openai_error(response, status, error_type):
    got_status, body, _ = response
    assert got_status == status and set(body) == {"message", "code", "type"}, body
    assert body["code"] == status and body["type"] == error_type and body["message"]


@pytest.mark.parametrize("route", ["/v1/embeddings", "/embeddings"])
def test_openai_embeddings(server, direct, classifier_dir, route):
    import base64

    import numpy as np

    status, body, _ = server.request("POST", route, {"input": TEXTS[:2], "model": "any", "user": "u"})
    assert status == 200 and (body["object"], body["model"]) == ("list", classifier_dir)
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    for text, item in zip(TEXTS, body["data"]):
        assert close(item["embedding"], direct.embedding(text)), text  # pooled as /embed, normalised
    tokens = sum(direct.ids(text).shape[1] for text in TEXTS[:2])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    status, body, _ = server.request("POST", route, {"input": TEXTS[2], "encoding_format": "base64", "dimensions": 8})
    assert status == 200 and len(body["data"]) == 1
    vector = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    want = direct.embedding(TEXTS[2], normalize=False)[:8]
    assert close(vector.tolist(), want / want.norm())  # the first 8 dimensions, then normalised
    openai_error(server.request("POST", route, {"input": ["a"] * 5}), 413, "validation")
    openai_error(server.request("POST", route, {"input": "a", "encoding_format": "int8"}), 422, "validation")
    openai_error(server.request("POST", route, {"inputs": "a"}), 422, "validation")
    openai_error(server.request("POST", route, {"input": []}), 422, "empty")


def test_predict_single_pair_and_batch(server, direct):
    def expected(text, pair=None, raw=False):
        logits = direct.logits(text, pair)
        scores = logits if raw else logits.softmax(-1)
        order = scores.argsort(descending=True)
        return [(LABELS[int(i)], scores[i]) for i in order]

    def check(predictions, wanted):
        assert [p["label"] for p in predictions] == [label for label, _ in wanted]
        assert close([p["score"] for p in predictions], torch.stack([s for _, s in wanted]))

    status, body, _ = server.request("POST", "/predict", {"inputs": TEXTS[0]})
    assert status == 200
    check(body, expected(TEXTS[0]))
    status, body, _ = server.request("POST", "/predict", {"inputs": [TEXTS[1], TEXTS[2]], "raw_scores": True})
    assert status == 200
    check(body, expected(TEXTS[1], TEXTS[2], raw=True))
    status, body, _ = server.request("POST", "/predict", {"inputs": [[TEXTS[0]], [TEXTS[3], TEXTS[1]]]})
    assert status == 200 and len(body) == 2
    check(body[0], expected(TEXTS[0]))
    check(body[1], expected(TEXTS[3], TEXTS[1]))


def test_tokenize_gives_ids_and_utf8_byte_offsets(server, direct):
    # 1-, 2-, 3- and 4-byte UTF-8 characters: ASCII, Latin-1, CJK and full-width forms, an emoji
    text = "Ｆｕｌｌ－ｗｉｄｔｈ 多语言 text café 😀 ok"
    status, body, _ = server.request("POST", "/tokenize", {"inputs": [text, "a"]})
    assert status == 200 and len(body) == 2
    enc = direct.tokenizer(text, return_offsets_mapping=True)
    tokens = body[0]
    assert [t["id"] for t in tokens] == enc["input_ids"]
    assert tokens[0] == {"id": 0, "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert tokens[-1]["special"] and tokens[-1]["text"] == "[SEP]"
    data = text.encode("utf-8")
    for token, (start, stop) in zip(tokens[1:-1], enc["offset_mapping"][1:-1]):
        assert not token["special"]
        # TEI's offsets: bytes of the UTF-8 input, as the Rust tokenizers' `encode` gives them
        assert (token["start"], token["stop"]) == (len(text[:start].encode()), len(text[:stop].encode()))
        assert token["text"] == data[token["start"]:token["stop"]].decode("utf-8") == text[start:stop]
    pieces = {t["text"] for t in tokens[1:-1]}
    assert "😀" in pieces or any("😀" in p for p in pieces)  # the emoji is covered by a token
    assert tokens[-2]["stop"] == len(data)  # ends at the last byte, past every multi-byte character
    status, body, _ = server.request("POST", "/tokenize", {"inputs": "a", "add_special_tokens": False})
    assert status == 200 and all(not t["special"] for t in body[0])


def test_truncation_right_left_and_auto(server, direct):
    long_text = " ".join(["multilingual representation"] * 20)
    too_long = server.request("POST", "/embed", {"inputs": long_text})
    assert_error(too_long, 413, "validation")
    status, body, _ = server.request("POST", "/embed", {"inputs": long_text, "truncate": True})
    assert status == 200 and close(body[0], direct.embedding(long_text, max_length=32))
    status, body, _ = server.request("POST", "/embed", {"inputs": long_text, "truncate": True,
                                                        "truncation_direction": "left"})
    assert status == 200 and close(body[0], direct.embedding(long_text, max_length=32, side="left"))
    assert not close(body[0], direct.embedding(long_text, max_length=32))  # the two sides really differ


def test_info_health_metrics_docs(server):
    status, info, _ = server.request("GET", "/info")
    assert status == 200
    assert info["model_type"]["classifier"]["id2label"] == {str(k): v for k, v in LABELS.items()}
    assert (info["task"], info["model_dtype"], info["device"]) == ("predict", "float32", "cpu")
    assert (info["max_input_length"], info["max_batch_tokens"], info["max_client_batch_size"]) == (32, 64, 4)
    assert info["version"] == __import__("ernie_m_fast").__version__
    assert server.request("GET", "/health", auth=False)[0] == 200
    metrics = server.metrics()
    assert metrics['ernie_m_fast_requests_total{route="/info",status="200"}'] >= 1
    assert "ernie_m_fast_batch_tokens_count" in metrics and "ernie_m_fast_queue_size" in metrics
    status, page, headers = server.request("GET", "/docs", auth=False)
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, spec, _ = server.request("GET", "/openapi.json", auth=False)
    assert status == 200
    assert {"/embed", "/embed_all", "/v1/embeddings", "/predict", "/rerank", "/tokenize", "/extract", "/token-classify",
            "/info"} <= set(spec["paths"])


# ---------------------------------------------------------------------- every error status
def test_401_without_or_with_a_wrong_api_key(server):
    assert_error(server.request("POST", "/embed", {"inputs": "a"}, auth=False), 401, "unauthorized")
    assert_error(server.request("POST", "/embed", {"inputs": "a"}, headers={"Authorization": "Bearer nope"}),
                 401, "unauthorized")
    assert_error(server.request("GET", "/info", auth=False), 401)
    assert server.request("GET", "/metrics", auth=False)[0] == 200  # health and metrics stay open


def test_413_too_many_inputs_and_oversized_body(server):
    assert_error(server.request("POST", "/embed", {"inputs": ["a"] * 5}), 413, "validation")
    assert_error(server.request("POST", "/predict", {"inputs": [["a"]] * 5}), 413, "validation")
    assert_error(server.request("POST", "/tokenize", {"inputs": ["a"] * 5}), 413, "validation")
    ten_mb = "x" * (10 * 1024 * 1024)
    assert_error(server.request("POST", "/embed", {"inputs": ten_mb, "truncate": True}), 413, "validation")


@pytest.mark.parametrize("route, body", [
    ("/embed", {"inputs": 5}),
    ("/embed", {"inputs": [1, 2]}),
    ("/embed", {"inputs": ["a", None]}),
    ("/embed", {"inputs": "a", "normalize": "yes"}),
    ("/embed", {"inputs": "a", "truncate": 1}),
    ("/embed", {"inputs": "a", "truncation_direction": "middle"}),
    ("/embed", {"inputs": "a", "dimensions": 0}),
    ("/embed", {"inputs": "a", "dimensions": 33}),
    ("/embed", {"text": "a"}),
    ("/embed", ["a"]),
    ("/predict", {"inputs": ["a", "b", "c"]}),
    ("/predict", {"inputs": [["a", "b", "c"]]}),
    ("/predict", {"inputs": [[]]}),
    ("/predict", {"inputs": "a", "raw_scores": "true"}),
    ("/embed_all", {"inputs": [1]}),
    ("/embed_all", {"inputs": "a", "truncate": "no"}),
    ("/tokenize", {"inputs": {"a": 1}}),
    ("/tokenize", {"inputs": "a", "add_special_tokens": None}),
])
def test_422_wrong_types(server, route, body):
    assert_error(server.request("POST", route, body), 422, "validation")


@pytest.mark.parametrize("route", ["/embed", "/embed_all", "/predict", "/tokenize", "/extract", "/token-classify"])
def test_422_empty_list(server, route):
    body = {"inputs": [], "schema": ["x"]} if route == "/extract" else {"inputs": []}
    assert_error(server.request("POST", route, body), 422, "empty")


@pytest.mark.parametrize("raw", [b'{"inputs": "\xff\xfe broken"}', b'{"inputs": "a"', b"", b"not json",
                                 b'{"inputs": "a"} trailing', b"\x00" * 10])
def test_422_malformed_bodies(server, raw):
    assert_error(server.request("POST", "/embed", raw=raw), 422, "validation")


def test_422_lone_surrogate_is_a_tokenizer_error_not_a_crash(server):
    status, body, _ = server.request("POST", "/embed", raw=b'{"inputs": "a \\ud800 b"}')
    assert status in (200, 422), body  # sentencepiece may refuse it; the server must answer either way
    if status == 422:
        assert body["error_type"] in ("tokenizer", "validation")


def test_422_deeply_nested_schema(server):
    schema = "leaf"
    for _ in range(100):
        schema = {"node": [schema]}
    assert_error(server.request("POST", "/extract", {"inputs": "a", "schema": schema}), 422, "validation")


def test_404_405_in_the_error_shape(server):
    assert_error(server.request("GET", "/nowhere"), 404, "not_found")
    assert_error(server.request("GET", "/embed"), 405, "not_found")


def test_424_route_of_another_task_and_json_logs(start_server, base_dir):
    base = start_server(base_dir, "--json-logs")
    assert_error(base.request("POST", "/predict", {"inputs": "a"}), 424, "backend")
    assert base.request("POST", "/embed", {"inputs": "a"})[0] == 200
    lines = [json.loads(line) for line in base.log().splitlines() if line.startswith("{")]
    requests = [(line["method"], line["path"], line["status"]) for line in lines if "status" in line]
    assert ("POST", "/predict", 424) in requests and ("POST", "/embed", 200) in requests
    assert all(isinstance(line["duration_ms"], float) for line in lines if "status" in line)
    assert len(lines) == len(base.log().splitlines())  # every line is one JSON object


def test_429_when_the_in_flight_limit_is_reached(server):
    """--max-concurrent-requests 1: a request whose body is still arriving holds the only slot."""
    held = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    body = json.dumps({"inputs": "held"}).encode()
    try:
        held.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                     + body[:5])
        for _ in range(100):  # until the server has admitted the held request
            response = server.request("POST", "/embed", {"inputs": "a"})
            if response[0] == 429:
                break
        assert_error(response, 429, "overloaded")
        held.sendall(body[5:])
        answer = held.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    finally:
        held.close()
    assert server.request("POST", "/embed", {"inputs": "a"})[0] == 200


def test_server_is_still_up_after_all_of_it(server, direct):
    assert server.proc.poll() is None
    assert server.request("GET", "/health", auth=False)[0] == 200
    status, body, _ = server.request("POST", "/embed", {"inputs": TEXTS[0]})
    assert status == 200 and close(body[0], direct.embedding(TEXTS[0]))
    metrics = server.metrics()
    for status in ("401", "413", "422", "429"):
        assert metrics[f'ernie_m_fast_requests_total{{route="/embed",status="{status}"}}'] >= 1
