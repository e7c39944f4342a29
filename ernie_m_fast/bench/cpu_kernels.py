"""The `cpu` backend's fused kernels against torch eager, on the same inputs, in the same run.

    python -m ernie_m_fast.bench.cpu_kernels [--dtype float32 bfloat16] [--threads 2 1] [--repeats 40] [--json]

Memory traffic per call over [rows, hidden] elements of `itemsize` bytes (parameters are noise):
  layernorm_residual  torch eager: x + residual (read 2, write 1), layer_norm (read 1, write 1) = 5
                      fused:       read x and residual, write out                               = 3
  bias_gelu           torch eager: x + bias (read 1, write 1), gelu (read 1, write 1)          = 4
                      fused:       read x, write out                                          = 2
so a memory-bound fused kernel can be up to 5/3 and 2x faster. GB/s is each side's own traffic
divided by its time.

Timing (the shared timer, bench/timing.py): one warm-up call per side is reported on its own
(first-call costs: page faults on fresh outputs, thread-pool start); then `repeats` rounds, each
timing one baseline call and one fused call, alternating which goes first. Reported are medians (`*_ms`, and `ratio` = baseline / fused
from them) and minima (`*_min_ms`, `ratio_min`): on a shared machine the preempted rounds inflate
both sides, and the minimum is the least-disturbed sample of each.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from .. import ops
from .report import add_output_arguments, emit
from .timing import measure

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TRAFFIC = {"layernorm_residual": (5, 3), "bias_gelu": (4, 2)}  # (torch eager, fused) tensors moved


def _inputs(op: str, rows: int, hidden: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, hidden, generator=g).to(dtype)
    bias = (0.5 * torch.randn(hidden, generator=g)).to(dtype)
    if op == "bias_gelu":
        return (lambda: F.gelu(x + bias)), (lambda: ops.bias_gelu(x, bias, backend="cpu"))
    residual = torch.randn(rows, hidden, generator=g).to(dtype)
    weight = (1.0 + 0.5 * torch.randn(hidden, generator=g)).to(dtype)
    return ((lambda: F.layer_norm(x + residual, (hidden,), weight, bias, 1e-5)),
            (lambda: ops.layernorm_residual(x, residual, weight, bias, 1e-5, backend="cpu")))


def _bench_one(op: str, rows: int, hidden: int, dtype: torch.dtype, repeats: int) -> dict:
    baseline, fused = _inputs(op, rows, hidden, dtype)
    # The two must agree before their speeds are compared (loosely: fp32 rounding vs the dtype's own).
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(fused(), baseline(), atol=tol, rtol=tol)

    timings = measure({"baseline": baseline, "fused": fused}, rounds=repeats, warmup=1, desc=f"{op} {rows}x{hidden}")
    warmup_baseline, warmup_fused = timings["baseline"].warmup_s, timings["fused"].warmup_s
    times_baseline, times_fused = timings["baseline"].samples, timings["fused"].samples
    med_b, med_f = statistics.median(times_baseline), statistics.median(times_fused)
    min_b, min_f = min(times_baseline), min(times_fused)
    tensor_bytes = rows * hidden * torch.empty((), dtype=dtype).element_size()
    moved_b, moved_f = (n * tensor_bytes for n in TRAFFIC[op])
    from .._C import cpu_info

    info = cpu_info()
    return {
        "op": op,
        "shape": (rows, hidden),
        "dtype": str(dtype).replace("torch.", ""),
        "repeats": repeats,
        "threads_torch": torch.get_num_threads(),
        "threads_cpu": info["max_threads"],  # the cap; small inputs use fewer (cpu_common.h)
        "isa": info["isa"],
        "baseline_ms": med_b * 1e3,
        "ours_ms": med_f * 1e3,
        "ratio": med_b / med_f,
        "baseline_min_ms": min_b * 1e3,
        "ours_min_ms": min_f * 1e3,
        "ratio_min": min_b / min_f,
        "baseline_gbps": moved_b / med_b / 1e9,
        "ours_gbps": moved_f / med_f / 1e9,
        "warmup_baseline_ms": warmup_baseline * 1e3,
        "warmup_ours_ms": warmup_fused * 1e3,
    }


def run(shapes=((4096, 768), (2048, 3072)), dtype=torch.float32, repeats: int = 40,
        ops_to_run=("layernorm_residual", "bias_gelu"), threads: int | None = None) -> list[dict]:
    """Time torch eager against the fused `cpu` kernels for each op and [rows, hidden] shape.

    threads: run both sides on this many threads (torch.set_num_threads and the kernels' own cap),
    restored afterwards; None keeps the current settings (torch's default and OpenMP's).
    Returns one dict per (op, shape): medians `baseline_ms`, `ours_ms`, `ratio` (baseline / ours),
    minima `baseline_min_ms`, `ours_min_ms`, `ratio_min`, achieved `baseline_gbps` / `ours_gbps`,
    warm-up times, and the thread counts and ISA used.
    """
    if "cpu" not in ops.available_backends("cpu"):
        raise RuntimeError("the cpu backend is not available: " + "; ".join(ops.backends.unavailable_reasons(
            "cpu", torch.device("cpu"))))
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for op in ops_to_run:
        if op not in TRAFFIC:
            raise ValueError(f"unknown op {op!r}; known: {', '.join(TRAFFIC)}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    from .._C import cpu_set_num_threads

    torch_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
        previous_cap = cpu_set_num_threads(threads)
    try:
        results = []
        with torch.inference_mode():
            for rows, hidden in shapes:
                for op in ops_to_run:
                    results.append(_bench_one(op, int(rows), int(hidden), dtype, repeats))
        return results
    finally:
        if threads is not None:
            torch.set_num_threads(torch_threads)
            cpu_set_num_threads(previous_cap)


def format_table(results: list[dict]) -> str:
    head = (f"{'op':<20}{'shape':>13}{'dtype':>10}{'threads':>8}{'torch ms':>10}{'ours ms':>9}{'ratio':>7}"
            f"{'min ratio':>10}{'torch GB/s':>11}{'ours GB/s':>10}")
    lines = [head, "-" * len(head)]
    for r in results:
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"{r['op']:<20}{shape:>13}{r['dtype']:>10}{r['threads_torch']:>8}{r['baseline_ms']:>10.3f}"
                     f"{r['ours_ms']:>9.3f}"
                     f"{r['ratio']:>7.2f}{r['ratio_min']:>10.2f}{r['baseline_gbps']:>11.1f}{r['ours_gbps']:>10.1f}")
    if results:
        r = results[0]
        lines.append(f"cpu kernels: {r['isa']}; {r['repeats']} interleaved rounds; ms are medians, "
                     f"'min ratio' compares the fastest rounds")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=sorted(DTYPES))
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--shapes", nargs="+", default=["4096x768", "2048x3072"], help="ROWSxHIDDEN")
    parser.add_argument("--threads", nargs="+", type=int, default=[None],
                        help="thread counts to run both sides on (default: torch's and OpenMP's defaults)")
    add_output_arguments(parser)


def main_from_args(args) -> int:
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes]
    results = [r for threads in args.threads for name in args.dtype
               for r in run(shapes, DTYPES[name], args.repeats, threads=threads)]
    emit({"benchmark": "cpu-kernels", "results": results}, format_table(results), args)
    if args.plot:
        from .report import bar_chart

        labels = [f"{r['op']} {'x'.join(map(str, r['shape']))} {r['dtype']} t{r['threads_torch']}" for r in results]
        bar_chart(args.plot, labels, {"torch eager": [r["baseline_gbps"] for r in results],
                                      "fused cpu": [r["ours_gbps"] for r in results]}, "GB/s", "fused CPU kernels")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ernie-m-fast bench cpu-kernels", description=__doc__.split("\n", 1)[0])
    add_arguments(parser)
    return main_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    main()
