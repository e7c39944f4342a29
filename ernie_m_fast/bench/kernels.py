"""Every op of the op table on every available backend, against PyTorch eager (the `torch`
reference) and `torch.compile` of that reference, on one encoder layer's shapes, in one run.

    ernie-m-fast bench kernels [--device cuda] [--dtype bfloat16] [--shape base|tiny]

Memory-bound ops are reported in GB/s of the least traffic the op needs (each input read once, the
output written once), attention in TFLOP/s (4 * sum(L^2) * heads * head_dim). Each is also given as
a fraction of the device's peak: HBM bandwidth and tensor-core throughput from the data sheet for
known GPUs (H100, H200, A100, L4), and on a CPU the copy bandwidth and GEMM throughput this command
measures. Backends that only emulate a device (`cuda_sim`, `triton` under TRITON_INTERPRET=1) are
not timed: their times say nothing about the kernels. `torch.compile`'s compile time is the
warm-up it reports apart from its steady state.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable

import torch

from .. import ops
from ..ops.table import BY_NAME, OPS
from .hardware import gemm_probes, gpu_spec, load_average, measure_cpu_bandwidth
from .report import add_output_arguments, bar_chart, emit, format_table, progress
from .timing import measure

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class EncoderShapes:
    """One encoder layer's op shapes on a packed batch (ErnieM base by default)."""

    lengths: tuple = (512, 384, 256, 200, 128, 128, 64, 17)
    hidden: int = 768
    heads: int = 12
    intermediate: int = 3072
    vocab: int = 250002

    @property
    def tokens(self) -> int:
        return sum(self.lengths)


SHAPES = {"base": EncoderShapes(),
          "tiny": EncoderShapes(lengths=(5, 17, 3), hidden=32, heads=2, intermediate=64, vocab=100)}


@dataclass
class Case:
    args: tuple
    bytes_moved: float = 0.0  # memory-bound ops: the least traffic
    flops: float = 0.0  # attention


def op_names() -> list[str]:
    """Every op of the op table (ernie_m_fast.ops.table), in its order."""
    return [op.name for op in OPS]


def make_cases(shapes: EncoderShapes, dtype: torch.dtype, device) -> dict[str, Case]:
    g = torch.Generator().manual_seed(0)

    def randn(*size):
        return torch.randn(*size, generator=g).to(device=device, dtype=dtype)

    n, h, inter, heads = shapes.tokens, shapes.hidden, shapes.intermediate, shapes.heads
    size = torch.empty((), dtype=dtype).element_size()
    row = n * h * size
    qkv = randn(n, 3 * h).view(n, 3, heads, h // heads)  # the fused QKV GEMM's output, read in place
    cu = torch.zeros(len(shapes.lengths) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(shapes.lengths), 0)
    ids = torch.randint(0, shapes.vocab, (n,), generator=g).to(device)
    positions = torch.cat([torch.arange(length) for length in shapes.lengths]).to(device)
    return {
        "layernorm_residual": Case((randn(n, h), randn(n, h), randn(h), randn(h), 1e-5), bytes_moved=3 * row),
        "bias_residual_layernorm": Case((randn(n, h), randn(h), randn(n, h), randn(h), randn(h), 1e-5),
                                        bytes_moved=3 * row),
        "bias_gelu": Case((randn(n, inter), randn(inter), "none"), bytes_moved=2 * n * inter * size),
        "attention_varlen": Case((qkv[:, 0], qkv[:, 1], qkv[:, 2], cu.to(device), max(shapes.lengths), None),
                                 bytes_moved=4 * row, flops=4.0 * sum(L * L for L in shapes.lengths) * h),
        "embed_layernorm": Case((ids, positions, randn(shapes.vocab, h), randn(514, h), randn(h), randn(h), 1e-5),
                                bytes_moved=3 * row),
    }


def _example_case(name: str, dtype: torch.dtype, device) -> Case:
    """An op without an encoder-shaped case (a new entry of the table): its largest example, its
    tensors read once and an output like its first tensor written once."""
    args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in BY_NAME[name].examples(dtype)[-1])
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    moved = sum(t.numel() * t.element_size() for t in tensors) + tensors[0].numel() * tensors[0].element_size()
    return Case(args, bytes_moved=float(moved))


def _timed_backends(device: torch.device) -> list[str]:
    from ..checks import triton_interpreting

    emulated = {"cuda_sim"} | ({"triton"} if triton_interpreting() else set())
    return [b for b in ops.available_backends(device) if b != "torch" and b not in emulated]


