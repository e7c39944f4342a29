"""What the machine can give, so benchmarks can say how close they come: a GEMM throughput and a
memory bandwidth measured here (CPU), spec values for known GPUs, and the process's resident memory.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional

import torch

# Dense tensor-core throughput (TFLOP/s, fp16/bf16, no sparsity) and HBM bandwidth (GB/s) from the
# vendors' data sheets. Matched by substring of torch.cuda.get_device_name(), most specific first.
GPU_SPECS = (
    ("H200", {"tflops": 989.0, "gbs": 4800.0}),
    ("H100 PCIe", {"tflops": 756.0, "gbs": 2000.0}),
    ("H100", {"tflops": 989.0, "gbs": 3350.0}),
    ("A100-SXM4-80GB", {"tflops": 312.0, "gbs": 2039.0}),
    ("A100 80GB PCIe", {"tflops": 312.0, "gbs": 1935.0}),
    ("A100", {"tflops": 312.0, "gbs": 1555.0}),
    ("L4", {"tflops": 121.0, "gbs": 300.0}),
)


def gpu_spec(device) -> Optional[dict]:
    """Spec peaks of a known GPU (name, tflops, gbs), or None for a CPU or an unknown GPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, spec in GPU_SPECS:
        if key in name:
            return {"name": name, **spec}
    return None


def linear_shapes(hidden: int, intermediate: int) -> list[tuple[int, int]]:
    """(in, out) of an encoder layer's GEMMs: fused QKV, attention output, FFN up, FFN down."""
    return [(hidden, 3 * hidden), (hidden, hidden), (hidden, intermediate), (intermediate, hidden)]


def gemm_probes(hidden: int, intermediate: int, rows: int = 1024, dtype=torch.float32,
                device="cpu") -> tuple[dict[str, Callable[[], object]], float]:
    """One call of an encoder layer's four GEMMs on `rows` rows through each GEMM path available here,
    and its FLOPs: ({path: run}, flops).

    Paths: "torch.mm" (torch's default GEMM) and, on a CPU in float32 with oneDNN, "onednn-prepacked"
    (weights reordered once, the path `from_pretrained(prepack=True)` runs; at some shapes it beats
    torch.mm). Timed next to the model in the same interleaved rounds, the fastest path is the GEMM
    roofline the model is held to, measured under the same load: a roofline from a slower path than
    the model's own would let "fraction of peak" exceed 1.
    """
    g = torch.Generator().manual_seed(0)
    shapes = linear_shapes(hidden, intermediate)
    inputs = [torch.randn(rows, k, generator=g).to(device, dtype) for k, _ in shapes]
    weights = [torch.randn(n, k, generator=g).to(device, dtype) for k, n in shapes]  # nn.Linear's (out, in)
    flops = sum(2.0 * rows * k * n for k, n in shapes)
    transposed = [w.t() for w in weights]

    def run_mm():
        for a, b in zip(inputs, transposed):
            torch.mm(a, b)

    probes = {"torch.mm": run_mm}
    if torch.device(device).type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available():
        from ..linear import MkldnnLinear

        packed = [MkldnnLinear(w, rows_hint=rows) for w in weights]

        def run_packed():
            for a, layer in zip(inputs, packed):
                layer.matmul(a)

        probes["onednn-prepacked"] = run_packed
    return probes, flops


def measure_cpu_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """GB/s of a large tensor copy (read + write) on this CPU, best of `repeats`."""
    n = megabytes * (1 << 20) // 4
    src, dst = torch.ones(n), torch.empty(n)
    dst.copy_(src)  # fault the pages in
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * n * 4 / best / 1e9


def _status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> Optional[int]:
    """Resident memory now (Linux /proc), None where it cannot be read."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> Optional[int]:
    """Peak resident memory since start or the last `reset_peak_rss()`."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def reset_peak_rss() -> bool:
    """Lower the peak-RSS mark to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def load_average() -> Optional[list]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
