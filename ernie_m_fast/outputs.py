"""Model outputs that behave like transformers' ModelOutput.

Attribute access, `out["key"]`, integer indexing and slicing over the fields that are not None,
`to_tuple()`, and iteration over the set keys — so code written for transformers keeps working.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch


@dataclasses.dataclass
class ModelOutput:
    def _set_items(self):
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(v for _, v in self._set_items())

    def keys(self):
        return [k for k, _ in self._set_items()]

    def values(self):
        return [v for _, v in self._set_items()]

    def items(self):
        return self._set_items()

    def __getitem__(self, key):
        if isinstance(key, str):
            return dict(self._set_items())[key]
        return self.to_tuple()[key]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self._set_items())

    def __contains__(self, key):
        return key in self.keys()


@dataclasses.dataclass
class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    last_hidden_state: Optional[torch.Tensor] = None
    pooler_output: Optional[torch.Tensor] = None
    hidden_states: Optional[tuple[torch.Tensor, ...]] = None
    past_key_values: Optional[Any] = None
    attentions: Optional[tuple[torch.Tensor, ...]] = None
    cross_attentions: Optional[tuple[torch.Tensor, ...]] = None


@dataclasses.dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    hidden_states: Optional[tuple[torch.Tensor, ...]] = None
    attentions: Optional[tuple[torch.Tensor, ...]] = None


@dataclasses.dataclass
class MultipleChoiceModelOutput(SequenceClassifierOutput):
    pass


@dataclasses.dataclass
class TokenClassifierOutput(SequenceClassifierOutput):
    pass


@dataclasses.dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Optional[torch.Tensor] = None
    start_logits: Optional[torch.Tensor] = None
    end_logits: Optional[torch.Tensor] = None
    hidden_states: Optional[tuple[torch.Tensor, ...]] = None
    attentions: Optional[tuple[torch.Tensor, ...]] = None
