"""`bench serve` runs end to end on a tiny shape (no timing is asserted: speed is the benchmark's output)."""

from __future__ import annotations

import math

from ernie_m_fast.bench.serve import run


def test_bench_serve_reports_every_mode_and_ratio():
    result = run(hidden=32, layers=1, heads=2, tokens=8, clients=4, requests=16, singles=4, repeats=1, threads=1)
    assert set(result["results"]) == {"inproc_single", "served_single", "served_concurrent", "inproc_batched"}
    for mode in ("inproc_single", "served_single", "served_concurrent"):
        stats = result["results"][mode]
        assert 0 < stats["p50_ms"] <= stats["p99_ms"] and stats["rps"] > 0
    for ratio in ("concurrent_vs_inproc_batched_throughput", "concurrent_vs_one_at_a_time_throughput"):
        assert math.isfinite(result[ratio]) and result[ratio] > 0
    assert result["server_exit_code"] == 0  # the benchmark's server drained and exited cleanly
    assert result["shape"]["tokens_per_input"] == 8
