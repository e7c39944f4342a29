"""Benchmarks. Each one times a baseline and ours in the same run (bench/timing.py, the one timer)
and reports ratios; each takes its own options (`ernie-m-fast bench NAME --help`), prints a table,
and has `--json` and `--plot out.png`.

    ernie-m-fast bench model        # whole model: ours vs transformers and ONNX Runtime, per batch mix
    ernie-m-fast bench kernels      # every op of the op table on every backend vs eager and torch.compile
    ernie-m-fast bench cpu-kernels  # fused CPU kernels vs torch eager's separate ops
    ernie-m-fast bench tokenizer    # ours vs transformers' ErnieMTokenizer on 2,000 sentences
    ernie-m-fast bench pipelines    # pipeline batching: token budget vs fixed padded batches (and transformers')
    ernie-m-fast bench serve        # the HTTP server vs the in-process model and one-at-a-time serving
"""

from __future__ import annotations

import importlib

# command name -> (module, one-line help)
BENCHMARKS = {
    "model": ("model", "whole model: ours vs transformers and ONNX Runtime on the same weights and inputs"),
    "kernels": ("kernels", "every op on every available backend vs eager and torch.compile, GB/s and TFLOP/s"),
    "cpu-kernels": ("cpu_kernels", "the fused CPU kernels vs torch eager's separate ops"),
    "tokenizer": ("tokenizer", "ours vs transformers' ErnieMTokenizer on the same sentences"),
    "pipelines": ("pipelines", "pipeline batching: token budget vs fixed padded batches (and transformers')"),
    "serve": ("serve", "the HTTP server vs the in-process model and one-at-a-time serving"),
}


def add_subcommands(bench_parser) -> None:
    """One sub-command per benchmark, each with its own options (imported only when it runs)."""
    sub = bench_parser.add_subparsers(dest="what", required=True, metavar="{" + ",".join(BENCHMARKS) + "}")
    for name, (module_name, help_text) in BENCHMARKS.items():
        module = importlib.import_module(f"ernie_m_fast.bench.{module_name}")
        parser = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).split("\n\n")[0])
        module.add_arguments(parser)
        parser.set_defaults(bench_main=module.main_from_args)


def run_benchmark(args) -> int:
    return args.bench_main(args)
