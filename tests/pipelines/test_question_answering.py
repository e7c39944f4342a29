"""question-answering on a model whose start logit fires on one token and end logit on another
(conftest.HandSet), so the answer is known; and on a random model for the invariants."""

from __future__ import annotations

import pytest

import ernie_m_fast as emf

CONTEXT = "Paris is the capital of France. It is big."
QUESTION = "Where is it?"
START, END, BOTH = 1, 2, 3  # embedding classes: start row reads 1, end row reads 2


@pytest.fixture(scope="module")
def make_qa(hand_set, tokenizer):
    def make(token_classes: dict):
        classes = {tokenizer.convert_tokens_to_ids(t): c for t, c in token_classes.items()}
        model = hand_set.model(emf.ErnieMForQuestionAnswering, classes, head_classes=[START, END], num_labels=2)
        return emf.pipeline("question-answering", model=model, tokenizer=tokenizer)
    return make


@pytest.fixture(scope="module")
def qa(make_qa):
    return make_qa({"▁capital": START, "▁Fran": END})


def test_the_known_answer_in_character_offsets(qa):
    got = qa(question=QUESTION, context=CONTEXT)
    assert got["answer"] == "capital of France"  # widened to the whole word "France"
    assert CONTEXT[got["start"]:got["end"]] == got["answer"] and got["score"] > 0.99
    raw = qa(question=QUESTION, context=CONTEXT, align_to_words=False)
    assert raw["answer"] == "capital of Fran" and CONTEXT[raw["start"]:raw["end"]] == raw["answer"]
    # max_answer_len counts tokens: "▁capital ▁of ▁Fran" is 3, so 2 cannot hold it
    short = qa(question=QUESTION, context=CONTEXT, max_answer_len=2)
    assert short["answer"] != "capital of France" and short["score"] < 0.01


def test_top_k_answers_are_all_inside_the_context(qa):
    answers = qa(question=QUESTION, context=CONTEXT, top_k=5)
    assert len(answers) == 5 and answers[0]["answer"] == "capital of France"
    assert [a["score"] for a in answers] == sorted((a["score"] for a in answers), reverse=True)
    assert all(CONTEXT[a["start"]:a["end"]] == a["answer"] and a["answer"] for a in answers)
    assert all(a["answer"] not in ("Where", "Where is it?") for a in answers)  # never the question


def test_question_tokens_are_never_answers(make_qa):
    # the start token only in the question: the context holds no start, so the best answer is weak
    qa = make_qa({"▁is": START, "▁Fran": END})
    got = qa(question="It is what?", context="Paris of France.")
    assert got["score"] < 0.5 and "is" not in got["answer"]


def test_impossible_answer_when_cls_fires(make_qa):
    qa = make_qa({"[CLS]": {START: 1.0, END: 1.0}, "▁capital": START, "▁Fran": END})
    assert qa(question=QUESTION, context=CONTEXT)["answer"] == "capital of France"  # the answer beats [CLS]
    context = "我们的学习。"  # no start or end token: [CLS] takes nearly all probability
    weak = qa(question=QUESTION, context=context)
    assert weak["answer"] and weak["score"] < 0.01  # not asked for: some answer, however weak
    none = qa(question=QUESTION, context=context, handle_impossible_answer=True)
    assert (none["start"], none["end"], none["answer"]) == (0, 0, "") and none["score"] > 0.9


def test_long_context_windows_map_back(qa):
    filler = "我们的学习。" * 30  # ~180 tokens of no answer before it
    context = filler + CONTEXT
    got = qa(question=QUESTION, context=context, doc_stride=8)
    assert got["answer"] == "capital of France" and got["start"] == len(filler) + CONTEXT.index("capital")
    assert context[got["start"]:got["end"]] == got["answer"]
    # the answer is inside several overlapping windows: transformers adds up its scores
    assert qa(question=QUESTION, context=context, doc_stride=40)["score"] >= got["score"] - 1e-6


def test_input_forms_and_batches(checkpoint, close):
    qa = emf.pipeline("question-answering", model=checkpoint("ErnieMForQuestionAnswering", num_labels=2))
    contexts = [CONTEXT, "北京是中国的首都。" * 20, "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ …", "x"]
    questions = [QUESTION, "首都?", "ＡＢＣ?", "y"]
    alone = [qa(question=q, context=c, top_k=3) for q, c in zip(questions, contexts)]
    close(qa(question=questions, context=contexts, top_k=3, max_tokens=50), alone)
    close(qa([{"question": q, "context": c} for q, c in zip(questions, contexts)], top_k=3), alone)
    close(list(qa(iter([{"question": q, "context": c} for q, c in zip(questions, contexts)]), top_k=3)), alone)
    close(qa(QUESTION, CONTEXT) if False else qa({"question": QUESTION, "context": CONTEXT}),
          qa(question=[QUESTION], context=[CONTEXT]))  # a list of one is one example, as transformers
    for answers, context in zip(alone, contexts):
        for a in answers if isinstance(answers, list) else [answers]:
            assert context[a["start"]:a["end"]] == a["answer"]
    with pytest.raises(ValueError, match="cannot be empty"):
        qa(question="q", context="")
    with pytest.raises(ValueError, match="same lengths"):
        qa(question=["a", "b"], context=["c"])
    with pytest.raises(ValueError, match="top_k"):
        qa(question="q", context="c", top_k=0)


def test_padding_takes_transformers_values_and_changes_nothing(qa):
    """The model is padding-free: `padding` is accepted as transformers accepts it, and checked, but the
    answer is the same whatever it says."""
    from transformers.utils import PaddingStrategy

    expected = qa(question=QUESTION, context=CONTEXT)
    for padding in (True, False, "longest", "max_length", "do_not_pad", PaddingStrategy.MAX_LENGTH):
        assert qa(question=QUESTION, context=CONTEXT, padding=padding) == expected
    for bad in ("max-length", 3, "yes"):
        with pytest.raises(ValueError, match="padding must be True, False or one of"):
            qa(question=QUESTION, context=CONTEXT, padding=bad)
