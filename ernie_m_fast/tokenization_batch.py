"""Truncation, padding and tensor conversion with transformers' semantics (4.57, slow tokenizers).

Kept apart from the tokenizer so the rules that decide the shape of a batch read in one place. Every
rule here reproduces `PreTrainedTokenizerBase` (`_get_padding_truncation_strategies`,
`truncate_sequences`, `_pad`, `BatchEncoding.convert_to_tensors`) including its quirks, because the
promise is identical output: e.g. `only_first` leaves a first sequence that is too short to absorb the
cut untouched (and logs an error), and `max_length` alone switches truncation on.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

logger = logging.getLogger("ernie_m_fast.tokenization")

# transformers: VERY_LARGE_INTEGER = int(1e30) is "no maximum", anything above LARGE_INTEGER counts as unset.
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("only_first", "only_second", "longest_first", "do_not_truncate")


def _strategy_value(value: Any, allowed: tuple[str, ...], what: str) -> str:
    value = getattr(value, "value", value)  # transformers' PaddingStrategy / TruncationStrategy enums
    if value not in allowed:
        raise ValueError(f"{value!r} is not a valid {what}; use one of {', '.join(allowed)}")
    return value


def resolve_strategies(tok, padding=False, truncation=None, max_length=None, pad_to_multiple_of=None, verbose=True):
    """(padding_strategy, truncation_strategy, max_length) exactly as transformers resolves them."""
    if max_length is not None and padding is False and truncation is None:
        if verbose:
            logger.warning(
                "Truncation was not explicitly activated but `max_length` is provided a specific value; "
                "defaulting to 'longest_first' truncation (pass truncation=True to silence this)."
            )
        truncation = "longest_first"

    if padding is False or padding is None:
        padding_strategy = "do_not_pad"
    elif padding is True:
        if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
            warnings.warn(
                "`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
                "To pad to max length, use `padding='max_length'`."
            )
        padding_strategy = "longest"
    else:
        padding_strategy = _strategy_value(padding, PADDING_STRATEGIES, "padding strategy")

    if truncation is False or truncation is None:
        truncation_strategy = "do_not_truncate"
    elif truncation is True:
        truncation_strategy = "longest_first"
    else:
        truncation_strategy = _strategy_value(truncation, TRUNCATION_STRATEGIES, "truncation strategy")

    if max_length is None:
        if padding_strategy == "max_length":
            if tok.model_max_length > LARGE_INTEGER:
                if verbose:
                    logger.warning(
                        "Asking to pad to max_length but no maximum length is provided and the model has no "
                        "predefined maximum length. Default to no padding."
                    )
                padding_strategy = "do_not_pad"
            else:
                max_length = tok.model_max_length
        if truncation_strategy != "do_not_truncate":
            if tok.model_max_length > LARGE_INTEGER:
                if verbose:
                    logger.warning(
                        "Asking to truncate to max_length but no maximum length is provided and the model has "
                        "no predefined maximum length. Default to no truncation."
                    )
                truncation_strategy = "do_not_truncate"
            else:
                max_length = tok.model_max_length

    if padding_strategy != "do_not_pad" and (tok.pad_token is None or tok.pad_token_id is None or tok.pad_token_id < 0):
        raise ValueError("Asking to pad but the tokenizer does not have a padding token.")
    if (
        truncation_strategy != "do_not_truncate"
        and padding_strategy != "do_not_pad"
        and pad_to_multiple_of is not None
        and max_length is not None
        and max_length % pad_to_multiple_of != 0
    ):
        raise ValueError(
            "Truncation and padding are both activated but "
            f"truncation length ({max_length}) is not a multiple of pad_to_multiple_of ({pad_to_multiple_of})."
        )
    return padding_strategy, truncation_strategy, max_length


def truncate_sequences(
    ids: list, pair_ids: list | None, num_tokens_to_remove: int, strategy: str, side: str, stride: int = 0,
    log: bool = True,
):
    """(ids, pair_ids, overflowing) — transformers' `truncate_sequences`, for any list (ids or offsets)."""
    if num_tokens_to_remove <= 0:
        return ids, pair_ids, []
    if side not in ("left", "right"):
        raise ValueError(f"invalid truncation side: {side!r}, use 'left' or 'right'")
    overflowing: list = []
    if strategy == "only_first" or (strategy == "longest_first" and pair_ids is None):
        if len(ids) > num_tokens_to_remove:
            window_len = min(len(ids), stride + num_tokens_to_remove)
            if side == "left":
                overflowing, ids = ids[:window_len], ids[num_tokens_to_remove:]
            else:
                overflowing, ids = ids[-window_len:], ids[:-num_tokens_to_remove]
        elif log:
            logger.error(
                f"We need to remove {num_tokens_to_remove} to truncate the input but the first sequence has a "
                f"length {len(ids)}; it is left as is. Please select another truncation strategy than {strategy}."
            )
    elif strategy == "longest_first":
        if log:
            logger.warning(
                "Be aware, overflowing tokens are not returned for sequence pairs with the 'longest_first' "
                "truncation strategy."
            )
        len_ids, len_pair = len(ids), len(pair_ids)
        first_remove = min(abs(len_pair - len_ids), num_tokens_to_remove)
        second_remove = num_tokens_to_remove - first_remove
        if len_ids > len_pair:
            ids_to_move = first_remove + second_remove // 2
            pair_to_move = second_remove - second_remove // 2
        else:
            ids_to_move = second_remove // 2
            pair_to_move = first_remove + second_remove - second_remove // 2
        if side == "right":
            ids = ids[:-ids_to_move] if ids_to_move > 0 else ids
            pair_ids = pair_ids[:-pair_to_move] if pair_to_move > 0 else pair_ids
        else:
            ids, pair_ids = ids[ids_to_move:], pair_ids[pair_to_move:]
    elif strategy == "only_second" and pair_ids is not None:
        if len(pair_ids) > num_tokens_to_remove:
            window_len = min(len(pair_ids), stride + num_tokens_to_remove)
            if side == "right":
                overflowing, pair_ids = pair_ids[-window_len:], pair_ids[:-num_tokens_to_remove]
            else:
                overflowing, pair_ids = pair_ids[:window_len], pair_ids[num_tokens_to_remove:]
        elif log:
            logger.error(
                f"We need to remove {num_tokens_to_remove} to truncate the input but the second sequence has a "
                f"length {len(pair_ids)}; it is left as is. Please select another truncation strategy than "
                f"{strategy}."
            )
    return ids, pair_ids, overflowing


