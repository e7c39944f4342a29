"""`bench serve` runs end to end on a tiny shape (no timing is asserted: speed is the benchmark's output)."""

from __future__ import annotations

import json
import math

from ernie_m_fast.cli import main


def test_bench_serve_reports_every_mode_and_ratio(capsys):
    assert main(["bench", "serve", "--hidden", "32", "--layers", "1", "--heads", "2", "--tokens", "8", "--clients", "4",
                 "--requests", "16", "--singles", "4", "--rounds", "1", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["results"]) == {"inproc_single", "served_single", "served_concurrent", "inproc_batched"}
    for mode in ("inproc_single", "served_single", "served_concurrent"):
        stats = result["results"][mode]
        assert 0 < stats["p50_ms"] <= stats["p99_ms"] and stats["rps"] > 0
    for ratio in ("concurrent_vs_inproc_batched_throughput", "concurrent_vs_one_at_a_time_throughput"):
        assert math.isfinite(result[ratio]) and result[ratio] > 0
    assert 1 <= result["results"]["served_concurrent"]["inputs_per_batch"] <= 4  # 4 clients, one input each
    assert result["server_exit_code"] == 0  # the benchmark's server drained and exited cleanly
    assert result["shape"]["tokens_per_input"] == 8


def test_bench_serve_prints_the_three_ratios_the_issue_targets(capsys):
    assert main(["bench", "serve", "--hidden", "32", "--layers", "1", "--heads", "2", "--tokens", "8", "--clients", "3",
                 "--requests", "9", "--singles", "3", "--rounds", "1", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "server overhead at one client (p50, served_single - inproc_single):" in text
    assert "3 clients vs in-process batched throughput (served_concurrent / inproc_batched):" in text
    assert "3 clients vs one-at-a-time serving throughput (served_concurrent / served_single):" in text
    assert "inputs/batch" in text
