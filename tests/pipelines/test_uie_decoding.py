"""UIE-M's pure parts on hand-made inputs with known answers: schema, prompts, span pairing, offsets,
windows and joining (Taskflow's rules, written down here from its source, not from ours)."""

from __future__ import annotations

import numpy as np
import pytest

from ernie_m_fast.pipelines import uie

# --------------------------------------------------------------------- schema and prompts


def test_schema_tree_and_classification_nodes():
    nodes = uie.parse_schema(["时间", {"歌曲名称": ["歌手", "所属专辑"]}, {"评价维度": "情感倾向[正向，负向]"}])
    assert [n.name for n in nodes] == ["时间", "歌曲名称", "评价维度"]
    assert [c.name for c in nodes[1].children] == ["歌手", "所属专辑"]
    assert nodes[2].children[0].name == "情感倾向[正向，负向]" and nodes[2].children[0].is_classification
    assert not nodes[0].is_classification
    assert [n.name for n in uie.parse_schema("Person")] == ["Person"]
    assert [c.name for c in uie.parse_schema({"Person": ["Company"]})[0].children] == ["Company"]
    nested = uie.parse_schema([{"A": [{"B": ["C"]}]}])
    assert nested[0].children[0].children[0].name == "C"


@pytest.mark.parametrize("bad", [3, [3], [{"Person": 3}], [], None])
def test_bad_schema_is_refused(bad):
    with pytest.raises(TypeError):
        uie.parse_schema(bad)


def test_prompts_in_taskflows_forms():
    # entity prompts: the name, full-width ASCII folded (the ideographic space is not: Taskflow's dbc2sbc)
    assert uie.entity_prompt("Ｐｅｒｓｏｎ") == "Person"
    assert uie.entity_prompt("情感倾向[正向，负向]") == "情感倾向[正向,负向]"
    assert uie.entity_prompt("a\u3000b") == "a\u3000b"
    # relation prompts from the parent's text
    assert uie.relation_prompt("歌手", "告别了") == "告别了的歌手"
    assert uie.relation_prompt("Company", "Steve", "en") == "Company of Steve"
    assert uie.relation_prompt("Sentiment classification [negative, positive]", "the film", "en") == \
        "Sentiment classification of the film [negative, positive]"
    assert uie.relation_prompt("情感倾向[正向，负向]", "服务") == "服务的情感倾向[正向,负向]"


# --------------------------------------------------------------------- span pairing


def _probs(n, above):
    p = np.full(n, 0.1, dtype=np.float32)
    for i, v in above.items():
        p[i] = v
    return p


def test_pairing_each_end_takes_the_last_unused_start_before_it():
    # starts 1, 3; ends 5, 7: both starts come before end 5; the later one (3) wins it and the
    # earlier one is used up, so end 7 finds no start left (Taskflow: "every id can only be used once")
    start = _probs(10, {1: 0.9, 3: 0.8})
    end = _probs(10, {5: 0.7, 7: 0.6})
    spans = uie.decode_spans(start, end, 0.5)
    assert [(s, e) for s, e, _ in spans] == [(3, 5)]
    assert spans[0][2] == pytest.approx(float(np.float32(0.8)) * float(np.float32(0.7)), rel=0, abs=0)


def test_pairing_single_token_and_consecutive_spans():
    # a start and an end on the same token make a one-token span; starts 0, 4 and ends 2, 4, 6:
    # (0, 2), (4, 4); end 6 has no start left
    start = _probs(8, {0: 0.9, 4: 0.9})
    end = _probs(8, {2: 0.9, 4: 0.9, 6: 0.9})
    assert [(s, e) for s, e, _ in uie.decode_spans(start, end, 0.5)] == [(0, 2), (4, 4)]


def test_pairing_overlapping_candidates_and_threshold_is_strict():
    # starts 1, 2 before end 3 -> (2, 3); start 5, ends 6, 8 -> (5, 6) and end 8 unpaired;
    # a probability equal to the threshold is not above it
    start = _probs(10, {1: 0.6, 2: 0.7, 5: 0.9, 9: 0.5})
    end = _probs(10, {3: 0.8, 6: 0.9, 8: 0.9})
    assert [(s, e) for s, e, _ in uie.decode_spans(start, end, 0.5)] == [(2, 3), (5, 6)]
    # an end before any start is skipped, and the start pairs with the next end
    start = _probs(6, {3: 0.9})
    end = _probs(6, {1: 0.9, 4: 0.9})
    assert [(s, e) for s, e, _ in uie.decode_spans(start, end, 0.5)] == [(3, 4)]


# --------------------------------------------------------------------- offsets


