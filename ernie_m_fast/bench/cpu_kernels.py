"""The `cpu` backend's fused kernels against torch eager, on the same inputs, in the same run.

    python -m ernie_m_fast.bench.cpu_kernels [--dtype float32 bfloat16] [--threads 2 1] [--repeats 40] [--json]

Every row-wise op of the op table (ops/table.py) with a compiled `cpu` kernel is timed: its torch
reference (eager) against `ops.<name>(backend="cpu")`. Memory traffic per call over [rows, hidden]
elements of `itemsize` bytes (parameters are noise): fused, the op's (rows, hidden) inputs read once
and its output written once; eager, as counted in EAGER_TRAFFIC:
  layernorm_residual       x + residual (read 2, write 1), layer_norm (read 1, write 1)       = 5 (fused 3)
  bias_residual_layernorm  x + bias (2), + residual (3), layer_norm (2)                      = 7 (fused 3)
  bias_gelu                x + bias (read 1, write 1), gelu (read 1, write 1)               = 4 (fused 2)
GB/s is each side's own traffic divided by its time.

Timing: one warm-up call per side is reported on its own (first-call costs: page faults on fresh
outputs, thread-pool start); then `repeats` rounds, each timing one baseline call and one fused
call, alternating which goes first. Reported are medians (`*_ms`, and `ratio` = baseline / fused
from them) and minima (`*_min_ms`, `ratio_min`): on a shared machine the preempted rounds inflate
both sides, and the minimum is the least-disturbed sample of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from .. import ops
from ..ops.table import BY_NAME, OPS

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# (rows, hidden) tensors torch eager moves per call (see the module docstring); others: the fused count
EAGER_TRAFFIC = {"layernorm_residual": 5, "bias_residual_layernorm": 7, "bias_gelu": 4}


def _rowwise(op) -> bool:
    """An op whose example arguments are (rows, hidden) and (hidden,) tensors plus scalars."""
    args = op.examples(torch.float32)[0]
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    return all(t.is_floating_point() and t.dim() in (1, 2) for t in tensors) and tensors[0].dim() == 2


def benchmarked_ops() -> tuple:
    """The row-wise ops of the table that have a compiled `cpu` kernel."""
    from ..ops.backends import get

    native = get("cpu")
    return tuple(op.name for op in OPS if _rowwise(op) and native._fn(op.name) is not None)


def _args(op_name: str, rows: int, hidden: int, dtype: torch.dtype, seed: int = 0) -> tuple:
    """The op's first example, every (rows, hidden) tensor and (hidden,) vector redrawn at this size."""
    g = torch.Generator().manual_seed(seed)

    def redraw(a):
        if not isinstance(a, torch.Tensor):
            return a
        shape = (rows, hidden) if a.dim() == 2 else (hidden,)
        return (torch.randn(shape, generator=g) * (1.0 if a.dim() == 2 else 0.5) + (0 if a.dim() == 2 else 1)).to(dtype)

    return tuple(redraw(a) for a in BY_NAME[op_name].examples(dtype)[0])


def _inputs(op_name: str, rows: int, hidden: int, dtype: torch.dtype, seed: int = 0):
    args = _args(op_name, rows, hidden, dtype, seed)
    fused = getattr(ops, op_name)
    return (lambda: BY_NAME[op_name].reference(*args)), (lambda: fused(*args, backend="cpu"))


def _traffic(op_name: str) -> tuple[int, int]:
    """(torch eager, fused) (rows, hidden) tensors moved per call."""
    fused = 1 + sum(isinstance(a, torch.Tensor) and a.dim() == 2 for a in BY_NAME[op_name].examples(torch.float32)[0])
    return EAGER_TRAFFIC.get(op_name, fused), fused


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _bench_one(op: str, rows: int, hidden: int, dtype: torch.dtype, repeats: int) -> dict:
    baseline, fused = _inputs(op, rows, hidden, dtype)
    # The two must agree before their speeds are compared (loosely: fp32 rounding vs the dtype's own).
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(fused(), baseline(), atol=tol, rtol=tol)

    warmup_baseline, warmup_fused = _seconds(baseline), _seconds(fused)
    times_baseline, times_fused = [], []
    for i in range(repeats):
        if i % 2:
            times_fused.append(_seconds(fused))
            times_baseline.append(_seconds(baseline))
        else:
            times_baseline.append(_seconds(baseline))
            times_fused.append(_seconds(fused))

    med_b, med_f = statistics.median(times_baseline), statistics.median(times_fused)
    min_b, min_f = min(times_baseline), min(times_fused)
    tensor_bytes = rows * hidden * torch.empty((), dtype=dtype).element_size()
    moved_b, moved_f = (n * tensor_bytes for n in _traffic(op))
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
        ops_to_run=None, threads: int | None = None) -> list[dict]:
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
    known = benchmarked_ops()
    ops_to_run = known if ops_to_run is None else tuple(ops_to_run)
    for op in ops_to_run:
        if op not in known:
            raise ValueError(f"unknown op {op!r}; known: {', '.join(known)}")
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=sorted(DTYPES))
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--shapes", nargs="+", default=["4096x768", "2048x3072"], help="ROWSxHIDDEN")
    parser.add_argument("--threads", nargs="+", type=int, default=[None],
                        help="thread counts to run both sides on (default: torch's and OpenMP's defaults)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per result instead of a table")
    args = parser.parse_args(argv)
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes]
    results = [r for threads in args.threads for name in args.dtype
               for r in run(shapes, DTYPES[name], args.repeats, threads=threads)]
    if args.json:
        for r in results:
            print(json.dumps(r))
    else:
        print(format_table(results))


if __name__ == "__main__":
    main()
