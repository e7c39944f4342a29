"""Build a small ErnieM-layout tokenizer locally, with no download.

A real ErnieM checkpoint ships `sentencepiece.bpe.model` (a sentencepiece BPE model) and `vocab.txt`
(one piece per line; the line number is the model's token id). `vocab.txt` follows the XLM-R/fairseq
layout ErnieM inherited: [CLS], [PAD], [SEP], [UNK] take ids 0-3, the sentencepiece pieces follow
(without sentencepiece's own <unk>/<s>/</s>), and [MASK] comes last. `train_tiny_tokenizer` writes
exactly those two files, so the result loads in both transformers' ErnieMTokenizer and ours. Demos
and tests use it; training a 1,000-piece model on the bundled corpus takes well under a second.
"""

from __future__ import annotations

import io
import os
from importlib import resources
from typing import Iterable

SENTENCEPIECE_FILE = "sentencepiece.bpe.model"
VOCAB_FILE = "vocab.txt"
LEADING_SPECIAL_TOKENS = ("[CLS]", "[PAD]", "[SEP]", "[UNK]")
TRAILING_SPECIAL_TOKENS = ("[MASK]",)


def bundled_corpus_lines() -> list[str]:
    """The multilingual sample text shipped in ernie_m_fast/data (one sentence a line)."""
    text = resources.files("ernie_m_fast").joinpath("data/multilingual.txt").read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line]


def train_sentencepiece_bpe(texts: Iterable[str], vocab_size: int = 1000, **trainer_options) -> bytes:
    """Train a sentencepiece BPE model in memory and return its serialized proto.

    Deterministic: one thread and no sentence sampling, so the same texts give the same bytes.
    `vocab_size` is an upper bound (hard_vocab_limit=False) because a small corpus may not support it.
    `trainer_options` go to sentencepiece's trainer (e.g. remove_extra_whitespaces=False).
    """
    import sentencepiece as spm

    lines = [t for t in texts if t and t.strip()]
    if not lines:
        raise ValueError("train_sentencepiece_bpe needs at least one non-blank text")
    options = dict(
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,  # every character of the corpus gets a piece: no surprise [UNK]s
        hard_vocab_limit=False,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,  # sentencepiece logs every training step to stderr otherwise
    )
    options.update(trainer_options)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, **options)
    return model.getvalue()


def ernie_m_vocab_lines(model_proto: bytes) -> list[str]:
    """vocab.txt lines in ErnieM's layout for a sentencepiece model."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    pieces = [
        sp.id_to_piece(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_control(i) or sp.is_unknown(i))  # <unk>, <s>, </s>: ErnieM uses [UNK], [CLS], [SEP]
    ]
    return [*LEADING_SPECIAL_TOKENS, *pieces, *TRAILING_SPECIAL_TOKENS]


def train_tiny_tokenizer(
    out_dir: str | os.PathLike, texts: Iterable[str] | None = None, vocab_size: int = 1000, **trainer_options
) -> str:
    """Train a small sentencepiece BPE model and write it in ErnieM's layout; returns `out_dir`.

    Writes `sentencepiece.bpe.model` and `vocab.txt` into `out_dir` (created if needed). `texts`
    defaults to the bundled multilingual corpus. Load the result with
    `ernie_m_fast.ErnieMTokenizer.from_pretrained(out_dir)` (or transformers' ErnieMTokenizer).
    """
    if texts is None:
        texts = bundled_corpus_lines()
    proto = train_sentencepiece_bpe(texts, vocab_size=vocab_size, **trainer_options)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, SENTENCEPIECE_FILE), "wb") as f:
        f.write(proto)
    with open(os.path.join(out_dir, VOCAB_FILE), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in ernie_m_vocab_lines(proto)))
    return os.fspath(out_dir)
