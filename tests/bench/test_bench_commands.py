"""Every benchmark command runs end to end on tiny shapes and its JSON holds every op, backend,
engine and ratio, with no NaN, so the commands cannot rot. Speeds are never asserted: they belong to
the benchmarks' own runs."""

from __future__ import annotations

import json
import math

import pytest

from ernie_m_fast.bench import kernels as kernels_bench
from ernie_m_fast.bench.timing import Timing, measure
from ernie_m_fast.cli import main


def _run_json(capsys, argv) -> dict:
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def model_result():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", "model", "--size", "tiny", "--mix", "batch1-16", "--mix", "varlen16",
                     "--compare", "transformers,onnxruntime", "--quantize", "int8", "--rounds", "2",
                     "--warmup", "1", "--threads", "1", "--json"]) == 0
    return json.loads(out.getvalue())


def test_model_bench_reports_every_engine_and_ratio(model_result):
    pytest.importorskip("onnxruntime")
    runs = model_result["runs"]
    assert [r["mix"] for r in runs] == ["batch1-16", "varlen16"]
    for r in runs:
        assert r["threads"] == 1 and r["size"] == "tiny" and r["real_tokens"] == sum(r["lengths"])
        assert {e["engine"] for e in r["engines"]} == {"ours", "transformers", "onnxruntime", "ours-int8"}
        assert set(r["speedup"]) == {"transformers", "onnxruntime", "ours-int8"}
        assert all(_positive(v) for v in r["speedup"].values())
        assert _positive(r["gemm_peak_gflops"])
        # the roofline is the fastest GEMM path measured, so no path beats it (oneDNN's is ours on CPU)
        assert set(r["gemm_probes"]) == {"torch.mm", "onednn-prepacked"}
        assert r["gemm_peak_gflops"] == max(r["gemm_probes"].values())
        assert r["gemm_probes"][r["gemm_peak_path"]] == r["gemm_peak_gflops"]
        for e in r["engines"]:
            for key in ("p50_ms", "p99_ms", "warmup_ms", "tokens_per_s", "gflops", "fraction_of_gemm_peak",
                        "ours_speedup"):
                assert _positive(e[key]), (e["engine"], key, e[key])
            assert e["p99_ms"] >= e["p50_ms"]
            assert e["forward_peak_rss_mb"] is not None and e["forward_peak_rss_mb"] >= 0
        deviation = {e["engine"]: e["max_deviation"] for e in r["engines"]}
        # fp32 engines agree to fp32 rounding at attended positions (tiny model, values ~1)
        assert deviation["transformers"] == 0.0 and deviation["ours"] < 1e-4 and deviation["onnxruntime"] < 1e-4
        q = r["quantized"]
        assert q["scheme"] == "int8" and q["sequences"] == len(r["lengths"]) + 64
        assert 0.99 <= q["min_cosine_last_hidden"] <= 1.0 + 1e-6 and q["argmax_agreement"] >= 0.99
        assert _positive(q["speedup_vs_fp32"]) and _positive(q["max_logit_deviation"])
        assert 0.0 <= q["share_of_fp32_margins_below_twice_it"] <= 1.0
        assert r["prepack"] and set(r["loaded_memory"]) == {"default", "prepack", "int8"}
        for m in r["loaded_memory"].values():
            assert all(_positive(m[k]) for k in ("baseline_rss_mb", "peak_rss_mb", "safetensors_mb", "rss_budget_mb"))
            assert m["peak_rss_mb"] >= m["baseline_rss_mb"]
    varlen = runs[1]
    assert varlen["padded_tokens"] == 16 * max(varlen["lengths"]) and varlen["padding_ratio"] > 1


def test_model_bench_table_and_plot(tmp_path, capsys):
    plt = pytest.importorskip("matplotlib")
    del plt
    out = tmp_path / "model.png"
    assert main(["bench", "model", "--size", "tiny", "--mix", "batch1-16", "--compare", "transformers",
                 "--rounds", "1", "--warmup", "0", "--no-memory", "--plot", str(out)]) == 0
    table = capsys.readouterr().out
    assert "GEMM peak" in table and "transformers" in table and "p50 ms" in table
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_benchmark_has_its_own_help(capsys):
    expected = {"model": ["--mix", "--size", "--compare", "--quantize", "--threads", "--checkpoint"],
                "kernels": ["--shape", "--ops", "--no-compile", "--device", "--dtype"],
                "cpu-kernels": ["--shapes", "--threads", "--dtype"],
                "tokenizer": ["--n-sentences", "--tokenizer-dir"],
                "pipelines": ["--texts", "--batch-size", "--max-tokens"],
                "serve": ["--clients", "--requests", "--tokens", "--max-batch-tokens", "--threads"]}
    for name, options in expected.items():
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", name, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert f"ernie-m-fast bench {name}" in text
        for option in options + ["--json", "--plot", "--repeats" if name != "tokenizer" else "--repeats"]:
            assert option in text, (name, option)


