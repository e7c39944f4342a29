"""ErnieM's splitting of sentencepiece pieces into tokens.

After sentencepiece segments a text, ErnieM cuts every piece further (PaddleNLP's tokenizer, copied by
transformers' `ErnieMTokenizer._tokenize`): each CJK ideograph (U+4E00-U+9FFF) and each character of a
small punctuation set becomes its own token, and a piece is cut wherever a run of digits starts or ends.
A piece that is only "▁" (a space sentencepiece could not merge with what follows) is where the two
libraries differ: transformers keeps it between two pieces when the next piece does not start a word
itself; PaddleNLP (whose tokenizer trained every ErnieM checkpoint) drops every one. The tokenizer's
`piece_handling` picks the rule (`PIECE_HANDLINGS`).

The cut of a piece depends on nothing but the piece, so it is computed once per vocabulary entry and
cached (`PieceTable`): encoding a batch is then a table look-up per piece, not a Python loop per character.
"""

from __future__ import annotations

import functools
from itertools import chain
from typing import Callable, Sequence

import numpy as np

SPIECE_UNDERLINE = "▁"

# ErnieMTokenizer(piece_handling=...): whose rule for a lone "▁" piece; "transformers" keeps some, "paddlenlp" none
PIECE_HANDLINGS = ("transformers", "paddlenlp")

# The exact set from PaddleNLP / transformers (`is_punct`): ASCII and full-width CJK punctuation.
ERNIE_M_PUNCTUATION = frozenset(",;:.?!~，；：。？！《》【】")


def is_cjk_ideograph(ch: str) -> bool:
    """The CJK Unified Ideographs block only, as ErnieM's `is_ch_char` (extensions are not split)."""
    return "\u4e00" <= ch <= "\u9fff"


@functools.lru_cache(maxsize=1 << 16)  # pieces repeat endlessly; the offsets path splits by string
def split_piece(piece: str) -> tuple[tuple[int, int], ...]:
    """The `(start, end)` slices of `piece` that ErnieM emits as tokens, in order.

    Mirrors transformers' `_tokenize` inner loop exactly, including its quirks: a "▁" directly before
    a CJK character, a punctuation mark or a digit run is dropped ("▁1" -> "1"), and `str.isdigit`
    (so superscripts and other Unicode digits count as digits).
    """
    spans: list[tuple[int, int]] = []
    last = 0
    for i, ch in enumerate(piece):
        if ch == SPIECE_UNDERLINE:
            continue
        if is_cjk_ideograph(ch) or ch in ERNIE_M_PUNCTUATION:
            if i > last and piece[last:i] != SPIECE_UNDERLINE:
                spans.append((last, i))
            spans.append((i, i + 1))
            last = i + 1
        elif i > 0 and ch.isdigit() != piece[i - 1].isdigit():
            # a digit run starts or ends here; the previous "▁" counts as a non-digit
            if i > last and piece[last:i] != SPIECE_UNDERLINE:
                spans.append((last, i))
            last = i
    if len(piece) > last:
        spans.append((last, len(piece)))
    return tuple(spans)


def keep_lone_underline(pieces: Sequence[str], index: int, keep_lone: bool = True) -> bool:
    """Whether the lone "▁" piece at `pieces[index]` becomes a token (never, when `keep_lone` is False:
    PaddleNLP's rule).

    transformers keeps it when it is not first and the next piece does not start with "▁"; when it is
    the last piece transformers raises IndexError (it reads `pieces[index + 1]`). Nothing follows it
    then, so it is dropped, like the trailing whitespace sentencepiece already removes.
    """
    return keep_lone and 0 < index < len(pieces) - 1 and not pieces[index + 1].startswith(SPIECE_UNDERLINE)


def split_pieces(pieces: Sequence[str], keep_lone: bool = True) -> list[str]:
    """ErnieM tokens for a sentencepiece segmentation (transformers' `_tokenize` after EncodeAsPieces;
    PaddleNLP's with `keep_lone=False`)."""
    tokens: list[str] = []
    for index, piece in enumerate(pieces):
        if piece == SPIECE_UNDERLINE:
            if keep_lone_underline(pieces, index, keep_lone):
                tokens.append(piece)
            continue
        tokens.extend(piece[s:e] for s, e in split_piece(piece))
    return tokens