# [CLS] 情感 倾向 [ 正向 , 负向 ] [SEP] [SEP] 服务 一般 [SEP]  (prompt "情感倾向[正向,负向]", text "服务一般")
PROMPT = "情感倾向[正向,负向]"
TEXT = "服务一般"
OFFSETS = [(0, 0), (0, 2), (2, 4), (4, 5), (5, 7), (7, 8), (8, 10), (10, 11), (0, 0), (0, 0), (0, 2), (2, 4), (0, 0)]


def test_prompt_offsets_move_below_zero():
    shifted = uie.shift_prompt_offsets(OFFSETS)
    bias = 11 + 1  # end of the last prompt token + 1
    assert shifted[1:8] == [(s - bias, e - bias) for s, e in OFFSETS[1:8]]
    assert shifted[0] == (0, 0) and shifted[8:] == OFFSETS[8:]


def test_reading_spans_in_text_in_prompt_across_and_empty():
    found = uie.read_spans([(10, 10, 0.9), (4, 4, 0.8), (3, 10, 0.7), (11, 12, 0.6), (0, 11, 0.5)], OFFSETS, PROMPT, TEXT)
    as_dicts = [f.as_dict() for f in found]
    assert as_dicts == [
        {"text": "服务", "start": 0, "end": 2, "probability": 0.9},
        {"text": "正向", "probability": 0.8},  # an option read from the prompt
        # (3, 10) crosses from the prompt into the text: dropped; (11, 12) ends on [SEP]: empty, dropped
        {"text": "服务一般", "start": 0, "end": 4, "probability": 0.5},  # from [CLS]: Taskflow reads char 0
    ]


def test_full_width_text_offsets_index_the_original():
    text = "Ｆｕｌｌ　ＡＢＣ"
    offsets = [(0, 0), (0, 1), (0, 0), (0, 0), (0, 4), (5, 8), (0, 0)]  # [CLS] P [SEP] [SEP] Ｆｕｌｌ ＡＢＣ [SEP]
    (found,) = uie.read_spans([(5, 5, 0.9)], offsets, "P", text)
    assert (found.text, found.start, found.end) == ("ＡＢＣ", 5, 8) and text[found.start:found.end] == found.text


# --------------------------------------------------------------------- windows and joining


def test_char_windows_cover_the_text_in_order():
    assert uie.char_windows("abc", 5) == [(0, 3)]
    assert uie.char_windows("", 5) == [(0, 0)]
    assert uie.char_windows("abcdefghij", 4) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError):
        uie.char_windows("abc", 0)


def test_spans_of_later_windows_map_back_to_the_whole_text():
    text = "北京在中国。上海也在中国。"
    windows = uie.char_windows(text, 6)  # "北京在中国。" | "上海也在中国。"[:6] | ...
    per_window = [[uie.Found("北京", 0.9, 0, 2)], [uie.Found("上海", 0.8, 0, 2), uie.Found("中国", 0.7, 4, 6)], []]
    joined = uie.join_extractions(per_window, [s for s, _ in windows])
    assert [(d["text"], d["start"], d["end"]) for d in joined] == [("北京", 0, 2), ("上海", 6, 8), ("中国", 10, 12)]
    assert all(text[d["start"]:d["end"]] == d["text"] for d in joined)


def test_a_span_across_a_window_boundary_is_found_in_neither_half():
    # Taskflow's windows are independent: an entity cut by a boundary is only found as its parts
    text = "abcdefgh"
    per_window = [[uie.Found("cd", 0.9, 2, 4)], [uie.Found("ef", 0.9, 0, 2)]]
    joined = uie.join_extractions(per_window, [0, 4])
    assert [(d["start"], d["end"]) for d in joined] == [(2, 4), (4, 6)]
    assert [text[d["start"]:d["end"]] for d in joined] == ["cd", "ef"]


def test_classification_votes_over_windows():
    pos, neg = "正向", "负向"
    windows = [[uie.Found(pos, 0.9), uie.Found(neg, 0.95)], [uie.Found(pos, 0.7)], [uie.Found(pos, 0.5)],
               [uie.Found("服务", 0.99, 0, 2)]]  # a text span never answers a classification
    # window 1 votes for neg (its most probable option), windows 2 and 3 for pos: pos wins 2 to 1
    assert uie.join_classification(windows) == [{"text": pos, "probability": pytest.approx((0.7 + 0.5) / 2)}]
    # a tie on votes goes to the larger summed probability
    assert uie.join_classification([[uie.Found(pos, 0.6)], [uie.Found(neg, 0.9)]])[0]["text"] == neg
    assert uie.join_classification([[], [uie.Found("x", 0.9, 0, 1)]]) == []
