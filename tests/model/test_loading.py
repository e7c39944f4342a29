"""Checkpoints both ways (ours <-> transformers), every file layout, and every way loading can fail."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch
import transformers

import ernie_m_fast as emf
from tiny import CLASS_NAMES, hf_config, hf_model, scenario


def _run(model, class_name):
    """The model's first output, at attended positions where it is per token."""
    ids, mask = scenario("right_padding")
    if class_name == "ErnieMForMultipleChoice":
        ids, mask = ids.view(2, 2, -1), mask.view(2, 2, -1)
    with torch.no_grad():
        first = model(input_ids=ids, attention_mask=mask).to_tuple()[0]
    mask = mask.bool()
    return first[mask] if first.shape[: mask.dim()] == mask.shape else first


def _assert_same(a, b):
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_ours_to_transformers_round_trip(tmp_path, class_name):
    ref = hf_model(class_name, "h32_d16_l2_n2")
    ref.save_pretrained(tmp_path / "hf")
    ours = getattr(emf, class_name).from_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours")
    assert sorted(os.listdir(tmp_path / "ours")) == ["config.json", "model.safetensors"]
    back = getattr(transformers, class_name).from_pretrained(tmp_path / "ours").eval()
    assert set(back.state_dict()) == set(ours.state_dict())
    for key, value in ours.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    _assert_same(_run(back, class_name), _run(ours, class_name))
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["architectures"] == [class_name] and config["model_type"] == "ernie_m"


@pytest.mark.parametrize("layout", ["safetensors", "bin", "safetensors_sharded", "bin_sharded"])
def test_transformers_to_ours_every_layout(tmp_path, layout):
    ref = hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2")
    ref.save_pretrained(tmp_path, safe_serialization=layout.startswith("safetensors"),
                        max_shard_size="20KB" if layout.endswith("sharded") else "5GB")
    files = os.listdir(tmp_path)
    if layout.endswith("sharded"):
        assert any(f.endswith(".index.json") for f in files), files
    ours = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path)
    _assert_same(_run(ref, "ErnieMForSequenceClassification"), _run(ours, "ErnieMForSequenceClassification"))


def test_ours_sharded_save_loads_in_both(tmp_path):
    ref = hf_model("ErnieMForTokenClassification", "h32_d16_l2_n2")
    ref.save_pretrained(tmp_path / "hf")
    ours = emf.ErnieMForTokenClassification.from_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
    assert not (tmp_path / "sharded" / "model.safetensors").exists()
    again = emf.ErnieMForTokenClassification.from_pretrained(tmp_path / "sharded")
    theirs = transformers.ErnieMForTokenClassification.from_pretrained(tmp_path / "sharded").eval()
    _assert_same(_run(ours, "ErnieMForTokenClassification"), _run(again, "ErnieMForTokenClassification"))
    _assert_same(_run(ours, "ErnieMForTokenClassification"), _run(theirs, "ErnieMForTokenClassification"))


def test_base_checkpoint_into_head_and_head_into_base(tmp_path, caplog):
    base = hf_model("ErnieMModel", "h32_d16_l2_n2")
    base.save_pretrained(tmp_path / "base")
    with caplog.at_level(logging.WARNING, logger="ernie_m_fast"):
        head = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path / "base")
    assert "newly initialized" in caplog.text
    assert "classifier.weight" in caplog.text and "classifier.bias" in caplog.text
    assert "ernie_m.embeddings" not in caplog.text  # only the missing head is reported
    torch.testing.assert_close(head.ernie_m.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight)

    head_ref = hf_model("ErnieMForQuestionAnswering", "h32_d16_l2_n2")
    head_ref.save_pretrained(tmp_path / "qa")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ernie_m_fast"):
        bare = emf.ErnieMModel.from_pretrained(tmp_path / "qa")
    assert "were not used" in caplog.text and "qa_outputs.weight" in caplog.text
    assert "pooler.dense.weight" in caplog.text  # the QA model has no pooler: it is initialised
    ids, mask = scenario("right_padding")
    with torch.no_grad():
        a = bare(input_ids=ids, attention_mask=mask).last_hidden_state
        b = head_ref.ernie_m(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(a[mask.bool()], b[mask.bool()], atol=1e-5, rtol=1e-5)


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    hf_model("ErnieMModel", "h32_d16_l2_n2").save_pretrained(tmp_path)
    config = emf.ErnieMConfig.from_pretrained(tmp_path)
    config.intermediate_size = 40
    with pytest.raises(ValueError, match=r"linear1\.weight.*\(37, 32\).*\(40, 32\)"):
        emf.ErnieMModel.from_pretrained(tmp_path, config=config)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_truncated_file_names_the_file(tmp_path, name):
    hf_model("ErnieMModel", "h32_d16_l2_n2").save_pretrained(tmp_path, safe_serialization=name.endswith("safetensors"))
    path = tmp_path / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match=name.replace(".", r"\.")):
        emf.ErnieMModel.from_pretrained(tmp_path)


