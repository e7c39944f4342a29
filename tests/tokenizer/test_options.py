"""EncodeOptions: a call's arguments resolved once, and the one thing the encoding pipeline takes."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from ernie_m_fast import ErnieMTokenizer
from ernie_m_fast.tokenization_options import CALL_DEFAULTS, EncodeOptions


def _resolve(tok, **arguments) -> EncodeOptions:
    return EncodeOptions.resolve(tok, **dict(CALL_DEFAULTS, **arguments))


def test_the_pipeline_takes_one_options_object():
    prepare = list(inspect.signature(ErnieMTokenizer._prepare_for_model).parameters)
    pad = list(inspect.signature(ErnieMTokenizer._pad_and_wrap).parameters)
    assert prepare == ["self", "ids", "pair_ids", "offsets", "pair_offsets", "options"]
    assert pad == ["self", "rows", "batched", "options"]


def test_call_defaults_are_the_call_signature():
    """encode_plus / batch_encode_plus fill in what __call__'s signature defaults to."""
    signature = inspect.signature(ErnieMTokenizer.__call__).parameters
    assert {k: signature[k].default for k in CALL_DEFAULTS} == CALL_DEFAULTS
    assert set(inspect.signature(EncodeOptions.resolve).parameters) - {"cls", "tok"} == set(CALL_DEFAULTS)


def test_resolve_fills_defaults_from_the_tokenizer(base_pair):
    _, ours = base_pair
    options = _resolve(ours)
    assert options.return_attention_mask is True  # "attention_mask" is in model_input_names
    assert options.split_special_tokens is ours.split_special_tokens
    assert (options.padding_strategy, options.truncation_strategy, options.max_length) == ("do_not_pad", "do_not_truncate", None)
    options = _resolve(ours, padding=True, truncation="only_second", max_length=16, return_attention_mask=False,
                       split_special_tokens=True)
    assert (options.padding_strategy, options.truncation_strategy, options.max_length) == ("longest", "only_second", 16)
    assert options.return_attention_mask is False and options.split_special_tokens is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_length = 3  # resolved once: nothing down the pipeline can change it


def test_resolve_refuses_contradictions(base_pair):
    _, ours = base_pair
    with pytest.raises(ValueError, match="token_type_ids"):
        _resolve(ours, add_special_tokens=False, return_token_type_ids=True)
    with pytest.raises(ValueError, match="not a valid padding strategy"):
        _resolve(ours, padding="sideways")
    with pytest.raises(ValueError, match="multiple of pad_to_multiple_of"):
        _resolve(ours, padding=True, truncation=True, max_length=10, pad_to_multiple_of=4)