class PieceTable(dict):
    """sentencepiece id -> tuple of ErnieM token ids, filled on first use.

    `table[sp_id]` costs one dict look-up once a piece has been seen, which is what makes batch
    encoding fast; a 250k-piece vocabulary is never split up front. The lone "▁" piece depends on its
    neighbours and must not be looked up here (`ids_for_sp_ids` handles it).
    """

    def __init__(self, id_to_piece: Callable[[int], str], token_to_id: Callable[[str], int]):
        super().__init__()
        self._id_to_piece = id_to_piece
        self._token_to_id = token_to_id

    def __missing__(self, sp_id: int) -> tuple[int, ...]:
        piece = self._id_to_piece(sp_id)
        ids = tuple(self._token_to_id(piece[s:e]) for s, e in split_piece(piece))
        self[sp_id] = ids
        return ids


def map_sp_batch(
    table: PieceTable,
    batch_sp_ids: Sequence[Sequence[int]],
    sp_unk_id: int,
    sp_underline_id: int | None,
    underline_token_id: int | None,
    starts_word: Callable[[int], bool],
    keep_lone: bool = True,
) -> list[list[int] | None]:
    """ErnieM ids for a batch of sentencepiece id sequences, vectorised over the whole batch.

    Per-piece Python work is done once per distinct piece of the batch (a few thousand at most), not
    once per position. A row that holds sentencepiece's unknown id is returned as None: the split of an
    unknown piece depends on its surface text, which ids do not carry, so the caller re-encodes that
    row as pieces.
    """
    n_rows = len(batch_sp_ids)
    lengths = np.fromiter((len(r) for r in batch_sp_ids), dtype=np.int64, count=n_rows)
    row_ends = np.cumsum(lengths)
    total = int(row_ends[-1]) if n_rows else 0
    if total == 0:
        return [[] for _ in range(n_rows)]
    flat = np.fromiter(chain.from_iterable(batch_sp_ids), dtype=np.int64, count=total)
    row_starts = row_ends - lengths

    uniq, inverse = np.unique(flat, return_inverse=True)
    uniq_list = uniq.tolist()
    pieces_ids = [
        (() if sp_id == sp_unk_id else (underline_token_id,) if sp_id == sp_underline_id else table[sp_id])
        for sp_id in uniq_list
    ]
    uniq_counts = np.fromiter((len(t) for t in pieces_ids), dtype=np.int64, count=len(uniq_list))
    uniq_data = np.fromiter(chain.from_iterable(pieces_ids), dtype=np.int64, count=int(uniq_counts.sum()))
    uniq_first = np.cumsum(uniq_counts) - uniq_counts
    counts = uniq_counts[inverse]

    if sp_underline_id is not None:
        lone = np.flatnonzero(flat == sp_underline_id)
        if lone.size and not keep_lone:
            counts[lone] = 0
        elif lone.size:
            # keep_lone_underline, vectorised: not first or last of its row, next piece not a word start
            starts_uniq = np.fromiter((starts_word(i) for i in uniq_list), dtype=bool, count=len(uniq_list))
            row_of = np.searchsorted(row_ends, lone, side="right")
            inner = (lone > row_starts[row_of]) & (lone < row_ends[row_of] - 1)
            next_starts = starts_uniq[inverse[np.minimum(lone + 1, total - 1)]]
            counts[lone] = (inner & ~next_starts).astype(np.int64)

    out_bounds = np.concatenate(([0], np.cumsum(counts)))
    n_out = int(out_bounds[-1])
    position_of_out = np.repeat(np.arange(total), counts)
    within = np.arange(n_out) - out_bounds[position_of_out]
    out = uniq_data[uniq_first[inverse[position_of_out]] + within].tolist()

    has_unk = np.zeros(n_rows, dtype=bool)
    unk_positions = np.flatnonzero(flat == sp_unk_id)
    if unk_positions.size:
        has_unk[np.searchsorted(row_ends, unk_positions, side="right")] = True
    starts = out_bounds[row_starts].tolist()
    ends = out_bounds[row_ends].tolist()
    unk_rows = has_unk.tolist()
    return [None if unk else out[a:b] for a, b, unk in zip(starts, ends, unk_rows)]
