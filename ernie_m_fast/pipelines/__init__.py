"""Task pipelines on the padding-free ErnieM, in transformers.pipeline's conventions.

    import ernie_m_fast as emf
    clf = emf.pipeline("text-classification", model="path/or/repo-id")
    clf(["first text", "second text"], top_k=None)

One module per task; `batching` (token-budget batches), `encoding` (offsets, windows, words) and
`uie` (UIE-M's schema, prompts, windows and span decoding, as pure functions) are shared helpers.
"""

from __future__ import annotations

import importlib
import os

import torch

from .base import Pipeline, is_path_like

# task -> (module, class, the task name ErnieMFast.from_pretrained loads the model for)
TASKS = {
    "text-classification": ("text_classification", "TextClassificationPipeline", "sequence-classification"),
    "zero-shot-classification": ("zero_shot_classification", "ZeroShotClassificationPipeline", "sequence-classification"),
    "token-classification": ("token_classification", "TokenClassificationPipeline", "token-classification"),
    "question-answering": ("question_answering", "QuestionAnsweringPipeline", "question-answering"),
    "feature-extraction": ("feature_extraction", "FeatureExtractionPipeline", None),
    "information-extraction": ("information_extraction", "InformationExtractionPipeline", "information-extraction"),
}
ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification", "uie": "information-extraction"}


def pipeline_class(task: str) -> type:
    """The Pipeline subclass for a task name (or alias)."""
    name = ALIASES.get(task, task)
    if name not in TASKS:
        raise ValueError(f"unknown task {task!r}; ernie_m_fast pipelines: {sorted(TASKS)} "
                         f"(aliases {sorted(ALIASES)})")
    module, cls, _ = TASKS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def _as_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    named = getattr(torch, str(dtype).replace("torch.", ""), None)
    if not isinstance(named, torch.dtype):
        raise ValueError(f"dtype must be a torch dtype or its name (float32, float16, bfloat16), got {dtype!r}")
    return named


def _as_device(device):
    if device is None:
        return None
    if isinstance(device, int) and not isinstance(device, bool):  # transformers: -1 = CPU, n = cuda:n
        return torch.device("cpu") if device < 0 else torch.device("cuda", device)
    return torch.device(device)


def _load_model(task: str, model, device, dtype, backend: str):
    from ..modeling import ErnieMFast

    name = ALIASES.get(task, task)
    load_task = TASKS[name][2]
    if load_task is None:  # feature-extraction: whatever head the checkpoint has; the pipeline reads its encoder
        return ErnieMFast.from_pretrained(model, dtype=dtype, device=device, backend=backend)
    return ErnieMFast.from_pretrained(model, task=load_task, dtype=dtype, device=device, backend=backend)


def _load_tokenizer(model, loaded, tokenizer):
    from ..tokenization import ErnieMTokenizer

    if tokenizer is not None:
        return ErnieMTokenizer.from_pretrained(tokenizer) if is_path_like(tokenizer) else tokenizer
    source = model if is_path_like(model) else getattr(loaded.config, "_name_or_path", "")
    if not source:
        raise ValueError("no tokenizer: pass tokenizer= (an ErnieMTokenizer or a path), or load the model "
                         "with from_pretrained so its path is known")
    return ErnieMTokenizer.from_pretrained(source)


def pipeline(task: str, model=None, tokenizer=None, device=None, dtype=None, backend: str = "auto", **task_args) -> Pipeline:
    """Build a task pipeline, as `transformers.pipeline` does.

    Args:
        task: "text-classification" ("sentiment-analysis"), "zero-shot-classification",
            "token-classification" ("ner"), "question-answering", "feature-extraction",
            "information-extraction" ("uie").
        model: a loaded ernie_m_fast model, a local directory, or a hub repo id. A directory or repo id
            is loaded with the head the task needs (`ErnieMFast.from_pretrained(..., task=...)`).
        tokenizer: an `ErnieMTokenizer` or a path; by default the model's own directory.
        device, dtype, backend: where and how the model runs (as `from_pretrained`); applied to a
            loaded model too when given (`device=-1` / `device=0` are accepted as in transformers).
        task_args: the task's arguments (e.g. `top_k`, `aggregation_strategy`, `schema`), plus
            `batch_size` (most sequences per forward), `max_tokens` (real-token budget per forward,
            default 8192; None batches `batch_size` sequences in input order), `progress` (a tqdm bar)
            and `forward_kwargs` (extra keyword arguments for every model call). Any of them can also
            be given per call.
    """
    cls = pipeline_class(task)
    if model is None:
        raise ValueError(f"pipeline({task!r}) needs model= (a loaded model, a local directory or a hub repo id); "
                         "ernie_m_fast has no default checkpoint")
    device = _as_device(device)
    if is_path_like(model):
        loaded = _load_model(task, os.fspath(model), device, dtype, backend)
    else:
        loaded = model
        if device is not None:
            loaded = loaded.to(device)
        if dtype is not None and dtype != "auto":
            loaded = loaded.to(_as_dtype(dtype))
        if backend != "auto":
            loaded.set_backend(backend)
    return cls(loaded, _load_tokenizer(model, loaded, tokenizer), **task_args)


__all__ = ["pipeline", "pipeline_class", "Pipeline", "TASKS", "ALIASES"]
