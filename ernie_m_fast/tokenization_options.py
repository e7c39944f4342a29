"""EncodeOptions: the arguments of one tokenizer call, checked and resolved once, then handed down.

`ErnieMTokenizer.__call__` keeps transformers' seventeen keyword arguments (that is its API); the encoding
pipeline behind it (`_prepare_for_model` per example, `_pad_and_wrap` per batch) takes this one object
instead, so a new option is added in one place and cannot be passed in the wrong position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tokenization_batch import resolve_strategies

# the keyword arguments of __call__ / encode_plus / batch_encode_plus and their defaults (transformers')
CALL_DEFAULTS: dict[str, Any] = dict(
    add_special_tokens=True, padding=False, truncation=None, max_length=None, stride=0,
    is_split_into_words=False, pad_to_multiple_of=None, padding_side=None, return_tensors=None,
    return_token_type_ids=None, return_attention_mask=None, return_overflowing_tokens=False,
    return_special_tokens_mask=False, return_offsets_mapping=False, return_length=False, verbose=True,
    split_special_tokens=None,
)


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """How one call encodes: padding and truncation as strategies, every default filled in."""

    # input
    add_special_tokens: bool
    is_split_into_words: bool
    split_special_tokens: bool
    # truncation ("do_not_truncate", "longest_first", "only_first", "only_second")
    truncation_strategy: str
    max_length: int | None
    stride: int
    # padding ("do_not_pad", "longest", "max_length")
    padding_strategy: str
    pad_to_multiple_of: int | None
    padding_side: str | None
    # output
    return_tensors: Any
    return_token_type_ids: bool | None
    return_attention_mask: bool
    return_overflowing_tokens: bool
    return_special_tokens_mask: bool
    return_offsets_mapping: bool
    return_length: bool

    @classmethod
    def resolve(cls, tok, *, add_special_tokens, padding, truncation, max_length, stride, is_split_into_words,
                pad_to_multiple_of, padding_side, return_tensors, return_token_type_ids, return_attention_mask,
                return_overflowing_tokens, return_special_tokens_mask, return_offsets_mapping, return_length,
                verbose, split_special_tokens) -> "EncodeOptions":
        """The options of a call to `tok` with these (transformers') arguments; raises on a contradiction."""
        padding_strategy, truncation_strategy, max_length = resolve_strategies(
            tok, padding, truncation, max_length, pad_to_multiple_of, verbose)
        if return_token_type_ids and not add_special_tokens:
            raise ValueError(
                "Asking to return token_type_ids while setting add_special_tokens to False "
                "results in an undefined behavior. Please set add_special_tokens to True or "
                "set return_token_type_ids to None."
            )
        return cls(
            add_special_tokens=add_special_tokens, is_split_into_words=is_split_into_words,
            split_special_tokens=tok.split_special_tokens if split_special_tokens is None else split_special_tokens,
            truncation_strategy=truncation_strategy, max_length=max_length, stride=stride,
            padding_strategy=padding_strategy, pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side,
            return_tensors=return_tensors, return_token_type_ids=return_token_type_ids,
            return_attention_mask=("attention_mask" in tok.model_input_names if return_attention_mask is None
                                   else return_attention_mask),
            return_overflowing_tokens=return_overflowing_tokens, return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping, return_length=return_length,
        )
