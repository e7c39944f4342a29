"""The engine in-process (pooling, budget batching, CUDA-graph layouts on CPU) and the app's
states that a running server passes through too quickly to catch over HTTP (loading, load failure).

Tolerance: 1e-5 (fp32; batched vs single rows differ by GEMM blocking only).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import pytest
import torch

from ernie_m_fast.serving import ServerSettings, create_app
from ernie_m_fast.serving.engine import Engine, checkpoint_pooling, serving_layouts
from serving_helpers import DirectModel

TEXTS = ["Hello world", "多语言 text", "Der schnelle braune Fuchs.", "a", "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ"]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_run_texts_equals_the_model_one_input_at_a_time(base_dir, pooling):
    engine = Engine(ServerSettings(model=base_dir, pooling=pooling, max_batch_tokens=20, max_input_length=20))
    direct = DirectModel(base_dir)
    got = torch.from_numpy(engine.run_texts("embed", TEXTS))  # several budget-sized batches
    want = torch.stack([direct.embedding(t, pooling=pooling, normalize=False) for t in TEXTS])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_cpu_float32_serves_prepacked_by_default_and_int8_on_request(classifier_dir):
    """Prepacked (oneDNN) weights by default on a float32 CPU model, same answers within fp32
    rounding; --no-prepack and --quantize int8 load what they say (int8 within its own error)."""
    from ernie_m_fast.linear import Int8Linear, MkldnnLinear

    packed, plain = Engine(ServerSettings(model=classifier_dir)), Engine(ServerSettings(model=classifier_dir, prepack=False))
    int8 = Engine(ServerSettings(model=classifier_dir, quantize="int8"))
    layer = lambda e: e.model.base_model.encoder.layers[0].linear1  # noqa: E731
    assert isinstance(layer(packed), MkldnnLinear) and packed.info()["prepack"] is True
    assert type(layer(plain)) is torch.nn.Linear and plain.info()["prepack"] is False
    assert isinstance(layer(int8), Int8Linear) and int8.info()["quantize"] == "int8" and not int8.prepack
    for kind in ("embed", "predict"):
        want = torch.from_numpy(plain.run_texts(kind, TEXTS))
        torch.testing.assert_close(torch.from_numpy(packed.run_texts(kind, TEXTS)), want, atol=1e-5, rtol=0)
        assert torch.nn.functional.cosine_similarity(torch.from_numpy(int8.run_texts(kind, TEXTS)), want).min() > 0.99


def test_pooling_comes_from_a_sentence_transformers_config(tmp_path):
    assert checkpoint_pooling(str(tmp_path)) is None
    (tmp_path / "1_Pooling").mkdir()
    config = tmp_path / "1_Pooling" / "config.json"
    config.write_text(json.dumps({"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}))
    assert checkpoint_pooling(str(tmp_path)) == "mean"
    config.write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(ValueError, match="pooling"):
        checkpoint_pooling(str(tmp_path))


def test_cuda_graph_layouts_give_the_same_results(classifier_dir):
    plain = Engine(ServerSettings(model=classifier_dir))
    graphs = Engine(ServerSettings(model=classifier_dir, cuda_graphs=True, max_batch_tokens=1024))
    for kind in ("embed", "predict"):
        torch.testing.assert_close(torch.from_numpy(graphs.run_texts(kind, TEXTS)),
                                   torch.from_numpy(plain.run_texts(kind, TEXTS)), atol=1e-5, rtol=0)
    layouts = serving_layouts(16384, 512)
    assert [s.rows for s in layouts] == [256, 1024, 4096, 16384]
    assert all(s.max_seqlen <= 512 for s in layouts)


def test_settings_refuse_impossible_limits():
    with pytest.raises(ValueError, match="max_batch_tokens"):
        ServerSettings(model="x", max_batch_tokens=0)
    with pytest.raises(ValueError, match="could never be batched"):
        ServerSettings(model="x", max_input_length=600, max_batch_tokens=512)
    with pytest.raises(ValueError, match="task"):
        ServerSettings(model="x", task="translate")


async def _call(app, method, path, body=b""):
    """One HTTP request straight into the ASGI app (no socket)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent, messages = False, []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        messages.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def test_503_while_the_model_loads(classifier_dir):
    app = create_app(ServerSettings(model=classifier_dir))

    async def scenario():
        app.state.serving.start()  # what the lifespan does, on the loop, before the background load finishes
        return [await _call(app, "GET", "/health"), await _call(app, "POST", "/embed", b'{"inputs": "a"}'),
                await _call(app, "GET", "/info"), await _call(app, "GET", "/metrics")]

    health, embed, info, metrics = asyncio.run(scenario())
    for status, body in (health, embed, info):
        assert status == 503 and json.loads(body)["error_type"] == "unhealthy", body
    assert metrics[0] == 200 and b'route="/embed",status="503"' in metrics[1]
    app.state.serving.stop()


def test_a_model_that_cannot_load_exits_1(tmp_path):
    process = subprocess.run([sys.executable, "-m", "ernie_m_fast.cli", "serve", "--model", str(tmp_path / "none"),
                              "--port", "0"], capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert process.returncode == 1, process.stderr[-2000:]
    assert "could not load the model" in process.stderr


def test_short_requests_tokenize_on_the_event_loop_long_ones_on_the_pool(classifier_dir):
    from ernie_m_fast.serving.app import INLINE_TOKENIZE_CHARS

    state = create_app(ServerSettings(model=classifier_dir)).state.serving
    where = lambda: threading.current_thread().name  # noqa: E731

    async def scenario():
        state.start()
        short = await state.tokenize(["a" * INLINE_TOKENIZE_CHARS], where)
        pair = await state.tokenize([("a" * (INLINE_TOKENIZE_CHARS // 2), "b" * (INLINE_TOKENIZE_CHARS // 2 + 1))],
                                    where)
        long = await state.tokenize(["a" * (INLINE_TOKENIZE_CHARS // 2)] * 3, where)
        return short, pair, long, threading.current_thread().name

    short, pair, long, loop_thread = asyncio.run(scenario())
    state.stop()
    assert short == loop_thread  # at the limit: no thread hand-off
    assert pair.startswith("ernie-m-fast-tokenize") and long.startswith("ernie-m-fast-tokenize")  # both texts count


def test_json_bodies_write_float32_as_float32():
    import numpy as np

    from ernie_m_fast.serving import encoding

    vector = np.array([0.1, 1 / 3, -2.5e-8, 7.0], dtype=np.float32)
    body = {"a": [vector, {"score": np.float32(0.5)}], "text": "多语言 😀"}
    written = encoding.json_bytes(body)
    if encoding.orjson is not None:  # the shortest text that reads back to the same float32, as TEI writes f32
        assert written == '{"a":[[0.1,0.33333334,-2.5e-8,7.0],{"score":0.5}],"text":"多语言 😀"}'.encode()
    read = json.loads(written)
    assert np.array_equal(np.array(read["a"][0], dtype=np.float32), vector) and read["text"] == "多语言 😀"
    fallback = encoding.orjson
    try:
        encoding.orjson = None  # the json module: float32 values written as their float64 values
        read = json.loads(encoding.json_bytes(body))
    finally:
        encoding.orjson = fallback
    assert np.array_equal(np.array(read["a"][0], dtype=np.float32), vector) and read["a"][1]["score"] == 0.5
