"""save_pretrained / from_pretrained round trips, between ours and transformers in both directions."""

from __future__ import annotations

import copy
import json
import os
import pickle

from transformers import ErnieMTokenizer as Theirs

from ernie_m_fast import ErnieMTokenizer as Ours
from spm_fixtures import EDGE_TEXTS, corpus_lines

TEXTS = corpus_lines()[:40] + EDGE_TEXTS


def _encodings(tok):
    return [tok(t, "pair text 中文", return_token_type_ids=True, return_attention_mask=True) for t in TEXTS]


def test_round_trip_keeps_encodings(tiny_dir, tmp_path):
    ours = Ours.from_pretrained(tiny_dir, do_lower_case=True, model_max_length=64, padding_side="left")
    saved = ours.save_pretrained(tmp_path / "ours")
    names = sorted(os.path.basename(p) for p in saved)
    assert names == ["sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer_config.json", "vocab.txt"]
    reloaded = Ours.from_pretrained(tmp_path / "ours")
    assert (reloaded.do_lower_case, reloaded.model_max_length, reloaded.padding_side) == (True, 64, "left")
    assert [dict(e) for e in _encodings(reloaded)] == [dict(e) for e in _encodings(ours)]
    assert reloaded(TEXTS, padding=True, return_offsets_mapping=True) == ours(TEXTS, padding=True, return_offsets_mapping=True)
    with open(tmp_path / "ours" / "vocab.txt", encoding="utf-8") as f, open(os.path.join(tiny_dir, "vocab.txt"), encoding="utf-8") as g:
        assert f.read() == g.read()


def test_transformers_loads_ours_and_we_load_theirs(tiny_dir, tmp_path):
    ours = Ours.from_pretrained(tiny_dir, do_lower_case=True)
    ours.save_pretrained(tmp_path / "ours")
    theirs_from_ours = Theirs.from_pretrained(tmp_path / "ours")
    assert theirs_from_ours.do_lower_case is True
    expected = [dict(e) for e in _encodings(theirs_from_ours)]
    assert [dict(e) for e in _encodings(ours)] == expected

    Theirs.from_pretrained(tiny_dir, do_lower_case=True).save_pretrained(tmp_path / "theirs")
    ours_from_theirs = Ours.from_pretrained(tmp_path / "theirs")
    assert [dict(e) for e in _encodings(ours_from_theirs)] == expected
    config = json.loads((tmp_path / "ours" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "ErnieMTokenizer"


def test_save_vocabulary_writes_both_files(base_pair, tmp_path):
    _, ours = base_pair
    vocab_path, model_path = ours.save_vocabulary(str(tmp_path))
    assert os.path.basename(vocab_path) == "vocab.txt" and os.path.basename(model_path) == "sentencepiece.bpe.model"
    clone = Ours(model_path, vocab_path)
    assert clone(TEXTS)["input_ids"] == ours(TEXTS)["input_ids"]


def test_pickle_and_deepcopy(base_pair):
    _, ours = base_pair
    expected = ours(TEXTS, return_offsets_mapping=True)
    for clone in (pickle.loads(pickle.dumps(ours)), copy.deepcopy(ours)):
        assert clone(TEXTS, return_offsets_mapping=True) == expected


def test_repeated_vocab_lines_survive_a_round_trip(tiny_dir, tmp_path):
    """A token listed twice in vocab.txt leaves a gap in the ids; saving must not close it."""
    import shutil

    src = tmp_path / "dup"
    shutil.copytree(tiny_dir, src)
    lines = (src / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    lines.insert(10, lines[20])  # the token of line 20 now also sits on line 10 (its last line wins)
    (src / "vocab.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    theirs, ours = Theirs.from_pretrained(src), Ours.from_pretrained(src)
    assert [ours.encode(t) for t in TEXTS] == [theirs.encode(t) for t in TEXTS]
    ours.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "vocab.txt").read_bytes() == (src / "vocab.txt").read_bytes()
    assert [Ours.from_pretrained(tmp_path / "saved").encode(t) for t in TEXTS] == [theirs.encode(t) for t in TEXTS]
