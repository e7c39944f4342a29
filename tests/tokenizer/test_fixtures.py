"""The tiny-tokenizer builder and the corpus it trains on."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from ernie_m_fast.tiny import train_tiny_tokenizer
from spm_fixtures import build_tiny_tokenizer_dir, corpus_lines

# What the issue asks the carried corpus to hold, each as a pattern that must match somewhere.
REQUIRED_CONTENT = {
    "chinese": r"[\u4e00-\u9fff]", "japanese kana": r"[\u3040-\u30ff]", "korean": r"[\uac00-\ud7a3]",
    "arabic": r"[\u0600-\u06ff]", "hindi": r"[\u0900-\u097f]", "thai": r"[\u0e00-\u0e7f]",
    "russian": r"[\u0400-\u04ff]", "accented latin": r"[éèàüöäçñåøßœ]", "full-width latin": r"[\uff21-\uff5a]",
    "digits mixed with letters": r"[a-z]\d|\d[a-z]", "emoji": r"[\U0001F300-\U0001FAFF]", "tab": r"\t",
    "run of spaces": r"   ",
}


def test_corpus_covers_the_required_scripts():
    text = "\n".join(corpus_lines())
    missing = [name for name, pattern in REQUIRED_CONTENT.items() if not re.search(pattern, text)]
    assert not missing
    assert any(unicodedata.normalize("NFKC", ch) != ch for ch in text)  # NFKC-changed characters


def test_tests_keep_no_copy_of_package_data():
    """The tests read ernie_m_fast/data through the package; a copy under tests/ would drift from it."""
    repo = Path(__file__).resolve().parents[2]
    packaged = {p.read_bytes(): p for p in (repo / "ernie_m_fast" / "data").rglob("*") if p.is_file()}
    assert packaged
    copies = [f"{p.relative_to(repo)} copies {packaged[p.read_bytes()].relative_to(repo)}"
              for p in (repo / "tests").rglob("*") if p.is_file() and p.suffix != ".pyc" and p.read_bytes() in packaged]
    assert not copies


def test_training_is_deterministic_and_in_ernie_m_layout(tmp_path):
    a = build_tiny_tokenizer_dir(tmp_path / "a", vocab_size=800)
    b = build_tiny_tokenizer_dir(tmp_path / "b", vocab_size=800)
    for name in ("sentencepiece.bpe.model", "vocab.txt"):
        with open(os.path.join(a, name), "rb") as f, open(os.path.join(b, name), "rb") as g:
            assert f.read() == g.read(), name
    with open(os.path.join(a, "vocab.txt"), encoding="utf-8") as f:
        vocab = f.read().split("\n")[:-1]
    assert vocab[:4] == ["[CLS]", "[PAD]", "[SEP]", "[UNK]"] and vocab[-1] == "[MASK]"
    assert not {"<unk>", "<s>", "</s>"} & set(vocab)
    assert len(vocab) == len(set(vocab))


def test_library_trainer_defaults_to_bundled_corpus(tmp_path):
    path = train_tiny_tokenizer(tmp_path, vocab_size=700)
    from ernie_m_fast import ErnieMTokenizer

    tok = ErnieMTokenizer.from_pretrained(path)
    assert tok.decode(tok.encode("Hello world"), skip_special_tokens=True) == "Hello world"
