"""`ernie-m-fast demo`: every head on multilingual text, with parity against transformers when installed.

With no checkpoint it builds everything locally — a sentencepiece tokenizer trained on the bundled
multilingual corpus and small random models of every head class — so it runs on a fresh machine
with no network.
"""

from __future__ import annotations

import os
import tempfile
import time

import torch

from .configuration import ErnieMConfig
from .modeling import (ErnieMFast, ErnieMForInformationExtraction, ErnieMForMultipleChoice,
                       ErnieMForQuestionAnswering, ErnieMForSequenceClassification, ErnieMForTokenClassification,
                       ErnieMModel)

TEXTS = [
    "ErnieM reads a hundred languages with one encoder.",
    "百度的ERNIE-M是一个多语言预训练模型。",
    "東京は日本の首都です。",
    "서울은 한국의 수도입니다.",
    "مرحبا بالعالم، هذا نموذج متعدد اللغات",
    "नमस्ते दुनिया, यह एक बहुभाषी मॉडल है।",
    "Привет, мир! Это многоязычная модель.",
    "¿Dónde está la biblioteca? Ça va très bien, merci.",
]
QUESTION = ("Where is the capital of Japan?", "東京は日本の首都です。")
CHOICES = ("The capital of Japan is", ["Tokyo.", "a small river.", "東京。"])

HEADS = (ErnieMModel, ErnieMForSequenceClassification, ErnieMForTokenClassification, ErnieMForQuestionAnswering,
         ErnieMForMultipleChoice, ErnieMForInformationExtraction)
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Parity bound per dtype: fp32 is the same math (observed ~1e-6); half precisions round each layer.
PARITY_TOL = {torch.float32: 1e-4, torch.float16: 5e-2, torch.bfloat16: 2e-1}


def build_small_checkpoints(root: str, seed: int = 0) -> tuple[str, dict]:
    """A tokenizer and one small random checkpoint per head class under `root`."""
    from .tiny import train_tiny_tokenizer
    from .tokenization import ErnieMTokenizer

    tok_dir = train_tiny_tokenizer(os.path.join(root, "tokenizer"), vocab_size=1000)
    tokenizer = ErnieMTokenizer.from_pretrained(tok_dir)
    config = ErnieMConfig(vocab_size=len(tokenizer), hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=256, max_position_embeddings=130)
    paths = {}
    for cls in HEADS:
        torch.manual_seed(seed)
        head_config = ErnieMConfig.from_dict(config.to_dict())
        if cls in (ErnieMForSequenceClassification, ErnieMForTokenClassification):
            head_config.num_labels = 3  # the others keep the default 2, as a real base checkpoint has (QA needs it)
        model = cls(head_config)
        path = os.path.join(root, cls.__name__)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths[cls.__name__] = path
    return tok_dir, paths


def _inputs(tokenizer, cls, device):
    if cls is ErnieMForQuestionAnswering:
        enc = tokenizer([QUESTION[0]], [QUESTION[1]], padding=True, return_tensors="pt")
    elif cls is ErnieMForMultipleChoice:
        prompt, options = CHOICES
        enc = tokenizer([prompt] * len(options), options, padding=True, return_tensors="pt")
        enc = {k: v.unsqueeze(0) for k, v in enc.items()}
    else:
        enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}


def _summary(cls, out, inputs, tokenizer) -> str:
    if cls is ErnieMModel:
        return f"last_hidden_state {tuple(out.last_hidden_state.shape)}, pooler_output {tuple(out.pooler_output.shape)}"
    if cls is ErnieMForSequenceClassification:
        return f"predicted labels {out.logits.argmax(-1).tolist()}"
    if cls is ErnieMForTokenClassification:
        return f"token labels of text 0: {out.logits[0].argmax(-1)[: int(inputs['attention_mask'][0].sum())].tolist()}"
    if cls is ErnieMForMultipleChoice:
        return f"choice scores {[round(x, 3) for x in out.logits.softmax(-1)[0].tolist()]}"
    if cls is ErnieMForQuestionAnswering:
        start, end, answer = qa_answer(tokenizer, *QUESTION, out.start_logits[0], out.end_logits[0])
        return f"answer tokens [{start}, {end}] of the context = {answer!r}"
    ids = inputs["input_ids"][0]  # information extraction: per-token start/end probabilities
    length = int(inputs["attention_mask"][0].sum())
    start = int(out.start_logits[0, :length].argmax())
    end = max(start, int(out.end_logits[0, :length].argmax()))
    span = tokenizer.decode(ids[start : end + 1].tolist(), skip_special_tokens=True)
    return f"best span tokens [{start}, {end}] = {span!r}"


