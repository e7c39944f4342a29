"""question-answering: transformers' extractive QuestionAnsweringPipeline on ErnieMForQuestionAnswering.

Each (question, context) is encoded as `[CLS] question [SEP] [SEP] context-window [SEP]`: the
question truncated to `max_question_len` tokens, the context cut into windows of `max_seq_len`
tokens in all overlapping by `doc_stride` tokens. Per window, transformers' scoring: the start and
end logits are softmaxed over the context tokens and `[CLS]`, a span's score is p_start * p_end,
spans must end at or after their start and hold at most `max_answer_len` tokens, and only context
tokens can be answers. `[CLS]`'s p_start * p_end (the lowest over windows) is the "no answer" score,
returned as `{"answer": "", "start": 0, "end": 0}` when `handle_impossible_answer=True`. With
`align_to_words=True` an answer is widened to whole words (`encoding.word_ids`). Answers with the same
text (any case) found in several places or windows are merged, their scores added, as transformers
does. `start`/`end` are character offsets into the context: `context[start:end] == answer`.

Output: one `{"score", "start", "end", "answer"}` dict (or a list of them, best first, when `top_k` > 1
finds more than one) per question; a list of those for a list of questions (transformers returns a
single result for a list of one, and so does this).

`padding` takes what transformers' QA pipeline passes to its tokenizer (True, False, "longest",
"max_length", "do_not_pad", or a PaddingStrategy) and is checked like it, but changes nothing
observable: the model is padding-free, so a window's scores are the same with or without pads.
"""

from __future__ import annotations

import numpy as np

from ..modeling import ErnieMForQuestionAnswering
from .base import Pipeline, Prepared
from .encoding import encode_with_offsets, strip_span, token_windows, word_ids, word_spans

# what transformers puts on logits that cannot be an answer before its softmax
_MASKED_LOGIT = -10000.0

# transformers' PaddingStrategy values (and True / False), the QA pipeline's `padding`
PADDINGS = ("longest", "max_length", "do_not_pad")


def span_candidates(start_probs: np.ndarray, end_probs: np.ndarray, max_answer_len: int, k: int):
    """The k best (start, end, score) among spans with start <= end < start + max_answer_len, best first."""
    starts, ends = np.triu_indices(len(start_probs))
    band = ends - starts < max_answer_len
    starts, ends = starts[band], ends[band]
    scores = start_probs[starts] * end_probs[ends]
    best = np.argsort(-scores, kind="stable")[:k]
    return [(int(starts[b]), int(ends[b]), scores[b]) for b in best]


