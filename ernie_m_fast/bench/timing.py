"""The one timer every benchmark uses.

`measure` runs each contender's warm-up apart from its steady state (the first call carries
compilation, weight packing, page faults and thread-pool start; it is reported as `warmup_s`), then
`rounds` interleaved rounds: every round times each contender once, the order rotating each round,
so drift on a shared machine hits all alike. A sample may hold `inner` back-to-back calls (for
kernels far shorter than the clock's resolution), reported per call. CUDA work is synchronised
before and after each sample.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .report import progress


@dataclass
class Timing:
    """Seconds per call of one contender: the warm-up calls' total and the steady-state samples."""

    warmup_s: float
    samples: list = field(default_factory=list)

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile (p99 of 20 samples is the largest: no interpolation past the data)."""
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def min(self) -> float:
        return min(self.samples)

    def summary(self) -> dict:
        """Milliseconds, rounded for reading; the raw samples stay in `samples`."""
        return {"p50_ms": self.p50 * 1e3, "p99_ms": self.p99 * 1e3, "min_ms": self.min * 1e3,
                "warmup_ms": self.warmup_s * 1e3, "samples": len(self.samples)}


def synchronize(device) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fns: dict[str, Callable[[], object]], *, rounds: int = 10, warmup: int = 1, inner: int = 1,
            device="cpu", desc: Optional[str] = None, between: Optional[Callable[[str], None]] = None,
            after: Optional[Callable[[str], None]] = None) -> dict[str, Timing]:
    """Time each function in `fns`: warm-up first, then `rounds` interleaved rounds of `inner` calls.

    `between(name)` runs untimed before each of `name`'s samples and `after(name)` after it (the model
    benchmark resets and reads the peak RSS there).
    """
    if rounds < 1 or warmup < 0 or inner < 1:
        raise ValueError(f"rounds >= 1, warmup >= 0 and inner >= 1 are required, got {rounds}, {warmup}, {inner}")
    timings = {}
    for name, fn in fns.items():
        synchronize(device)
        start = time.perf_counter()
        for _ in range(warmup):
            fn()
        synchronize(device)
        timings[name] = Timing(warmup_s=time.perf_counter() - start)
    names = list(fns)
    for r in progress(range(rounds), desc=desc or "timing", total=rounds):
        for i in range(len(names)):
            name = names[(i + r) % len(names)]  # rotate who goes first
            fn = fns[name]
            if between is not None:
                between(name)
            synchronize(device)
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            synchronize(device)
            timings[name].samples.append((time.perf_counter() - start) / inner)
            if after is not None:
                after(name)
    return timings


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int = 10, warmup: int = 2,
                     device="cpu") -> dict[str, float]:
    """Median seconds per call of each function (the old interface, kept for the tokenizer benchmark)."""
    return {name: t.p50 for name, t in measure(fns, rounds=repeats, warmup=warmup, device=device).items()}
