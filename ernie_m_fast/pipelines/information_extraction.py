"""information-extraction: UIE-M with PaddleNLP Taskflow's semantics on ErnieMForInformationExtraction.

    ie = emf.pipeline("information-extraction", model="path/to/uie-m", schema=[{"Person": ["Company"]}],
                      schema_lang="en")
    ie("In 1997, Steve was excited to become the CEO of Apple.")
    # [{"Person": [{"text": "Steve", "start": 9, "end": 14, "probability": 0.99,
    #               "relations": {"Company": [{"text": "Apple", "start": 48, "end": 53, "probability": 0.98}]}}]}]

The schema is asked level by level (`uie.py` holds the semantics, as pure functions): all texts'
prompts of one level run through the model together in token-budget batches. The head returns
logits (transformers' API); this pipeline applies the sigmoid that PaddleNLP's UIEM applies inside
its forward. Output, as Taskflow: a list with one dict per text (also for a single str).

`taskflow_compat=True` switches to Taskflow's results span for span, quirks included
(`uie_taskflow.py` says which, and why the default differs): PaddleNLP's tokenizer rule, Taskflow's
window sizes and truncation, PaddleNLP's padded no-mask input (`paddle_pad_to`), empty and prompt
spans, and Taskflow's window joiner.

`span_probabilities` is the one place the model is called; a subclass (or `forward_kwargs`, passed
to every model call) can switch in another way to compute the probabilities.
"""

from __future__ import annotations

import copy
from typing import NamedTuple, Optional

import numpy as np
import torch

from ..modeling import ErnieMForInformationExtraction
from . import uie, uie_taskflow
from .base import CHUNK_SIZE, Pipeline
from .encoding import Encoded, encode_with_offsets


