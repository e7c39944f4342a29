"""Each fused op of each available backend timed against PyTorch eager (the `torch` backend) on the
encoder's shapes, in the same run; reported as speed-up ratios.

    python -m ernie_m_fast.bench.kernels [--device cuda] [--dtype bf16]

Backends that only emulate a device (`cuda_sim`, `triton` under TRITON_INTERPRET=1) are not timed:
their times say nothing about the kernels.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

from ernie_m_fast import ops
from ernie_m_fast.checks import triton_interpreting
from ernie_m_fast.ops.table import OPS

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class EncoderShapes:
    """One encoder layer's op shapes: ErnieM base (hidden 768, 12 heads, FFN 3072) on a packed batch."""

    lengths: tuple[int, ...] = (512, 384, 256, 200, 128, 128, 64, 17)
    hidden: int = 768
    heads: int = 12
    intermediate: int = 3072

    @property
    def tokens(self) -> int:
        return sum(self.lengths)


def _time_ms(fn, device: torch.device, warmup: int, iters: int, reps: int = 5) -> float:
    """Median over `reps` of the mean time per call across `iters` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    per_call = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            torch.cuda.synchronize(device)
            per_call.append(start.elapsed_time(end) / iters)
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            per_call.append((time.perf_counter() - t0) * 1e3 / iters)
    return statistics.median(per_call)


def _encoder_inputs(shapes: EncoderShapes, dtype: torch.dtype, device: torch.device) -> dict:
    """Encoder-shaped arguments for the ops whose example arguments are a few rows (ops/table.py)."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def randn(*size):
        return torch.randn(*size, generator=g).to(device=device, dtype=dtype)

    tokens, hidden, heads = shapes.tokens, shapes.hidden, shapes.heads
    qkv = randn(tokens, 3 * hidden).view(tokens, 3, heads, hidden // heads)  # the fused QKV GEMM output
    cu = torch.zeros(len(shapes.lengths) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(shapes.lengths), 0)
    ids = torch.randint(0, 1000, (tokens,), generator=g).to(device)
    return {
        "layernorm_residual": (randn(tokens, hidden), randn(tokens, hidden), randn(hidden), randn(hidden), 1e-5),
        "bias_residual_layernorm": (randn(tokens, hidden), randn(hidden), randn(tokens, hidden), randn(hidden),
                                    randn(hidden), 1e-5),
        "bias_gelu": (randn(tokens, shapes.intermediate), randn(shapes.intermediate), "none"),
        "attention_varlen": (qkv[:, 0], qkv[:, 1], qkv[:, 2], cu.to(device), max(shapes.lengths), None),
        "embed_layernorm": (ids, ids % 512, randn(1000, hidden), randn(514, hidden), randn(hidden), randn(hidden),
                            1e-5),
    }


def _inputs(shapes: EncoderShapes, dtype: torch.dtype, device: torch.device) -> dict:
    """Arguments for every op of the table: encoder-shaped where known, else the op's largest example."""
    encoder = _encoder_inputs(shapes, dtype, device)
    return {op.name: encoder.get(op.name) or tuple(a.to(device) if isinstance(a, torch.Tensor) else a
                                                   for a in op.examples(dtype)[-1]) for op in OPS}


def _timed_backends(device: torch.device, backends) -> list[str]:
    names = ops.available_backends(device) if backends is None else list(backends)
    emulated = {"cuda_sim"} | ({"triton"} if triton_interpreting() else set())
    return [b for b in names if b != "torch" and b not in emulated]


def run(shapes: EncoderShapes = EncoderShapes(), *, device="cuda", dtype=torch.bfloat16, backends=None,
        warmup: int = 10, iters: int = 50) -> list[dict]:
    """Time every op of every (non-emulated) backend against eager PyTorch on `device`.

    Returns one dict per (op, backend): op, backend, dtype, tokens, eager_ms, backend_ms and
    speedup = eager_ms / backend_ms (> 1: the backend is faster).
    """
    device = torch.device(device)
    inputs = _inputs(shapes, dtype, device)
    fns = {op.name: getattr(ops, op.name) for op in OPS}
    rows = []
    for op, args in inputs.items():
        eager_ms = _time_ms(lambda: fns[op](*args, backend="torch"), device, warmup, iters)
        for backend in _timed_backends(device, backends):
            ms = _time_ms(lambda: fns[op](*args, backend=backend), device, warmup, iters)
            rows.append(dict(op=op, backend=backend, dtype=str(dtype).replace("torch.", ""), tokens=shapes.tokens,
                             eager_ms=eager_ms, backend_ms=ms, speedup=eager_ms / ms))
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'op':<20} {'backend':<9} {'dtype':<9} {'tokens':>6} {'eager ms':>9} {'ms':>9} {'speedup':>8}"]
    for r in rows:
        lines.append(f"{r['op']:<20} {r['backend']:<9} {r['dtype']:<9} {r['tokens']:>6} {r['eager_ms']:>9.4f} "
                     f"{r['backend_ms']:>9.4f} {r['speedup']:>7.2f}x")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=DTYPES, default="bf16")
    parser.add_argument("--iters", type=int, default=50)
    args = parser.parse_args(argv)
    print(format_rows(run(device=args.device, dtype=DTYPES[args.dtype], iters=args.iters)))


if __name__ == "__main__":
    main()
