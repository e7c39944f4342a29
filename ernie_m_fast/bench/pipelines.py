"""Pipeline batching: token-budget batches against fixed padded batches, one run, same model and texts.

A few hundred texts of very unequal length (1 to ~12 sentences of the bundled multilingual corpus)
through the text-classification pipeline of a small random model:
- "token_budget": the default, longest first, each batch filled up to `max_tokens` real tokens;
- "fixed_batch": `batch_size` texts at a time in input order, padded to the longest of each batch
  (what transformers' pipelines do), on the same padding-free model;
- "transformers_fixed_batch": transformers' own pipeline with the same `batch_size` and weights
  (when transformers is installed), which also computes the padding.
Reports the median seconds of each (interleaved repeats), the speed-ups, and the largest score
difference between the modes (they must agree).
"""

from __future__ import annotations

import random
import tempfile

import torch

from ..configuration import ErnieMConfig
from ..modeling import ErnieMForSequenceClassification
from ..tiny import bundled_corpus_lines, train_tiny_tokenizer
from .timing import time_interleaved


def make_texts(count: int, seed: int = 0) -> list[str]:
    lines = bundled_corpus_lines()
    rng = random.Random(seed)
    return [" ".join(rng.choice(lines) for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 5, 8, 12]))) for _ in range(count)]


def run(texts: int = 400, batch_size: int = 32, max_tokens: int = 8192, hidden: int = 256, layers: int = 4,
        heads: int = 4, dtype=torch.float32, device=None, repeats: int = 3, seed: int = 0) -> dict:
    from ..pipelines import pipeline

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    inputs = make_texts(texts, seed)
    with tempfile.TemporaryDirectory() as tmp:
        train_tiny_tokenizer(tmp)
        config = ErnieMConfig(vocab_size=1002, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                              intermediate_size=4 * hidden, max_position_embeddings=514, num_labels=3)
        torch.manual_seed(seed)
        model = ErnieMForSequenceClassification(config)
        model.save_pretrained(tmp)
        ours = pipeline("text-classification", model=tmp, device=device, dtype=dtype, top_k=None)
        lengths = [len(ids) for ids in ours.tokenizer(inputs, truncation=True, max_length=512)["input_ids"]]
        fns = {
            "token_budget": lambda: ours(inputs, max_tokens=max_tokens),
            "fixed_batch": lambda: ours(inputs, max_tokens=None, batch_size=batch_size),
        }
        theirs = None
        try:
            import transformers

            transformers.logging.set_verbosity_error()
            theirs = transformers.pipeline(
                "text-classification", model=transformers.ErnieMForSequenceClassification.from_pretrained(tmp, dtype=dtype),
                tokenizer=transformers.ErnieMTokenizer.from_pretrained(tmp), device=device, top_k=None)
            fns["transformers_fixed_batch"] = lambda: theirs(inputs, batch_size=batch_size, truncation=True, max_length=512)
        except ImportError:
            pass
        times = time_interleaved(fns, repeats=repeats, warmup=1, device=device)
        results = {name: fn() for name, fn in fns.items()}

    def scores(result):
        return [{d["label"]: d["score"] for d in r} for r in result]

    reference = scores(results["token_budget"])
    max_diff = {name: max(abs(a[k] - b[k]) for a, b in zip(scores(r), reference) for k in a)
                for name, r in results.items() if name != "token_budget"}
    padded = sum(batch_size * max(lengths[i:i + batch_size]) for i in range(0, len(lengths), batch_size))
    out = {
        "device": str(device), "dtype": str(dtype), "texts": len(inputs), "real_tokens": sum(lengths),
        "tokens_with_fixed_batch_padding": padded, "batch_size": batch_size, "max_tokens": max_tokens,
        "model": f"hidden {hidden}, {layers} layers, {heads} heads",
        "seconds": {k: round(v, 3) for k, v in times.items()},
        "speedup_token_budget_vs_fixed_batch": round(times["fixed_batch"] / times["token_budget"], 2),
        "max_score_difference_vs_token_budget": max_diff,
    }
    if "transformers_fixed_batch" in times:
        out["speedup_token_budget_vs_transformers"] = round(times["transformers_fixed_batch"] / times["token_budget"], 2)
    return out