# value appended per padded position, by key; keys not listed here are never padded (like transformers)
def _pad_values(tok) -> dict[str, Any]:
    return {
        "input_ids": tok.pad_token_id,
        "attention_mask": 0,
        "token_type_ids": tok.pad_token_type_id,
        "special_tokens_mask": 1,
        "offset_mapping": (0, 0),  # what fast tokenizers give padding; slow ones have no offsets
    }


def pad_one(tok, encoded: dict, max_length, padding_strategy: str, pad_to_multiple_of, padding_side,
            return_attention_mask, pad_values: dict | None = None):
    """transformers' `_pad` on one example (a dict of lists); modifies and returns `encoded`."""
    required = encoded["input_ids"]
    if padding_strategy == "longest":
        max_length = len(required)
    if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of != 0:
        max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
    needs_padding = padding_strategy != "do_not_pad" and len(required) != max_length
    if return_attention_mask and "attention_mask" not in encoded:
        encoded["attention_mask"] = [1] * len(required)
    if needs_padding:
        difference = max_length - len(required)
        side = padding_side if padding_side is not None else tok.padding_side
        if side not in ("left", "right"):
            raise ValueError(f"Invalid padding side: {side!r}, use 'left' or 'right'")
        for key, value in (pad_values or _pad_values(tok)).items():
            if key == "attention_mask" and not return_attention_mask:
                continue
            if key in encoded:
                filler = [value] * difference
                encoded[key] = list(encoded[key]) + filler if side == "right" else filler + list(encoded[key])
    return encoded


