"""UIE-M exactly as PaddleNLP 2.8 Taskflow computes it, quirks included (`taskflow_compat=True`).

The default pipeline (`uie.py`) departs from Taskflow where Taskflow loses text or returns artefacts;
this module is the other choice, for users who need Taskflow's results span for span (to migrate, or
to compare). Each function names the Taskflow code it follows (paddlenlp/taskflow/information_extraction.py,
paddlenlp/taskflow/task.py, paddlenlp/utils/tools.py, paddlenlp/taskflow/utils.py):

- windows (`_single_stage_predict`, `_auto_splitter`): every text of a schema node's stage (or each
  of its sentences, with `split_sentence=True`: `uie.taskflow_sentences`) is cut into windows of
  `max_seq_len - len(max(prompts)) - 3` characters, where `max(prompts)` is the lexicographically
  largest prompt of the whole stage (so a relation prompt's windows depend on the other texts of the
  call) and 3 is Taskflow's special-token count, one less than an ErnieM pair's
  `[CLS] prompt [SEP] [SEP] text [SEP]`;
- `(prompt, window)` is encoded with PaddleNLP's tokenizer (`piece_handling="paddlenlp"`) and
  truncated to `max_seq_len` the `longest_first` way (`truncate_longest_first`): a full window
  loses its last token(s), which the model then never reads;
- the model sees PaddleNLP's no-mask input (every window padded with `[PAD]`s at position 0 to
  `max_seq_len`, attended; `[CLS]` masked as a key): the pipeline passes `paddle_pad_to=max_seq_len`;
- spans (`get_span`, `get_id_and_prob`, `_convert_ids_to_results`): every start/end pair is
  reported, also empty ones (an end before its start's character: `text[start:end] == ""`) and
  ones inside the prompt (text and probability only);
- joining windows (`_auto_joiner`): if the first span of the stage's first non-empty window lies in
  the prompt, the whole stage is read as a classification (each window's first span votes);
  otherwise text spans are shifted by their window's start and concatenated.

One thing is not reproducible by anyone: Taskflow's spans of a window come in the iteration order of
a Python `set` of `((start, p_start), (end, p_end))` tuples, i.e. by the hash of float probabilities,
which changes with their last bit. Here a window's spans come in position order (by start token, then
end token); where Taskflow's result depends on that order (the joiner's "first span" above), the two
can differ. A trained UIE-M model's extraction spans lie in the text and a classification prompt's
answer is one option, and then the order changes nothing but the order of the list.
Not reproduced either: spans on Taskflow's `[PAD]` positions (a model that scores `[PAD]` above
`position_prob` makes Taskflow report spans at offset 0); only real tokens are decoded here.
"""

from __future__ import annotations

from typing import Sequence

from . import uie

SUMMARY_TOKENS = uie.SUMMARY_TOKENS  # Taskflow's `_summary_token_num` for UIE-M (3; an ErnieM pair has 4)


def window_size(max_seq_len: int, prompts: Sequence[str]) -> int:
    """Characters per window for a stage: `max_seq_len - len(max(prompts)) - 3` (the largest prompt by
    string order, as Taskflow's `max(prompts)`, not the longest)."""
    size = max_seq_len - len(max(prompts)) - SUMMARY_TOKENS
    if size < 1:
        raise ValueError(f"max_seq_len={max_seq_len} leaves no room for text after the prompt {max(prompts)!r} "
                         f"(Taskflow's windows are max_seq_len - len(prompt) - {SUMMARY_TOKENS} characters)")
    return size


def short_texts(text: str, size: int, split_sentence: bool = False) -> list[tuple[int, str]]:
    """Taskflow's `_auto_splitter` for one text: its pieces of at most `size` characters (cut in
    sentences first with `split_sentence`, `uie.taskflow_sentences`), each with the offset its spans
    get in `_auto_joiner`: the summed lengths of the pieces before it. (A newline that
    `taskflow_sentences` drops is not counted, so with one Taskflow's offsets after it are one short.)"""
    pieces, offset = [], 0
    for sentence in (uie.taskflow_sentences(text) if split_sentence else [text]):
        for s, e in uie.char_windows(sentence, size):
            pieces.append((offset, sentence[s:e]))
            offset += e - s
    return pieces


def truncate_longest_first(first: list, second: list, excess: int) -> tuple[list, list]:
    """PaddleNLP's (and transformers') `longest_first` truncation of a pair: `excess` times, drop the
    last item of the longer sequence (of the second on a tie). Applied alike to ids and offsets."""
    for _ in range(max(0, excess)):
        if len(first) > len(second):
            first = first[:-1]
        else:
            second = second[:-1]
    return first, second


def read_spans(spans: list[tuple[int, int, float]], offsets: Sequence[uie.Span], prompt: str,
               text: str) -> list[uie.Found]:
    """Taskflow's `_convert_ids_to_results` for one window: every span but those that cross from the
    prompt into the text, empty ones included (a text span keeps Taskflow's start and end even then)."""
    shifted = uie.shift_prompt_offsets(offsets)
    found = []
    for start_token, end_token, probability in spans:
        start, end = shifted[start_token][0], shifted[end_token][1]
        if start < 0 <= end:
            continue
        if end < 0:
            start, end = start + len(prompt) + 1, end + len(prompt) + 1
            found.append(uie.Found(prompt[start:end], probability))
        else:
            found.append(uie.Found(text[start:end], probability, start, end))
    return found


def is_classification_stage(per_example: list[list[list[uie.Found]]]) -> bool:
    """`_auto_joiner`'s test: the first span of the stage's first window with any span lies in the prompt."""
    for windows in per_example:
        for found in windows:
            if found:
                return found[0].in_prompt
    return False


def join_windows(windows: list[list[uie.Found]], window_starts: list[int], classification: bool) -> list[dict]:
    """`_auto_joiner` for one (prompt, text): a classification takes each window's first span as its
    vote (most votes, then the highest summed probability, then the first seen) and reports the mean
    probability; otherwise every span, text spans shifted by their window's start."""
    if classification:
        votes: dict[str, list] = {}
        for found in windows:
            if found:
                count_and_sum = votes.setdefault(found[0].text, [0, 0.0])
                count_and_sum[0] += 1
                count_and_sum[1] += found[0].probability
        if not votes:
            return []
        text, (count, total) = max(votes.items(), key=lambda item: item[1])
        return [{"text": text, "probability": total / count}]
    out = []
    for found, offset in zip(windows, window_starts):
        for f in found:
            if f.in_prompt:
                out.append(f.as_dict())
            else:
                out.append({"text": f.text, "start": f.start + offset, "end": f.end + offset,
                            "probability": f.probability})
    return out
