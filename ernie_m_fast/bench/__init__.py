"""Benchmarks. Each one times a baseline and ours in the same run and reports the ratio.

    ernie-m-fast bench model        # whole encoder: ours (auto backend, padding-free) vs transformers, padded
    ernie-m-fast bench cpu-kernels  # fused CPU kernels vs torch eager's separate ops
    ernie-m-fast bench kernels      # every op on every available backend vs torch eager
    ernie-m-fast bench tokenizer    # ours vs transformers' ErnieMTokenizer on 2,000 sentences
    ernie-m-fast bench pipelines    # pipeline batching: token budget vs fixed padded batches (and transformers')
    ernie-m-fast bench serve        # the HTTP server vs the in-process model and one-at-a-time serving
"""

from __future__ import annotations

import importlib
import json

import torch

MODULES = {"model": "model", "cpu-kernels": "cpu_kernels", "kernels": "kernels", "tokenizer": "tokenizer",
           "pipelines": "pipelines", "serve": "serve"}


def run_benchmark(what: str, args) -> int:
    module = importlib.import_module(f"ernie_m_fast.bench.{MODULES[what]}")
    dtype = getattr(torch, args.dtype) if getattr(args, "dtype", None) else None
    device = getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    kwargs: dict = {}
    if what in ("model", "pipelines"):
        kwargs = {"device": device, "dtype": dtype or torch.float32}
        if args.repeats:
            kwargs["repeats"] = args.repeats
    elif what == "kernels":
        kwargs = {"device": device, "dtype": dtype or (torch.bfloat16 if device == "cuda" else torch.float32)}
        if args.repeats:
            kwargs["iters"] = args.repeats
    elif what == "cpu-kernels":
        kwargs = {"dtype": dtype or torch.float32}
        if args.repeats:
            kwargs["repeats"] = args.repeats
    elif what == "serve":
        kwargs = {"device": device, "dtype": dtype or (torch.float16 if device == "cuda" else torch.float32)}
        if args.repeats:
            kwargs["repeats"] = args.repeats
    elif args.repeats:
        kwargs["repeats"] = args.repeats
    result = module.run(**kwargs)
    print(json.dumps(result, indent=2, default=str))
    return 0
