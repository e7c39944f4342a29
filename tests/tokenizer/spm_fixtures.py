"""Small ErnieM-layout tokenizers trained on the multilingual text the package ships.

Reusable by any test (model parity tests need a tokenizer too):

    from spm_fixtures import build_tiny_tokenizer_dir        # tests/tokenizer on sys.path (see conftest)
    path = build_tiny_tokenizer_dir(tmp_path, vocab_size=1000)
    transformers.ErnieMTokenizer.from_pretrained(path)      # and ernie_m_fast.ErnieMTokenizer

Training is deterministic and takes a fraction of a second; the directory holds
`sentencepiece.bpe.model` and `vocab.txt` ([CLS], [PAD], [SEP], [UNK], the pieces, [MASK]).
"""

from __future__ import annotations

import os

from ernie_m_fast.tiny import bundled_corpus_lines, train_tiny_tokenizer

# The corpus is ernie_m_fast/data/multilingual.txt, read through the package (tests keep no copy of it):
# its non-empty lines, unstripped (leading/trailing spaces and tabs are test data).
corpus_lines = bundled_corpus_lines


def build_tiny_tokenizer_dir(tmpdir: str | os.PathLike, vocab_size: int = 1000, **trainer_options) -> str:
    """Train a sentencepiece BPE model on the bundled corpus; write it in ErnieM's layout; return the dir."""
    return train_tiny_tokenizer(tmpdir, corpus_lines(), vocab_size=vocab_size, **trainer_options)


# Inputs beyond the corpus, each aimed at one rule: special tokens written in the text, characters the
# tiny models do not know ([UNK] surfaces), NFKC-changed and full-width characters, Unicode digits,
# lowercasing that changes length ("İ") or context ("Σ"), whitespace that sentencepiece collapses or
# removes, and the empty string.
EDGE_TEXTS = [
    "",
    " ",
    "\t \n",
    "hello [MASK] world",
    "[CLS]x[SEP][PAD] [UNK]",
    "[MASK]",
    "a[MASK]b [mask]",
    "İstanbul ☃☃ 乂乃 𠀀 test ǅ",
    "x² 10³ ①② ¼ Ⅳ ㎏",
    "abc123def 4.5 ２０２４年 v1.2.3 3rd",
    "ΟΔΟΣ ΣΑΣ Straße İI",
    "hello\u00a0world\u3000！ｆｕｌｌ，ｗｉｄｔｈ。",
    "a  \u200b b\u200bc",
    "ends with spaces   ",
    "日本語、中文。한국어!《书》【注】",
    "▁ literal underline ▁▁x",
    "tab\tend\t",
    "e\u0301 combining a\u0308",
    "ﬁﬂ ﬁnal ﬂow",
    "👨‍👩‍👧 family 🇫🇷",
    "!!!...??? ~~ ,;:",
    "12345678901234567890",
    "中1文2 3中 a1中",
]
