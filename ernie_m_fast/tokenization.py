"""ErnieMTokenizer: transformers' ErnieM tokenizer API and output, with offsets and fast batches.

Output is token-for-token that of `transformers.ErnieMTokenizer` (4.57); transformers itself is not
needed at run time. What differs on purpose (README.md, "The tokenizer", lists it all):
- `attention_mask` is returned by default (transformers' ErnieM returns only `input_ids`);
- `return_offsets_mapping=True` and `get_offset_mapping` work (transformers raises);
- a lone "▁" piece at the end of a text is dropped instead of raising IndexError;
- `piece_handling="paddlenlp"` gives PaddleNLP's ids instead (it drops every lone "▁" piece); it is the
  default for a tokenizer loaded from a PaddleNLP checkpoint directory;
- `None`, non-string items and empty batches raise TypeError / ValueError with a plain message.

Speed: a batch is segmented by one call to sentencepiece's batch encoder, and ErnieM's extra splitting
of each piece is looked up in a per-vocabulary-entry cache (`PieceTable`) instead of being redone
character by character.

The data flows text -> tokenization_text (lowercasing, special tokens) -> sentencepiece ->
tokenization_split (ErnieM's cuts, ids) / tokenization_offsets (spans) -> tokenization_batch
(truncation, padding, tensors). A call's arguments are resolved once into an EncodeOptions
(tokenization_options) that the pipeline passes along. tokenization_files reads and writes the
tokenizer directory; the hub resolver (hub.py) finds it.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import logging
import os
import re
from itertools import chain
from typing import Any, Sequence

import sentencepiece as spm

from . import tokenization_files as files
from .hub import HUB_KWARGS
from .tokenization_batch import (
    VERY_LARGE_INTEGER,
    BatchEncoding,
    pad_batch,
    pad_one,
    resolve_strategies,
    to_dict_of_lists,
    to_python,
    truncate_sequences,
)
from .tokenization_offsets import Span, tokens_and_spans
from .tokenization_options import CALL_DEFAULTS, EncodeOptions
from .tokenization_split import PIECE_HANDLINGS, SPIECE_UNDERLINE, PieceTable, map_sp_batch, split_pieces
from .tokenization_text import (SpecialToken, lowercase_outside_special_tokens, lowered_to_original,
                               split_around_special_tokens)
from .tiny import train_tiny_tokenizer  # noqa: F401  (re-exported: ernie_m_fast.tokenization.train_tiny_tokenizer)

logger = logging.getLogger("ernie_m_fast.tokenization")

# transformers' SPECIAL_TOKENS_ATTRIBUTES order; it decides the ids of special tokens missing from vocab.txt
SPECIAL_TOKEN_ROLES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

# PaddleNLP's table, which transformers' ErnieM reads but never defines: full-width ASCII (U+FF01-U+FF5E)
# to its half-width form. Offsets do not need it (sentencepiece's own normalisation is followed exactly).
SP_CHAR_MAPPING = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
_SP_CHAR_TABLE = str.maketrans(SP_CHAR_MAPPING)

# what sentencepiece raises for a str it cannot encode (lone surrogates); types are checked before it runs
_SP_TEXT_ERRORS = (RuntimeError, UnicodeError, TypeError)


# tokenizer_config.json keys other libraries write that mean nothing to this tokenizer
_KNOWN_IGNORED_INIT_KEYS = frozenset({
    "tokenizer_file", "special_tokens_map_file", "processor_class", "use_fast", "trust_remote_code",
    "extra_special_tokens", "bos_token", "eos_token", "legacy", "auto_map",
})


def _is_json_value(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def _gc_paused():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _is_paddle_checkpoint(name_or_path, hub_kwargs: dict) -> bool:
    """Whether the tokenizer's directory (or repo) holds a PaddleNLP model checkpoint: its model was
    trained on PaddleNLP's ids, so its tokenizer defaults to PaddleNLP's piece handling."""
    from .hub import resolve_file
    from .paddle import PADDLE_CONFIG_NAME, find_paddle_config

    try:
        config_path = resolve_file(name_or_path, PADDLE_CONFIG_NAME, optional=True, **hub_kwargs)
        return find_paddle_config(name_or_path, config_path, **hub_kwargs) is not None
    except (OSError, ValueError):  # an incomplete or unreadable model next to the tokenizer: not ours to judge
        return False


def _check_text(value, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__} ({value!r:.60})")
    return value


# sentencepiece encodes a list on a thread pool it starts per call: ~60 us before any work, and on a
# busy machine the new threads wait for a core (milliseconds). Below this many texts a plain loop is
# used (measured on 2 cores: 1 text 4 us looped vs 62 us pooled, 4 texts 17 vs 77 us, 64 texts 279 vs
# 382 us); larger batches keep the pool, which can pay off on machines with more cores.
SP_THREADED_BATCH = 64


class ErnieMTokenizer:
    """ErnieM's sentencepiece tokenizer with transformers' calling convention.

    Args:
        sentencepiece_model_ckpt: path of `sentencepiece.bpe.model`.
        vocab_file: path of `vocab.txt` (token per line, id = line number). Without it the ids are the
            sentencepiece ids and the special tokens are appended after them, as in transformers.
        do_lower_case: lowercase the text (special tokens excepted) before sentencepiece.
        sp_model_kwargs: sentencepiece options; `enable_sampling`, `nbest_size`, `alpha` for subword
            regularisation, as in transformers.
        piece_handling: "transformers" (default: transformers' ids) or "paddlenlp" (PaddleNLP's ids, which
            every ErnieM checkpoint was trained on). They differ only where sentencepiece leaves a lone "▁"
            piece (a space it could not merge, e.g. before a CJK character or a digit): transformers keeps
            it as a token when the next piece does not start a word, PaddleNLP drops it.
            `from_pretrained` on a PaddleNLP checkpoint directory defaults to "paddlenlp".
    """

    vocab_files_names = {"vocab_file": files.VOCAB_FILE, "sentencepiece_model_ckpt": files.SENTENCEPIECE_FILE}
    # attention_mask is returned by default: a superset of transformers' ErnieM (input_ids only)
    model_input_names = ["input_ids", "attention_mask"]
    pad_token_type_id = 0
    SP_CHAR_MAPPING = SP_CHAR_MAPPING

    def __init__(
        self,
        sentencepiece_model_ckpt: str,
        vocab_file: str | None = None,
        do_lower_case: bool = False,
        encoding: str = "utf8",
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        sp_model_kwargs: dict[str, Any] | None = None,
        model_max_length: int | None = None,
        padding_side: str = "right",
        truncation_side: str = "right",
        clean_up_tokenization_spaces: bool = False,
        split_special_tokens: bool = False,
        added_tokens_decoder: dict | None = None,
        model_input_names: list[str] | None = None,
        piece_handling: str = "transformers",
        **kwargs,
    ) -> None:
        if padding_side not in ("left", "right") or truncation_side not in ("left", "right"):
            raise ValueError("padding_side and truncation_side must be 'left' or 'right'")
        self.sentencepiece_model_ckpt = os.fspath(sentencepiece_model_ckpt)
        self.vocab_file = os.fspath(vocab_file) if vocab_file is not None else None
        self.do_lower_case = bool(do_lower_case)
        self.encoding = encoding
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.model_max_length = VERY_LARGE_INTEGER if model_max_length is None else int(model_max_length)
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.split_special_tokens = bool(split_special_tokens)
        self.piece_handling = piece_handling
        if model_input_names is not None:  # e.g. ["input_ids"]: no attention_mask by default, as transformers
            self.model_input_names = list(model_input_names)
        self.name_or_path = os.fspath(kwargs.pop("name_or_path", ""))
        if not kwargs.get("additional_special_tokens"):  # transformers writes an empty list
            kwargs.pop("additional_special_tokens", None)
        ignored = sorted(set(kwargs) - _KNOWN_IGNORED_INIT_KEYS)
        if ignored:
            logger.warning(f"ErnieMTokenizer ignores the arguments {ignored}")
        # saved again by save_pretrained, so a config written by other tools survives a round trip
        self.init_kwargs = {k: v for k, v in kwargs.items() if _is_json_value(v)}

        self.sp_model = spm.SentencePieceProcessor()
        self.sp_model.Load(self.sentencepiece_model_ckpt)
        if self.vocab_file is not None:
            self._vocab_lines = files.read_vocab_lines(self.vocab_file)
        else:
            self._vocab_lines = [self.sp_model.id_to_piece(i) for i in range(self.sp_model.get_piece_size())]
        self.vocab = files.vocab_from_lines(self._vocab_lines)
        self.reverse_vocab = {v: k for k, v in self.vocab.items()}

        roles = dict(unk_token=unk_token, sep_token=sep_token, pad_token=pad_token, cls_token=cls_token, mask_token=mask_token)
        self._special = {role: SpecialToken.coerce(tok) for role, tok in roles.items() if tok is not None}
        self._added_tokens_decoder: dict[int, SpecialToken] = {}
        if added_tokens_decoder:
            for index, tok in added_tokens_decoder.items():
                self._added_tokens_decoder[int(index)] = SpecialToken.coerce(tok)
        self._register_special_tokens()
        self._build_caches()

    # ------------------------------------------------------------------ set-up
    @property
    def piece_handling(self) -> str:
        """Whose rule turns a lone "▁" piece into tokens: "transformers" (keeps some) or "paddlenlp" (none)."""
        return self._piece_handling

    @piece_handling.setter
    def piece_handling(self, value: str) -> None:
        if value not in PIECE_HANDLINGS:
            raise ValueError(f"piece_handling must be one of {PIECE_HANDLINGS}, got {value!r}")
        self._piece_handling = value
        self._keep_lone = value == "transformers"

    def _register_special_tokens(self) -> None:
        """Give every special token an id: its vocab.txt line, else the next free id (transformers' rule)."""
        known = {tok.content for tok in self._added_tokens_decoder.values()}
        for role in SPECIAL_TOKEN_ROLES:
            tok = self._special.get(role)
            if tok is None or tok.content in known:
                continue
            if tok.content in self.vocab:
                index = self.vocab[tok.content]
            else:
                index = len(set(self.vocab) | set(self._added_tokens_encoder_from(self._added_tokens_decoder)))
            self._added_tokens_decoder[index] = tok
            known.add(tok.content)
        self._added_tokens_encoder = self._added_tokens_encoder_from(self._added_tokens_decoder)

    @staticmethod
    def _added_tokens_encoder_from(decoder: dict[int, SpecialToken]) -> dict[str, int]:
        return {tok.content: index for index, tok in sorted(decoder.items())}

    def _build_caches(self) -> None:
        # Pieces missing from the vocabulary map to [UNK]. transformers looks [UNK] up in vocab.txt only, so
        # without a vocab.txt (ids = sentencepiece ids, [UNK] appended) it returns None ids; we use [UNK]'s id.
        unk = self.unk_token
        self._unk_vocab_id = None if unk is None else self.vocab.get(unk, self._added_tokens_encoder.get(unk))
        self._sp_unk_id = self.sp_model.unk_id()
        underline = self.sp_model.piece_to_id(SPIECE_UNDERLINE)
        self._sp_underline_id = underline if underline != self._sp_unk_id else None
        self._cls_id, self._sep_id = self.cls_token_id, self.sep_token_id  # read once per example otherwise
        self._underline_token_id = self._convert_token_to_id_with_added_voc(SPIECE_UNDERLINE)
        self._piece_table = PieceTable(self.sp_model.id_to_piece, self._convert_token_to_id_with_added_voc)
        # sentencepiece ids whose piece starts a word: decides whether a lone "▁" before them is kept
        self._starts_word: dict[int, bool] = {}
        specials = sorted(self._added_tokens_encoder, key=len, reverse=True)  # longest match first
        self._special_re = re.compile("|".join(re.escape(s) for s in specials)) if specials else None
        self._sampling = self.sp_model_kwargs.get("enable_sampling") is True

    # ------------------------------------------------------------------ special tokens
    def _special_content(self, role: str) -> str | None:
        tok = self._special.get(role)
        return tok.content if tok is not None else None

    unk_token = property(lambda self: self._special_content("unk_token"))
    sep_token = property(lambda self: self._special_content("sep_token"))
    pad_token = property(lambda self: self._special_content("pad_token"))
    cls_token = property(lambda self: self._special_content("cls_token"))
    mask_token = property(lambda self: self._special_content("mask_token"))
    unk_token_id = property(lambda self: self._id_or_none(self.unk_token))
    sep_token_id = property(lambda self: self._id_or_none(self.sep_token))
    pad_token_id = property(lambda self: self._id_or_none(self.pad_token))
    cls_token_id = property(lambda self: self._id_or_none(self.cls_token))
    mask_token_id = property(lambda self: self._id_or_none(self.mask_token))

    def _id_or_none(self, token: str | None) -> int | None:
        return None if token is None else self.convert_tokens_to_ids(token)

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {role: tok.content for role, tok in self._special.items()}

    @property
    def all_special_tokens(self) -> list[str]:
        return [self._special[r].content for r in SPECIAL_TOKEN_ROLES if r in self._special]

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return dict(self._added_tokens_encoder)

    @property
    def added_tokens_decoder(self) -> dict[int, SpecialToken]:
        return dict(self._added_tokens_decoder)

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab, **self._added_tokens_encoder)

    def __len__(self) -> int:
        return len(self.get_vocab())

    def _convert_token_to_id_with_added_voc(self, token: str) -> int | None:
        index = self._added_tokens_encoder.get(token)
        if index is not None:
            return index
        return self.vocab.get(token, self._unk_vocab_id)

    def convert_tokens_to_ids(self, tokens):
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._convert_token_to_id_with_added_voc(tokens)
        return [self._convert_token_to_id_with_added_voc(t) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        ids = to_python(ids)
        if isinstance(ids, int):
            return self._id_to_token(ids)
        special_ids = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(int(i)) for i in ids if int(i) not in special_ids]

    def _id_to_token(self, index: int) -> str:
        tok = self._added_tokens_decoder.get(index)
        if tok is not None:
            return tok.content
        return self.reverse_vocab.get(index, self.unk_token)

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()

    # ------------------------------------------------------------------ text -> segments
    def _segments(self, text: str, split_special_tokens: bool):
        if split_special_tokens or self._special_re is None or self._special_re.search(text) is None:
            return [(text, 0, False, None)] if text else []
        return split_around_special_tokens(text, self._special_re, self._added_tokens_encoder, self._added_tokens_decoder)

    def _prepare_text(self, text: str) -> str:
        return lowercase_outside_special_tokens(text, self._special_re) if self.do_lower_case else text

    # ------------------------------------------------------------------ sentencepiece
    def _sp_pieces(self, texts: list[str]) -> list[list[str]]:
        if not texts:
            return []
        if self._sampling:
            return [
                self.sp_model.encode(t, out_type=str, enable_sampling=True,
                                     nbest_size=self.sp_model_kwargs.get("nbest_size", 64),
                                     alpha=self.sp_model_kwargs.get("alpha", 0.1))
                for t in texts
            ]
        return self.sp_model.encode(texts, out_type=str)

    def _starts_with_underline(self, sp_id: int) -> bool:
        starts = self._starts_word.get(sp_id)
        if starts is None:
            starts = self._starts_word[sp_id] = self.sp_model.id_to_piece(sp_id).startswith(SPIECE_UNDERLINE)
        return starts

    def _encode_plain_segments(self, segments: list[str]) -> list[list[int]]:
        """ErnieM ids for texts that hold no special token, through one sentencepiece batch call."""
        if not segments:
            return []
        if self._sampling:
            return [self.convert_tokens_to_ids(split_pieces(p, self._keep_lone)) for p in self._sp_pieces(segments)]
        try:
            if len(segments) < SP_THREADED_BATCH:
                batch_sp_ids = [self.sp_model.encode(segment, out_type=int) for segment in segments]
            else:
                batch_sp_ids = self.sp_model.encode(segments, out_type=int)
        except _SP_TEXT_ERRORS as exc:
            raise ValueError(f"sentencepiece cannot encode this text (lone surrogate characters?): {exc}") from exc
        out = []
        mapped = map_sp_batch(self._piece_table, batch_sp_ids, self._sp_unk_id, self._sp_underline_id,
                              self._underline_token_id, self._starts_with_underline, self._keep_lone)
        for segment, ids in zip(segments, mapped):
            if ids is None:
                ids = self.convert_tokens_to_ids(split_pieces(self.sp_model.encode(segment, out_type=str), self._keep_lone))
            out.append(ids)
        return out

    # ------------------------------------------------------------------ public tokenization
    def tokenize(self, text: str, split_special_tokens: bool | None = None, **kwargs) -> list[str]:
        """ErnieM tokens of `text` (sentencepiece pieces cut by ErnieM's rules; special tokens kept whole)."""
        _check_text(text, "text")
        if kwargs:
            logger.warning(f"Keyword arguments {kwargs} not recognized.")
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        tokens: list[str] = []
        for segment, _, is_special, _ in self._segments(self._prepare_text(text), split):
            if is_special:
                tokens.append(segment)
            else:
                tokens.extend(split_pieces(self._checked_pieces(segment), self._keep_lone))
        return tokens

    def _checked_pieces(self, segment: str) -> list[str]:
        try:
            return self._sp_pieces([segment])[0]
        except _SP_TEXT_ERRORS as exc:
            raise ValueError(f"sentencepiece cannot encode this text (lone surrogate characters?): {exc}") from exc

    def _tokenize(self, text: str) -> list[str]:
        """transformers' hook: ErnieM tokens of a text holding no special token."""
        return split_pieces(self._checked_pieces(text), self._keep_lone) if text else []

    def encode_texts(self, texts: Sequence[str], split_special_tokens: bool | None = None) -> list[list[int]]:
        """Token ids (no special tokens added) for many texts at once; the fast path behind `__call__`."""
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                _check_text(text, f"text #{i}")
        prepared = [self._prepare_text(t) for t in texts] if self.do_lower_case else list(texts)
        search = None if split or self._special_re is None else self._special_re.search
        with_special = [] if search is None else [i for i, t in enumerate(prepared) if search(t) is not None]
        if not with_special:  # the common case: every text goes to sentencepiece whole, in one call
            return self._encode_plain_segments(prepared)
        plans = {i: self._segments(prepared[i], split) for i in with_special}
        plain = list(prepared)
        for i, plan in plans.items():
            plain[i] = None
        plain_rows = [t for t in plain if t is not None]
        plain_rows.extend(seg for i in with_special for seg, _, is_special, _ in plans[i] if not is_special)
        encoded = self._encode_plain_segments(plain_rows)
        out: list[list[int]] = []
        cursor = 0
        for t in plain:
            if t is not None:
                out.append(encoded[cursor])
                cursor += 1
            else:
                out.append(None)
        for i in with_special:
            ids: list[int] = []
            for seg, _, is_special, _ in plans[i]:
                if is_special:
                    ids.append(self._added_tokens_encoder[seg])
                else:
                    ids.extend(encoded[cursor])
                    cursor += 1
            out[i] = ids
        return out

    def tokenize_with_offsets(self, text: str, split_special_tokens: bool | None = None):
        """(tokens, spans): ErnieM tokens of `text` and each one's (start, end) in `text`."""
        return self.tokenize_batch_with_offsets([text], split_special_tokens)[0]

    def tokenize_batch_with_offsets(self, texts: Sequence[str], split_special_tokens: bool | None = None):
        """[(tokens, spans)] for many texts, with one sentencepiece call for all of them."""
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        prepared, plans = [], []
        for i, text in enumerate(texts):
            _check_text(text, f"text #{i}" if len(texts) > 1 else "text")
            prepared.append(self._prepare_text(text))
            plans.append(self._segments(prepared[-1], split))
        plain = [seg for plan in plans for seg, _, is_special, _ in plan if not is_special]
        try:
            pieces_batch = self._sp_pieces(plain)
            normalized_batch = self.sp_model.normalize(plain, with_offsets=True) if plain else []
        except _SP_TEXT_ERRORS as exc:
            raise ValueError(f"sentencepiece cannot encode this text (lone surrogate characters?): {exc}") from exc
        plain_results = iter(zip(pieces_batch, normalized_batch))
        out = []
        for text, lowered, plan in zip(texts, prepared, plans):
            origin = lowered_to_original(text, lowered)
            tokens: list[str] = []
            spans: list[Span] = []
            for segment, start, is_special, where in plan:
                if is_special:
                    seg_tokens, seg_spans = [segment], [(0, len(segment))]
                else:
                    pieces, (normalized, char_offsets) = next(plain_results)
                    seg_tokens, seg_spans = tokens_and_spans(pieces, normalized, char_offsets, self._keep_lone)
                tokens.extend(seg_tokens)
                for s, e in seg_spans:
                    s, e = (where[s], where[e - 1] + 1) if where is not None else (s + start, e + start)
                    if origin is not None:
                        s, e = origin[s], origin[e - 1] + 1
                    spans.append((s, e))
            out.append((tokens, spans))
        return out

    def clean_text(self, text: str) -> str:
        """Full-width ASCII to half-width (PaddleNLP's `clean_text`; transformers' raises AttributeError)."""
        return _check_text(text, "text").translate(_SP_CHAR_TABLE)

    def get_offset_mapping(self, text: str | None) -> list[Span] | None:
        """(start, end) in `text` of every token of `tokenize(text)`; None for None (as transformers)."""
        if text is None:
            return None
        return self.tokenize_with_offsets(text)[1]

    # ------------------------------------------------------------------ special-token layout
    def build_inputs_with_special_tokens(self, token_ids_0: list, token_ids_1: list | None = None) -> list:
        cls, sep = [self._cls_id], [self._sep_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + sep + list(token_ids_1) + sep

    def build_offset_mapping_with_special_tokens(self, offset_mapping_0: list, offset_mapping_1: list | None = None) -> list:
        if offset_mapping_1 is None:
            return [(0, 0)] + list(offset_mapping_0) + [(0, 0)]
        return [(0, 0)] + list(offset_mapping_0) + [(0, 0), (0, 0)] + list(offset_mapping_1) + [(0, 0)]

    def get_special_tokens_mask(self, token_ids_0: list, token_ids_1: list | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError(
                    "You should not supply a second sequence if the provided sequence of "
                    "ids is already formatted with special tokens for the model."
                )
            # as transformers' ErnieM: only [CLS] and [SEP] count here
            return [1 if x in (self.sep_token_id, self.cls_token_id) else 0 for x in token_ids_0]
        if token_ids_1 is not None:
            return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]
        return [1] + [0] * len(token_ids_0) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0: list, token_ids_1: list | None = None) -> list[int]:
        if token_ids_1 is None:
            return [0] * (len(token_ids_0) + 2)
        # transformers' ErnieM counts the middle [SEP] [SEP] as one 0 and one 1: [CLS] A [SEP] | [SEP] B [SEP]
        return [0] * (len(token_ids_0) + 1) + [1] * (len(token_ids_1) + 3)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 4 if pair else 2

    # ------------------------------------------------------------------ __call__ and friends
    def __call__(
        self,
        text=None,
        text_pair=None,
        text_target=None,
        text_pair_target=None,
        add_special_tokens: bool = True,
        padding=False,
        truncation=None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors=None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        split_special_tokens: bool | None = None,
        **kwargs,
    ) -> BatchEncoding:
        """Encode a text, a pair, or a batch of either, as transformers' tokenizers do."""
        if text_target is not None or text_pair_target is not None:
            raise NotImplementedError("text_target is for sequence-to-sequence labels; ErnieM is an encoder")
        if text is None:
            raise TypeError("text must be a str or a list of str (got None)")
        if kwargs:
            logger.warning(f"Keyword arguments {kwargs} not recognized.")
        batched = self._is_batch(text, is_split_into_words)
        if batched:
            if isinstance(text_pair, str):
                raise TypeError("when tokenizing batches of text, `text_pair` must be a list or tuple with the same length as `text`.")
            if text_pair is not None and (not isinstance(text_pair, (list, tuple)) or len(text) != len(text_pair)):
                got = len(text_pair) if isinstance(text_pair, (list, tuple)) else type(text_pair).__name__
                raise ValueError(f"batch length of `text`: {len(text)} does not match batch length of `text_pair`: {got}.")
            if text_pair is not None and any(p is None for p in text_pair):
                raise TypeError("text_pair holds None; every pair item must be a str")
            examples = list(zip(text, text_pair)) if text_pair is not None else list(text)
        else:
            examples = [(text, text_pair)]
        return self._encode_examples(
            examples, batched, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
            max_length=max_length, stride=stride, is_split_into_words=is_split_into_words,
            pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side, return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids, return_attention_mask=return_attention_mask,
            return_overflowing_tokens=return_overflowing_tokens, return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping, return_length=return_length, verbose=verbose,
            split_special_tokens=split_special_tokens,
        )

    @staticmethod
    def _is_batch(text, is_split_into_words: bool) -> bool:
        if isinstance(text, str):
            return False
        if not isinstance(text, (list, tuple)):
            raise TypeError(
                "text must be a str (one example), a list of str (a batch, or one pre-split example with "
                f"is_split_into_words=True) or a list of pairs; got {type(text).__name__}"
            )
        if is_split_into_words:
            return bool(text) and isinstance(text[0], (list, tuple))
        return True

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """One example (a text or a pair); unlike `__call__`, a list here is one pre-tokenized example."""
        if text is None:
            raise TypeError("text must be a str, not None")
        return self._encode_examples([(text, text_pair)], False, **self._call_defaults(kwargs))

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError("batch_encode_plus takes a list of texts or of (text, text_pair) pairs")
        return self._encode_examples(list(batch_text_or_text_pairs), True, **self._call_defaults(kwargs))

    @staticmethod
    def _call_defaults(kwargs: dict) -> dict:
        unknown = set(kwargs) - set(CALL_DEFAULTS)
        if unknown:
            logger.warning(f"Keyword arguments {sorted(unknown)} not recognized.")
        return dict(CALL_DEFAULTS, **{k: v for k, v in kwargs.items() if k in CALL_DEFAULTS})

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
               max_length: int | None = None, stride: int = 0, padding_side: str | None = None,
               return_tensors=None, **kwargs):
        """Token ids of one text (or pair), with special tokens; a list, or a [1, L] tensor with return_tensors."""
        encoded = self._encode_examples(
            [(text, text_pair)], False, **self._call_defaults(dict(
                kwargs, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                max_length=max_length, stride=stride, padding_side=padding_side, return_tensors=return_tensors,
                return_attention_mask=False)))
        return encoded["input_ids"]

    # ------------------------------------------------------------------ the encoding pipeline
    def _unpack_example(self, example, is_split_into_words: bool):
        if isinstance(example, (list, tuple)) and not (is_split_into_words and example and isinstance(example[0], str)):
            if len(example) != 2:
                raise TypeError(
                    f"a batch item must be a str or a (text, text_pair) pair; got a {type(example).__name__} "
                    f"of length {len(example)}"
                )
            return example[0], example[1]
        return example, None

    def _sequence_ids(self, sequence, is_split_into_words: bool, pending: list):
        """Plan the encoding of one sequence: ("ids", ids) when it is ids or tokens already, else
        ("batch", (start, count)) for its texts appended to `pending`, which go to sentencepiece together.
        """
        if isinstance(sequence, str):
            words = [sequence]
        elif isinstance(sequence, (list, tuple)) and is_split_into_words:
            words = [_check_text(w, "a word of a pre-split example") for w in sequence]
        elif isinstance(sequence, (list, tuple)) and sequence and all(isinstance(i, int) for i in sequence):
            return ("ids", list(sequence))  # already ids (encode / encode_plus accept them, like transformers)
        elif isinstance(sequence, (list, tuple)) and sequence and all(isinstance(t, str) for t in sequence):
            return ("ids", self.convert_tokens_to_ids(list(sequence)))  # already tokens
        else:
            raise TypeError(f"cannot encode a {type(sequence).__name__} ({sequence!r:.60}); pass a str")
        start = len(pending)
        pending.extend(words)
        return ("batch", (start, len(words)))

    def _encode_examples(self, examples: list, batched: bool, **call_arguments) -> BatchEncoding:
        if batched and not examples:
            raise ValueError("cannot encode an empty batch")
        options = EncodeOptions.resolve(self, **call_arguments)
        if options.return_overflowing_tokens and options.truncation_strategy == "longest_first" and any(
                self._unpack_example(e, options.is_split_into_words)[1] is not None for e in examples):
            raise ValueError(
                "Not possible to return overflowing tokens for pair of sequences with the `longest_first`. "
                "Please select another truncation strategy than `longest_first`, for instance `only_second` or `only_first`."
            )
        # A batch allocates tens of thousands of small lists; with torch and transformers imported, the
        # cyclic GC then runs full collections over ~250k live objects, about 40% of the batch time. What
        # is allocated here holds no reference cycles, so collection is paused for the call (and restored).
        with _gc_paused():
            return self._encode_examples_unpaused(examples, batched, options)

    def _encode_examples_unpaused(self, examples: list, batched: bool, options: EncodeOptions) -> BatchEncoding:
        split, with_offsets = options.split_special_tokens, options.return_offsets_mapping
        # 1. token ids (and offsets) of every sequence; plain texts go to sentencepiece in one batch
        if not with_offsets and all(type(e) is str for e in examples):  # the common case, lean
            rows = [self._prepare_for_model(ids, None, None, None, options) for ids in self.encode_texts(examples, split)]
            return self._pad_and_wrap(rows, batched, options)
        pending: list[str] = []
        scheduled = []
        for example in examples:
            first, second = self._unpack_example(example, options.is_split_into_words)
            if first is None:
                raise TypeError("text must be a str, not None")
            scheduled.append((
                self._sequence_ids(first, options.is_split_into_words, pending),
                None if second is None else self._sequence_ids(second, options.is_split_into_words, pending),
            ))
        if with_offsets:
            with_spans = self.tokenize_batch_with_offsets(pending, split)
            encoded_pending = [self.convert_tokens_to_ids(tokens) for tokens, _ in with_spans]
            spans_pending = [spans for _, spans in with_spans]
        else:
            encoded_pending = self.encode_texts(pending, split) if pending else []

        def resolve(entry):
            if entry is None:
                return None, None
            kind, payload = entry
            if kind == "ids":
                if with_offsets:
                    raise ValueError("return_offsets_mapping needs text: ids or tokens carry no character positions")
                return payload, None
            start, count = payload
            ids = list(chain.from_iterable(encoded_pending[start:start + count]))
            if not with_offsets:
                return ids, None
            return ids, list(chain.from_iterable(spans_pending[start:start + count]))

        # 2. truncation and special tokens per example (transformers' prepare_for_model)
        rows = []
        for first_entry, second_entry in scheduled:
            ids, offsets = resolve(first_entry)
            pair_ids, pair_offsets = resolve(second_entry)
            rows.append(self._prepare_for_model(ids, pair_ids, offsets, pair_offsets, options))
        return self._pad_and_wrap(rows, batched, options)

    def _pad_and_wrap(self, rows: list[dict], batched: bool, options: EncodeOptions) -> BatchEncoding:
        # 3. padding: per example for a single input, across the batch otherwise (transformers' order)
        if not batched:
            row = rows[0]
            if options.padding_strategy != "do_not_pad" or options.return_attention_mask:
                row = pad_one(self, row, options.max_length, options.padding_strategy, options.pad_to_multiple_of,
                              options.padding_side, options.return_attention_mask)
            if options.return_length:
                row["length"] = len(row["input_ids"])
            return BatchEncoding(row, tensor_type=options.return_tensors, prepend_batch_axis=True)
        batch: dict[str, list] = {}
        for row in rows:
            if options.return_length:
                row["length"] = len(row["input_ids"])
            for key, value in row.items():
                batch.setdefault(key, []).append(value)
        batch = pad_batch(self, batch, options.padding_strategy, options.max_length, options.pad_to_multiple_of,
                          options.padding_side, options.return_attention_mask)
        return BatchEncoding(batch, tensor_type=options.return_tensors)

    def _prepare_for_model(self, ids, pair_ids, offsets, pair_offsets, options: EncodeOptions) -> dict:
        """One example's row: truncated, special tokens added, with the outputs `options` asks for."""
        add_special_tokens, max_length = options.add_special_tokens, options.max_length
        truncation_strategy, return_offsets_mapping = options.truncation_strategy, options.return_offsets_mapping
        pair = pair_ids is not None
        total_len = len(ids) + (len(pair_ids) if pair else 0) + (self.num_special_tokens_to_add(pair) if add_special_tokens else 0)
        overflowing: list[int] = []
        if truncation_strategy != "do_not_truncate" and max_length and total_len > max_length:
            cut = dict(num_tokens_to_remove=total_len - max_length, strategy=truncation_strategy,
                       side=self.truncation_side, stride=options.stride)
            if return_offsets_mapping:
                offsets, pair_offsets, _ = truncate_sequences(offsets, pair_offsets, log=False, **cut)
            ids, pair_ids, overflowing = truncate_sequences(ids, pair_ids, **cut)
        row: dict[str, Any] = {}
        if options.return_overflowing_tokens:
            row["overflowing_tokens"] = overflowing
            row["num_truncated_tokens"] = total_len - max_length if max_length else 0
        if add_special_tokens:
            row["input_ids"] = self.build_inputs_with_special_tokens(ids, pair_ids)
            token_type_ids = self.create_token_type_ids_from_sequences(ids, pair_ids)
        else:
            row["input_ids"] = ids + pair_ids if pair else list(ids)
            token_type_ids = [0] * len(row["input_ids"])
        if options.return_token_type_ids:
            row["token_type_ids"] = token_type_ids
        if options.return_special_tokens_mask:
            row["special_tokens_mask"] = (self.get_special_tokens_mask(ids, pair_ids) if add_special_tokens
                                          else [0] * len(row["input_ids"]))
        if return_offsets_mapping:
            if add_special_tokens:
                row["offset_mapping"] = self.build_offset_mapping_with_special_tokens(offsets, pair_offsets)
            else:
                row["offset_mapping"] = list(offsets) + (list(pair_offsets) if pair else [])
        if max_length is None and len(row["input_ids"]) > self.model_max_length:
            logger.warning(
                f"Token indices sequence length is longer than the specified maximum sequence length for this model "
                f"({len(row['input_ids'])} > {self.model_max_length}). Running this sequence through the model will "
                "result in indexing errors"
            )
        return row

    def pad(self, encoded_inputs, padding=True, max_length: int | None = None, pad_to_multiple_of: int | None = None,
            padding_side: str | None = None, return_attention_mask: bool | None = None, return_tensors=None,
            verbose: bool = True) -> BatchEncoding:
        """Pad one encoding or a batch (dict of lists, BatchEncoding, or list of dicts), as transformers."""
        data = to_dict_of_lists(encoded_inputs)
        if "input_ids" not in data:
            raise ValueError(f"pad() needs `input_ids`; got keys {sorted(data)}")
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        required = data["input_ids"]
        if not required:
            if return_attention_mask:
                data["attention_mask"] = []
            return BatchEncoding(data, tensor_type=return_tensors)
        padding_strategy, _, max_length = resolve_strategies(self, padding, None, max_length, pad_to_multiple_of, verbose)
        if not isinstance(required[0], (list, tuple)):
            row = pad_one(self, data, max_length, padding_strategy, pad_to_multiple_of, padding_side, return_attention_mask)
            return BatchEncoding(row, tensor_type=return_tensors)
        if any(len(v) != len(required) for v in data.values()):
            raise ValueError("every key of the batch passed to pad() must hold one entry per example")
        out = pad_batch(self, data, padding_strategy, max_length, pad_to_multiple_of, padding_side, return_attention_mask)
        return BatchEncoding(out, tensor_type=return_tensors)

    # ------------------------------------------------------------------ decoding
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               **kwargs) -> str:
        """Text of `token_ids` (ids of special tokens kept as "[CLS]" etc. unless skipped)."""
        token_ids = to_python(token_ids)
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if not isinstance(token_ids, list) or not all(isinstance(i, int) for i in token_ids):
            raise TypeError("decode takes an int or a sequence of ints (list, tensor or array)")
        tokens = self.convert_ids_to_tokens(token_ids, skip_special_tokens=skip_special_tokens)
        text = self.convert_tokens_to_string(tokens) if tokens else ""
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
                     **kwargs) -> list[str]:
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces, **kwargs) for s in to_python(sequences)]

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """transformers' English clean-up of spaces before punctuation and contractions."""
        for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                              (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            text = text.replace(before, after)
        return text

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *init_inputs, **kwargs) -> "ErnieMTokenizer":
        """Load from a directory (or a Hugging Face Hub repo id, with huggingface_hub installed)."""
        hub_kwargs = {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}
        paths = files.resolve_files(pretrained_model_name_or_path, **hub_kwargs)
        config: dict[str, Any] = {}
        if paths[files.SPECIAL_TOKENS_MAP_FILE]:
            for role, tok in files.read_json(paths[files.SPECIAL_TOKENS_MAP_FILE]).items():
                if role in SPECIAL_TOKEN_ROLES:
                    config[role] = tok
        if paths[files.CONFIG_FILE]:
            config.update(files.read_json(paths[files.CONFIG_FILE]))
        if paths[files.ADDED_TOKENS_FILE]:
            extra = files.read_json(paths[files.ADDED_TOKENS_FILE])
            if extra:
                decoder = dict(config.get("added_tokens_decoder") or {})
                for token, index in extra.items():
                    decoder.setdefault(str(index), {"content": token, "special": False, "normalized": True})
                config["added_tokens_decoder"] = decoder
        for key in ("tokenizer_class", "extra_special_tokens", *cls.vocab_files_names):
            config.pop(key, None)
        config.update(kwargs)
        if "piece_handling" not in config and _is_paddle_checkpoint(pretrained_model_name_or_path, hub_kwargs):
            config["piece_handling"] = "paddlenlp"  # the ids this checkpoint's model was trained on
        config.setdefault("name_or_path", os.fspath(pretrained_model_name_or_path))
        return cls(paths[files.SENTENCEPIECE_FILE], paths[files.VOCAB_FILE], *init_inputs, **config)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, str]:
        """Write vocab.txt and sentencepiece.bpe.model; returns their paths."""
        os.makedirs(save_directory, exist_ok=True)
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        vocab_path = os.path.join(save_directory, prefix + files.VOCAB_FILE)
        model_path = os.path.join(save_directory, files.SENTENCEPIECE_FILE)
        files.write_vocab_lines(vocab_path, self._vocab_lines)
        with open(model_path, "wb") as f:
            f.write(self.sp_model.serialized_model_proto())
        return vocab_path, model_path

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> tuple[str, ...]:
        """Write the four files transformers writes; either library can load the directory."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"{save_directory} is a file; save_pretrained needs a directory")
        os.makedirs(save_directory, exist_ok=True)
        config = dict(self.init_kwargs)
        if self.model_input_names != type(self).model_input_names:
            config["model_input_names"] = self.model_input_names
        if self.piece_handling != "transformers":  # transformers' tokenizer ignores the key (and keeps its rule)
            config["piece_handling"] = self.piece_handling
        config.update(
            added_tokens_decoder={str(i): tok.to_json() for i, tok in sorted(self._added_tokens_decoder.items())},
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
            do_lower_case=self.do_lower_case,
            encoding=self.encoding,
            extra_special_tokens={},
            model_max_length=self.model_max_length,
            padding_side=self.padding_side,
            truncation_side=self.truncation_side,
            split_special_tokens=self.split_special_tokens,
            sp_model_kwargs=self.sp_model_kwargs,
            tokenizer_class="ErnieMTokenizer",
            **self.special_tokens_map,
        )
        config_path = os.path.join(save_directory, files.CONFIG_FILE)
        map_path = os.path.join(save_directory, files.SPECIAL_TOKENS_MAP_FILE)
        files.write_json(config_path, config)
        files.write_json(map_path, self.special_tokens_map)
        return (config_path, map_path, *self.save_vocabulary(save_directory))

    # ------------------------------------------------------------------ misc
    def __getstate__(self):
        state = self.__dict__.copy()
        state["sp_model"] = None
        state["_piece_table"] = None
        state["_proto"] = self.sp_model.serialized_model_proto()
        return state

    def __setstate__(self, state):
        proto = state.pop("_proto")
        self.__dict__.update(state)
        self.sp_model = spm.SentencePieceProcessor(model_proto=proto)
        self._build_caches()

    def __deepcopy__(self, memo):
        clone = copy.copy(self)
        clone.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return clone

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"do_lower_case={self.do_lower_case}, model_max_length={self.model_max_length}, "
                f"piece_handling={self.piece_handling!r})")

