"""Benchmarks. Each one times a baseline and ours in the same run and reports the ratio.

    ernie-m-fast bench model        # whole encoder: ours (auto backend, padding-free) vs transformers, padded
    ernie-m-fast bench cpu-kernels  # fused CPU kernels vs torch eager's separate ops
    ernie-m-fast bench kernels      # every op on every available backend vs torch eager
    ernie-m-fast bench tokenizer    # ours vs transformers' ErnieMTokenizer on 2,000 sentences
"""

from __future__ import annotations

import importlib
import json

import torch

MODULES = {"model": "model", "cpu-kernels": "cpu_kernels", "kernels": "kernels", "tokenizer": "tokenizer"}


def run_benchmark(what: str, args) -> int:
    module = importlib.import_module(f"ernie_m_fast.bench.{MODULES[what]}")
    kwargs = {}
    if getattr(args, "repeats", None):
        kwargs["repeats"] = args.repeats
    if what in ("model", "cpu-kernels", "kernels") and getattr(args, "dtype", None):
        kwargs["dtype"] = getattr(torch, args.dtype)
    if what in ("model", "kernels") and getattr(args, "device", None):
        kwargs["device"] = args.device
    result = module.run(**kwargs)
    print(json.dumps(result, indent=2, default=str))
    return 0
