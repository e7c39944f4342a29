"""zero-shot-classification: transformers' NLI-based ZeroShotClassificationPipeline.

Each (text, candidate label) becomes the pair (text, hypothesis_template.format(label)) run through an
NLI-tuned ErnieMForSequenceClassification (an XNLI checkpoint, say). The entailment id is the first
label in `config.label2id` starting with "entail" (any case); contradiction is id 0, or the last id
when entailment is 0. Scores, exactly as transformers: with `multi_label=False` (and more than one
label) a softmax of the entailment logits across the labels, so a text's scores sum to 1; otherwise,
per label, a softmax over (contradiction, entailment). Output per text: `{"sequence", "labels",
"scores"}`, best first. The text is truncated when the pair is too long for the model (only the
text: the hypothesis is kept), as transformers' `only_first`.
"""

from __future__ import annotations

import logging

import numpy as np

from ..modeling import ErnieMForSequenceClassification
from .base import Pipeline, Prepared

logger = logging.getLogger("ernie_m_fast.pipelines")


def parse_labels(labels) -> list[str]:
    """A list of labels, or one string of comma-separated labels (transformers' rule)."""
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) for label in labels):
        raise TypeError(f"candidate_labels must be a str or a list of str, got {labels!r:.80}")
    return list(labels)


def entailment_id(config) -> int:
    for label, index in config.label2id.items():
        if label.lower().startswith("entail"):
            return int(index)
    return -1


def zero_shot_scores(logits: np.ndarray, entail: int, multi_label: bool) -> np.ndarray:
    """Scores per candidate label from the NLI logits `[num_labels_candidates, num_nli_classes]`."""
    if multi_label or logits.shape[0] == 1:
        contradiction = -1 if entail == 0 else 0
        pair = logits[:, [contradiction, entail]]
        pair = np.exp(pair - pair.max(axis=-1, keepdims=True))
        return pair[:, 1] / pair.sum(axis=-1)
    entail_logits = logits[:, entail]
    exp = np.exp(entail_logits - entail_logits.max())
    return exp / exp.sum()


class ZeroShotClassificationPipeline(Pipeline):
    task = "zero-shot-classification"
    model_class = ErnieMForSequenceClassification
    defaults = {"candidate_labels": None, "hypothesis_template": "This example is {}.", "multi_label": False}
    token_level = (False,)

    def __init__(self, model, tokenizer, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        if entailment_id(model.config) == -1:
            logger.warning("Failed to determine 'entailment' label id from the label2id mapping in the model config. "
                           "Setting to -1. Define a descriptive label2id mapping in the model config to ensure correct outputs.")

    def _validate(self, params):
        super()._validate(params)
        if params["candidate_labels"] is not None:
            params["candidate_labels"] = parse_labels(params["candidate_labels"])
        template = params["hypothesis_template"]
        if not isinstance(template, str):
            raise TypeError(f"hypothesis_template must be a str, got {type(template).__name__}")
        if not isinstance(params["multi_label"], bool):
            raise TypeError(f"multi_label must be True or False, got {params['multi_label']!r}")

    def __call__(self, sequences=None, *args, **kwargs):
        if len(args) == 1 and "candidate_labels" not in kwargs:  # transformers: labels may come positionally
            kwargs["candidate_labels"] = args[0]
        elif args:
            raise ValueError(f"Unable to understand extra arguments {args}")
        return super().__call__(sequences, **kwargs)

    def _run_chunk(self, items, params):
        labels = params["candidate_labels"]
        template = params["hypothesis_template"]
        if not labels:
            raise ValueError("You must include at least one label and at least one sequence.")
        if template.format(labels[0]) == template:
            raise ValueError(
                f'The provided hypothesis_template "{template}" was not able to be formatted with the target labels. '
                "Make sure the passed template includes formatting syntax such as {} where the label should go.")
        return super()._run_chunk(items, params)

    def _prepare_many(self, items, params):
        hypotheses = [params["hypothesis_template"].format(label) for label in params["candidate_labels"]]
        firsts = [text for text in items for _ in hypotheses]
        seconds = hypotheses * len(items)
        encoded = self.tokenizer(firsts, seconds, truncation="only_first", max_length=self.max_length,
                                 return_attention_mask=False)["input_ids"]
        n = len(hypotheses)
        return [Prepared(encoded[i * n: (i + 1) * n]) for i in range(len(items))]

    def _forward(self, input_ids, attention_mask, **forward_kwargs):
        return (self.model(input_ids=input_ids, attention_mask=attention_mask, **forward_kwargs).logits,)

    def _finish(self, item, prepared, outputs, params):
        logits = np.stack([out[0] for out in outputs])
        scores = zero_shot_scores(logits, entailment_id(self.model.config), params["multi_label"])
        order = list(reversed(scores.argsort()))
        labels = params["candidate_labels"]
        return {"sequence": item, "labels": [labels[i] for i in order], "scores": scores[order].tolist()}
