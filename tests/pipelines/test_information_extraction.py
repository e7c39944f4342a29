"""information-extraction (UIE-M): the pipeline end to end.

Two kinds of model with known answers:
- a hand-set ErnieMForInformationExtraction (conftest.HandSet) whose start logit fires on some tokens
  and end logit on others, whatever the prompt: checks the real model path (logits -> sigmoid ->
  spans -> offsets), windows and batching;
- the pipeline's one model call (`span_probabilities`) replaced by a table "prompt -> tokens to mark",
  so answers can depend on the prompt: checks the prompts built per schema node (relations from the
  parent's text, Chinese and English forms, classification options) and how answers nest.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ernie_m_fast as emf
from ernie_m_fast.pipelines.encoding import encode_with_offsets

TEXT = "他们在北京和巴黎开会。"
START, END = 1, 2
FIRE = 1.0 / (1.0 + math.exp(-8.0))  # sigmoid of a firing logit: SCALE * HIDDEN - 8 = 8


@pytest.fixture(scope="module")
def hand_ie(hand_set, tokenizer):
    classes = {tokenizer.convert_tokens_to_ids(t): c for t, c in {"北": START, "京": END, "巴": START, "黎": END}.items()}
    model = hand_set.model(emf.ErnieMForInformationExtraction, classes, head_classes=[START, END], bias=-8.0)
    return emf.pipeline("information-extraction", model=model, tokenizer=tokenizer, schema=["国"])


def test_entities_from_the_model(hand_ie):
    (got,) = hand_ie(TEXT)
    assert [(d["text"], d["start"], d["end"]) for d in got["国"]] == [("北京", 3, 5), ("巴黎", 6, 8)]
    assert all(d["probability"] == pytest.approx(FIRE * FIRE, abs=1e-6) for d in got["国"])
    assert hand_ie(TEXT, position_prob=0.9999) == [{}]  # nothing above that threshold
    assert hand_ie("") == [{}] and hand_ie("没有") == [{}]


def test_windows_map_back_and_a_span_across_a_boundary_is_lost(hand_ie):
    # max_seq_len=12: windows of 12 - len("国") - 3 = 8 characters, but only 12 - 1 - 4 = 7 tokens fit
    # (4 special tokens in an ErnieM pair), so the first window ends after 7 characters: "巴" (6) and
    # "黎" (7) land in different windows and 巴黎 is found in neither, as with Taskflow
    (cut,) = hand_ie(TEXT, max_seq_len=12)
    assert [(d["text"], d["start"]) for d in cut["国"]] == [("北京", 3)]
    # max_seq_len=11: 6 tokens per window -> windows "他们在北京和" | "巴黎开会。": 巴黎 maps back to 6
    (both,) = hand_ie(TEXT, max_seq_len=11)
    assert [(d["text"], d["start"], d["end"]) for d in both["国"]] == [("北京", 3, 5), ("巴黎", 6, 8)]
    long = "我们的学习。" * 30 + TEXT  # 191 characters: many windows of the model's 62 tokens
    (got,) = hand_ie(long)
    assert [(d["text"], d["start"]) for d in got["国"]] == [("北京", 180 + 3), ("巴黎", 180 + 6)]
    assert all(long[d["start"]:d["end"]] == d["text"] for d in got["国"])


def test_batches_and_input_forms_equal_one_by_one(hand_ie, checkpoint, close):
    texts = [TEXT, "北京", "Ｆｕｌｌ ＡＢＣ 巴黎", "我们的学习。" * 30 + TEXT, ""]
    alone = [hand_ie(t)[0] for t in texts]
    close(hand_ie(texts, max_tokens=30), alone)
    close(hand_ie([{"text": t} for t in texts], batch_size=2, max_tokens=None), alone)
    close(list(hand_ie(iter(texts))), alone)
    # a random model: spans everywhere, relations of relations; every span is the text it points at
    ie = emf.pipeline("uie", model=checkpoint("ErnieMForInformationExtraction"), position_prob=0.6,
                      schema=[{"人": [{"国": ["月"]}]}, "好[是,不是]"])
    texts = texts[:3] + ["北京是中国的首都。" * 8]
    alone = [ie(t)[0] for t in texts]
    close(ie(texts, max_tokens=200), alone)

    def check(result, text):
        for entries in result.values():
            for d in entries:
                if "start" in d:
                    assert text[d["start"]:d["end"]] == d["text"]
                check(d.get("relations", {}), text)

    for result, text in zip(alone, texts):
        check(result, text)
    assert any(result for result in alone)


class TablePipeline:
    """Replace a pipeline's model call by a table: prompt -> [(first token, last token, "text"|"prompt")]."""

    def __init__(self, pipe, tokenizer, table: dict):
        self.codes = {prompt: encode_with_offsets(tokenizer, [prompt])[0] for prompt in table}
        self.table = table
        self.tokenizer = tokenizer
        self.asked: list[str] = []
        pipe.span_probabilities = self.probabilities

    def _prompt(self, row):
        for prompt, code in self.codes.items():
            n = len(code.ids)
            if row[1: 1 + n] == code.ids and row[1 + n] == self.tokenizer.sep_token_id:
                return prompt, n
        raise AssertionError(f"a prompt the table does not know: {self.tokenizer.convert_ids_to_tokens(row)}")

    def probabilities(self, rows, params):
        out = []
        for row in rows:
            prompt, n = self._prompt(row)
            self.asked.append(prompt)
            tokens = self.tokenizer.convert_ids_to_tokens(row)
            start, end = np.full(len(row), 0.1, np.float32), np.full(len(row), 0.1, np.float32)
            regions = {"prompt": range(1, 1 + n), "text": range(n + 3, len(row) - 1)}
            for first, last, where in self.table[prompt]:
                for i in regions[where]:
                    start[i] = max(start[i], 0.9 if tokens[i] == first else 0.1)
                    end[i] = max(end[i], 0.9 if tokens[i] == last else 0.1)
            out.append((start, end))
        return out


