"""Bad input gets a clear TypeError/ValueError or a correct empty encoding, never a crash."""

from __future__ import annotations

import sys

import pytest

from ernie_m_fast import ErnieMTokenizer


def test_empty_strings_match_transformers(base_pair):
    theirs, ours = base_pair
    for text in ("", " ", "\t\n  "):
        assert ours.tokenize(text) == theirs.tokenize(text) == []
        assert ours(text)["input_ids"] == theirs(text)["input_ids"] == [ours.cls_token_id, ours.sep_token_id]
        assert ours(text, return_offsets_mapping=True)["offset_mapping"] == [(0, 0), (0, 0)]
    assert ours(["", "a"], padding=True)["input_ids"] == theirs(["", "a"], padding=True)["input_ids"]
    assert ours("", "")["input_ids"] == theirs("", "")["input_ids"]
    assert ours.decode([]) == theirs.decode([]) == ""


@pytest.mark.parametrize("bad", [None, 3, 4.5, b"bytes", {"a": 1}])
def test_non_text_input_is_a_type_error(base_pair, bad):
    _, ours = base_pair
    with pytest.raises(TypeError, match="str"):
        ours(bad)
    with pytest.raises(TypeError):
        ours.tokenize(bad)
    with pytest.raises(TypeError):
        ours(["fine", bad])
    with pytest.raises(TypeError):
        ours("fine", bad) if bad is not None else ours(["fine"], [bad])


def test_batch_shape_errors(base_pair):
    _, ours = base_pair
    with pytest.raises(ValueError, match="empty batch"):
        ours([])
    with pytest.raises(ValueError, match="batch length"):
        ours(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="text_pair"):
        ours(["a", "b"], "c")
    with pytest.raises(TypeError, match="pair"):
        ours([("a", "b", "c")])
    with pytest.raises(ValueError, match="return_tensors"):
        ours("a", return_tensors="tf")
    with pytest.raises(ValueError, match="padding strategy"):
        ours("a", padding="sideways")
    with pytest.raises(ValueError, match="token_type_ids"):
        ours("a", add_special_tokens=False, return_token_type_ids=True)
    with pytest.raises(NotImplementedError):
        ours(text_target="a", text="b")


def test_unencodable_text_is_a_value_error(base_pair):
    _, ours = base_pair
    lone_surrogate = "abc \ud800 def"
    with pytest.raises(ValueError, match="surrogate"):
        ours(lone_surrogate)
    with pytest.raises(ValueError, match="surrogate"):
        ours.tokenize(lone_surrogate)


def test_decode_rejects_non_ids(base_pair):
    _, ours = base_pair
    with pytest.raises(TypeError):
        ours.decode("not ids")
    with pytest.raises(TypeError):
        ours.decode([1, None])


def test_missing_files_and_hub_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="sentencepiece.bpe.model"):
        ErnieMTokenizer.from_pretrained(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="directory"):  # the model's error too (tests/test_hub.py)
        ErnieMTokenizer.from_pretrained(tmp_path / "file.txt")
    # a repo id with the Hub unreachable: no download is attempted (local_files_only) and the error says why
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="Hugging Face Hub"):
        ErnieMTokenizer.from_pretrained("no-such-user/no-such-ernie-m", local_files_only=True)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    with pytest.raises(ImportError, match="huggingface_hub"):
        ErnieMTokenizer.from_pretrained("no-such-user/no-such-ernie-m")


def test_garbage_collector_state_is_restored(base_pair):
    """Batches pause the cyclic GC while they run; it must come back on, also after an error."""
    import gc

    _, ours = base_pair
    assert gc.isenabled()
    ours(["a", "b"])
    assert gc.isenabled()
    with pytest.raises(TypeError):
        ours(["a", None])
    assert gc.isenabled()
    gc.disable()
    try:
        ours(["a"])
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()


def test_hub_repo_id_loads_through_hf_hub_download(tiny_dir, monkeypatch):
    """The repo-id path, with huggingface_hub's download replaced by the local files (nothing is fetched)."""
    import os

    import huggingface_hub
    from huggingface_hub.utils import EntryNotFoundError

    from ernie_m_fast import hub

    asked = []

    def fake_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename, kwargs.get("revision")))
        path = os.path.join(tiny_dir, filename)
        if not os.path.exists(path):
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return path

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(hub, "hub_unreachable_reason", lambda endpoint=None: None)  # "the hub answers": no request
    tok = ErnieMTokenizer.from_pretrained("someone/ernie-m-tiny", revision="main")
    assert tok.encode("Hello 世界") == ErnieMTokenizer.from_pretrained(tiny_dir).encode("Hello 世界")
    assert ("someone/ernie-m-tiny", "sentencepiece.bpe.model", "main") in asked
    assert tok.name_or_path == "someone/ernie-m-tiny"


def test_offsets_need_text(base_pair):
    _, ours = base_pair
    with pytest.raises(ValueError, match="offsets"):
        ours.encode_plus([5, 6, 7], return_offsets_mapping=True)
