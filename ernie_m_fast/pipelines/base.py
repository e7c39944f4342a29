"""What every pipeline shares: loading, argument checking, inputs of every shape, batching, progress.

A pipeline turns each input into one or more token sequences (`_prepare`), runs all sequences of a
chunk of inputs through the model in token-budget batches (`batching.run_batched`), and turns each
input's outputs into its result (`_finish`). Results do not depend on which other inputs share a
batch: every sequence is encoded, run and decoded on its own.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch

from .batching import DEFAULT_MAX_TOKENS, chunked, run_batched

# inputs handled per run: enough to fill several token-budget batches, small enough to stream
CHUNK_SIZE = 256

# options every pipeline takes, at construction or per call
RUN_OPTIONS = {"batch_size": None, "max_tokens": DEFAULT_MAX_TOKENS, "progress": False, "forward_kwargs": None}


class Prepared:
    """One input, encoded: the token id lists it needs run, and whatever `_finish` needs to decode them."""

    __slots__ = ("rows", "context")

    def __init__(self, rows: list[list[int]], context: Any = None):
        self.rows = rows
        self.context = context


class Pipeline:
    """Base class. Subclasses set `task`, `model_class`, `defaults` (task arguments and their default
    values), `token_level` (which outputs of `_forward` are per token), and implement `_prepare_many`,
    `_forward` and `_finish` (or `_run_list` when one pass through the model is not enough)."""

    task = ""
    model_class: type = torch.nn.Module
    defaults: dict[str, Any] = {}
    token_level: tuple[bool, ...] = ()

    def __init__(self, model, tokenizer, **kwargs):
        if not isinstance(model, self.model_class):
            raise TypeError(f"the {self.task} pipeline needs an ernie_m_fast {self.model_class.__name__}, "
                            f"got {type(model).__name__}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.params = self._check_params({**RUN_OPTIONS, **self.defaults}, kwargs)

    # ------------------------------------------------------------------ arguments
    def _check_params(self, base: dict, overrides: dict) -> dict:
        unknown = sorted(set(overrides) - set(base))
        if unknown:
            raise TypeError(f"the {self.task} pipeline got unexpected argument(s) {unknown}; "
                            f"it takes {sorted(base)}")
        params = {**base, **overrides}
        self._validate(params)
        return params

    def _validate(self, params: dict) -> None:
        """Raise ValueError/TypeError on bad task arguments (subclasses extend)."""
        for name in ("batch_size", "max_tokens"):
            value = params[name]
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")

    @property
    def max_length(self) -> int:
        """The longest sequence the model takes, special tokens included."""
        return self.model.config.max_position_embeddings - 2

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------ calling
    def __call__(self, inputs=None, **kwargs):
        inputs, kwargs = self._gather_inputs(inputs, kwargs)
        params = self._check_params(self.params, kwargs)
        if self._is_single(inputs):
            return self._shape_single(self._run_all([inputs], params)[0], params, kwargs)
        if isinstance(inputs, (list, tuple)):
            return [self._shape_many(r, params) for r in self._run_all(list(inputs), params)]
        if isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, dict)):
            return self._stream(iter(inputs), params)
        raise TypeError(f"the {self.task} pipeline takes {self._input_help()}; got {type(inputs).__name__}")

    def _gather_inputs(self, inputs, kwargs: dict):
        """(inputs, remaining kwargs); QA overrides it to read question=/context=."""
        if inputs is None:
            raise TypeError(f"the {self.task} pipeline needs inputs: {self._input_help()}")
        return inputs, kwargs

    def _is_single(self, inputs) -> bool:
        return isinstance(inputs, str)

    def _input_help(self) -> str:
        return "a str, a list of str, or an iterable (generator, dataset) of str"

    def _shape_single(self, result, params, call_kwargs):
        """The result returned for one input passed alone (transformers sometimes wraps it)."""
        return result

    def _shape_many(self, result, params):
        """The result of one input of a list."""
        return result

    def chunk_size(self, params: dict) -> Optional[int]:
        """Inputs per run (None: all at once)."""
        return CHUNK_SIZE

    def _stream(self, items: Iterator, params: dict) -> Iterator:
        for chunk in chunked(items, self.chunk_size(params)):
            for result in self._run_chunk(chunk, params):
                yield self._shape_many(result, params)

    def _run_all(self, items: list, params: dict) -> list:
        bar = self._progress_bar(len(items), params)
        results = []
        try:
            for chunk in chunked(iter(items), self.chunk_size(params)):
                results.extend(self._run_chunk(chunk, params))
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        return results

    def _progress_bar(self, total: Optional[int], params: dict):
        if not params["progress"]:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:  # pragma: no cover - tqdm comes with transformers / huggingface_hub
            raise ImportError("progress=True needs tqdm: pip install tqdm") from exc
        return tqdm(total=total, desc=self.task, unit="input")

    def _run_chunk(self, items: list, params: dict) -> list:
        for item in items:
            self._check_item(item)
        return self._run_list(items, params)

    def _check_item(self, item) -> None:
        if not isinstance(item, str):
            raise TypeError(f"the {self.task} pipeline takes {self._input_help()}; got an item of type "
                            f"{type(item).__name__} ({item!r:.60})")

    # ------------------------------------------------------------------ the model
    def _run_list(self, items: list, params: dict) -> list:
        prepared = self._prepare_many(items, params)
        outputs = self.run_rows([row for p in prepared for row in p.rows], params)
        results, at = [], 0
        for item, p in zip(items, prepared):
            results.append(self._finish(item, p, outputs[at: at + len(p.rows)], params))
            at += len(p.rows)
        return results

    def run_rows(self, rows: Sequence[Sequence[int]], params: dict, forward=None,
                 token_level: Optional[Sequence[bool]] = None) -> list[tuple[np.ndarray, ...]]:
        """Every id list through the model in token-budget batches; per row, the outputs of `_forward`."""
        if not rows:
            return []
        too_long = max(len(r) for r in rows)
        if too_long > self.max_length:  # a bug in a pipeline, not the user's input: every pipeline fits its rows
            raise ValueError(f"a sequence of {too_long} tokens exceeds the model's {self.max_length}")
        forward_kwargs = params["forward_kwargs"] or {}
        forward = forward or self._forward
        return run_batched(
            rows, lambda ids, mask: forward(ids, mask, **forward_kwargs),
            self.token_level if token_level is None else token_level,
            pad_id=self.pad_id, device=self.device, max_tokens=params["max_tokens"], batch_size=params["batch_size"])

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def _prepare_many(self, items: list, params: dict) -> list[Prepared]:
        raise NotImplementedError

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **forward_kwargs) -> tuple:
        raise NotImplementedError

    def _finish(self, item, prepared: Prepared, outputs: list[tuple[np.ndarray, ...]], params: dict):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__}, device={self.device})"


def is_path_like(value) -> bool:
    return isinstance(value, (str, os.PathLike))