def test_corrupt_header_names_the_file(tmp_path):
    hf_model("ErnieMModel", "h32_d16_l2_n2").save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(OSError, match="model.safetensors"):
        emf.ErnieMModel.from_pretrained(tmp_path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    hf_model("ErnieMModel", "h32_d16_l2_n2").save_pretrained(tmp_path, safe_serialization=False)
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    state["evil"] = _Exploit()  # unpickling would call os.system
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="refusing to load"):
        emf.ErnieMModel.from_pretrained(tmp_path)


def test_missing_weights_and_missing_directory(tmp_path):
    hf_config("h32_d16_l2_n2").save_pretrained(tmp_path)
    with pytest.raises(OSError, match="has no weights"):
        emf.ErnieMModel.from_pretrained(tmp_path)
    with pytest.raises(OSError):
        emf.ErnieMModel.from_pretrained(tmp_path / "nope")


def test_loaded_models_are_in_eval_mode_with_requested_dtype(tmp_path):
    hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2").save_pretrained(tmp_path)
    model = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path)
    assert not model.training and all(not m.training for m in model.modules())
    assert model.dtype == torch.float32
    assert emf.ErnieMModel.from_pretrained(tmp_path, dtype=torch.bfloat16).dtype == torch.bfloat16
    assert emf.ErnieMModel.from_pretrained(tmp_path, torch_dtype="float16").dtype == torch.float16
    assert emf.ErnieMModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.float32
    with pytest.raises(ValueError, match="dtype"):
        emf.ErnieMModel.from_pretrained(tmp_path, dtype="float8")


def test_ernie_m_fast_picks_class_from_architectures_or_task(tmp_path):
    hf_model("ErnieMForQuestionAnswering", "h32_d16_l2_n2").save_pretrained(tmp_path)
    assert type(emf.ErnieMFast.from_pretrained(tmp_path)) is emf.ErnieMForQuestionAnswering
    assert type(emf.ErnieMFast.from_pretrained(tmp_path, task="feature-extraction")) is emf.ErnieMModel
    with pytest.raises(ValueError, match="unknown task"):
        emf.ErnieMFast.from_pretrained(tmp_path, task="translation")


def test_config_overrides_and_unknown_kwargs(tmp_path):
    hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2").save_pretrained(tmp_path)
    model = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path, output_hidden_states=True)
    assert model.config.output_hidden_states is True
    with pytest.raises(TypeError, match="unexpected keyword"):
        emf.ErnieMModel.from_pretrained(tmp_path, not_a_field=3)


def test_repo_id_without_network_fails_clearly(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing may be found or fetched
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match="susnato/ernie-m-base_pytorch"):
        emf.ErnieMModel.from_pretrained("susnato/ernie-m-base_pytorch", cache_dir=str(tmp_path))


def _fake_hub_cache(cache_dir, repo_id, files: dict[str, bytes], commit="0123456789abcdef0123456789abcdef01234567"):
    """The on-disk layout huggingface_hub's cache uses: refs/main -> snapshots/<commit>/<file>."""
    repo_dir = cache_dir / f"models--{repo_id.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_repo_id_loads_from_the_offline_hub_cache(tmp_path, monkeypatch, safe):
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as c

    ref = hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2")
    ref.save_pretrained(tmp_path / "src", safe_serialization=safe)
    files = {p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()}
    _fake_hub_cache(tmp_path / "cache", "someone/tiny-ernie-m", files)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    model = emf.ErnieMFast.from_pretrained("someone/tiny-ernie-m", cache_dir=str(tmp_path / "cache"))
    assert type(model) is emf.ErnieMForSequenceClassification
    _assert_same(_run(model, "ErnieMForSequenceClassification"), _run(ref, "ErnieMForSequenceClassification"))


def test_ignore_mismatched_sizes_reinitialises_the_head(tmp_path, caplog):
    ref = hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2")  # 2 labels
    ref.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="ignore_mismatched_sizes"):
        emf.ErnieMForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    with caplog.at_level(logging.WARNING, logger="ernie_m_fast"):
        model = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path, num_labels=5,
                                                                     ignore_mismatched_sizes=True)
    assert "classifier.weight: checkpoint (2, 32), model (5, 32)" in caplog.text
    assert model.classifier.weight.shape == (5, 32) and torch.all(model.classifier.bias == 0)
    torch.testing.assert_close(model.ernie_m.pooler.dense.weight, ref.ernie_m.pooler.dense.weight)


def test_loading_builds_on_meta_without_initialising_or_importing_the_compiler(tmp_path):
    """from_pretrained builds on the meta device with parameter init skipped: torch.nn.init on meta
    tensors would import torch._dynamo and sympy (~145 MB resident, ~1 s) for values it then discards.
    Checked in a fresh process, since this one has imported everything already."""
    import subprocess
    import sys

    hf_model("ErnieMModel", "h32_d16_l2_n2").save_pretrained(tmp_path)
    code = (
        "import sys, torch, ernie_m_fast as emf\n"
        f"m = emf.ErnieMModel.from_pretrained({str(tmp_path)!r})\n"
        "with torch.inference_mode(): m(input_ids=torch.tensor([[5, 6, 7]]))\n"
        "print(sorted(n for n in ('torch._dynamo', 'sympy') if n in sys.modules))\n"
        "print(torch.nn.init.normal_.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", out
    assert out[1] == "torch.nn.init", out  # the init functions are restored after the build
