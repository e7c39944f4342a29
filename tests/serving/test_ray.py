"""Ray: two Serve replicas of the server and Ray Data batch inference give the single-process results.

One local Ray instance for the module (ray.init(num_cpus=2), no dashboard, every address 127.0.0.1).
Tolerance: 1e-5 (the same fp32 model in other processes; batches differ in row count only).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time

import pytest
import torch

from serving_helpers import DirectModel

ray = pytest.importorskip("ray", reason="the Ray tests need the [ray] extra")
serve = pytest.importorskip("ray.serve")

from ernie_m_fast.serving.ray import batch_inference, deployment  # noqa: E402

TEXTS = ["Hello world", "多语言 text", "Der schnelle braune Fuchs.", "a", "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ",
         "Le renard brun rapide.", "El zorro marrón.", "速い茶色のキツネ"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             object_store_memory=200 * 1024 * 1024, configure_logging=False)
    yield
    try:
        serve.shutdown()
    finally:
        ray.shutdown()


def post(port, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_two_serve_replicas_answer_as_one_process(local_ray, base_dir):
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(deployment(base_dir, num_replicas=2, num_cpus=0.5), name="ernie", route_prefix="/")
    status = serve.status().applications["ernie"].deployments["ErnieMServer"]
    assert status.replica_states.get("RUNNING") == 2, status
    direct = DirectModel(base_dir)
    for i in range(0, len(TEXTS), 2):  # several requests, so both replicas take some
        code, body = post(port, "/embed", {"inputs": TEXTS[i:i + 2]})
        assert code == 200, body
        for text, vector in zip(TEXTS[i:i + 2], body):
            torch.testing.assert_close(torch.tensor(vector), direct.embedding(text), atol=1e-5, rtol=0)
    code, body = post(port, "/embed", {"inputs": []})
    assert (code, body["error_type"]) == (422, "empty")  # the same app, errors included
    serve.delete("ernie")


def test_ray_data_batch_inference_equals_single_process(local_ray, base_dir):
    dataset = ray.data.from_items([{"text": t, "id": i} for i, t in enumerate(TEXTS * 3)])
    rows = batch_inference(dataset, base_dir, kind="embed", batch_size=5, concurrency=2, num_cpus=0.5,
                           max_batch_tokens=32, max_input_length=32).take_all()
    assert sorted(r["id"] for r in rows) == list(range(len(TEXTS) * 3))
    direct = DirectModel(base_dir)
    for row in rows:
        torch.testing.assert_close(torch.tensor(row["embedding"].tolist()), direct.embedding(row["text"]),
                                   atol=1e-5, rtol=0)