def test_model_bench_static_layout_matches_eager(capsys):
    """--cuda-graphs on a CPU runs the same static packed layout eagerly (what a graph would replay)."""
    result = _run_json(capsys, ["bench", "model", "--size", "tiny", "--mix", "varlen16", "--cuda-graphs",
                                "--compare", "ours-eager", "--rounds", "1", "--warmup", "0", "--no-memory"])
    assert result["cuda_graphs"] and result["deviation_reference"] == "ours-eager"
    ours = next(e for e in result["engines"] if e["engine"] == "ours")
    assert ours["max_deviation"] < 1e-5


def test_model_bench_rejects_unknown_names():
    from ernie_m_fast.bench import model

    with pytest.raises(ValueError, match="--compare"):
        model.run("tiny", "batch1-16", "transformers,tensorrt", rounds=1)
    with pytest.raises(ValueError, match="unknown size"):
        model.run("huge", "batch1-16", "", rounds=1)
    with pytest.raises(ValueError, match="unknown mix"):
        model.mix_lengths("batch3")


def test_model_flops_count_real_tokens_only():
    from ernie_m_fast.bench import model
    from ernie_m_fast.configuration import ErnieMConfig

    config = ErnieMConfig(**model.SIZES["base"])
    one = model.model_flops(config, [128])
    # 12 layers x 128 tokens x 2 x (4 x 768^2 + 2 x 768 x 3072) + attention 12 x 4 x 128^2 x 768 + pooler
    assert one == 12 * (128 * 2 * (4 * 768**2 + 2 * 768 * 3072) + 4 * 128**2 * 768) + 2 * 768**2
    assert model.model_flops(config, [128, 16]) == one + model.model_flops(config, [16])


def test_kernels_bench_times_every_op_on_every_backend(capsys):
    result = _run_json(capsys, ["bench", "kernels", "--device", "cpu", "--shape", "tiny", "--rounds", "1",
                                "--inner", "1"])
    assert result["ops"] == kernels_bench.op_names()
    assert result["backends"][:2] == ["eager", "torch.compile"]
    pairs = {(r["op"], r["backend"]) for r in result["results"]}
    assert pairs == {(op, b) for op in result["ops"] for b in result["backends"]}
    assert _positive(result["peak"]["gbs"]) and _positive(result["peak"]["tflops"])
    for r in result["results"]:
        assert _positive(r["p50_ms"]) and _positive(r["speedup_vs_eager"]) and _positive(r["fraction_of_peak"])
        assert _positive(r["tflops"] if r["op"] == "attention_varlen" else r["gbs"])


def test_kernels_bench_has_a_case_for_every_op_of_the_table():
    import torch

    cases = kernels_bench.make_cases(kernels_bench.SHAPES["tiny"], torch.float32, "cpu")
    assert set(kernels_bench.op_names()) <= set(cases)
    with pytest.raises(ValueError, match="unknown op"):
        kernels_bench.run("tiny", device="cpu", ops_to_run=["softmax"], compile=False)


def test_cpu_kernels_and_tokenizer_commands(capsys, tmp_path):
    import ernie_m_fast as emf

    if "cpu" in emf.ops.available_backends("cpu"):
        result = _run_json(capsys, ["bench", "cpu-kernels", "--shapes", "4x16", "--repeats", "1", "--dtype", "float32"])
        from ernie_m_fast.bench import cpu_kernels

        assert {r["op"] for r in result["results"]} == set(cpu_kernels.benchmarked_ops())
        assert all(_positive(r["ratio"]) for r in result["results"])
    result = _run_json(capsys, ["bench", "tokenizer", "--n-sentences", "20", "--repeats", "1", "--vocab-size", "1000"])
    assert all(s["identical_output"] and _positive(s["speedup"]) for s in result["scenarios"].values())
    result = _run_json(capsys, ["bench", "pipelines", "--texts", "12", "--batch-size", "4", "--repeats", "1"])
    assert _positive(result["speedup_token_budget_vs_fixed_batch"]) and all(
        v < 1e-4 for v in result["max_score_difference_vs_token_budget"].values())


def test_timer_interleaves_and_keeps_warmup_apart():
    calls = []
    timings = measure({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=4, warmup=2)
    assert calls[:4] == ["a", "a", "b", "b"]  # warm-up first, per contender
    assert calls[4:] == ["a", "b", "b", "a", "a", "b", "b", "a"]  # each round rotates who goes first
    assert all(len(t.samples) == 4 and t.warmup_s >= 0 for t in timings.values())
    with pytest.raises(ValueError, match="rounds"):
        measure({"a": lambda: None}, rounds=0)


def test_timing_quantiles_are_nearest_rank():
    t = Timing(warmup_s=0.0, samples=[float(i) for i in range(1, 21)])
    assert t.p50 == 10.5 and t.p99 == 20.0 and t.min == 1.0 and t.quantile(0.5) == 10.0
