"""ernie_m_fast.pipeline itself: tasks and aliases, models given every way, device/dtype/backend,
forward_kwargs, errors, and that `import ernie_m_fast` does not import the pipelines."""

from __future__ import annotations

import ast
import inspect

import pytest
import torch

import ernie_m_fast as emf
from ernie_m_fast import pipelines

TEXTS = ["Hello world", "北京是中国的首都。", "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ"]


def test_import_of_the_package_does_not_import_pipelines():
    # `pipeline` is a thin function whose import of .pipelines happens on first call
    tree = ast.parse(inspect.getsource(emf))
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any("pipelines" in (getattr(n, "module", "") or "") for n in top_level)
    assert not any("pipelines" in a.name for n in top_level for a in n.names)


@pytest.mark.parametrize("task", sorted(pipelines.TASKS) + sorted(pipelines.ALIASES))
def test_every_task_and_alias_builds_from_a_directory(checkpoint, task):
    name = pipelines.ALIASES.get(task, task)
    class_name = {"text-classification": "ErnieMForSequenceClassification",
                  "zero-shot-classification": "ErnieMForSequenceClassification",
                  "token-classification": "ErnieMForTokenClassification",
                  "question-answering": "ErnieMForQuestionAnswering",
                  "feature-extraction": "ErnieMModel",
                  "information-extraction": "ErnieMForInformationExtraction"}[name]
    pipe = emf.pipeline(task, model=checkpoint(class_name, num_labels=2 if "Question" in class_name else 3))
    assert pipe.task == name and type(pipe.model).__name__ == class_name


def test_models_given_every_way(checkpoint, tokenizer, close):
    path = checkpoint("ErnieMForSequenceClassification", num_labels=3)
    reference = emf.pipeline("text-classification", model=path)(TEXTS, top_k=None)
    loaded = emf.ErnieMForSequenceClassification.from_pretrained(path)
    close(emf.pipeline("text-classification", model=loaded)(TEXTS, top_k=None), reference)  # tokenizer from its path
    close(emf.pipeline("text-classification", model=loaded, tokenizer=path)(TEXTS, top_k=None), reference)
    bare = emf.ErnieMForSequenceClassification(loaded.config.__class__.from_pretrained(path))
    bare.load_state_dict(loaded.state_dict())
    bare.config._name_or_path = ""
    with pytest.raises(ValueError, match="no tokenizer"):
        emf.pipeline("text-classification", model=bare)
    close(emf.pipeline("text-classification", model=bare, tokenizer=tokenizer)(TEXTS, top_k=None), reference)
    with pytest.raises(ValueError, match="needs model="):
        emf.pipeline("text-classification")
    with pytest.raises(ValueError, match="unknown task"):
        emf.pipeline("summarization", model=path)
    with pytest.raises(TypeError, match="unexpected"):
        emf.pipeline("text-classification", model=path, nonsense=True)


def test_backend_dtype_and_device(checkpoint, close):
    path = checkpoint("ErnieMForTokenClassification", num_labels=3)
    reference = emf.pipeline("ner", model=path)(TEXTS, ignore_labels=[])
    close(emf.pipeline("ner", model=path, backend="torch")(TEXTS, ignore_labels=[]), reference)
    close(emf.pipeline("ner", model=path, device=-1)(TEXTS, ignore_labels=[]), reference)
    loaded = emf.ErnieMForTokenClassification.from_pretrained(path)
    close(emf.pipeline("ner", model=loaded, backend="torch", device="cpu")(TEXTS, ignore_labels=[]), reference)
    # bfloat16: 8 bits of mantissa; scores of the random model's labels agree to a few 1e-2
    half = emf.pipeline("ner", model=path, dtype="bfloat16")
    assert half.model.dtype == torch.bfloat16
    low = half(TEXTS, ignore_labels=[])
    for ours, ref in zip(low, reference):
        assert [(e["start"], e["end"]) for e in ours] == [(e["start"], e["end"]) for e in ref]
        assert all(abs(a["score"] - b["score"]) < 5e-2 for a, b in zip(ours, ref) if a["entity"] == b["entity"])


def test_forward_kwargs_reach_the_model(checkpoint):
    pipe = emf.pipeline("text-classification", model=checkpoint("ErnieMForSequenceClassification", num_labels=3))
    assert pipe(TEXTS[0], forward_kwargs={"output_hidden_states": True}) == pipe(TEXTS[0])
    with pytest.raises(TypeError, match="bogus"):
        pipe(TEXTS[0], forward_kwargs={"bogus": 1})
