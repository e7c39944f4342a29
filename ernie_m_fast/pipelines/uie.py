"""UIE-M, as PaddleNLP Taskflow's `information_extraction` defines it: pure functions, no model.

Read from paddlenlp/taskflow/information_extraction.py, paddlenlp/taskflow/utils.py and
paddlenlp/utils/tools.py (2.8):
- the schema is a tree: a str is an entity type, `{"Person": ["Birthplace", ...]}` asks for relations
  of each Person found, and a name ending in `[option, option]` is a classification;
- every schema node is asked as a prompt, full-width ASCII folded to half-width (`to_halfwidth`); a
  child's prompt is built from each parent span's text: `"<parent>的<name>"` in Chinese,
  `"<name> of <parent>"` in English (`"<prefix> of <parent> [options]"` for a classification);
- the model reads `[CLS] prompt [SEP] [SEP] text [SEP]` and gives each token a start and an end
  probability; positions above `position_prob` are paired (`pair_spans`: each end takes the nearest
  unused start at or before it) and a span's probability is p_start * p_end;
- token spans map to characters through the offsets, the prompt's moved below zero
  (`shift_prompt_offsets`): a span inside the text is an extraction, one inside the prompt picks a
  classification option, one that crosses from prompt to text is dropped;
- a text longer than the window (`max_seq_len - len(prompt) - 3` characters) is cut into windows whose
  spans are shifted back by the window's start; classification answers of the windows vote.

Where Taskflow's result is arbitrary or loses text, this module says what it does instead:
- spans come in text order (Taskflow's come in the iteration order of a Python set of floats);
- a classification node answers with its most probable option per window (Taskflow takes the first
  of that set), and only options count for it; an extraction node keeps only spans in the text;
- empty spans (an end token before the start token's character, e.g. an end on `[SEP]`) are dropped;
- windows never lose text: Taskflow counts 3 special tokens where an ErnieM pair has 4 and cuts
  multi-token characters, so its full windows are truncated by the tokenizer; here a window that
  does not fit in `max_seq_len` tokens ends before its first token that does not fit, and the next
  window starts there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

Span = tuple[int, int]

OPTIONS = re.compile(r"\[.*?\]$")  # "情感倾向[正向，负向]", "Sentiment [negative, positive]"

# Taskflow's `_summary_token_num` for UIE-M: the window is max_seq_len - len(prompt) - this, in characters
SUMMARY_TOKENS = 3


@dataclass
class SchemaNode:
    name: str
    children: list["SchemaNode"] = field(default_factory=list)

    @property
    def is_classification(self) -> bool:
        return OPTIONS.search(self.name) is not None


def parse_schema(schema) -> list[SchemaNode]:
    """The schema's top-level nodes. A str, a dict or a list of both, as Taskflow takes it."""
    if isinstance(schema, (str, dict)):
        schema = [schema]
    if not isinstance(schema, (list, tuple)) or not schema:
        raise TypeError(f"schema must be a str, a dict or a non-empty list of them, got {schema!r:.80}")
    nodes = []
    for entry in schema:
        if isinstance(entry, str):
            nodes.append(SchemaNode(entry))
        elif isinstance(entry, dict):
            for name, children in entry.items():
                if not isinstance(name, str):
                    raise TypeError(f"schema keys must be str, got {name!r}")
                if isinstance(children, str):
                    children = [children]
                if not isinstance(children, (list, tuple)):
                    raise TypeError("Invalid schema, value for each key:value pairs should be list or string "
                                    f"but {type(children).__name__} received")
                nodes.append(SchemaNode(name, parse_schema(children) if children else []))
        else:
            raise TypeError(f"Invalid schema, element should be string or dict, but {type(entry).__name__} received")
    return nodes


def to_halfwidth(text: str) -> str:
    """Taskflow's dbc2sbc: full-width ASCII (U+FF01-U+FF5E) to ASCII. (Its U+3000 branch never fires:
    the ideographic space stays.)"""
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else c for c in text)


def entity_prompt(name: str) -> str:
    return to_halfwidth(name)


def relation_prompt(name: str, parent_text: str, lang: str = "ch") -> str:
    """The prompt asking for `name` of one parent span, in Taskflow's Chinese or English form."""
    if lang == "en":
        of_parent = " of " + parent_text
        options = OPTIONS.search(name)
        if options:
            prompt = name[: name.find("[", 1)].strip() + of_parent + " " + options.group()
        else:
            prompt = name + of_parent
    else:
        prompt = parent_text + "的" + name
    return to_halfwidth(prompt)


# Taskflow's `cut_chinese_sent` (paddlenlp/taskflow/utils.py), applied in this order: a sentence ends after
# 。！？? (not before a closing quote), after six dots, after two ellipses, and after 。！？? + closing quote
SENTENCE_CUTS = (re.compile(r"([。！？\?])([^”’])"), re.compile(r"(\.{6})([^”’])"), re.compile(r"(\…{2})([^”’])"),
                 re.compile(r"([。！？\?][”’])([^，。！？\?])"))


def _cut_sentences(text: str, mark: str) -> str:
    for pattern in SENTENCE_CUTS:
        text = pattern.sub(lambda m: m.group(1) + mark + m.group(2), text)
    return text


def taskflow_sentences(text: str) -> list[str]:
    """Taskflow's `split_sentence=True` pieces, exactly: its cuts, then trailing whitespace dropped and
    the text split at every newline, its own and the ones it inserted (so a newline of the text is lost,
    and Taskflow's offsets after it are one short)."""
    return _cut_sentences(text, "\n").rstrip().split("\n")


