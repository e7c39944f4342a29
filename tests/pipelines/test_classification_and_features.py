"""text-classification, zero-shot-classification and feature-extraction against transformers' own
pipelines (4.57.6) on the same random weights, plus batching, long inputs and argument errors.

Tolerance: fp32 scores and features to 1e-5. Ours runs padding-free on packed rows, transformers on
one padded row, so GEMM blocking differs; the observed difference is ~1e-7.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ernie_m_fast as emf

transformers = pytest.importorskip("transformers")

TEXTS = ["Hello world", "北京是中国的首都。", "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ and some more words here",
         "Das ist gut.", "x"]
ATOL = 1e-5  # as conftest.ATOL
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
NLI_IDS = {v: k for k, v in NLI_LABELS.items()}


def _theirs(task, path, **kwargs):
    cls = {"text-classification": transformers.ErnieMForSequenceClassification,
           "zero-shot-classification": transformers.ErnieMForSequenceClassification,
           "feature-extraction": transformers.ErnieMModel}[task]
    return transformers.pipeline(task, model=cls.from_pretrained(path), tokenizer=transformers.ErnieMTokenizer.from_pretrained(path),
                                 **kwargs)


@pytest.mark.parametrize("num_labels,problem_type", [(3, None), (1, None), (2, "regression")])
def test_text_classification_equals_transformers(checkpoint, num_labels, problem_type, close):
    path = checkpoint("ErnieMForSequenceClassification", num_labels=num_labels, problem_type=problem_type)
    ours, theirs = emf.pipeline("text-classification", model=path), _theirs("text-classification", path)
    close(ours(TEXTS[0]), theirs(TEXTS[0]))  # legacy shape: [{"label", "score"}]
    close(ours(TEXTS), theirs(TEXTS))
    close(ours(TEXTS, top_k=None), theirs(TEXTS, top_k=None))
    close(ours(TEXTS[1], top_k=2), theirs(TEXTS[1], top_k=2))
    close(ours(TEXTS, function_to_apply="none"), theirs(TEXTS, function_to_apply="none"))
    pair = {"text": TEXTS[0], "text_pair": TEXTS[1]}
    close(ours(pair, top_k=None), theirs(pair, top_k=None))
    # top_k given when building: a single text's list is wrapped once more, as transformers does
    close(emf.pipeline("text-classification", model=path, top_k=2)(TEXTS[0]),
           _theirs("text-classification", path, top_k=2)(TEXTS[0]))


def test_zero_shot_equals_transformers_and_sums_to_one(checkpoint, close):
    path = checkpoint("ErnieMForSequenceClassification", num_labels=3, id2label=NLI_LABELS, label2id=NLI_IDS)
    ours, theirs = emf.pipeline("zero-shot-classification", model=path), _theirs("zero-shot-classification", path)
    labels = ["politics", "sport", "体育", "economy"]
    for multi_label in (False, True):
        got = ours(TEXTS, candidate_labels=labels, multi_label=multi_label)
        close(got, theirs(TEXTS, candidate_labels=labels, multi_label=multi_label))
        if not multi_label:
            assert all(sum(r["scores"]) == pytest.approx(1.0, abs=1e-6) for r in got)
    template = "这是关于{}的。"
    close(ours(TEXTS[1], "politics, sport", hypothesis_template=template),
           theirs(TEXTS[1], "politics, sport", hypothesis_template=template))
    close(ours(TEXTS[2], candidate_labels=["one"]), theirs(TEXTS[2], candidate_labels=["one"]))  # one label: per-label softmax
    with pytest.raises(ValueError, match="formatted"):
        ours(TEXTS[0], candidate_labels=labels, hypothesis_template="no slot")
    with pytest.raises(ValueError, match="at least one label"):
        ours(TEXTS[0], candidate_labels=[])


def test_zero_shot_entailment_id_is_read_from_label2id(checkpoint, close):
    # entailment first: contradiction is then the last id (transformers' rule)
    path = checkpoint("ErnieMForSequenceClassification", num_labels=3, id2label={0: "ENTAILMENT", 1: "neutral", 2: "contradiction"},
                      label2id={"ENTAILMENT": 0, "neutral": 1, "contradiction": 2})
    ours, theirs = emf.pipeline("zero-shot-classification", model=path), _theirs("zero-shot-classification", path)
    for multi_label in (False, True):
        close(ours(TEXTS, candidate_labels=["a", "b"], multi_label=multi_label),
               theirs(TEXTS, candidate_labels=["a", "b"], multi_label=multi_label))


def test_feature_extraction_equals_transformers_and_pools(checkpoint, close):
    path = checkpoint("ErnieMModel")
    ours, theirs = emf.pipeline("feature-extraction", model=path), _theirs("feature-extraction", path)
    close(ours(TEXTS), theirs(TEXTS))  # [1][tokens][hidden] per text
    close(ours(TEXTS[1]), theirs(TEXTS[1]))
    tensor = ours(TEXTS[0], return_tensors=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == torch.as_tensor(theirs(TEXTS[0])).shape
    raw = np.asarray(ours(TEXTS[2])[0])
    cls = np.asarray(ours(TEXTS[2], pooling="cls"))
    mean = np.asarray(ours(TEXTS[2], pooling="mean", normalize=True))
    np.testing.assert_allclose(cls, raw[0], atol=ATOL)
    np.testing.assert_allclose(mean, raw.mean(0) / np.linalg.norm(raw.mean(0)), atol=ATOL)
    assert np.linalg.norm(mean) == pytest.approx(1.0, abs=1e-6)
    # a head checkpoint: its encoder is read, never its head
    head = checkpoint("ErnieMForSequenceClassification", num_labels=3)
    close(emf.pipeline("feature-extraction", model=head)(TEXTS[1]),
           transformers.pipeline("feature-extraction", model=transformers.ErnieMModel.from_pretrained(head),
                                 tokenizer=transformers.ErnieMTokenizer.from_pretrained(head))(TEXTS[1]))
    with pytest.raises(ValueError, match="pooling"):
        ours(TEXTS[0], pooling="max")


@pytest.mark.parametrize("task,class_name,kwargs", [
    ("text-classification", "ErnieMForSequenceClassification", dict(top_k=None)),
    ("zero-shot-classification", "ErnieMForSequenceClassification", dict(candidate_labels=["a", "bb", "ccc"])),
    ("feature-extraction", "ErnieMModel", dict(pooling="mean")),
])
def test_batches_equal_one_by_one_and_long_inputs_run(checkpoint, task, class_name, kwargs, close):
    path = checkpoint(class_name, num_labels=3, id2label=NLI_LABELS, label2id=NLI_IDS) if class_name != "ErnieMModel" else checkpoint(class_name)
    pipe = emf.pipeline(task, model=path, **kwargs)
    long = "這是一個很長的句子。" * 40  # far more than the model's 62 tokens: truncated
    texts = TEXTS + [long]
    alone = [pipe(t) for t in texts]
    if task == "text-classification":
        alone = [a[0] for a in alone]  # top_k given when building: transformers wraps a single text's list
    close(pipe(texts, max_tokens=20), alone)  # many small batches
    close(pipe(texts, max_tokens=None, batch_size=4), alone)  # fixed batches in input order
    close(list(pipe(iter(texts))), alone)  # a generator in, a generator out
    assert not isinstance(pipe(iter(texts)), list)


def test_progress_bar_and_run_options(checkpoint, capsys):
    path = checkpoint("ErnieMForSequenceClassification", num_labels=3)
    pipe = emf.pipeline("text-classification", model=path, progress=True)
    assert len(pipe(TEXTS * 3)) == 15
    assert "text-classification" in capsys.readouterr().err  # tqdm writes to stderr
    for bad in (dict(max_tokens=0), dict(batch_size=-1), dict(top_k=0), dict(function_to_apply="tanh")):
        with pytest.raises(ValueError):
            pipe(TEXTS, **bad)
    with pytest.raises(TypeError, match="unexpected"):
        pipe(TEXTS, nonsense=1)
    with pytest.raises(TypeError):
        pipe(3)
    with pytest.raises(ValueError, match="pair"):
        pipe([["a", "b"]])