P = pytest.approx(0.9 * 0.9, abs=1e-6)


def test_relation_and_classification_prompts_in_chinese(hand_ie, tokenizer):
    pipe = emf.pipeline("information-extraction", model=hand_ie.model, tokenizer=tokenizer,
                        schema=[{"人": ["国", "知[好，不好]"]}])
    table = TablePipeline(pipe, tokenizer, {
        "人": [("他", "们", "text")],
        "他们的国": [("北", "京", "text"), ("巴", "黎", "text")],
        "他们的知[好,不好]": [("好", "好", "prompt")],  # full-width comma folded into the prompt
    })
    (got,) = pipe(TEXT)
    assert got == {"人": [{"text": "他们", "start": 0, "end": 2, "probability": P, "relations": {
        "国": [{"text": "北京", "start": 3, "end": 5, "probability": P},
              {"text": "巴黎", "start": 6, "end": 8, "probability": P}],
        "知[好，不好]": [{"text": "好", "probability": P}]}}]}
    assert table.asked == ["人", "他们的国", "他们的知[好,不好]"]  # level by level, as Taskflow


def test_relation_prompts_in_english_and_nested_levels(hand_ie, tokenizer):
    pipe = emf.pipeline("information-extraction", model=hand_ie.model, tokenizer=tokenizer, schema_lang="en",
                        schema=[{"人": [{"国": ["年"]}]}])
    TablePipeline(pipe, tokenizer, {
        "人": [("他", "们", "text"), ("巴", "黎", "text")],
        "国 of 他们": [("北", "京", "text")],
        "国 of 巴黎": [],
        "年 of 北京": [("和", "和", "text")],
    })
    (got,) = pipe(TEXT)
    people = got["人"]
    assert [p["text"] for p in people] == ["他们", "巴黎"] and "relations" not in people[1]
    (country,) = people[0]["relations"]["国"]
    assert country["text"] == "北京" and country["relations"]["年"] == [{"text": "和", "start": 5, "end": 6, "probability": P}]


def test_the_sigmoid_is_applied_to_logits(hand_ie):
    # the head returns logits; without the sigmoid a firing logit (8) would pass any threshold < 1 and
    # a silent one (-8) none; with it, the probability is FIRE * FIRE
    (got,) = hand_ie(TEXT)
    assert got["国"][0]["probability"] < 1.0


