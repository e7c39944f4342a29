"""piece_handling="paddlenlp": PaddleNLP 2.8.1's ErnieM tokenizer, token for token, offsets included.

PaddleNLP drops every lone "▁" sentencepiece piece; transformers keeps one before a piece that starts
no word. tools/make_paddle_fixtures.py stored PaddleNLP's tokens, ids and offset mapping of texts
where the two differ (a space before a CJK character or a digit) and of the Taskflow texts.
"""
from __future__ import annotations

import json
import shutil

import pytest
import transformers

import ernie_m_fast as emf
from ernie_m_fast.paddle import convert_checkpoint
from paddle_fixtures import FIXTURES, UIE_DIR

CASES = json.loads((FIXTURES / "paddle_tokenizer.json").read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="module")
def paddle_rule():
    return emf.ErnieMTokenizer.from_pretrained(UIE_DIR)  # a PaddleNLP checkpoint: PaddleNLP's rule by default


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:12] for c in CASES])
def test_paddlenlp_piece_handling_equals_paddlenlp(paddle_rule, case):
    assert paddle_rule.piece_handling == "paddlenlp"
    text = case["text"]
    assert paddle_rule.tokenize(text) == case["tokens"]
    tokens, spans = paddle_rule.tokenize_with_offsets(text)
    assert tokens == case["tokens"] and [list(s) for s in spans] == case["offset_mapping"]
    # every encoding path: the batch fast path, with offsets, and a batch of several texts
    assert paddle_rule(text, add_special_tokens=False)["input_ids"] == case["input_ids"]
    enc = paddle_rule([text, "x"], add_special_tokens=False, return_offsets_mapping=True)
    assert enc["input_ids"][0] == case["input_ids"]
    assert [list(o) for o in enc["offset_mapping"][0]] == case["offset_mapping"]
    assert paddle_rule.encode_texts([text, text])[1] == case["input_ids"]


def test_the_fixture_texts_differ_under_transformers_rule(paddle_rule):
    """The cases above would pass with transformers' rule too if no text had a lone "▁": some must."""
    theirs = transformers.ErnieMTokenizer.from_pretrained(UIE_DIR)
    differ = [c["text"] for c in CASES if theirs.tokenize(c["text"]) != c["tokens"]]
    assert len(differ) >= 2, differ
    ours = emf.ErnieMTokenizer.from_pretrained(UIE_DIR, piece_handling="transformers")
    for case in CASES:  # transformers' rule is transformers' output, and PaddleNLP's less the lone "▁"s
        assert ours.tokenize(case["text"]) == theirs.tokenize(case["text"])
        assert [t for t in ours.tokenize(case["text"]) if t != "▁"] == case["tokens"]


def test_the_rule_is_saved_and_transformers_still_loads_the_directory(paddle_rule, tmp_path):
    paddle_rule.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert config["piece_handling"] == "paddlenlp"
    reloaded = emf.ErnieMTokenizer.from_pretrained(tmp_path / "saved")  # no PaddleNLP model here: from the config
    assert reloaded.piece_handling == "paddlenlp"
    text = next(c for c in CASES if "北京 in" in c["text"])
    assert reloaded.tokenize(text["text"]) == text["tokens"]
    transformers.ErnieMTokenizer.from_pretrained(tmp_path / "saved")  # the extra key does not break it


def test_only_a_paddle_checkpoint_defaults_to_paddlenlp(tmp_path):
    tokenizer_only = tmp_path / "tokenizer_only"
    tokenizer_only.mkdir()
    for name in ("sentencepiece.bpe.model", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(UIE_DIR / name, tokenizer_only)
    assert emf.ErnieMTokenizer.from_pretrained(tokenizer_only).piece_handling == "transformers"
    assert emf.ErnieMTokenizer.from_pretrained(UIE_DIR, piece_handling="transformers").piece_handling == "transformers"
    converted = tmp_path / "converted"
    convert_checkpoint(UIE_DIR, converted)  # a transformers directory that keeps the model's ids
    assert emf.ErnieMTokenizer.from_pretrained(converted).piece_handling == "paddlenlp"


def test_invalid_piece_handling_is_refused():
    with pytest.raises(ValueError, match="piece_handling must be one of"):
        emf.ErnieMTokenizer.from_pretrained(UIE_DIR, piece_handling="paddle")
    tokenizer = emf.ErnieMTokenizer.from_pretrained(UIE_DIR)
    with pytest.raises(ValueError, match="piece_handling must be one of"):
        tokenizer.piece_handling = None
