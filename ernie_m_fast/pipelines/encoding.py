"""Token ids with character offsets, overlapping token windows, and words from offsets.

Pipelines that point into the text (QA, NER, UIE) tokenize each text once, without special tokens,
keeping every token's (start, end) in the text (`ErnieMTokenizer`'s offsets, which follow
sentencepiece's normalisation exactly), then cut the ids into windows that fit the model and add
the special tokens themselves, so any token found in any window maps straight back to the text.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple, Sequence

Span = tuple[int, int]


class Encoded(NamedTuple):
    ids: list[int]
    offsets: list[Span]  # (start, end) of each token in the text it came from


def encode_with_offsets(tokenizer, texts: Sequence[str]) -> list[Encoded]:
    """Ids and offsets of each text, no special tokens; one batched tokenizer call."""
    if not texts:
        return []
    return [Encoded(tokenizer.convert_tokens_to_ids(tokens), list(spans))
            for tokens, spans in tokenizer.tokenize_batch_with_offsets(list(texts))]


def token_windows(num_tokens: int, size: int, stride: int) -> list[Span]:
    """[start, end) token ranges of at most `size` tokens covering `num_tokens`, consecutive ones
    sharing `stride` tokens (transformers' `stride` / `doc_stride` meaning). At least one window."""
    if size < 1:
        raise ValueError(f"a window must hold at least one token, got {size}")
    if not 0 <= stride < size:
        raise ValueError(f"stride must be in [0, {size}) for windows of {size} tokens, got {stride}")
    windows = [(0, min(size, num_tokens))]
    while windows[-1][1] < num_tokens:
        start = windows[-1][1] - stride
        windows.append((start, min(start + size, num_tokens)))
    return windows


def _stands_alone(char: str) -> bool:
    """ErnieM cuts CJK characters and punctuation into tokens of their own: each is a word by itself."""
    code = ord(char)
    if (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2FA1F
            or 0xF900 <= code <= 0xFAFF or 0x3040 <= code <= 0x30FF or 0xAC00 <= code <= 0xD7AF):
        return True
    return unicodedata.category(char)[0] in "PS"


def word_ids(text: str, offsets: Sequence[Span]) -> list[int]:
    """The word each token belongs to (0, 1, ...), from the text between tokens.

    A token continues the previous token's word when they touch in the text (no space between) and
    neither is a CJK character or punctuation; a whitespace-only token (sentencepiece's lone "▁")
    starts the word that follows it. This is transformers' rule for tokenizers without word
    information ("no space before it") made to know that ErnieM treats CJK characters and
    punctuation as words of their own (transformers would glue a run of Chinese into one word).
    """
    ids: list[int] = []
    word = -1
    prev: Span | None = None
    for start, end in offsets:
        piece = text[start:end]
        continues = (
            prev is not None and start <= prev[1] and piece.strip() != ""
            and not _stands_alone(piece[0]) and not _stands_alone(text[prev[1] - 1])
        )
        if not continues:
            word += 1
        ids.append(word)
        prev = (start, end)
    return ids


def strip_span(text: str, start: int, end: int) -> Span:
    """(start, end) without leading or trailing whitespace (unchanged when it is all whitespace)."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return start, end
    lead = len(piece) - len(piece.lstrip())
    return start + lead, start + lead + len(stripped)


def word_spans(ids: Sequence[int], offsets: Sequence[Span], text: str) -> dict[int, Span]:
    """word id -> (first char, last char + 1) over its tokens, surrounding whitespace left out."""
    spans: dict[int, Span] = {}
    for w, (start, end) in zip(ids, offsets):
        spans[w] = (min(spans[w][0], start), max(spans[w][1], end)) if w in spans else (start, end)
    return {w: strip_span(text, s, e) for w, s, e in ((w, *span) for w, span in spans.items())}
