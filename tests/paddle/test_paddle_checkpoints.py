"""PaddleNLP checkpoints load without paddle and reproduce PaddleNLP 2.8.1's own outputs.

The expected tensors were computed by PaddleNLP (tools/make_paddle_fixtures.py); see fixtures.py for
the tolerance.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
import transformers

import ernie_m_fast as emf
from ernie_m_fast.cli import main as cli_main
from paddle_fixtures import ATOL, BASE_DIR, UIE_DIR, case_inputs, legacy_uie_dir, outputs

BACKENDS = ["torch", "cpu"]
MASKED_CASES = ["masked", "positions", "pairs_masked"]
NO_MASK_CASES = ["no_mask", "taskflow_input"]  # PaddleNLP without a mask: paddle_pad_to reproduces it


def _close(actual: torch.Tensor, expected: np.ndarray, where=None):
    actual = actual.detach().numpy()
    if where is not None:
        actual, expected = actual[where], expected[where]
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=0)


def _run(model, inputs, case):
    kwargs = dict(inputs)
    if case in NO_MASK_CASES:
        kwargs["paddle_pad_to"] = inputs["input_ids"].shape[1]
    with torch.no_grad():
        return model(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", MASKED_CASES + NO_MASK_CASES)
def test_base_model_matches_paddlenlp(case, backend):
    model = emf.ErnieMModel.from_pretrained(BASE_DIR, backend=backend)
    data = outputs("ernie_m")
    inputs = case_inputs(data, case)
    out = _run(model, inputs, case)
    # with a mask, PaddleNLP's values at masked positions are not part of the contract; without one,
    # every position is a real token of PaddleNLP's input (the [PAD]s included)
    attended = inputs["attention_mask"].bool().numpy() if "attention_mask" in inputs else None
    _close(out.last_hidden_state, data[f"{case}.last_hidden_state"], attended)
    _close(out.pooler_output, data[f"{case}.pooler_output"])


@pytest.mark.parametrize("layout", ["config.json", "model_config.json"])
@pytest.mark.parametrize("case", MASKED_CASES + NO_MASK_CASES)
def test_uie_m_matches_paddlenlp_probabilities(tmp_path, layout, case):
    path = UIE_DIR if layout == "config.json" else legacy_uie_dir(tmp_path)
    model = emf.ErnieMFast.from_pretrained(path)
    assert type(model) is emf.ErnieMForInformationExtraction
    data = outputs("uie_m")
    inputs = case_inputs(data, case)
    out = _run(model, inputs, case)
    attended = inputs["attention_mask"].bool().numpy() if "attention_mask" in inputs else None
    # our head returns logits (as transformers'); PaddleNLP's UIEM returns sigmoid probabilities
    _close(torch.sigmoid(out.start_logits), data[f"{case}.start_prob"], attended)
    _close(torch.sigmoid(out.end_logits), data[f"{case}.end_prob"], attended)


def test_default_semantics_differ_from_paddlenlp_without_mask():
    """Without paddle_pad_to, no mask means transformers' semantics ([PAD] masked, [CLS] attended):
    the outputs must differ from PaddleNLP's, or the no-mask cases above would prove nothing."""
    model = emf.ErnieMModel.from_pretrained(BASE_DIR)
    data = outputs("ernie_m")
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(data["no_mask.input_ids"]))
    assert np.abs(out.pooler_output.numpy() - data["no_mask.pooler_output"]).max() > 100 * ATOL


def test_config_conversion():
    config = emf.ErnieMConfig.from_pretrained(UIE_DIR)
    paddle_config = json.loads((UIE_DIR / "config.json").read_text())
    assert paddle_config["architectures"] == ["UIEM"] and paddle_config["intermediate_size"] != 4 * 32
    assert config.architectures == ["ErnieMForInformationExtraction"]
    assert config.intermediate_size == 4 * config.hidden_size  # PaddleNLP's FFN, whatever the file says
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (
        paddle_config["hidden_size"], paddle_config["num_hidden_layers"], paddle_config["vocab_size"])
    assert "paddlenlp_version" not in config.to_dict() and "type_vocab_size" not in config.to_dict()


