"""/rerank (TEI's) on a one-label sequence-classification checkpoint, against the model's direct output.

Tolerance: 1e-5, as in test_routes (same fp32 model, other batch sizes), plus 8 fp32 ulp of the
classifier's bias: the fixture amplifies its head 3,000x and cancels it around a reference text
(bias = -W . reference), so a logit of ~0.02 is the difference of terms ~|bias| large, and another
summation order moves it by their ulp (2^-16 was seen), not by the logit's.
"""

from __future__ import annotations

import pytest
import torch

from serving_helpers import DirectModel

QUERY = "Where does Angela Merkel live?"
TEXTS = ["Angela Merkel lives in Berlin.", "多语言 text", "Der schnelle braune Fuchs.", "a"]


@pytest.fixture(scope="module")
def server(start_server, reranker_dir):
    return start_server(reranker_dir, "--max-client-batch-size", "4")


def test_rerank_scores_every_pair_highest_first(server, reranker_dir):
    direct = DirectModel(reranker_dir)
    logits = [float(direct.logits(QUERY, text)[0]) for text in TEXTS]
    tolerance = 1e-5 + 8 * torch.finfo(torch.float32).eps * float(direct.model.classifier.bias.abs().max())
    for raw in (False, True):
        status, body, _ = server.request("POST", "/rerank", {"query": QUERY, "texts": TEXTS, "raw_scores": raw,
                                                             "return_text": True})
        assert status == 200 and sorted(r["index"] for r in body) == [0, 1, 2, 3]
        scores = [r["score"] for r in body]
        assert scores == sorted(scores, reverse=True)
        for rank in body:
            want = logits[rank["index"]] if raw else float(torch.sigmoid(torch.tensor(logits[rank["index"]])))
            assert abs(rank["score"] - want) <= tolerance and rank["text"] == TEXTS[rank["index"]]
    ordered = sorted(torch.sigmoid(torch.tensor(logits)).tolist())
    assert min(b - a for a, b in zip(ordered, ordered[1:])) > 1e-3  # distinct scores: the order was really checked
    status, body, _ = server.request("POST", "/rerank", {"query": QUERY, "texts": TEXTS[:2]})
    assert status == 200 and all(set(r) == {"index", "score"} for r in body)  # text only when asked
    status, info, _ = server.request("GET", "/info")
    assert info["model_type"] == {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}
    status, prediction, _ = server.request("POST", "/predict", {"inputs": [QUERY, TEXTS[0]]})
    assert status == 200 and abs(prediction[0]["score"] - float(torch.sigmoid(torch.tensor(logits[0])))) <= 1e-5


def test_rerank_errors(server, start_server, classifier_dir):
    def error(response, status, error_type):
        got, body, _ = response
        assert got == status and body["error_type"] == error_type, body

    error(server.request("POST", "/rerank", {"query": QUERY, "texts": []}), 422, "empty")
    error(server.request("POST", "/rerank", {"query": QUERY, "texts": ["a"] * 5}), 413, "validation")
    error(server.request("POST", "/rerank", {"query": QUERY, "texts": "a"}), 422, "validation")
    error(server.request("POST", "/rerank", {"texts": ["a"]}), 422, "validation")
    three_labels = start_server(classifier_dir)
    error(three_labels.request("POST", "/rerank", {"query": QUERY, "texts": ["a"]}), 424, "backend")
