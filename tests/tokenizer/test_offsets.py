"""Offsets: every token points at the span of the original text that it came from.

The oracle is a property, not stored answers (offset_property.py): the text a token's span covers,
normalised the way the model normalises, is the token's text. Every line of the corpus, every edge text
and every model variant is checked.
"""

from __future__ import annotations

import pytest

from offset_property import check_offsets_property, normalise
from spm_fixtures import EDGE_TEXTS, corpus_lines

TEXTS = corpus_lines() + EDGE_TEXTS


def test_every_token_of_every_line(variant_pair):
    name, _, ours = variant_pair
    for text in TEXTS:
        tokens, spans = ours.tokenize_with_offsets(text)
        if name != "keep_spaces":  # where tokens differ from tokenize(), parity tests say so
            assert tokens == ours.tokenize(text), text
        check_offsets_property(ours, text, tokens, spans)
        assert ours.get_offset_mapping(text) == spans


def test_call_offsets_align_with_ids(base_pair):
    _, ours = base_pair
    for text in TEXTS:
        enc = ours(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert len(enc["offset_mapping"]) == len(enc["input_ids"])
        tokens = ours.convert_ids_to_tokens(enc["input_ids"])
        for token, mask, (start, end) in zip(tokens, enc["special_tokens_mask"], enc["offset_mapping"]):
            if mask:
                assert (start, end) == (0, 0)
            elif token != ours.unk_token:
                assert token.removeprefix("▁") in normalise(ours, text[start:end]) or token == "▁", (text, token)


def test_pair_offsets_point_into_each_text(base_pair):
    _, ours = base_pair
    first, second = "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ and 中文，测试", "  second\ttext ①②  "
    enc = ours(first, second, return_offsets_mapping=True, return_token_type_ids=True, return_special_tokens_mask=True)
    ids, offsets, mask = enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
    n_first = len(ours.tokenize(first))
    assert ids[0] == ours.cls_token_id and offsets[0] == (0, 0)
    assert offsets[1:1 + n_first] == ours.get_offset_mapping(first)
    assert offsets[n_first + 1:n_first + 3] == [(0, 0), (0, 0)]
    assert offsets[n_first + 3:-1] == ours.get_offset_mapping(second)
    assert offsets[-1] == (0, 0)
    assert [o == (0, 0) for o in offsets] == [bool(m) for m in mask]


@pytest.mark.parametrize("side", ["left", "right"])
def test_offsets_follow_truncation_and_padding(base_pair, side):
    _, ours = base_pair
    texts = ["The quick brown fox jumps over the lazy dog.", "我们今天去公园散步，天气非常好。", "x"]
    ours.truncation_side = ours.padding_side = side
    try:
        enc = ours(texts, texts[::-1], padding="max_length", truncation="longest_first", max_length=12,
                   return_offsets_mapping=True)
        plain = ours(texts, texts[::-1], padding="max_length", truncation="longest_first", max_length=12)
    finally:
        ours.truncation_side = ours.padding_side = "right"
    assert enc["input_ids"] == plain["input_ids"]
    for row_ids, row_offsets, row_mask, a, b in zip(enc["input_ids"], enc["offset_mapping"], enc["attention_mask"],
                                                   texts, texts[::-1]):
        assert len(row_offsets) == len(row_ids) == 12
        full_a, full_b = ours.get_offset_mapping(a), ours.get_offset_mapping(b)
        # every kept offset is one of that text's offsets, in order, and padding is (0, 0)
        real = [o for o, m in zip(row_offsets, row_mask) if m and o != (0, 0)]
        assert all(o in full_a or o in full_b for o in real)
        assert all(o == (0, 0) for o, m in zip(row_offsets, row_mask) if not m)


def test_offsets_as_tensors(base_pair):
    _, ours = base_pair
    enc = ours(["ab cd", "ｘ"], padding=True, return_offsets_mapping=True, return_tensors="pt")
    assert tuple(enc["offset_mapping"].shape) == (2, enc["input_ids"].shape[1], 2)


def test_transformers_offsets_are_broken(base_pair):
    """Why ours exists: transformers' get_offset_mapping reads an undefined SP_CHAR_MAPPING."""
    theirs, ours = base_pair
    with pytest.raises(AttributeError):
        theirs.get_offset_mapping("hello")
    with pytest.raises(NotImplementedError):
        theirs("hello", return_offsets_mapping=True)
    assert ours.get_offset_mapping("hello") and ours.get_offset_mapping(None) is None


def test_clean_text_maps_full_width_ascii(base_pair):
    theirs, ours = base_pair
    full = "".join(chr(c) for c in range(0xFF01, 0xFF5F))
    half = "".join(chr(c) for c in range(0x21, 0x7F))
    assert ours.clean_text(full + "　中文ｶ") == half + "　中文ｶ"  # only U+FF01-U+FF5E change
    assert ours.SP_CHAR_MAPPING["Ａ"] == "A"
    with pytest.raises(AttributeError):
        theirs.clean_text("Ａ")


def test_pre_split_words_get_offsets_within_each_word(base_pair):
    _, ours = base_pair
    words = ["Hello", "世界！", "x2y", "Ｆｕｌｌ"]
    enc = ours(words, is_split_into_words=True, return_offsets_mapping=True)
    expected = [span for word in words for span in ours.get_offset_mapping(word)]
    assert enc["offset_mapping"] == [(0, 0)] + expected + [(0, 0)]
    assert len(enc["offset_mapping"]) == len(enc["input_ids"])
