"""The command line: the demo (the README's main job), `info`, and the model benchmark on a tiny shape."""

from __future__ import annotations

import json

from ernie_m_fast.bench import model as model_bench
from ernie_m_fast.cli import main


def test_demo_runs_every_head_with_parity(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    heads = ("ErnieMModel", "ErnieMForSequenceClassification", "ErnieMForTokenClassification",
             "ErnieMForQuestionAnswering", "ErnieMForMultipleChoice", "ErnieMForInformationExtraction")
    for head in heads:
        assert head in out
    assert out.count("parity with transformers") == len(heads)
    assert "FAILED" not in out


def test_info_lists_backends(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["build"]["version"] and info["backends"]["cpu"]["torch"] == "available"
    assert info["backends"]["cpu"]["auto"] in ("cpu", "torch")


def test_model_benchmark_reports_ratios():
    result = model_bench.run("tiny", "varlen16", "transformers", rounds=1, warmup=0, memory=False)
    assert result["real_tokens"] < result["padded_tokens"]
    assert result["speedup"]["transformers"] > 0
    assert {e["engine"] for e in result["engines"]} == {"ours", "transformers"}
