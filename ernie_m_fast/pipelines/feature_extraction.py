"""feature-extraction: the encoder's last hidden states, raw (transformers' output) or pooled.

By default each text gives what transformers' FeatureExtractionPipeline gives: a nested list
`[1][tokens][hidden]` of the last layer over every token, special tokens included (a `[1, tokens,
hidden]` tensor with `return_tensors=True`). `pooling="cls"` (the `[CLS]` token's vector) or
`pooling="mean"` (the mean over the text's tokens, special tokens included, as sentence-transformers
averages) gives one `[hidden]` vector per text instead, and `normalize=True` scales it to unit L2
norm (cosine similarity is then a dot product). Any ErnieM checkpoint works: a head model's encoder is
read, never its head. Texts longer than the model takes are truncated (`truncation=True`, the default).
"""

from __future__ import annotations

import numpy as np
import torch

from ..pretrained import ErnieMPreTrainedModel
from .base import Pipeline, Prepared

POOLINGS = (None, "cls", "mean")


def pool(hidden: np.ndarray, pooling, normalize: bool) -> np.ndarray:
    """`[tokens, hidden]` -> `[hidden]` by the `[CLS]` vector or the mean; optionally unit-normalised."""
    vector = hidden[0] if pooling == "cls" else hidden.mean(axis=0)
    if normalize:
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return vector


class FeatureExtractionPipeline(Pipeline):
    task = "feature-extraction"
    model_class = ErnieMPreTrainedModel
    defaults = {"pooling": None, "normalize": False, "return_tensors": False, "truncation": True}
    token_level = (True,)

    def _validate(self, params):
        super()._validate(params)
        if params["pooling"] not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {params['pooling']!r}")
        if params["normalize"] and params["pooling"] is None:
            raise ValueError("normalize=True needs pooling='cls' or 'mean' (one vector per text to normalise)")
        if not isinstance(params["truncation"], bool):
            raise TypeError(f"truncation must be True or False, got {params['truncation']!r}")

    def _prepare_many(self, items, params):
        encoded = self.tokenizer(items, truncation=params["truncation"],
                                 max_length=self.max_length if params["truncation"] else None,
                                 return_attention_mask=False)["input_ids"]
        too_long = [i for i, ids in enumerate(encoded) if len(ids) > self.max_length]
        if too_long:
            raise ValueError(f"text #{too_long[0]} has {len(encoded[too_long[0]])} tokens, more than the model's "
                             f"{self.max_length}; pass truncation=True")
        return [Prepared([ids]) for ids in encoded]

    def _forward(self, input_ids, attention_mask, **forward_kwargs):
        encoder = self.model.base_model  # a head model's ErnieMModel; the head is not run
        return (encoder(input_ids=input_ids, attention_mask=attention_mask, **forward_kwargs).last_hidden_state,)

    def _finish(self, item, prepared, outputs, params):
        (hidden,) = outputs[0]
        if params["pooling"] is not None:
            vector = pool(hidden, params["pooling"], params["normalize"])
            return torch.from_numpy(vector) if params["return_tensors"] else vector.tolist()
        if params["return_tensors"]:
            return torch.from_numpy(hidden)[None]
        return [hidden.tolist()]