def device_peaks(device: torch.device, dtype: torch.dtype, shapes: EncoderShapes) -> dict:
    spec = gpu_spec(device)
    if spec is not None:
        return {"source": f"data sheet: {spec['name']}", "gbs": spec["gbs"], "tflops": spec["tflops"]}
    if device.type == "cpu":
        probes, flops = gemm_probes(shapes.hidden, shapes.intermediate, dtype=torch.float32)
        gemm = measure(probes, rounds=3, warmup=1, desc="GEMM peak")
        best = min(gemm, key=lambda path: gemm[path].p50)
        return {"source": f"measured here: tensor copy and fp32 GEMM ({best}, the fastest of {', '.join(gemm)})",
                "gbs": measure_cpu_bandwidth(), "tflops": flops / gemm[best].p50 / 1e12}
    return {"source": f"unknown device {torch.cuda.get_device_name(device)}: no peak", "gbs": None, "tflops": None}


def run(shape: str = "base", *, device=None, dtype=None, compile: bool = True, ops_to_run=None,
        rounds: int = 10, inner: int = 5) -> dict:
    """Time every op (or `ops_to_run`) on eager, torch.compile and each timed backend."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    shapes = SHAPES[shape] if isinstance(shape, str) else shape
    names = op_names()
    if ops_to_run is not None:
        unknown = sorted(set(ops_to_run) - set(names))
        if unknown:
            raise ValueError(f"unknown op(s) {unknown}; the op table has {names}")
        names = [n for n in names if n in ops_to_run]
    cases = make_cases(shapes, dtype, device)
    cases.update({n: _example_case(n, dtype, device) for n in names if n not in cases})
    peaks = device_peaks(device, dtype, shapes)
    backends = _timed_backends(device)
    rows = []
    for name in progress(names, desc="ops"):
        case = cases[name]
        reference = BY_NAME[name].reference
        public = getattr(ops, name)
        fns: dict[str, Callable] = {"eager": lambda: reference(*case.args)}
        if compile:
            compiled = torch.compile(reference, dynamic=False)
            fns["torch.compile"] = lambda: compiled(*case.args)
        for backend in backends:
            fns[backend] = (lambda b: lambda: public(*case.args, backend=b))(backend)
        with torch.inference_mode():
            timings = measure(fns, rounds=rounds, warmup=2, inner=inner, device=device, desc=name)
        eager = timings["eager"].p50
        for contender, t in timings.items():
            row = {"op": name, "backend": contender, "dtype": str(dtype).replace("torch.", ""),
                   "tokens": shapes.tokens, **t.summary(), "speedup_vs_eager": eager / t.p50}
            if case.flops:
                row["tflops"] = case.flops / t.p50 / 1e12
                row["fraction_of_peak"] = row["tflops"] / peaks["tflops"] if peaks["tflops"] else None
            else:
                row["gbs"] = case.bytes_moved / t.p50 / 1e9
                row["fraction_of_peak"] = row["gbs"] / peaks["gbs"] if peaks["gbs"] else None
            rows.append(row)
    return {"benchmark": "kernels", "device": str(device), "dtype": str(dtype).replace("torch.", ""),
            "shape": shape if isinstance(shape, str) else "custom", "tokens": shapes.tokens,
            "ops": names, "backends": ["eager"] + (["torch.compile"] if compile else []) + backends,
            "peak": peaks, "load_average": load_average(), "results": rows}


COLUMNS = [("op", "op"), ("backend", "backend"), ("p50_ms", "p50 ms"), ("warmup_ms", "warm-up ms"),
           ("gbs", "GB/s"), ("tflops", "TFLOP/s"), ("fraction_of_peak", "of peak"), ("speedup_vs_eager", "vs eager")]


def format_result(result: dict) -> str:
    peak = result["peak"]
    return (f"{result['dtype']} on {result['device']}, {result['tokens']} packed tokens, load average "
            f"{result['load_average']}\n" + format_table(result["results"], COLUMNS) +
            f"\npeak ({peak['source']}): {peak['gbs'] and round(peak['gbs'], 1)} GB/s, "
            f"{peak['tflops'] and round(peak['tflops'], 3)} TFLOP/s")


def add_arguments(parser) -> None:
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None,
                        help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--shape", choices=list(SHAPES), default="base",
                        help="base: one ErnieM-base layer on 8 sequences of 17-512 tokens; tiny: for tests")
    parser.add_argument("--ops", nargs="+", default=None, help="a subset of the op table (default: every op)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (it compiles each op once)")
    parser.add_argument("--rounds", "--repeats", type=int, default=10, dest="rounds")
    parser.add_argument("--inner", type=int, default=5, help="calls per timed sample")
    add_output_arguments(parser)


def main_from_args(args) -> int:
    result = run(args.shape, device=args.device, dtype=DTYPES[args.dtype] if args.dtype else None,
                 compile=not args.no_compile, ops_to_run=args.ops, rounds=args.rounds, inner=args.inner)
    emit(result, format_result(result), args)
    if args.plot:
        series = {b: [next((r["speedup_vs_eager"] for r in result["results"] if r["op"] == op and r["backend"] == b),
                           None) for op in result["ops"]] for b in result["backends"]}
        bar_chart(args.plot, result["ops"], series, "speed-up over eager (x)", f"ops, {result['dtype']} on {result['device']}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ernie-m-fast bench kernels", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return main_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