def test_legacy_config_reads_like_config_json(tmp_path):
    legacy = emf.ErnieMConfig.from_pretrained(legacy_uie_dir(tmp_path)).to_dict()
    current = emf.ErnieMConfig.from_pretrained(UIE_DIR).to_dict()
    assert legacy == current


def test_tokenizer_loads_as_paddlenlp_saved_it():
    tokenizer = emf.ErnieMTokenizer.from_pretrained(UIE_DIR)
    data = outputs("uie_m")
    ids = data["pairs_masked.input_ids"][0]
    # PaddleNLP's own encoding of ("人物", the Chinese text), padded; ours of the same pair
    ours = tokenizer("人物", "张三出生于北京，是一名工程师。2020年他去了上海工作，李四是他的同事。")["input_ids"]
    assert ours == [int(i) for i in ids[: len(ours)]] and set(ids[len(ours):]) <= {tokenizer.pad_token_id}


def test_qa_head_is_renamed_and_transposed(tmp_path):
    """PaddleNLP's QA head is `classifier` ([hidden, 2]); ours is `qa_outputs` ([2, hidden])."""
    import pickle

    from ernie_m_fast.paddle import read_pdparams

    state = read_pdparams(str(BASE_DIR / "model_state.pdparams"))
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.5, (32, 2)).astype("float32")
    bias = rng.normal(0, 0.5, (2,)).astype("float32")
    state = {f"ernie_m.{k}": v for k, v in state.items()} | {"classifier.weight": weight, "classifier.bias": bias}
    target = tmp_path / "qa"
    shutil.copytree(BASE_DIR, target)
    with open(target / "model_state.pdparams", "wb") as f:
        pickle.dump(state, f, protocol=4)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps(config | {"architectures": ["ErnieMForQuestionAnswering"]}))
    qa = emf.ErnieMFast.from_pretrained(target)
    assert type(qa) is emf.ErnieMForQuestionAnswering
    data = outputs("ernie_m")
    inputs = case_inputs(data, "masked")
    with torch.no_grad():
        out = qa(**inputs)
    hidden = data["masked.last_hidden_state"]  # PaddleNLP's; its QA head is hidden @ W + b
    expected = hidden @ weight + bias
    mask = inputs["attention_mask"].bool().numpy()
    _close(out.start_logits, expected[..., 0], mask)
    _close(out.end_logits, expected[..., 1], mask)


@pytest.mark.parametrize("layout", ["config.json", "model_config.json"])
def test_convert_writes_a_transformers_directory(tmp_path, layout, capsys):
    src = UIE_DIR if layout == "config.json" else legacy_uie_dir(tmp_path)
    dst = tmp_path / "converted"
    assert cli_main(["convert", str(src), str(dst)]) == 0
    assert str(dst) in capsys.readouterr().out
    files = set(os.listdir(dst))
    assert {"config.json", "model.safetensors", "sentencepiece.bpe.model", "vocab.txt",
            "tokenizer_config.json", "special_tokens_map.json"} <= files
    assert "model_state.pdparams" not in files
    data = outputs("uie_m")
    inputs = case_inputs(data, "masked")
    mask = inputs["attention_mask"].bool().numpy()
    ours = emf.ErnieMFast.from_pretrained(dst)
    ref = transformers.ErnieMForInformationExtraction.from_pretrained(dst).eval()
    ref_tokenizer = transformers.ErnieMTokenizer.from_pretrained(dst)
    with torch.no_grad():
        for model in (ours, ref):
            out = model(**inputs)
            _close(torch.sigmoid(out.start_logits), data["masked.start_prob"], mask)
            _close(torch.sigmoid(out.end_logits), data["masked.end_prob"], mask)
    assert ref_tokenizer.convert_tokens_to_ids(["[CLS]", "[PAD]", "[SEP]"]) == [0, 1, 2]
    assert emf.ErnieMTokenizer.from_pretrained(dst)("人物")["input_ids"] == \
        emf.ErnieMTokenizer.from_pretrained(UIE_DIR)("人物")["input_ids"]


