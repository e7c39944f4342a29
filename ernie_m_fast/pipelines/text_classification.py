"""text-classification: transformers' TextClassificationPipeline on ErnieMForSequenceClassification.

Same arguments (`top_k`, `function_to_apply`), same scores and the same output shapes, including
transformers' "legacy" shape: without `top_k` in the call, a single text gives `[{"label", "score"}]`
and a list gives one dict per text; with `top_k` (an int, or None for every label) each text gives a
list of dicts, best first. A pair is passed as `{"text": ..., "text_pair": ...}`.
Texts longer than the model takes are truncated (longest first), where transformers would fail.
"""

from __future__ import annotations

import numpy as np

from ..modeling import ErnieMForSequenceClassification
from .base import Pipeline, Prepared

FUNCTIONS = ("softmax", "sigmoid", "none")
_LEGACY = ""  # transformers' sentinel: top_k not given


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def default_function(config) -> str:
    """transformers' choice from the config: regression -> none, one label or multi-label -> sigmoid, else softmax."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def apply_function(logits: np.ndarray, name: str) -> np.ndarray:
    if name == "softmax":
        return softmax(logits)
    if name == "sigmoid":
        return sigmoid(logits)
    return logits


class TextClassificationPipeline(Pipeline):
    task = "text-classification"
    model_class = ErnieMForSequenceClassification
    defaults = {"top_k": _LEGACY, "function_to_apply": None}
    token_level = (False,)

    def _validate(self, params):
        super()._validate(params)
        top_k = params["top_k"]
        if top_k is not _LEGACY and top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"top_k must be a positive int or None (every label), got {top_k!r}")
        fn = params["function_to_apply"]
        if fn is not None and (not isinstance(fn, str) or fn.lower() not in FUNCTIONS):
            raise ValueError(f"function_to_apply must be one of {FUNCTIONS} or None, got {fn!r}")

    def _is_single(self, inputs) -> bool:
        return isinstance(inputs, (str, dict))

    def _input_help(self) -> str:
        return 'a str, a {"text", "text_pair"} dict, a list of those, or an iterable of those'

    def _check_item(self, item) -> None:
        if isinstance(item, dict):
            if set(item) - {"text", "text_pair"} or not isinstance(item.get("text"), str) \
                    or not isinstance(item.get("text_pair", ""), str):
                raise ValueError(f'a pair must be a dict {{"text": str, "text_pair": str}}, got {item!r:.80}')
            return
        if isinstance(item, (list, tuple)):
            raise ValueError('to classify a pair of texts, pass {"text": first, "text_pair": second}')
        super()._check_item(item)

    def _shape_single(self, result, params, call_kwargs):
        # transformers wraps a single text's result in a list unless top_k was given in this call
        return result if "top_k" in call_kwargs else [result]

    def _prepare_many(self, items, params):
        firsts = [item["text"] if isinstance(item, dict) else item for item in items]
        seconds = [item.get("text_pair") if isinstance(item, dict) else None for item in items]
        rows: list = [None] * len(items)
        singles = [i for i, s in enumerate(seconds) if s is None]
        pairs = [i for i, s in enumerate(seconds) if s is not None]
        options = dict(truncation=True, max_length=self.max_length, return_attention_mask=False)
        if singles:
            for i, ids in zip(singles, self.tokenizer([firsts[i] for i in singles], **options)["input_ids"]):
                rows[i] = ids
        if pairs:
            encoded = self.tokenizer([firsts[i] for i in pairs], [seconds[i] for i in pairs], **options)
            for i, ids in zip(pairs, encoded["input_ids"]):
                rows[i] = ids
        return [Prepared([row]) for row in rows]

    def _forward(self, input_ids, attention_mask, **forward_kwargs):
        return (self.model(input_ids=input_ids, attention_mask=attention_mask, **forward_kwargs).logits,)

    def _finish(self, item, prepared, outputs, params):
        (logits,) = outputs[0]
        config = self.model.config
        fn = (params["function_to_apply"] or default_function(config)).lower()
        scores = apply_function(logits.astype(np.float32), fn)
        top_k = params["top_k"]
        if top_k is _LEGACY:
            best = int(scores.argmax())
            return {"label": config.id2label[best], "score": scores[best].item()}
        ranked = sorted(({"label": config.id2label[i], "score": s.item()} for i, s in enumerate(scores)),
                        key=lambda d: d["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]
