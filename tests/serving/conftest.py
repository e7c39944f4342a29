"""Serving fixtures: checkpoints built once per session, servers started and stopped per module."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serving tests need the [serve] extra")

from serving_helpers import ServerProcess, build_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("classifier"), "classifier")


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("base"), "base", seed=1)


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    """Start servers for a module; all are stopped at its end."""
    started = []

    def start(model_dir, *args, api_key=None, healthy=True):
        log = tmp_path_factory.mktemp("server") / "server.log"
        server = ServerProcess(model_dir, log, *args, api_key=api_key)
        started.append(server)
        if healthy:
            server.wait_healthy()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def ner_dir(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("ner"), "ner", seed=2)


@pytest.fixture(scope="session")
def uie_dir(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("uie"), "uie", seed=3)


@pytest.fixture(scope="session")
def reranker_dir(tmp_path_factory):
    import torch

    import ernie_m_fast as emf

    path = build_checkpoint(tmp_path_factory.mktemp("reranker"), "reranker", seed=4)
    model = emf.ErnieMForSequenceClassification.from_pretrained(path)
    ids = emf.ErnieMTokenizer.from_pretrained(path)("a reference text", return_tensors="pt")["input_ids"]
    with torch.no_grad():  # a random tiny model pools every text alike: amplify the differences around a reference
        reference = model.ernie_m(input_ids=ids).pooler_output[0]
        model.classifier.weight.mul_(3000.0)
        model.classifier.bias.copy_(-(model.classifier.weight @ reference))
    model.save_pretrained(path)
    return path
