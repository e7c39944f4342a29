"""Shared helpers: token-budget batch plans, token windows, words from offsets."""

from __future__ import annotations

import pytest
import torch

from ernie_m_fast.pipelines.batching import pad_ids, plan_batches, run_batched
from ernie_m_fast.pipelines.encoding import encode_with_offsets, token_windows, word_ids, word_spans


def test_token_budget_plan_longest_first_within_budget():
    lengths = [5, 30, 10, 10, 2, 60]
    batches = plan_batches(lengths, max_tokens=40)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # every sequence exactly once
    for b in batches:
        assert len(b) == 1 or sum(lengths[i] for i in b) <= 40  # a sequence over budget runs alone
    assert batches[0] == [5]  # longest first
    assert [lengths[i] for b in batches for i in b] == sorted(lengths, reverse=True)
    assert all(len(b) <= 2 for b in plan_batches(lengths, max_tokens=1000, batch_size=2))


def test_fixed_plan_keeps_input_order():
    assert plan_batches([3, 1, 2, 5, 4], max_tokens=None, batch_size=2) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        plan_batches([1], max_tokens=0)
    with pytest.raises(ValueError):
        plan_batches([1], batch_size=0)


def test_run_batched_returns_rows_in_input_order_cut_to_length():
    rows = [[5, 6, 7], [8], [9, 10]]

    def forward(ids, mask):  # per token: the id itself; per sequence: the number of real tokens
        return ids.float().unsqueeze(-1), mask.sum(-1).float()

    out = run_batched(rows, forward, (True, False), pad_id=1, max_tokens=4)
    assert [o[0][:, 0].tolist() for o in out] == [[5, 6, 7], [8], [9, 10]]
    assert [float(o[1]) for o in out] == [3, 1, 2]
    ids, mask = pad_ids(rows, pad_id=1)
    assert ids.tolist() == [[5, 6, 7], [8, 1, 1], [9, 10, 1]] and mask.dtype == torch.int64


def test_token_windows_overlap_by_stride_and_cover_everything():
    assert token_windows(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert token_windows(3, 4, 1) == [(0, 3)]
    assert token_windows(0, 4, 0) == [(0, 0)]
    assert token_windows(8, 4, 0) == [(0, 4), (4, 8)]
    for bad in ((10, 4, 4), (10, 0, 0), (10, 4, -1)):
        with pytest.raises(ValueError):
            token_windows(*bad)


def test_words_from_offsets(tokenizer):
    text = "Hello world, 北京 New-York"
    (enc,) = encode_with_offsets(tokenizer, [text])
    words = word_ids(text, enc.offsets)
    assert words == sorted(words)
    spans = word_spans(words, enc.offsets, text)
    found = [text[s:e] for _, (s, e) in sorted(spans.items())]
    # CJK characters and punctuation stand alone; letters that touch form one word; a lone "▁" token
    # (the tiny vocabulary has one before 北) starts the next word, or stands alone before a CJK character
    assert [w for w in found if w.strip()] == ["Hello", "world", ",", "北", "京", "New", "-", "York"], found
    assert all(w == w.strip() or not w.strip() for w in found)  # spans leave surrounding spaces out
