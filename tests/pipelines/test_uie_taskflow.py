"""taskflow_compat's pure parts on hand-made inputs, the answers worked out from Taskflow's source
(paddlenlp 2.8.1: information_extraction.py `_single_stage_predict`, `_convert_ids_to_results`,
`_auto_joiner`; tokenizer_utils_base.py `truncate_sequences`), not from ours."""

from __future__ import annotations

import pytest

from ernie_m_fast.pipelines import uie, uie_taskflow
from ernie_m_fast.pipelines.uie import Found


def test_window_size_uses_the_largest_prompt_by_string_order():
    # max(["b", "aaaa"]) is "b": Taskflow's windows are 64 - 1 - 3, not 64 - 4 - 3
    assert uie_taskflow.window_size(64, ["aaaa", "b"]) == 60
    assert uie_taskflow.window_size(64, ["人物"]) == 59
    with pytest.raises(ValueError, match="leaves no room for text"):
        uie_taskflow.window_size(8, ["abcde"])


def test_longest_first_truncation_cuts_the_longer_then_the_second_on_a_tie():
    assert uie_taskflow.truncate_longest_first([1, 2], [3, 4, 5, 6], 2) == ([1, 2], [3, 4])
    assert uie_taskflow.truncate_longest_first([1, 2, 3], [4, 5], 3) == ([1], [4])
    assert uie_taskflow.truncate_longest_first([1, 2], [3], 0) == ([1, 2], [3])
    assert uie_taskflow.truncate_longest_first([1, 2], [3, 4], 1) == ([1, 2], [3])  # a tie: the second
    assert uie_taskflow.truncate_longest_first([1, 2], [3], -2) == ([1, 2], [3])


# [CLS] 人 物 [SEP] [SEP] 张 三 在 [SEP]: prompt "人物" (offsets 0-1, 1-2), text "张三在"
OFFSETS = [(0, 0), (0, 1), (1, 2), (0, 0), (0, 0), (0, 1), (1, 2), (2, 3), (0, 0)]


def test_every_span_is_read_also_empty_and_prompt_ones():
    spans = [(5, 6, 0.5),   # 张三
             (1, 1, 0.25),  # 人, in the prompt: text and probability only
             (7, 8, 0.75),  # 在 .. [SEP]: end offset 0 -> text[2:0] == "", start 2 end 0, kept
             (0, 0, 0.5),   # [CLS]: (0, 0) -> an empty text span at 0
             (1, 6, 0.5)]   # prompt into text: dropped
    found = uie_taskflow.read_spans(spans, OFFSETS, "人物", "张三在")
    assert [f.as_dict() for f in found] == [
        {"text": "张三", "start": 0, "end": 2, "probability": 0.5},
        {"text": "人", "probability": 0.25},
        {"text": "", "start": 2, "end": 0, "probability": 0.75},
        {"text": "", "start": 0, "end": 0, "probability": 0.5},
    ]


def test_joiner_reads_the_first_span_of_the_first_window_with_any():
    text_first = [[[], [Found("张三", 0.5, 0, 2), Found("人", 0.9)]]]
    prompt_first = [[[]], [[Found("人", 0.9), Found("张三", 0.5, 0, 2)]]]
    assert uie_taskflow.is_classification_stage(text_first) is False
    assert uie_taskflow.is_classification_stage(prompt_first) is True
    assert uie_taskflow.is_classification_stage([[[]], []]) is False


def test_joiner_shifts_text_spans_by_their_window_and_keeps_prompt_spans():
    windows = [[Found("张三", 0.5, 0, 2), Found("人", 0.25)], [Found("", 0.4, 3, 0), Found("李", 0.75, 1, 2)]]
    assert uie_taskflow.join_windows(windows, [0, 10], classification=False) == [
        {"text": "张三", "start": 0, "end": 2, "probability": 0.5},
        {"text": "人", "probability": 0.25},
        {"text": "", "start": 13, "end": 10, "probability": 0.4},
        {"text": "李", "start": 11, "end": 12, "probability": 0.75},
    ]


def test_joiner_as_classification_votes_with_each_windows_first_span():
    windows = [[Found("正向", 0.5), Found("负向", 0.9)],   # votes 正向 (the first), not the more probable
               [Found("负向", 0.75)],
               [],
               [Found("正向", 0.25, 0, 2)],             # a text span votes too
               [Found("负向", 0.25)]]
    # 负向: 2 votes, sum 1.0; 正向: 2 votes, sum 0.75 -> 负向 with the mean probability
    assert uie_taskflow.join_windows(windows, [0, 5, 10, 15, 20], classification=True) == \
        [{"text": "负向", "probability": 0.5}]
    # a tie on votes and sums: the first option seen
    assert uie_taskflow.join_windows([[Found("b", 0.5)], [Found("a", 0.5)]], [0, 1], True) == \
        [{"text": "b", "probability": 0.5}]
    assert uie_taskflow.join_windows([[], []], [0, 1], True) == []


# PaddleNLP 2.8.1's cut_chinese_sent on these texts (run in the paddle venv), which split_sentence uses
CUT_CHINESE_SENT = {
    "张三出生于北京。他是工程师！李四呢？好": ["张三出生于北京。", "他是工程师！", "李四呢？", "好"],
    "第一句。“引用。”第二句\n第三行。": ["第一句。", "“引用。”", "第二句", "第三行。"],
    "Hello? World... ok......yes……好……了": ["Hello?", " World... ok......", "yes……", "好……", "了"],
    "。。a。": ["。", "。a。"],
    "结尾。  ": ["结尾。"],
    "": [""],
}


@pytest.mark.parametrize("text", CUT_CHINESE_SENT)
def test_sentences_as_taskflow_cuts_them(text):
    assert uie.taskflow_sentences(text) == CUT_CHINESE_SENT[text]
    # the default mode's sentences: the same cuts, every character kept (a newline stays in its sentence)
    spans = uie.sentence_spans(text)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    pieces = [text[s:e] for s, e in spans]
    assert [p.rstrip("\n") for p in pieces if p.strip() or not text] == CUT_CHINESE_SENT[text]


def test_short_texts_carry_taskflows_offsets():
    # windows of 4 characters within each sentence; offsets are the summed lengths before each piece,
    # so after the newline Taskflow drops they are one short of the text's ("李" is at 9, Taskflow says 8).
    # "。\n" gets a second newline, hence an empty sentence (Taskflow runs the model on it too)
    text = "张三出生于北京。\n李四。"
    assert uie.taskflow_sentences(text) == ["张三出生于北京。", "", "李四。"]
    assert uie_taskflow.short_texts(text, 4, split_sentence=True) == [
        (0, "张三出生"), (4, "于北京。"), (8, ""), (8, "李四。")]
    assert uie_taskflow.short_texts(text, 4) == [(0, "张三出生"), (4, "于北京。"), (8, "\n李四。")]
