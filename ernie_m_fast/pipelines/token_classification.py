"""token-classification (NER): transformers' TokenClassificationPipeline on ErnieMForTokenClassification.

`aggregation_strategy`, with transformers' meaning:
- "none": one entry per token: `entity` (its best label), `score`, `index` (the token's position in
  the model's input, `[CLS]` being 0), `word`, `start`, `end`;
- "simple": adjacent tokens with the same entity (B-/I- prefixes understood) grouped into one entry
  with `entity_group`, `score` (mean of the tokens' scores), `word`, `start`, `end`;
- "first" / "average" / "max": first every word gets one label (its first token's; the average of
  its tokens' score vectors; its most confident token's), then words are grouped as in "simple".
Labels in `ignore_labels` (default `["O"]`) are dropped. Offsets come from the tokenizer, so
`text[start:end]` is the entity, and `word` is exactly that slice (transformers decodes the tokens
instead, which loses ErnieM's casing, full-width forms and spaces). Words: tokens touching in the
text form one word, except that CJK characters and punctuation are words of their own (see
`encoding.word_ids`; transformers would glue a whole run of Chinese into one "word").

Pre-split input (`is_split_into_words=True`, transformers' argument): each input is a list of words,
joined by `delimiter` (default " ") into the text that `start`/`end`/`word` refer to, as transformers
reports them; each word is tokenized alone and is exactly one word for the word strategies. A single
list of words is one input: the result is a list holding its entity list, as in transformers.

Texts longer than the model takes are split into windows of the model's length overlapping by
`stride` tokens (default a quarter of a window); each token is scored by the window where it has the
most context on both sides, and the text is then aggregated as a whole, so no entity is cut at a
window edge. (transformers truncates unless given `stride`.)
"""

from __future__ import annotations

import numpy as np

from ..modeling import ErnieMForTokenClassification
from .base import Pipeline, Prepared
from .encoding import Encoded, encode_with_offsets, strip_span, token_windows, word_ids

STRATEGIES = ("none", "simple", "first", "average", "max")