def best_answer_span(start_logits: torch.Tensor, end_logits: torch.Tensor, allowed: torch.Tensor,
                     max_answer_tokens: int = 15) -> tuple[int, int]:
    """(start, end), inclusive token indices, maximising start_logits[start] + end_logits[end] over spans
    of at most `max_answer_tokens` that lie wholly on `allowed` tokens (as transformers' QA pipeline scores)."""
    allowed = allowed.bool()
    if not bool(allowed.any()):
        raise ValueError("no token may hold the answer (the context is empty or was truncated away)")
    n = start_logits.shape[-1]
    scores = start_logits.float()[:, None] + end_logits.float()[None, :]  # [start, end]
    index = torch.arange(n)
    length = index[None, :] - index[:, None]
    valid = (length >= 0) & (length < max_answer_tokens) & allowed[:, None] & allowed[None, :]
    start, end = divmod(int(scores.masked_fill(~valid, float("-inf")).argmax()), n)
    return start, end


def qa_answer(tokenizer, question: str, context: str, start_logits: torch.Tensor, end_logits: torch.Tensor,
              max_answer_tokens: int = 15) -> tuple[int, int, str]:
    """(start token, end token, answer text): the best span of the context, never of the question.

    The logits are a QA model's for `tokenizer(question, context)`. Context tokens are those of the second
    sequence (token type 1) that are not special; the answer is cut from `context` by their offsets."""
    enc = tokenizer(question, context, return_token_type_ids=True, return_special_tokens_mask=True,
                    return_offsets_mapping=True)
    if len(enc["input_ids"]) != start_logits.shape[-1]:
        raise ValueError(f"the logits cover {start_logits.shape[-1]} tokens; question + context encode to "
                         f"{len(enc['input_ids'])}")
    in_context = torch.tensor([t == 1 and not special for t, special in
                               zip(enc["token_type_ids"], enc["special_tokens_mask"])])
    start, end = best_answer_span(start_logits.cpu(), end_logits.cpu(), in_context, max_answer_tokens)
    offsets = enc["offset_mapping"]
    return start, end, context[offsets[start][0]:offsets[end][1]]


def _max_diff(ours, theirs, mask) -> float:
    worst = 0.0
    for a, b in zip(ours.to_tuple(), theirs.to_tuple()):
        if not isinstance(a, torch.Tensor):
            continue
        a, b = a.float(), b.float()
        if a.dim() >= 2 and a.shape[: mask.dim()] == mask.shape:
            a, b = a[mask], b[mask]
        worst = max(worst, (a - b).abs().max().item())
    return worst


def run_demo(checkpoint=None, backend="auto", device=None, dtype="float32") -> int:
    from .tokenization import ErnieMTokenizer

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch_dtype = _DTYPES[dtype]
    try:
        import transformers
    except ImportError:
        transformers = None

    with tempfile.TemporaryDirectory() as root:
        if checkpoint is None:
            print("No checkpoint given: training a small multilingual tokenizer and building small random models...")
            _, paths = build_small_checkpoints(root)
            runs = [(paths[cls.__name__], None) for cls in HEADS]
        else:
            runs = [(checkpoint, None)]
        failures = 0
        for path, task in runs:
            tokenizer = ErnieMTokenizer.from_pretrained(path)
            model = ErnieMFast.from_pretrained(path, task=task, dtype=torch_dtype, device=device, backend=backend)
            cls = type(model)
            inputs = _inputs(tokenizer, cls, device)
            with torch.inference_mode():
                model(**inputs)  # warm-up (kernel compilation, caches) apart from the timed run
                start = time.perf_counter()
                out = model(**inputs)
                elapsed = (time.perf_counter() - start) * 1e3
                used = model.resolve_backend(device)
            line = f"{cls.__name__:34s} [{used}, {elapsed:6.1f} ms] {_summary(cls, out, inputs, tokenizer)}"
            if transformers is not None:
                # the oracle runs in fp32: transformers' ErnieM cannot run in fp16/bf16 (it adds an fp32 mask)
                reference = getattr(transformers, cls.__name__).from_pretrained(path).to(device).eval()
                with torch.inference_mode():
                    theirs = reference(**inputs)
                diff = _max_diff(out, theirs, inputs["attention_mask"].bool().view(-1, inputs["attention_mask"].shape[-1])
                                 if cls is ErnieMForMultipleChoice else inputs["attention_mask"].bool())
                ok = diff <= PARITY_TOL[torch_dtype]
                failures += not ok
                line += f"\n{'':34s} parity with transformers: max |diff| {diff:.2e} {'OK' if ok else 'FAILED'}"
            print(line)
        if transformers is None:
            print("(transformers is not installed: parity not checked; pip install transformers==4.57.6)")
        return 1 if failures else 0
