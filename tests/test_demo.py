"""The demo's question answering: the answer is a span of the context, as a QA user expects."""

from __future__ import annotations

import pytest
import torch

from ernie_m_fast import demo
from ernie_m_fast.modeling import ErnieMForQuestionAnswering
from ernie_m_fast.outputs import QuestionAnsweringModelOutput


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from ernie_m_fast.tiny import train_tiny_tokenizer
    from ernie_m_fast.tokenization import ErnieMTokenizer

    return ErnieMTokenizer.from_pretrained(train_tiny_tokenizer(str(tmp_path_factory.mktemp("tok")), vocab_size=1000))


def _question_and_context_tokens(tokenizer):
    question, context = demo.QUESTION
    enc = tokenizer(question, context, return_token_type_ids=True, return_special_tokens_mask=True)
    kinds = ["special" if special else ("context" if t else "question")
             for t, special in zip(enc["token_type_ids"], enc["special_tokens_mask"])]
    return kinds


def _peaked_logits(n: int, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    start_logits, end_logits = torch.randn(n, generator=g), torch.randn(n, generator=g)
    start_logits[start], end_logits[end] = 50.0, 50.0  # far above every other score
    return start_logits, end_logits


def test_summary_answers_from_the_context_when_the_question_scores_highest(tokenizer):
    kinds = _question_and_context_tokens(tokenizer)
    question_tokens = [i for i, k in enumerate(kinds) if k == "question"]
    inputs = demo._inputs(tokenizer, ErnieMForQuestionAnswering, "cpu")
    assert inputs["input_ids"].shape[-1] == len(kinds)
    start_logits, end_logits = _peaked_logits(len(kinds), question_tokens[0], question_tokens[-1])
    out = QuestionAnsweringModelOutput(start_logits=start_logits[None], end_logits=end_logits[None])
    line = demo._summary(ErnieMForQuestionAnswering, out, inputs, tokenizer)
    answer = line.split(" = ", 1)[1].strip("'")
    assert answer and answer in demo.QUESTION[1], line  # a piece of the context, not of the question
    start, end = (int(x) for x in line.split("[", 1)[1].split("]", 1)[0].split(","))
    assert all(kinds[i] == "context" for i in range(start, end + 1)), (line, kinds)


def test_qa_answer_is_the_best_context_span_cut_by_offsets(tokenizer):
    question, context = demo.QUESTION
    kinds = _question_and_context_tokens(tokenizer)
    context_tokens = [i for i, k in enumerate(kinds) if k == "context"]
    first, last = context_tokens[1], context_tokens[3]
    start_logits, end_logits = _peaked_logits(len(kinds), first, last)
    start, end, answer = demo.qa_answer(tokenizer, question, context, start_logits, end_logits)
    assert (start, end) == (first, last)
    offsets = tokenizer(question, context, return_offsets_mapping=True)["offset_mapping"]
    assert answer == context[offsets[first][0]:offsets[last][1]] and answer
    with pytest.raises(ValueError, match="logits cover"):
        demo.qa_answer(tokenizer, question, context, start_logits[:-1], end_logits[:-1])


def test_best_answer_span_rules():
    scores = torch.tensor([9.0, 0.0, 1.0, 2.0, 3.0, 0.0])
    allowed = torch.tensor([False, False, True, True, True, True])
    # position 0 scores highest for both but is not allowed; end never comes before start
    assert demo.best_answer_span(scores, scores, allowed) == (4, 4)
    start = torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0, 0.0])
    end = torch.tensor([0.0, 4.0, 0.0, 1.0, 0.0, 3.0])  # the best end (1) lies before the start
    assert demo.best_answer_span(start, end, allowed) == (2, 5)
    assert demo.best_answer_span(start, end, allowed, max_answer_tokens=2) == (2, 3)  # at most 2 tokens
    with pytest.raises(ValueError, match="no token may hold the answer"):
        demo.best_answer_span(start, end, torch.zeros(6, dtype=torch.bool))
