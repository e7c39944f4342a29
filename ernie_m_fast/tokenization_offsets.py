"""Character offsets of ErnieM tokens in the text the user passed.

sentencepiece normalises before it segments (NFKC with the model's own rules: full-width to half-width,
ligatures and circled digits expanded, whitespace runs collapsed to one "▁", leading and trailing
whitespace dropped). `SentencePieceProcessor.normalize(text, with_offsets=True)` reports, for every
character of the normalised string, the index of the original character it came from; the pieces
concatenate to exactly that normalised string. So a token's normalised character range maps back to an
original span with no guessing: it starts at the original index of its first character and ends where
the original character behind its last character ends. This replaces transformers' `get_offset_mapping`,
which reads an `SP_CHAR_MAPPING` table that was never defined and fails on every call.

Conventions (those of transformers' fast tokenizers):
- the "▁" that marks a word start belongs to no character: "▁hello" spans "hello" only;
- a kept lone "▁" token spans the whitespace it stands for;
- several tokens cut from one original character (NFKC "ﬁ" -> "f" + "i") all get that character's span.
"""

from __future__ import annotations

from typing import Sequence

from .tokenization_split import SPIECE_UNDERLINE, keep_lone_underline, split_piece

Span = tuple[int, int]


def original_char_ends(char_offsets: Sequence[int]) -> list[int]:
    """For each normalised character, the end (exclusive) of the original character(s) it came from.

    `char_offsets` has one entry per normalised character plus a final one (the end of the used text).
    Consecutive normalised characters with the same origin (an expansion like "㎏" -> "kg") share it.
    """
    n = len(char_offsets) - 1
    ends = [0] * n
    following = char_offsets[n]
    for i in range(n - 1, -1, -1):
        if char_offsets[i + 1] > char_offsets[i]:
            following = char_offsets[i + 1]
        ends[i] = following
    return ends


def tokens_and_spans(pieces: Sequence[str], normalized: str, char_offsets: Sequence[int], keep_lone: bool = True):
    """ErnieM tokens of one sentencepiece segmentation and each token's span in the original text.

    `keep_lone`: whether a lone "▁" piece may become a token (`keep_lone_underline`).
    `pieces` must concatenate to `normalized` (sentencepiece guarantees it; a mismatch means a model
    feature this code does not know, and is reported instead of producing wrong spans).
    """
    if "".join(pieces) != normalized:
        raise RuntimeError(
            "sentencepiece pieces do not concatenate to the normalised text; offsets cannot be computed "
            f"for this model (pieces={list(pieces)!r}, normalized={normalized!r})"
        )
    ends = original_char_ends(char_offsets)
    tokens: list[str] = []
    spans: list[Span] = []
    position = 0  # index in `normalized` where the current piece starts
    for index, piece in enumerate(pieces):
        if piece == SPIECE_UNDERLINE:
            if keep_lone_underline(pieces, index, keep_lone):
                tokens.append(piece)
                spans.append((char_offsets[position], ends[position]))
            position += 1
            continue
        for s, e in split_piece(piece):
            first, last = position + s, position + e - 1
            while first < last and normalized[first] == SPIECE_UNDERLINE:
                first += 1  # the word-start marker is not part of the token's text
            tokens.append(piece[s:e])
            spans.append((char_offsets[first], ends[last]))
        position += len(piece)
    return tokens, spans