def test_bad_arguments(hand_ie):
    with pytest.raises(ValueError, match="position_prob"):
        hand_ie(TEXT, position_prob=1.5)
    with pytest.raises(ValueError, match="max_seq_len"):
        hand_ie(TEXT, max_seq_len=1000)
    with pytest.raises(ValueError, match="no room"):
        hand_ie(TEXT, max_seq_len=6, schema=["一个很长的名字"])
    with pytest.raises(TypeError):
        hand_ie(TEXT, schema=[3])
    with pytest.raises(TypeError):
        hand_ie([3])
    with pytest.raises(ValueError, match="schema_lang"):
        hand_ie(TEXT, schema_lang="fr")
    pipe = emf.pipeline("information-extraction", model=hand_ie.model, tokenizer=hand_ie.tokenizer)
    with pytest.raises(ValueError, match="needs a schema"):
        pipe(TEXT)
    pipe.set_schema("国")
    assert pipe(TEXT) == hand_ie(TEXT)


def test_taskflow_compat_truncates_full_windows_as_taskflow(hand_ie):
    """max_seq_len=11: Taskflow's windows are 11 - len("国") - 3 = 7 characters, "他们在北京和巴" | "黎开会。";
    7 + 1 + 4 special tokens = 12 > 11, so `longest_first` drops the text's last token, "巴": 巴黎 is
    found in neither window. The default mode ends the first window before "巴" and finds both."""
    (default,) = hand_ie(TEXT, max_seq_len=11)
    (compat,) = hand_ie(TEXT, max_seq_len=11, taskflow_compat=True)
    assert [d["text"] for d in default["国"]] == ["北京", "巴黎"]
    assert [(d["text"], d["start"], d["end"]) for d in compat["国"]] == [("北京", 3, 5)]
    assert compat["国"][0]["probability"] == pytest.approx(FIRE * FIRE, abs=1e-6)
    # room for the whole text: the two modes agree (attention is zeroed, so Taskflow's pads change nothing)
    assert hand_ie(TEXT, taskflow_compat=True) == hand_ie(TEXT)


def test_taskflow_compat_uses_paddlenlps_piece_handling_and_checks_its_arguments(hand_ie):
    assert hand_ie.tokenizer.piece_handling == "transformers"
    assert hand_ie.taskflow_tokenizer.piece_handling == "paddlenlp"
    assert hand_ie.taskflow_tokenizer is hand_ie.taskflow_tokenizer  # made once
    assert hand_ie.tokenizer.piece_handling == "transformers"  # the pipeline's own is left alone
    assert hand_ie.chunk_size(hand_ie._check_params(hand_ie.params, {"taskflow_compat": True})) is None
    with pytest.raises(TypeError, match="taskflow_compat must be True or False"):
        hand_ie(TEXT, taskflow_compat="yes")
    with pytest.raises(ValueError, match="sets paddle_pad_to"):
        hand_ie(TEXT, taskflow_compat=True, forward_kwargs={"paddle_pad_to": 64})


def test_split_sentence_windows_by_sentence_and_maps_back(hand_ie):
    """split_sentence=True (Taskflow's option): windows never cross Taskflow's sentence ends. The default
    mode keeps true offsets; taskflow_compat reproduces Taskflow's, which lose the newline it drops."""
    text = "他们在北京。\n巴黎开会。"  # 巴 is at 7
    (default,) = hand_ie(text, split_sentence=True)
    assert [(d["text"], d["start"], d["end"]) for d in default["国"]] == [("北京", 3, 5), ("巴黎", 7, 9)]
    (compat,) = hand_ie(text, split_sentence=True, taskflow_compat=True)
    assert [(d["text"], d["start"], d["end"]) for d in compat["国"]] == [("北京", 3, 5), ("巴黎", 6, 8)]
    # a span across a sentence end is in no sentence's window
    (cut,) = hand_ie("他们在北。京和巴黎", split_sentence=True)
    assert [d["text"] for d in cut["国"]] == ["巴黎"]
    assert hand_ie("他们在北。京和巴黎")[0]["国"][0]["text"] == "北。京"
    with pytest.raises(TypeError, match="split_sentence must be True or False"):
        hand_ie(text, split_sentence=1)