def test_a_directory_without_config_says_what_is_missing(tmp_path):
    target = tmp_path / "weights_only"
    target.mkdir()
    shutil.copy(UIE_DIR / "model_state.pdparams", target)
    with pytest.raises(FileNotFoundError, match="model_state.pdparams.*neither config.json nor .*model_config.json"):
        emf.ErnieMFast.from_pretrained(target)


def test_a_legacy_config_without_weights_says_what_is_missing(tmp_path):
    target = legacy_uie_dir(tmp_path)
    (target / "model_state.pdparams").unlink()
    with pytest.raises(FileNotFoundError, match="model_config.json but no model_state.pdparams"):
        emf.ErnieMFast.from_pretrained(target)


def test_transformers_weights_win_over_pdparams(tmp_path):
    """A directory holding both layouts is read as transformers' (what save_pretrained wrote last)."""
    model = emf.ErnieMForInformationExtraction.from_pretrained(UIE_DIR)
    with torch.no_grad():
        model.linear_start.bias.add_(1.0)
    target = tmp_path / "both"
    shutil.copytree(UIE_DIR, target)
    model.save_pretrained(target)
    reloaded = emf.ErnieMFast.from_pretrained(target)
    assert torch.equal(reloaded.linear_start.bias, model.linear_start.bias)


def _rewrite_weights(tmp_path, rename=lambda k: k, convert=lambda a: a, config_update=None):
    import pickle

    from ernie_m_fast.paddle import read_pdparams

    target = tmp_path / "rewritten"
    shutil.copytree(UIE_DIR, target)
    state = {rename(k): convert(v) for k, v in read_pdparams(str(UIE_DIR / "model_state.pdparams")).items()}
    with open(target / "model_state.pdparams", "wb") as f:
        pickle.dump(state, f, protocol=4)
    if config_update:
        config = json.loads((target / "config.json").read_text())
        (target / "config.json").write_text(json.dumps(config | config_update))
    return target


def test_uie_m_from_before_paddlenlp_2_4_5_loads(tmp_path):
    """UIE-M checkpoints older than PaddleNLP 2.4.5 call the encoder `encoder` (Taskflow renames it)."""
    target = _rewrite_weights(tmp_path, rename=lambda k: "encoder." + k[len("ernie_m."):] if k.startswith("ernie_m.")
                              else k)
    model = emf.ErnieMFast.from_pretrained(target)
    data = outputs("uie_m")
    inputs = case_inputs(data, "masked")
    with torch.no_grad():
        out = model(**inputs)
    _close(torch.sigmoid(out.start_logits), data["masked.start_prob"], inputs["attention_mask"].bool().numpy())


def test_bfloat16_weights_saved_as_uint16_load(tmp_path):
    """numpy has no bfloat16: paddle saves bf16 parameters as their uint16 bit patterns."""
    to_bf16_bits = lambda a: (torch.from_numpy(a).to(torch.bfloat16).view(torch.int16).numpy().view("uint16"))  # noqa: E731
    target = _rewrite_weights(tmp_path, convert=to_bf16_bits, config_update={"dtype": "bfloat16"})
    model = emf.ErnieMFast.from_pretrained(target, dtype="auto")
    reference = emf.ErnieMFast.from_pretrained(UIE_DIR)
    assert model.dtype == torch.bfloat16
    for (key, value), (ref_key, ref_value) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert key == ref_key and torch.equal(value, ref_value.to(torch.bfloat16)), key
