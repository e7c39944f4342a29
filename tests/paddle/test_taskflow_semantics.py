"""paddle_pad_to: Taskflow's UIE-M input semantics, padding-free, against Taskflow's own probabilities.

Taskflow (PaddleNLP 2.8.1) ran each (prompt, text) window padded with [PAD] to max_seq_len, pads at
position 0 and attended, [CLS] masked as a key; tools/make_paddle_fixtures.py recorded every window's
tokens and its start/end probabilities (real tokens, and the one value all its pads share).
"""

from __future__ import annotations

import pytest
import torch

import ernie_m_fast as emf
from paddle_fixtures import ATOL, UIE_DIR, taskflow_cases

CASES = taskflow_cases()


@pytest.fixture(scope="module")
def model():
    return emf.ErnieMForInformationExtraction.from_pretrained(UIE_DIR)


def _batch(windows, extra_columns=1):
    """Windows right-padded to the longest + `extra_columns`, so every row shows the pads' value."""
    width = max(len(w["input_ids"]) for w in windows) + extra_columns
    ids = torch.full((len(windows), width), 1, dtype=torch.long)
    mask = torch.zeros_like(ids)
    positions = torch.zeros_like(ids)
    for row, window in enumerate(windows):
        n = len(window["input_ids"])
        ids[row, :n] = torch.tensor(window["input_ids"])
        positions[row, :n] = torch.tensor(window["position_ids"])
        mask[row, :n] = 1
    return ids, mask, positions


def _probabilities(model, windows, max_seq_len, **kwargs):
    ids, mask, positions = _batch(windows)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, paddle_pad_to=max_seq_len, **kwargs)
    return torch.sigmoid(out.start_logits), torch.sigmoid(out.end_logits)


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_probabilities_match_taskflow(model, case, backend):
    model.set_backend(backend)
    windows = case["windows"]
    start, end = _probabilities(model, windows, case["max_seq_len"])
    for row, window in enumerate(windows):
        n = len(window["input_ids"])
        for key, probs in (("start", start[row]), ("end", end[row])):
            torch.testing.assert_close(probs[:n], torch.tensor(window[f"{key}_prob"]), atol=ATOL, rtol=0)
            if f"{key}_pad_prob" in window:  # a window shorter than max_seq_len: its pads' value
                torch.testing.assert_close(probs[n], torch.tensor(window[f"{key}_pad_prob"]), atol=ATOL, rtol=0)
            else:
                assert n == case["max_seq_len"]


def test_the_fixtures_cover_windows_full_windows_and_special_tokens_above_threshold():
    """What the comparison above exercises: texts split into windows, windows with no pads at all,
    and [SEP] rows whose probability crosses position_prob (Taskflow decodes those too). [CLS], a
    query-only row, is compared at column 0 of every window."""
    windows = [w for case in CASES for w in case["windows"]]
    assert any(len(case["windows"]) > len(case["texts"]) for case in CASES)
    assert any("start_pad_prob" not in w for w in windows)
    assert any(max(w["start_prob"][i], w["end_prob"][i]) > 0.5
               for w in windows for i, token in enumerate(w["input_ids"]) if token == 2)


def test_virtual_pads_equal_literal_pads(model):
    """M pads as one key row with + log M equals M real [PAD] tokens at position 0."""
    case = CASES[0]
    windows = case["windows"][:3]
    length = max(len(w["input_ids"]) for w in windows) + 5
    virtual = _probabilities(model, windows, length)
    ids, _, positions = _batch(windows, extra_columns=length - max(len(w["input_ids"]) for w in windows))
    with torch.no_grad():  # the literal pads are real tokens here: no mask, nothing left to add
        out = model(input_ids=ids, position_ids=positions, paddle_pad_to=length)
    literal = torch.sigmoid(out.start_logits)[:, : virtual[0].shape[1]]  # dropped columns: the pads' value
    # fp32: exp(s + log M) against M separate exp(s) terms sums in another order; the few-ulp difference in
    # the hidden states grows through the layers (1.3e-6 seen on one machine), so 1e-5 as for PaddleNLP parity
    torch.testing.assert_close(virtual[0], literal, atol=1e-5, rtol=0)


def test_a_window_alone_equals_it_in_a_batch(model):
    case = CASES[0]
    together, _ = _probabilities(model, case["windows"], case["max_seq_len"])
    for row, window in enumerate(case["windows"]):
        alone, _ = _probabilities(model, [window], case["max_seq_len"])
        n = len(window["input_ids"])
        torch.testing.assert_close(alone[0, : n + 1], together[row, : n + 1], atol=1e-6, rtol=0)


def test_input_checks(model):
    ids = torch.tensor([[0, 5, 6, 2]])
    with pytest.raises(ValueError, match="row 0 has 4 tokens, more than paddle_pad_to=3"):
        model(input_ids=ids, paddle_pad_to=3)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="paddle_pad_to must be a positive int"):
            model(input_ids=ids, paddle_pad_to=bad)
    with pytest.raises(ValueError, match="paddle_pad_to needs input_ids"):
        model(inputs_embeds=torch.zeros(1, 4, 32), paddle_pad_to=8)
    with pytest.raises(ValueError, match="output_attentions is not available with paddle_pad_to"):
        model(input_ids=ids, paddle_pad_to=8, output_attentions=True)


def test_our_tokenizer_gives_taskflows_windows():
    """Every (prompt, text) window Taskflow encoded, ids and offsets, from our tokenizer as loaded from
    the PaddleNLP checkpoint (PaddleNLP's piece handling) with Taskflow's truncation: Taskflow's
    windows are max_seq_len - len(prompt) - 3 characters where an ErnieM pair adds 4 special tokens,
    so a full window is cut to max_seq_len, `longest_first`. With transformers' piece handling some
    windows differ (a lone "▁" kept)."""
    tokenizer = emf.ErnieMTokenizer.from_pretrained(UIE_DIR)
    assert tokenizer.piece_handling == "paddlenlp"
    transformers_rule = emf.ErnieMTokenizer.from_pretrained(UIE_DIR, piece_handling="transformers")
    seen = {"whole": 0, "truncated": 0, "differs with transformers' rule": 0}
    for case in CASES:
        for window in case["windows"]:
            whole = tokenizer(window["prompt"], window["text"])["input_ids"]
            enc = tokenizer(window["prompt"], window["text"], return_offsets_mapping=True, truncation="longest_first",
                            max_length=case["max_seq_len"])
            assert enc["input_ids"] == window["input_ids"]
            assert [list(o) for o in enc["offset_mapping"]] == window["offset_mapping"]
            seen["whole" if len(whole) <= case["max_seq_len"] else "truncated"] += 1
            seen["differs with transformers' rule"] += transformers_rule(window["prompt"], window["text"])["input_ids"] != whole
    assert seen["truncated"] > 0 and seen["differs with transformers' rule"] > 0, seen