def label_tag(label: str) -> tuple[str, str]:
    """("B" or "I", entity type) of a label, as transformers reads B-/I- prefixes."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def best_windows(num_tokens: int, windows: list[tuple[int, int]]) -> list[int]:
    """For each token, the window (index) where it is farthest from both edges; the first such on ties."""
    choice = []
    for t in range(num_tokens):
        best, best_margin = 0, -1
        for w, (start, end) in enumerate(windows):
            if start <= t < end:
                margin = min(t - start, end - 1 - t)
                if margin > best_margin:
                    best, best_margin = w, margin
        choice.append(best)
    return choice


def aggregate_words(scores: np.ndarray, words: list[int], strategy: str) -> list[tuple[list[int], np.ndarray]]:
    """(token positions, score vector) per word under "first", "average" or "max"."""
    groups: dict[int, list[int]] = {}
    for position, word in enumerate(words):
        groups.setdefault(word, []).append(position)
    out = []
    for positions in groups.values():
        if strategy == "first":
            vector = scores[positions[0]]
        elif strategy == "max":
            vector = scores[max(positions, key=lambda p: scores[p].max())]
        else:
            vector = np.nanmean(scores[positions], axis=0)
        out.append((positions, vector))
    return out


def group_entities(entities: list[dict]) -> list[list[dict]]:
    """Runs of adjacent entries with the same entity type; a B- label starts a new run (transformers)."""
    groups: list[list[dict]] = []
    for entity in entities:
        bi, tag = label_tag(entity["entity"])
        if groups and bi != "B" and label_tag(groups[-1][-1]["entity"])[1] == tag:
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return groups


class TokenClassificationPipeline(Pipeline):
    task = "token-classification"
    model_class = ErnieMForTokenClassification
    defaults = {"aggregation_strategy": "none", "ignore_labels": None, "stride": None,
                "is_split_into_words": False, "delimiter": None}
    token_level = (True,)

    def _validate(self, params):
        super()._validate(params)
        strategy = params["aggregation_strategy"]
        strategy = getattr(strategy, "value", strategy)  # transformers' AggregationStrategy enum
        if not isinstance(strategy, str) or strategy.lower() not in STRATEGIES:
            raise ValueError(f"aggregation_strategy must be one of {STRATEGIES}, got {params['aggregation_strategy']!r}")
        params["aggregation_strategy"] = strategy.lower()
        stride = params["stride"]
        if stride is not None and (not isinstance(stride, int) or not 0 <= stride < self.max_length - 2):
            raise ValueError(f"stride must be an int in [0, {self.max_length - 2}), got {stride!r}")
        if not isinstance(params["is_split_into_words"], bool):
            raise TypeError(f"is_split_into_words must be True or False, got {params['is_split_into_words']!r}")
        if params["delimiter"] is not None and not isinstance(params["delimiter"], str):
            raise TypeError(f"delimiter must be a str, got {params['delimiter']!r}")

    def _gather_inputs(self, inputs, kwargs):
        inputs, kwargs = super()._gather_inputs(inputs, kwargs)
        split = kwargs.get("is_split_into_words", self.params["is_split_into_words"])
        if split is True and isinstance(inputs, (list, tuple)) and all(isinstance(w, str) for w in inputs):
            inputs = [list(inputs)]  # one pre-split input (transformers wraps it the same way)
        return inputs, kwargs

    def _check_item(self, item) -> None:
        if isinstance(item, (list, tuple)) and all(isinstance(w, str) for w in item):
            return  # a pre-split input; whether one is expected is checked with the call's arguments
        super()._check_item(item)

    def _texts(self, items, params) -> list[tuple[str, list | None]]:
        """(text, word spans or None) per input; a pre-split input's text is its words joined."""
        split = params["is_split_into_words"]
        delimiter = " " if params["delimiter"] is None else params["delimiter"]
        out = []
        for item in items:
            if split != (not isinstance(item, str)):
                raise TypeError("with is_split_into_words=True every input must be a list of words (str)"
                                if split else "a list of words is one input only with is_split_into_words=True")
            if not split:
                out.append((item, None))
                continue
            spans, at = [], 0
            for w in item:
                spans.append((at, at + len(w)))
                at += len(w) + len(delimiter)
            out.append((delimiter.join(item), spans))
        return out

    def _encode(self, texts: list[tuple[str, list | None]]) -> list[tuple[Encoded, list[int] | None]]:
        """Ids and offsets in the text per input, with each token's word for pre-split inputs (each
        word tokenized alone, its offsets moved to where it sits in the joined text)."""
        whole = encode_with_offsets(self.tokenizer, [text for text, spans in texts if spans is None])
        words = iter(encode_with_offsets(self.tokenizer, [text[s:e] for text, spans in texts if spans for s, e in spans]))
        whole = iter(whole)
        out = []
        for text, spans in texts:
            if spans is None:
                out.append((next(whole), None))
                continue
            ids, offsets, owners = [], [], []
            for index, (start, _) in enumerate(spans):
                word = next(words)
                ids.extend(word.ids)
                offsets.extend((start + s, start + e) for s, e in word.offsets)
                owners.extend([index] * len(word.ids))
            out.append((Encoded(ids, offsets), owners))
        return out

    def _prepare_many(self, items, params):
        size = self.max_length - 2
        stride = params["stride"] if params["stride"] is not None else size // 4
        prepared = []
        texts = self._texts(items, params)
        for (text, _), (enc, owners) in zip(texts, self._encode(texts)):
            windows = token_windows(len(enc.ids), size, stride)
            rows = [self.tokenizer.build_inputs_with_special_tokens(enc.ids[s:e]) for s, e in windows]
            prepared.append(Prepared(rows, (text, enc, owners, windows)))
        return prepared

    def _forward(self, input_ids, attention_mask, **forward_kwargs):
        return (self.model(input_ids=input_ids, attention_mask=attention_mask, **forward_kwargs).logits,)

    def _finish(self, item, prepared, outputs, params):
        text, enc, owners, windows = prepared.context
        n = len(enc.ids)
        if n == 0:
            return []
        choice = best_windows(n, windows)
        logits = np.stack([outputs[w][0][1 + t - windows[w][0]] for t, w in enumerate(choice)])  # +1: [CLS]
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        scores = shifted / shifted.sum(axis=-1, keepdims=True)
        id2label = self.model.config.id2label
        strategy = params["aggregation_strategy"]

        def entry(positions, vector):
            best = int(vector.argmax())
            start, end = enc.offsets[positions[0]][0], enc.offsets[positions[-1]][1]
            if len(positions) > 1:  # a word: without the space its lone "▁" token may carry
                start, end = strip_span(text, start, end)
            return {"entity": id2label[best], "score": float(vector[best]), "word": text[start:end],
                    "start": start, "end": end}

        if strategy in ("none", "simple"):
            entities = []
            for t in range(n):
                e = entry([t], scores[t])
                entities.append({"entity": e["entity"], "score": e["score"], "index": t + 1, "word": e["word"],
                                 "start": e["start"], "end": e["end"]})
        else:
            entities = [entry(positions, vector) for positions, vector in
                        aggregate_words(scores, owners or word_ids(text, enc.offsets), strategy)]
        ignore = ["O"] if params["ignore_labels"] is None else list(params["ignore_labels"])
        if strategy == "none":
            return [e for e in entities if e["entity"] not in ignore]
        grouped = []
        for group in group_entities(entities):
            start, end = strip_span(text, group[0]["start"], group[-1]["end"])
            grouped.append({"entity_group": group[0]["entity"].split("-", 1)[-1],  # transformers' name for the group
                            "score": float(np.nanmean([e["score"] for e in group])),
                            "word": text[start:end], "start": start, "end": end})
        return [g for g in grouped if g["entity_group"] not in ignore]
