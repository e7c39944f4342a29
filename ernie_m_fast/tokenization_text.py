"""Text preparation before sentencepiece: lowercasing and splitting around special tokens.

Both follow transformers' `PreTrainedTokenizer.tokenize` to the letter, because they decide what
sentencepiece sees and therefore every id: lowercasing is per character and spares special tokens;
special tokens written in the text are cut out (transformers' Trie: no empty pieces) and their
lstrip / rstrip / single_word flags then trim or glue the neighbouring text.
"""

from __future__ import annotations

import re

Segment = tuple  # (content, start, is_special, positions or None); see split_around_special_tokens


class SpecialToken:
    """A special token and how text around it is split (transformers' AddedToken flags)."""

    __slots__ = ("content", "lstrip", "rstrip", "single_word", "normalized", "special")

    def __init__(self, content: str, lstrip=False, rstrip=False, single_word=False, normalized=False, special=True):
        if not isinstance(content, str) or not content:
            raise ValueError(f"a special token must be a non-empty string, not {content!r}")
        self.content, self.lstrip, self.rstrip = content, bool(lstrip), bool(rstrip)
        self.single_word, self.normalized, self.special = bool(single_word), bool(normalized), bool(special)

    @classmethod
    def coerce(cls, value) -> "SpecialToken":
        if isinstance(value, SpecialToken):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):  # tokenizer_config.json's added_tokens_decoder / special_tokens_map.json
            return cls(value["content"], value.get("lstrip", False), value.get("rstrip", False),
                       value.get("single_word", False), value.get("normalized", False), value.get("special", True))
        if hasattr(value, "content"):  # transformers' or tokenizers' AddedToken
            return cls(value.content, value.lstrip, value.rstrip, value.single_word, value.normalized, value.special)
        raise TypeError(f"a special token must be a str or an AddedToken, not {type(value).__name__}")

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"SpecialToken({self.content!r})"


def lower_per_char(text: str) -> str:
    # transformers lowercases one character at a time (a regex with `(.+?)`), so the context rule of
    # str.lower() for a final capital sigma never fires; per-character lowering is the same otherwise.
    return "".join(c.lower() for c in text) if "Σ" in text else text.lower()


def lowercase_outside_special_tokens(text: str, special_re: re.Pattern | None) -> str:
    """transformers' do_lower_case: every character lowered except inside special tokens."""
    if special_re is None:
        return lower_per_char(text)
    out, cursor = [], 0
    for match in special_re.finditer(text):
        out.append(lower_per_char(text[cursor:match.start()]))
        out.append(match.group())
        cursor = match.end()
    out.append(lower_per_char(text[cursor:]))
    return "".join(out)


def lowered_to_original(text: str, lowered: str) -> list[int] | None:
    """Index in `text` of each character of `lowered` (None when lowering kept every length)."""
    if len(lowered) == len(text):
        return None
    origin: list[int] = []
    for i, c in enumerate(text):
        origin.extend([i] * len(c.lower()))
    if len(origin) != len(lowered):
        raise RuntimeError("lowercasing changed the text in a way offsets cannot follow")
    return origin


def split_around_special_tokens(text: str, special_re: re.Pattern, encoder: dict, decoder: dict) -> list[Segment]:
    """(content, start, is_special, positions) for the pieces of `text`, in order.

    `start` is where the piece begins in `text`; `positions` (index in `text` of each character) is set
    only where single_word glued non-adjacent pieces together, so the piece is not one slice of `text`.
    `encoder`/`decoder` are the added tokens (content -> id, id -> SpecialToken).
    """
    parts: list[list] = []  # [content, start, positions]; empty pieces are not parts (transformers' Trie)
    cursor = 0
    for match in special_re.finditer(text):
        if match.start() > cursor:
            parts.append([text[cursor:match.start()], cursor, None])
        parts.append([match.group(), match.start(), None])
        cursor = match.end()
    if cursor < len(text):
        parts.append([text[cursor:], cursor, None])

    def positions(part) -> list[int]:
        return part[2] if part[2] is not None else list(range(part[1], part[1] + len(part[0])))

    for i, part in enumerate(parts):
        content = part[0]
        if content not in encoder:
            continue
        flags = decoder[encoder[content]]
        left = parts[i - 1] if i > 0 else None
        right = parts[i + 1] if i + 1 < len(parts) else None
        if flags.rstrip and right and right[0]:
            removed = len(right[0]) - len(right[0].lstrip())
            right[0], right[1] = right[0][removed:], right[1] + removed
            right[2] = right[2][removed:] if right[2] is not None else None
        if flags.lstrip and left and left[0]:
            kept = len(left[0].rstrip())
            left[0], left[2] = left[0][:kept], (left[2][:kept] if left[2] is not None else None)
        if flags.single_word and left and left[0] and left[0][-1] != " ":
            # transformers glues the token to the word before it and encodes the result as text
            left[2] = positions(left) + positions(part)
            left[0] += content
            part[0] = ""
        elif flags.single_word and right and right[0] and right[0][0] != " ":
            right[2] = positions(part) + positions(right)
            right[0], right[1] = content + right[0], part[1]
            part[0] = ""
    segments = []
    for content, start, where in parts:
        if not content:
            continue
        if where is not None and where == list(range(where[0], where[0] + len(where))):
            where = None  # glued pieces that happened to be adjacent: a plain slice after all
        segments.append((content, start, content in encoder, where))
    return segments