def window_probs(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """transformers' per-window softmax: logits outside `allowed` set to -10000 first."""
    masked = np.where(allowed, logits, _MASKED_LOGIT)
    exp = np.exp(masked - masked.max())
    return exp / exp.sum()


class QuestionAnsweringPipeline(Pipeline):
    task = "question-answering"
    model_class = ErnieMForQuestionAnswering
    defaults = {"top_k": 1, "doc_stride": None, "max_answer_len": 15, "max_seq_len": None, "max_question_len": 64,
                "handle_impossible_answer": False, "align_to_words": True, "padding": None}
    token_level = (True, True)

    def _validate(self, params):
        super()._validate(params)
        for name, low in (("top_k", 1), ("max_answer_len", 1), ("max_question_len", 1)):
            value = params[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} parameter should be >= {low} (got {value!r})")
        if params["max_seq_len"] is not None:
            value = params["max_seq_len"]
            if not isinstance(value, int) or not 5 <= value <= self.max_length:
                raise ValueError(f"max_seq_len must be an int in [5, {self.max_length}] (the model's longest input), got {value!r}")
        stride = params["doc_stride"]
        if stride is not None and (not isinstance(stride, int) or stride < 0):
            raise ValueError(f"doc_stride must be a non-negative int, got {stride!r}")
        padding = getattr(params["padding"], "value", params["padding"])  # transformers' PaddingStrategy enum
        if padding is not None and not isinstance(padding, bool) and padding not in PADDINGS:
            raise ValueError(f"padding must be True, False or one of {PADDINGS} (transformers' values), got "
                             f"{params['padding']!r}; it changes nothing here: the model is padding-free")

    # ------------------------------------------------------------------ inputs
    def _gather_inputs(self, inputs, kwargs):
        question, context = kwargs.pop("question", None), kwargs.pop("context", None)
        if inputs is None and question is None and context is None:
            raise TypeError("the question-answering pipeline needs question= and context= (or {question, context} dicts)")
        if inputs is not None:
            if question is not None or context is not None:
                raise TypeError("pass either inputs or question=/context=, not both")
            if isinstance(inputs, dict):
                return inputs, kwargs
            if isinstance(inputs, (list, tuple)) and len(inputs) == 1:  # transformers: a list of one is one example
                return inputs[0], kwargs
            return inputs, kwargs
        if question is None or context is None:
            raise ValueError("question-answering needs both question= and context=")
        if isinstance(question, str) and isinstance(context, str):
            return {"question": question, "context": context}, kwargs
        if isinstance(question, list) and isinstance(context, str):
            examples = [{"question": q, "context": context} for q in question]
        elif isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise ValueError("Questions and contexts don't have the same lengths")
            examples = [{"question": q, "context": c} for q, c in zip(question, context)]
        else:
            raise ValueError("Arguments can't be understood: question= and context= must be str or lists of str")
        return (examples[0] if len(examples) == 1 else examples), kwargs

    def _is_single(self, inputs) -> bool:
        return isinstance(inputs, dict)

    def _input_help(self) -> str:
        return "question= and context= (str or lists of str), or {question, context} dicts (a list or an iterable)"

    def _check_item(self, item) -> None:
        if not isinstance(item, dict):
            raise TypeError(f"a question-answering example must be a {{question, context}} dict, got {type(item).__name__}")
        for key in ("question", "context"):
            if key not in item:
                raise KeyError("You need to provide a dictionary with keys {question:..., context:...}")
            if item[key] is None:
                raise ValueError(f"`{key}` cannot be None")
            if not isinstance(item[key], str):
                raise TypeError(f"`{key}` must be a str, got {type(item[key]).__name__}")
            if not item[key]:
                raise ValueError(f"`{key}` cannot be empty")

    # ------------------------------------------------------------------ encoding
    def _prepare_many(self, items, params):
        max_seq_len = params["max_seq_len"] or min(384, self.max_length)
        doc_stride = params["doc_stride"] if params["doc_stride"] is not None else min(max_seq_len // 2, 128)
        questions = encode_with_offsets(self.tokenizer, [item["question"] for item in items])
        contexts = encode_with_offsets(self.tokenizer, [item["context"] for item in items])
        prepared = []
        for item, question, context in zip(items, questions, contexts):
            q_ids = question.ids[: params["max_question_len"]]
            room = max_seq_len - len(q_ids) - 4  # [CLS] q [SEP] [SEP] context [SEP]
            if room < 1:
                raise ValueError(f"a question of {len(q_ids)} tokens leaves no room for the context in "
                                 f"max_seq_len={max_seq_len}; lower max_question_len or raise max_seq_len")
            windows = token_windows(len(context.ids), room, min(doc_stride, room - 1))
            rows = [self.tokenizer.build_inputs_with_special_tokens(q_ids, context.ids[s:e]) for s, e in windows]
            prepared.append(Prepared(rows, (context, windows, len(q_ids) + 3)))
        return prepared

    def _forward(self, input_ids, attention_mask, **forward_kwargs):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **forward_kwargs)
        return out.start_logits, out.end_logits

    # ------------------------------------------------------------------ decoding
    def _finish(self, item, prepared, outputs, params):
        context, windows, first = prepared.context
        text = item["context"]
        words = word_ids(text, context.offsets) if params["align_to_words"] else None
        spans = word_spans(words, context.offsets, text) if words is not None else None
        top_k = params["top_k"]
        pre_top_k = top_k * 2 + 10 if params["align_to_words"] else top_k  # widening can merge candidates
        answers: list[dict] = []
        null_score = 1000000.0
        for (start_logits, end_logits), (w_start, w_end) in zip(outputs, windows):
            allowed = np.zeros(len(start_logits), dtype=bool)
            allowed[0] = True  # [CLS]: its probability is the "no answer" score
            allowed[first: first + w_end - w_start] = True
            p_start, p_end = window_probs(start_logits, allowed), window_probs(end_logits, allowed)
            null_score = min(null_score, float(p_start[0] * p_end[0]))
            ctx = slice(first, first + w_end - w_start)
            for s, e, score in span_candidates(p_start[ctx], p_end[ctx], params["max_answer_len"], pre_top_k):
                s, e = w_start + s, w_start + e
                if spans is not None:
                    char_start, char_end = spans[words[s]][0], spans[words[e]][1]
                else:
                    char_start, char_end = strip_span(text, context.offsets[s][0], context.offsets[e][1])
                answer = text[char_start:char_end]
                same = next((a for a in answers if a["answer"].lower() == answer.lower()), None)
                if same is not None:
                    same["score"] += float(score)
                else:
                    answers.append({"score": float(score), "start": char_start, "end": char_end, "answer": answer})
        if params["handle_impossible_answer"]:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers
