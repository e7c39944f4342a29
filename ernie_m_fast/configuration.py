"""ErnieMConfig: transformers' config, read and written as the same config.json, without transformers."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from ._version import __version__

CONFIG_NAME = "config.json"

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")

# Generic PretrainedConfig fields ErnieM uses, with transformers' defaults. Written to config.json
# only when they differ from these (transformers' `use_diff` convention).
_GENERIC_DEFAULTS: dict[str, Any] = {
    "return_dict": True,
    "output_hidden_states": False,
    "output_attentions": False,
    "architectures": None,
    "finetuning_task": None,
    "problem_type": None,
    "tokenizer_class": None,
    "bos_token_id": None,
    "eos_token_id": None,
    "sep_token_id": None,
    "is_decoder": False,
    "pruned_heads": {},
    "dtype": None,
}


class ErnieMConfig:
    r"""Configuration of an ErnieM model; the defaults are susnato/ernie-m-base_pytorch's.

    Same fields, defaults and `attribute_map` as transformers' `ErnieMConfig` (4.57), so a
    config.json moves between the two libraries unchanged. Unknown keys are kept and written back.
    """

    model_type = "ernie_m"
    attribute_map: dict[str, str] = {"dropout": "classifier_dropout", "num_classes": "num_labels"}

    def __init__(
        self,
        vocab_size: int = 250002,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 514,
        initializer_range: float = 0.02,
        pad_token_id: int = 1,
        layer_norm_eps: float = 1e-05,
        classifier_dropout=None,
        act_dropout=0.0,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.pad_token_id = pad_token_id
        self.layer_norm_eps = layer_norm_eps
        self.classifier_dropout = classifier_dropout
        self.act_dropout = act_dropout

        # Aliases first, as transformers resolves them: `num_classes` -> num_labels, `dropout` -> classifier_dropout.
        for alias, target in self.attribute_map.items():
            if alias in kwargs:
                kwargs[target] = kwargs.pop(alias)
        if "torch_dtype" in kwargs:  # the pre-4.56 spelling of `dtype`
            kwargs.setdefault("dtype", kwargs.pop("torch_dtype"))
        kwargs.pop("model_type", None)
        kwargs.pop("transformers_version", None)
        kwargs.pop("ernie_m_fast_version", None)
        if "classifier_dropout" in kwargs:
            self.classifier_dropout = kwargs.pop("classifier_dropout")

        for key, default in _GENERIC_DEFAULTS.items():
            setattr(self, key, copy.deepcopy(kwargs.pop(key, default)))
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES} or None, got {self.problem_type!r}")

        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        num_labels = kwargs.pop("num_labels", None)
        if id2label is not None:
            self.id2label = {int(k): v for k, v in dict(id2label).items()}
            if num_labels is not None and num_labels != len(self.id2label):
                raise ValueError(f"num_labels={num_labels} disagrees with id2label, which has {len(self.id2label)} entries")
        else:
            self.num_labels = 2 if num_labels is None else num_labels
        if label2id is not None:
            self.label2id = {k: int(v) for k, v in dict(label2id).items()}
        elif id2label is not None:
            self.label2id = {v: k for k, v in self.id2label.items()}
        self._name_or_path = kwargs.pop("_name_or_path", "")

        for key, value in kwargs.items():
            setattr(self, key, value)

    # --- transformers' attribute conventions -------------------------------------------------
    def __setattr__(self, key, value):
        key = type(self).attribute_map.get(key, key)
        super().__setattr__(key, value)

    def __getattr__(self, key):  # only called when normal lookup fails: resolve aliases
        target = type(self).attribute_map.get(key)
        if target is not None:
            return getattr(self, target)
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"num_labels must be a positive int, got {n!r}")
        if getattr(self, "id2label", None) is None or len(self.id2label) != n:
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
            self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate(self) -> None:
        """Raise ValueError for a config no ErnieM model can be built from."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"The hidden size ({self.hidden_size}) is not a multiple of the number of attention "
                f"heads ({self.num_attention_heads})"
            )
        if self.max_position_embeddings < 3:
            raise ValueError("max_position_embeddings must be at least 3 (positions are offset by 2)")

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": self.initializer_range,
            "pad_token_id": self.pad_token_id,
            "layer_norm_eps": self.layer_norm_eps,
            "classifier_dropout": self.classifier_dropout,
            "act_dropout": self.act_dropout,
            "id2label": {str(k): v for k, v in self.id2label.items()},
            "label2id": dict(self.label2id),
        }
        for key, default in _GENERIC_DEFAULTS.items():
            value = getattr(self, key)
            if value != default:
                out[key] = copy.deepcopy(value)
        for key, value in vars(self).items():  # keys we do not interpret, kept so a round trip loses nothing
            if not key.startswith("_") and key not in out and key not in _GENERIC_DEFAULTS:
                out[key] = copy.deepcopy(value)
        out["transformers_version"] = "4.57.6"  # the release whose ErnieM this file is written for
        out["ernie_m_fast_version"] = __version__
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        os.makedirs(save_directory, exist_ok=True)
        with open(os.path.join(save_directory, CONFIG_NAME), "w", encoding="utf-8") as f:
            f.write(self.to_json_string())

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> "ErnieMConfig":
        merged = dict(config_dict)
        merged.update(kwargs)
        model_type = merged.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(f"config has model_type {model_type!r}; ErnieMConfig reads only {cls.model_type!r}")
        return cls(**merged)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "ErnieMConfig":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs) -> "ErnieMConfig":
        from .hub import HUB_KWARGS, resolve_file

        hub_kwargs = {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}
        path = resolve_file(path_or_repo_id, CONFIG_NAME, **hub_kwargs)
        config = cls.from_json_file(path)
        for key, value in kwargs.items():
            setattr(config, key, value)
        config._name_or_path = str(path_or_repo_id)
        return config

    def __eq__(self, other):
        return isinstance(other, ErnieMConfig) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"{type(self).__name__} {self.to_json_string()}"
