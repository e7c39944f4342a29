"""The model side of the server: load a checkpoint, tokenize requests, run one batch of one kind.

Kinds of work (each a batch of token-id lists, one list per input):
- "embed": the encoder's last hidden state pooled per input. Pooling is TEI's: `cls` takes the
  first token's hidden state (`[CLS]`, before ErnieM's tanh pooler), `mean` averages the hidden
  states of the input's tokens (special tokens included, as sentence-transformers does). The
  default is the checkpoint's `1_Pooling/config.json` when it has one, else `cls` (TEI's default for
  BERT-like models). Any checkpoint can embed: a head's encoder is used without its head.
- "predict": a sequence-classification checkpoint's logits.
- "embed_all": every token's last hidden state, unpooled ([tokens, hidden] per input; TEI's /embed_all).
- "extract" / "token-classify": the rows of a served task pipeline (`pipelines.py`): per row, the
  pipeline's model outputs (UIE-M start/end probabilities, NER logits) cut to the row's tokens.

Execution is padding-free: batches are handed to the model as a padded [batch, longest] id tensor
with its attention mask, and the model packs the real tokens before any layer runs, so the
batch's cost is its real tokens, which is what `max_batch_tokens` counts.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .. import ErnieMFast, ErnieMTokenizer, ops
from ..modeling import ErnieMForInformationExtraction, ErnieMForSequenceClassification, ErnieMForTokenClassification
from ..pipelines.batching import pad_ids, run_batched
from . import errors
from .pipelines import SERVED_PIPELINES
from .settings import ServerSettings

logger = logging.getLogger("ernie_m_fast.serving")

Text = Union[str, tuple]  # a text or a (text, text_pair)

# the task each head serves when --task auto
_TASK_OF_CLASS = {
    ErnieMForSequenceClassification: "predict",
    ErnieMForTokenClassification: "token-classify",
    ErnieMForInformationExtraction: "extract",
}
# the class `ErnieMFast.from_pretrained(task=...)` loads for each explicit task
_MODEL_TASK = {"embed": "base", "predict": "sequence-classification", "token-classify": "token-classification",
               "extract": "information-extraction"}


def take_within_budget(lengths: Sequence[int], max_tokens: int, max_items: Optional[int] = None) -> int:
    """How many leading items fit a batch: at least one, then while the real tokens stay within budget."""
    total, count = 0, 0
    for length in lengths:
        if count and (total + length > max_tokens or (max_items is not None and count >= max_items)):
            break
        total += length
        count += 1
    return count


def utf8_offsets(text: str) -> list[int]:
    """For each character offset 0..len(text), the byte offset in `text.encode("utf-8")`."""
    at, total = [0], 0
    for char in text:
        code = ord(char)
        total += 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
        at.append(total)
    return at


def checkpoint_pooling(path: str) -> Optional[str]:
    """`cls` or `mean` from a sentence-transformers `1_Pooling/config.json`, if the checkpoint has one."""
    config_file = os.path.join(path, "1_Pooling", "config.json")
    if not os.path.isfile(config_file):
        return None
    with open(config_file, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    raise ValueError(f"{config_file} asks for a pooling other than cls or mean, which this server does not serve")


def _resolve_dtype(name: Optional[str], device: torch.device) -> torch.dtype:
    if name is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if name not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {name!r}")
    return getattr(torch, name)


def serving_layouts(max_batch_tokens: int, max_input_length: int):
    """A few static packed layouts for CUDA graphs, growing 4x up to the token budget."""
    from ..cuda_graphs import StaticShape

    rows, layouts = 256, []
    while rows < max_batch_tokens:
        layouts.append(StaticShape(rows=rows, sequences=max(1, rows // 4), max_seqlen=min(rows, max_input_length)))
        rows *= 4
    layouts.append(StaticShape(rows=max_batch_tokens, sequences=max(1, max_batch_tokens // 4),
                               max_seqlen=max_input_length))
    return layouts


class Engine:
    """A loaded checkpoint and its tokenizer; `run_batch` is called from one model thread only."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = _resolve_dtype(settings.dtype, self.device)
        self.tokenizer = ErnieMTokenizer.from_pretrained(settings.model)
        self._left_tokenizer = copy.copy(self.tokenizer)  # same vocabulary; truncates from the left
        self._left_tokenizer.truncation_side = "left"
        self._right_tokenizer = copy.copy(self.tokenizer)
        self._right_tokenizer.truncation_side = "right"
        explicit = None if settings.task == "auto" else _MODEL_TASK[settings.task]
        # CPU float32: weights packed once for oneDNN unless told otherwise (half the batch-1 latency at
        # the base shape); int8 on request; neither elsewhere
        packable = self.device.type == "cpu" and self.dtype == torch.float32 and settings.quantize is None
        self.prepack = packable if settings.prepack is None else settings.prepack
        self.model = ErnieMFast.from_pretrained(settings.model, task=explicit, dtype=self.dtype, device=self.device,
                                                backend=settings.backend, prepack=self.prepack,
                                                quantize=settings.quantize)
        self.task = settings.task if settings.task != "auto" else _TASK_OF_CLASS.get(type(self.model), "embed")
        if settings.task == "auto" and type(self.model) not in _TASK_OF_CLASS and self.model is not self.model.base_model:
            raise ValueError(f"--task auto found a {type(self.model).__name__}, which this server does not serve; "
                             "pass --task embed to serve its encoder")
        config = self.model.config
        longest = config.max_position_embeddings - 2  # position ids are offset by 2
        self.max_input_length = min(settings.max_input_length or longest, longest)
        if self.max_input_length > settings.max_batch_tokens:
            raise ValueError(f"max_input_length {self.max_input_length} exceeds max_batch_tokens "
                             f"{settings.max_batch_tokens}; raise --max-batch-tokens or lower --max-input-length")
        local = os.path.isdir(settings.model)
        self.pooling = settings.pooling or (checkpoint_pooling(settings.model) if local else None) or "cls"
        self.id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
        self.pad_token_id = config.pad_token_id
        self.is_reranker = self.task == "predict" and config.num_labels == 1  # serves /rerank (TEI's rule)
        if settings.cuda_graphs:
            from ..cuda_graphs import enable_cuda_graphs

            # on a CPU device the same layouts run eagerly (cuda_graphs' documented test path)
            enable_cuda_graphs(self.model, serving_layouts(settings.max_batch_tokens, self.max_input_length))
        self.pipeline = None
        if self.task in SERVED_PIPELINES:  # its rows go through the batcher once the server attaches it
            self.pipeline = SERVED_PIPELINES[self.task](self.model, self.tokenizer)

    # ------------------------------------------------------------------ info
    def info(self) -> dict:
        from .._version import __version__

        config = self.model.config
        if self.task == "predict":  # TEI calls a one-label classifier a re-ranker
            model_type = {"reranker" if self.is_reranker else "classifier": {
                "id2label": {str(k): v for k, v in self.id2label.items()},
                "label2id": {v: k for k, v in self.id2label.items()}}}
        else:
            model_type = {"embedding": {"pooling": self.pooling}} if self.task == "embed" else {self.task: {}}
        s = self.settings
        return {
            "model_id": s.model, "model_sha": None, "model_dtype": str(self.dtype).replace("torch.", ""),
            "model_type": model_type, "task": self.task, "device": str(self.device), "backend": ops.resolve_backend(self.model.backend, self.device),
            "hidden_size": config.hidden_size, "max_concurrent_requests": s.max_concurrent_requests,
            "max_input_length": self.max_input_length, "max_batch_tokens": s.max_batch_tokens,
            "max_batch_requests": s.max_batch_requests, "max_client_batch_size": s.max_client_batch_size,
            "auto_truncate": s.auto_truncate, "tokenization_workers": s.tokenization_workers,
            "cuda_graphs": s.cuda_graphs, "prepack": self.prepack, "quantize": s.quantize, "version": __version__, "sha": None, "docker_label": None,
        }

    # ------------------------------------------------------------------ tokenization (any thread but the model's)
    def encode(self, texts: Sequence[Text], truncate: bool, direction: str = "right") -> list[list[int]]:
        """Token ids per input ([CLS] A [SEP], or [CLS] A [SEP] [SEP] B [SEP] for a pair)."""
        firsts = [t[0] if isinstance(t, tuple) else t for t in texts]
        pairs = [t[1] if isinstance(t, tuple) else None for t in texts]
        try:
            ids = self._encode_rows(self.tokenizer, firsts, pairs, truncation=False)
            long_rows = [i for i, row in enumerate(ids) if len(row) > self.max_input_length]
            if long_rows and not truncate:
                raise errors.input_too_long(len(ids[long_rows[0]]), self.max_input_length)
            if long_rows:
                side = self._left_tokenizer if direction == "left" else self._right_tokenizer
                cut = self._encode_rows(side, [firsts[i] for i in long_rows], [pairs[i] for i in long_rows],
                                        truncation=True)
                for i, row in zip(long_rows, cut):
                    ids[i] = row
        except (ValueError, TypeError) as exc:
            raise errors.ApiError(422, errors.TOKENIZER, f"Tokenization error: {exc}") from exc
        return ids

    def _encode_rows(self, tokenizer, firsts, pairs, truncation: bool) -> list[list[int]]:
        ids: list = [None] * len(firsts)
        options = dict(truncation=truncation, max_length=self.max_input_length if truncation else None,
                       return_attention_mask=False)
        singles = [i for i, p in enumerate(pairs) if p is None]
        doubles = [i for i, p in enumerate(pairs) if p is not None]
        if singles:
            for i, row in zip(singles, tokenizer([firsts[i] for i in singles], **options)["input_ids"]):
                ids[i] = list(row)
        if doubles:
            rows = tokenizer([firsts[i] for i in doubles], [pairs[i] for i in doubles], **options)["input_ids"]
            for i, row in zip(doubles, rows):
                ids[i] = list(row)
        return ids

    def tokens(self, texts: Sequence[str], add_special_tokens: bool) -> list[list[dict]]:
        """TEI's /tokenize answer: per input, [{id, text, special, start, stop}].

        As TEI: `start`/`stop` are offsets in bytes of the input's UTF-8 encoding (TEI reads them from
        the Rust tokenizers' `encode`, whose offsets are byte offsets), so
        `input.encode()[start:stop].decode() == text`. `text` is the input's text the token covers
        (TEI means the same, but slices characters by those byte offsets, which garbles text beyond
        ASCII: huggingface/text-embeddings-inference#494). Special tokens carry their token string
        and no offsets."""
        try:
            enc = self.tokenizer(list(texts), add_special_tokens=add_special_tokens, return_offsets_mapping=True,
                                 return_special_tokens_mask=True, return_attention_mask=False)
        except (ValueError, TypeError) as exc:
            raise errors.ApiError(422, errors.TOKENIZER, f"Tokenization error: {exc}") from exc
        out = []
        for text, ids, offsets, special in zip(texts, enc["input_ids"], enc["offset_mapping"],
                                               enc["special_tokens_mask"]):
            pieces = self.tokenizer.convert_ids_to_tokens(list(ids))
            byte_at = utf8_offsets(text)
            row = []
            for token_id, (start, stop), is_special, piece in zip(ids, offsets, special, pieces):
                if is_special:
                    row.append({"id": int(token_id), "text": piece, "special": True, "start": None, "stop": None})
                else:
                    row.append({"id": int(token_id), "text": text[start:stop], "special": False,
                                "start": byte_at[start], "stop": byte_at[stop]})
            out.append(row)
        return out

    # ------------------------------------------------------------------ the model thread
    def run_batch(self, kind: str, rows: Sequence[Sequence[int]]):
        """One model call on a batch of token-id lists, one result per input: a float32 row for
        "embed"/"predict", a [tokens, hidden] array for "embed_all", a tuple of the pipeline's output
        arrays for a pipeline's kind."""
        if self.pipeline is not None and kind == self.pipeline.kind:
            return run_batched(rows, self.pipeline.forward_rows, self.pipeline.token_level, pad_id=self.pad_token_id,
                               device=self.device, max_tokens=None, batch_size=len(rows))
        if kind == "embed_all":
            return [hidden for (hidden,) in run_batched(rows, self._hidden_states, (True,), pad_id=self.pad_token_id,
                                                        device=self.device, max_tokens=None, batch_size=len(rows))]
        input_ids, attention_mask = pad_ids(rows, self.pad_token_id, self.device)
        with torch.inference_mode():
            if kind == "embed":
                hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                if self.pooling == "cls":
                    result = hidden[:, 0]
                else:
                    weights = attention_mask.to(hidden.dtype)[:, :, None]
                    result = (hidden * weights).sum(1) / weights.sum(1)
            elif kind == "predict":
                result = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            else:
                raise ValueError(f"unknown kind of work {kind!r}")
            return result.float().cpu().numpy()

    def _hidden_states(self, input_ids, attention_mask) -> tuple:
        return (self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state,)

    def run_texts(self, kind: str, texts: Sequence[Text], truncate: bool = True) -> np.ndarray:
        """Tokenize and run `texts` in batches of at most `max_batch_tokens` real tokens (no server needed)."""
        ids = self.encode(texts, truncate=truncate)
        results, start = [], 0
        while start < len(ids):
            count = take_within_budget([len(r) for r in ids[start:]], self.settings.max_batch_tokens,
                                       self.settings.max_batch_requests)
            results.append(self.run_batch(kind, ids[start:start + count]))
            start += count
        return np.concatenate(results) if results else np.zeros((0, 0), np.float32)


def postprocess_embedding(vector: np.ndarray, normalize: bool, dimensions: Optional[int]) -> np.ndarray:
    """The answered float32 vector: its first `dimensions` values, L2-normalised when asked."""
    if dimensions is not None:
        vector = vector[:dimensions]
    if normalize:
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return vector


def postprocess_scores(logits: np.ndarray, id2label: dict, raw_scores: bool) -> list[dict]:
    """TEI's predictions: softmax over >1 classes (sigmoid for one) unless raw, highest first."""
    scores = logits.astype(np.float64)
    if not raw_scores:
        if scores.shape[0] > 1:
            scores = np.exp(scores - scores.max())
            scores = scores / scores.sum()
        else:
            scores = 1.0 / (1.0 + np.exp(-scores))
    order = np.argsort(-scores, kind="stable")
    return [{"score": float(scores[i]), "label": id2label.get(int(i), f"LABEL_{int(i)}")} for i in order]
