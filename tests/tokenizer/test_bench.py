"""The benchmark runs and compares equal outputs (its timings are not asserted: that is its own job)."""

from __future__ import annotations

from ernie_m_fast.bench import tokenizer as bench


def test_benchmark_runs_on_identical_outputs(tiny_dir):
    result = bench.run(n_sentences=40, tokenizer_dir=tiny_dir, repeats=1, verbose=False)
    assert set(result["scenarios"]) == set(bench.SCENARIOS)
    for scenario in result["scenarios"].values():
        assert scenario["identical_output"] is True
        assert scenario["speedup"] > 0
    assert len(bench.make_sentences(7)) == 7 and bench.make_sentences(7) == bench.make_sentences(7)