def sentence_spans(text: str) -> list[Span]:
    """[start, end) of each sentence, Taskflow's cuts (`taskflow_sentences`) without losing a character:
    a newline of the text ends its sentence and stays in it. Tiles the text; one span for ""."""
    mark = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)  # a private-use character
    spans, start, at = [], 0, 0
    for ch in _cut_sentences(text, mark):
        if ch != mark:
            at += 1
        if (ch == mark or ch == "\n") and at > start:
            spans.append((start, at))
            start = at
    if at > start or not spans:
        spans.append((start, at))
    return spans


def char_windows(text: str, size: int) -> list[Span]:
    """Taskflow's `_auto_splitter`: consecutive [start, end) runs of `size` characters (one for a short text)."""
    if size < 1:
        raise ValueError(f"a window must hold at least one character, got {size}")
    if len(text) <= size:
        return [(0, len(text))]
    return [(start, min(start + size, len(text))) for start in range(0, len(text), size)]


def positions_above(probs: Sequence[float], threshold: float) -> list[tuple[int, float]]:
    """(position, probability) of every probability strictly above the threshold."""
    return [(i, float(p)) for i, p in enumerate(probs) if p > threshold]


def pair_spans(starts: list[tuple[int, float]], ends: list[tuple[int, float]]) -> list[tuple[tuple[int, float], tuple[int, float]]]:
    """Taskflow's `get_span`: walk starts and ends in position order; a start at or before the current
    end becomes (or replaces) that end's start and is used up; an end with no start left is skipped.
    So each end pairs with the last start at or before it that no earlier end took."""
    starts, ends = sorted(starts), sorted(ends)
    paired: dict = {}
    i = j = 0
    while i < len(starts) and j < len(ends):
        if starts[i][0] <= ends[j][0]:
            paired[ends[j]] = starts[i]
            if starts[i][0] == ends[j][0]:
                j += 1
            i += 1
        else:
            j += 1
    return [(start, end) for end, start in paired.items()]


def decode_spans(start_probs: Sequence[float], end_probs: Sequence[float],
                 threshold: float) -> list[tuple[int, int, float]]:
    """(start token, end token, probability) of every span, in position order."""
    pairs = pair_spans(positions_above(start_probs, threshold), positions_above(end_probs, threshold))
    return sorted((s[0], e[0], s[1] * e[1]) for s, e in pairs)


def shift_prompt_offsets(offsets: Sequence[Span]) -> list[Span]:
    """Taskflow's `get_id_and_prob` offsets: the prompt's tokens (from position 1 up to the first
    (0, 0) after `[CLS]`) moved below zero by the end of the prompt's last token + 1."""
    offsets = [tuple(o) for o in offsets]
    first_sep = next((k for k in range(1, len(offsets)) if offsets[k] == (0, 0)), len(offsets))
    last_prompt = first_sep - 1
    bias = offsets[last_prompt][1] + 1
    return [(s - bias, e - bias) if 1 <= k <= last_prompt else (s, e) for k, (s, e) in enumerate(offsets)]


@dataclass
class Found:
    """One decoded span: in the text (start/end set) or in the prompt (a classification option)."""

    text: str
    probability: float
    start: Optional[int] = None
    end: Optional[int] = None

    @property
    def in_prompt(self) -> bool:
        return self.start is None

    def as_dict(self) -> dict:
        if self.in_prompt:
            return {"text": self.text, "probability": self.probability}
        return {"text": self.text, "start": self.start, "end": self.end, "probability": self.probability}


def read_spans(spans: list[tuple[int, int, float]], offsets: Sequence[Span], prompt: str, text: str) -> list[Found]:
    """Token spans -> Found, as Taskflow's `_convert_ids_to_results` reads them; empty ones dropped."""
    shifted = shift_prompt_offsets(offsets)
    found = []
    for start_token, end_token, probability in spans:
        start, end = shifted[start_token][0], shifted[end_token][1]
        if start < 0 <= end:  # from the prompt into the text
            continue
        if end < 0:
            start, end = start + len(prompt) + 1, end + len(prompt) + 1
            if end > start:
                found.append(Found(prompt[start:end], probability))
        elif end > start:
            found.append(Found(text[start:end], probability, start, end))
    return found


def join_extractions(per_window: list[list[Found]], window_starts: list[int]) -> list[dict]:
    """An extraction node's spans over all windows of a text, in the text's coordinates."""
    out = []
    for found, offset in zip(per_window, window_starts):
        for f in found:
            if not f.in_prompt:
                out.append({"text": f.text, "start": f.start + offset, "end": f.end + offset, "probability": f.probability})
    return out


def join_classification(per_window: list[list[Found]]) -> list[dict]:
    """A classification node's answer: each window's most probable option votes; the option with the
    most votes (then the highest summed probability; then the first) wins, with its mean probability."""
    votes: dict[str, list] = {}
    for found in per_window:
        options = [f for f in found if f.in_prompt]
        if options:
            best = max(options, key=lambda f: f.probability)
            count, total = votes.get(best.text, (0, 0.0))
            votes[best.text] = (count + 1, total + best.probability)
    if not votes:
        return []
    text, (count, total) = max(votes.items(), key=lambda item: item[1])
    return [{"text": text, "probability": total / count}]