def pad_batch(tok, batch: dict, padding_strategy: str, max_length, pad_to_multiple_of, padding_side, return_attention_mask):
    """transformers' `pad` on a dict of per-example lists (already strategy-resolved)."""
    rows = batch["input_ids"]
    if padding_strategy == "longest":
        max_length = max((len(r) for r in rows), default=0)
        padding_strategy = "max_length"
    pad_values = _pad_values(tok)
    out: dict[str, list] = {key: [] for key in batch}
    for i in range(len(rows)):
        example = {key: value[i] for key, value in batch.items()}
        example = pad_one(tok, example, max_length, padding_strategy, pad_to_multiple_of, padding_side,
                          return_attention_mask, pad_values)
        for key, value in example.items():
            out.setdefault(key, []).append(value)
    return out


def to_python(value):
    """Lists from tensors/arrays (decode and pad accept them, like transformers' `to_py_obj`)."""
    if hasattr(value, "tolist"):  # torch.Tensor, np.ndarray, numpy scalars
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_python(v) for v in value]
    return value


def _as_numpy(value):
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray)):
        if len({len(v) for v in value}) > 1:
            # ragged rows: transformers returns an object array of 1-D arrays rather than failing
            out = np.empty(len(value), dtype=object)
            out[:] = [np.asarray(v) for v in value]
            return out
    if len(value) == 0:
        return np.asarray(value, dtype=np.int64)
    return np.asarray(value)


def _as_torch(value):
    import torch

    if isinstance(value, (list, tuple)) and len(value) == 0:
        return torch.tensor(value, dtype=torch.int64)
    # through numpy: ~10x faster than torch.tensor on nested lists, same int64 result
    array = np.asarray(value)
    if array.dtype.kind in "iu":
        return torch.from_numpy(array.astype(np.int64, copy=False))
    return torch.tensor(value)


class BatchEncoding(dict):
    """The tokenizer's output: a dict of lists or tensors with attribute access (`enc.input_ids`).

    Matches the parts of transformers' BatchEncoding that a slow tokenizer fills: `data`, `to(device)`,
    `convert_to_tensors`. There are no `encodings` (word ids etc. come from Rust tokenizers only).
    """

    def __init__(self, data=None, tensor_type: str | None = None, prepend_batch_axis: bool = False):
        super().__init__(data or {})
        self.convert_to_tensors(tensor_type, prepend_batch_axis)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self):
        return {"data": dict(self)}

    def __setstate__(self, state):
        self.update(state["data"])

    @property
    def data(self) -> dict:
        return dict(self)

    @property
    def encodings(self):
        return None

    @property
    def is_fast(self) -> bool:
        return False

    def convert_to_tensors(self, tensor_type: str | None = None, prepend_batch_axis: bool = False):
        tensor_type = getattr(tensor_type, "value", tensor_type)  # transformers' TensorType enum
        if tensor_type is None:
            return self
        if tensor_type == "pt":
            import torch

            convert, is_tensor = _as_torch, torch.is_tensor
        elif tensor_type == "np":
            convert, is_tensor = _as_numpy, lambda v: isinstance(v, np.ndarray)
        else:
            raise ValueError(f"return_tensors={tensor_type!r} is not supported; use 'pt', 'np' or None")
        for key, value in list(self.items()):
            if is_tensor(value):
                continue
            if prepend_batch_axis:
                value = [value]
            try:
                self[key] = convert(value)
            except Exception as exc:
                raise ValueError(
                    f"Unable to create a tensor from `{key}`: its rows have different lengths. Use padding=True "
                    "(and truncation=True) to get batched tensors of one length."
                ) from exc
        return self

    def to(self, device, *, non_blocking: bool = False) -> "BatchEncoding":
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device=device, non_blocking=non_blocking)
        return self


def to_dict_of_lists(encoded_inputs) -> dict:
    """`pad` input (a dict, BatchEncoding, or a list of per-example dicts) as a dict of python lists."""
    if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
        encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0].keys()}
    if not isinstance(encoded_inputs, Mapping):
        raise TypeError(
            "pad() takes a dict of lists (a tokenizer output) or a list of such dicts, "
            f"not {type(encoded_inputs).__name__}"
        )
    return {key: to_python(value) for key, value in encoded_inputs.items()}