class InformationExtractionPipeline(Pipeline):
    task = "information-extraction"
    model_class = ErnieMForInformationExtraction
    defaults = {"schema": None, "position_prob": 0.5, "max_seq_len": None, "schema_lang": "ch",
                "taskflow_compat": False, "split_sentence": False}
    token_level = (True, True)

    def _validate(self, params):
        super()._validate(params)
        schema = params["schema"]
        if schema is not None and not (isinstance(schema, list) and all(isinstance(n, uie.SchemaNode) for n in schema)):
            params["schema"] = uie.parse_schema(schema)
        prob = params["position_prob"]
        if not isinstance(prob, (int, float)) or isinstance(prob, bool) or not 0.0 <= prob < 1.0:
            raise ValueError(f"position_prob must be a number in [0, 1), got {prob!r}")
        max_seq_len = params["max_seq_len"]
        if max_seq_len is not None and (not isinstance(max_seq_len, int) or isinstance(max_seq_len, bool)
                                        or not 5 <= max_seq_len <= self.max_length):
            raise ValueError(f"max_seq_len must be an int in [5, {self.max_length}] (the model's longest input), "
                             f"got {max_seq_len!r}")
        if params["schema_lang"] not in ("ch", "en"):
            raise ValueError(f"schema_lang must be 'ch' or 'en', got {params['schema_lang']!r}")
        for name in ("taskflow_compat", "split_sentence"):
            if not isinstance(params[name], bool):
                raise TypeError(f"{name} must be True or False, got {params[name]!r}")
        if params["taskflow_compat"] and "paddle_pad_to" in (params["forward_kwargs"] or {}):
            raise ValueError("taskflow_compat=True sets paddle_pad_to=max_seq_len itself; leave it out of forward_kwargs")

    def chunk_size(self, params) -> Optional[int]:
        # Taskflow sizes a relation stage's windows by the largest prompt of the whole call: compat runs it whole
        return None if params["taskflow_compat"] else CHUNK_SIZE

    def set_schema(self, schema) -> None:
        """Replace the schema (Taskflow's `set_schema`)."""
        self.params = self._check_params(self.params, {"schema": schema})

    # ------------------------------------------------------------------ inputs
    def _input_help(self) -> str:
        return 'a str, a {"text": str} dict, a list of those, or an iterable of those'

    def _is_single(self, inputs) -> bool:
        return isinstance(inputs, (str, dict))

    def _shape_single(self, result, params, call_kwargs):
        return [result]  # Taskflow returns a list for a single text too

    def _check_item(self, item) -> None:
        if isinstance(item, dict):
            if not isinstance(item.get("text"), str):
                raise TypeError(f'an information-extraction input dict needs a str "text", got {item!r:.80}')
            return
        super()._check_item(item)

    # ------------------------------------------------------------------ the schema, level by level
    def _run_list(self, items, params):
        if params["schema"] is None:
            raise ValueError("information-extraction needs a schema: pass schema= (e.g. ['Person', {'Person': ['Company']}])")
        texts = [item["text"] if isinstance(item, dict) else item for item in items]
        results: list[dict] = [{} for _ in texts]
        # (node, parents): parents[k] lists the result dicts of text k this node's prompts are built from
        queue = [(node, None) for node in params["schema"]]
        while queue:
            node, parents = queue.pop(0)
            examples = []  # (text index, prompt, where the answer goes)
            for k, text in enumerate(texts):
                if parents is None:
                    examples.append((k, uie.entity_prompt(node.name), None))
                else:
                    for parent in parents[k]:
                        examples.append((k, uie.relation_prompt(node.name, parent["text"], params["schema_lang"]), parent))
            answers = self.extract([(prompt, texts[k]) for k, prompt, _ in examples], node.is_classification, params)
            found: list[list[dict]] = [[] for _ in texts]
            for (k, _, parent), answer in zip(examples, answers):
                if not answer:
                    continue
                target = results[k] if parent is None else parent.setdefault("relations", {})
                target.setdefault(node.name, []).extend(answer)
                found[k].extend(answer)
            queue.extend((child, found) for child in node.children)
        return results

    # ------------------------------------------------------------------ one level: prompts x texts
    def extract(self, examples: list[tuple[str, str]], classification: bool, params: dict) -> list[list[dict]]:
        """Answers for (prompt, text) pairs: per pair, the node's result list (Taskflow's shape)."""
        if not examples:
            return []
        max_seq_len = params["max_seq_len"] or min(512, self.max_length)
        if params["taskflow_compat"]:
            return self._extract_as_taskflow(examples, params, max_seq_len)
        prompts = sorted({prompt for prompt, _ in examples})
        prompt_codes = dict(zip(prompts, encode_with_offsets(self.tokenizer, prompts)))
        windows = self._windows(examples, prompt_codes, max_seq_len, params["split_sentence"])
        rows, offsets = [], []
        for (prompt, _), text_windows in zip(examples, windows):
            code = prompt_codes[prompt]
            for window in text_windows:
                rows.append(self.tokenizer.build_inputs_with_special_tokens(code.ids, window.ids))
                offsets.append(self.tokenizer.build_offset_mapping_with_special_tokens(code.offsets, window.offsets))
        probs = self.span_probabilities(rows, params)
        answers, at = [], 0
        for (prompt, text), text_windows in zip(examples, windows):
            per_window = []
            for window, (start_probs, end_probs), row_offsets in zip(text_windows, probs[at:], offsets[at:]):
                spans = uie.decode_spans(start_probs, end_probs, params["position_prob"])
                per_window.append(uie.read_spans(spans, row_offsets, prompt, text[window.start: window.end]))
            at += len(text_windows)
            if classification:
                answers.append(uie.join_classification(per_window))
            else:
                answers.append(uie.join_extractions(per_window, [window.start for window in text_windows]))
        return answers

    def _windows(self, examples, prompt_codes: dict, max_seq_len: int, split_sentence: bool = False) -> list[list["Window"]]:
        """Each (prompt, text)'s windows: Taskflow's windows of `max_seq_len - len(prompt) - 3` characters
        (within each sentence with `split_sentence`), except that a window whose tokens do not fit in
        `max_seq_len` ends before its first token that does not fit, and the next window starts there."""
        plans = []
        for prompt, text in examples:
            size = max_seq_len - len(prompt) - uie.SUMMARY_TOKENS
            room = max_seq_len - len(prompt_codes[prompt].ids) - 4  # [CLS] prompt [SEP] [SEP] text [SEP]
            if size < 1 or room < 1:
                raise ValueError(f"the prompt {prompt!r} leaves no room for text in max_seq_len={max_seq_len}")
            segments = uie.sentence_spans(text) if split_sentence else [(0, len(text))]
            plans.append((text, size, room, segments))
        # Taskflow's windows of every text in one tokenizer call; only windows after a cut are encoded alone
        flat = [(i, a + s, a + e) for i, (text, size, _, segments) in enumerate(plans) for a, b in segments
                for s, e in uie.char_windows(text[a:b], size)]
        encoded = dict(zip(flat, encode_with_offsets(self.tokenizer, [plans[i][0][s:e] for i, s, e in flat])))
        out = []
        for i, (text, size, room, segments) in enumerate(plans):
            windows = []
            for start, limit in segments:
                while True:
                    end = min(start + size, limit)
                    code = encoded.get((i, start, end)) or encode_with_offsets(self.tokenizer, [text[start:end]])[0]
                    while len(code.ids) > room:
                        if end == start + 1:  # one character alone makes more tokens than fit: keep what fits
                            code = Encoded(code.ids[:room], code.offsets[:room])
                            break
                        end = start + max(1, code.offsets[room][0])
                        code = encode_with_offsets(self.tokenizer, [text[start:end]])[0]
                    windows.append(Window(start, end, code.ids, code.offsets))
                    if end >= limit:
                        break
                    start = end
            out.append(windows)
        return out

    def _extract_as_taskflow(self, examples: list[tuple[str, str]], params: dict, max_seq_len: int) -> list[list[dict]]:
        """`extract` as Taskflow's `_single_stage_predict` computes it (`uie_taskflow` lists the rules)."""
        tokenizer = self.taskflow_tokenizer
        size = uie_taskflow.window_size(max_seq_len, [prompt for prompt, _ in examples])
        windows = [uie_taskflow.short_texts(text, size, params["split_sentence"]) for _, text in examples]
        prompts = sorted({prompt for prompt, _ in examples})
        prompt_codes = dict(zip(prompts, encode_with_offsets(tokenizer, prompts)))
        window_codes = iter(encode_with_offsets(tokenizer, [piece for pieces in windows for _, piece in pieces]))
        rows, offsets = [], []
        for (prompt, _), pieces in zip(examples, windows):
            code = prompt_codes[prompt]
            for _ in pieces:
                window = next(window_codes)
                excess = len(code.ids) + len(window.ids) + 4 - max_seq_len
                prompt_ids, text_ids = uie_taskflow.truncate_longest_first(code.ids, window.ids, excess)
                prompt_offsets, text_offsets = uie_taskflow.truncate_longest_first(code.offsets, window.offsets, excess)
                rows.append(tokenizer.build_inputs_with_special_tokens(prompt_ids, text_ids))
                offsets.append(tokenizer.build_offset_mapping_with_special_tokens(prompt_offsets, text_offsets))
        forward_kwargs = {**(params["forward_kwargs"] or {}), "paddle_pad_to": max_seq_len}
        probs = iter(self.span_probabilities(rows, {**params, "forward_kwargs": forward_kwargs}))
        row_offsets = iter(offsets)
        found = []  # per example, per window: its spans
        for (prompt, _), pieces in zip(examples, windows):
            per_window = []
            for _, piece in pieces:
                start_probs, end_probs = next(probs)
                decoded = uie.decode_spans(start_probs, end_probs, params["position_prob"])
                per_window.append(uie_taskflow.read_spans(decoded, next(row_offsets), prompt, piece))
            found.append(per_window)
        classification = uie_taskflow.is_classification_stage(found)
        return [uie_taskflow.join_windows(per_window, [offset for offset, _ in pieces], classification)
                for per_window, pieces in zip(found, windows)]

    @property
    def taskflow_tokenizer(self):
        """The tokenizer with PaddleNLP's piece handling, as Taskflow's (a copy when the pipeline's has another)."""
        if getattr(self.tokenizer, "piece_handling", "paddlenlp") == "paddlenlp":
            return self.tokenizer
        cached = getattr(self, "_taskflow_tokenizer", None)
        if cached is None or cached[0] is not self.tokenizer:
            paddle_rules = copy.deepcopy(self.tokenizer)
            paddle_rules.piece_handling = "paddlenlp"
            cached = self._taskflow_tokenizer = (self.tokenizer, paddle_rules)
        return cached[1]

    def span_probabilities(self, rows: list[list[int]], params: dict) -> list[tuple[np.ndarray, np.ndarray]]:
        """Start and end probabilities of every token of every row (the one call into the model)."""
        return self.run_rows(rows, params)

    def _forward(self, input_ids, attention_mask, **forward_kwargs):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **forward_kwargs)
        # the head gives logits (transformers' API); PaddleNLP's UIEM applies this sigmoid in its forward
        return torch.sigmoid(out.start_logits.float()), torch.sigmoid(out.end_logits.float())


class Window(NamedTuple):
    """One window of a text: its characters [start, end) and their tokens (offsets relative to start)."""

    start: int
    end: int
    ids: list[int]
    offsets: list[tuple[int, int]]
