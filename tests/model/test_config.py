"""ErnieMConfig reads and writes the same config.json as transformers' ErnieMConfig."""

from __future__ import annotations

import json

import pytest
import transformers

import ernie_m_fast as emf

ERNIE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                "initializer_range", "pad_token_id", "layer_norm_eps", "classifier_dropout", "act_dropout")


def test_defaults_match_transformers():
    ours, theirs = emf.ErnieMConfig(), transformers.ErnieMConfig()
    for field in ERNIE_FIELDS + ("num_labels", "id2label", "label2id", "problem_type", "return_dict",
                                 "output_hidden_states", "output_attentions", "use_return_dict"):
        assert getattr(ours, field) == getattr(theirs, field), field


def test_round_trip_both_ways(tmp_path):
    theirs = transformers.ErnieMConfig(vocab_size=77, hidden_size=24, num_attention_heads=3, num_labels=4,
                                       problem_type="multi_label_classification", classifier_dropout=0.3,
                                       id2label={0: "a", 1: "b", 2: "c", 3: "d"},
                                       label2id={"a": 0, "b": 1, "c": 2, "d": 3}, custom_field=[1, 2])
    theirs.save_pretrained(tmp_path / "t")
    ours = emf.ErnieMConfig.from_pretrained(tmp_path / "t")
    for field in ERNIE_FIELDS + ("num_labels", "id2label", "label2id", "problem_type"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.custom_field == [1, 2]
    ours.save_pretrained(tmp_path / "o")
    back = transformers.ErnieMConfig.from_pretrained(tmp_path / "o")
    for field in ERNIE_FIELDS + ("num_labels", "id2label", "label2id", "problem_type", "custom_field"):
        assert getattr(back, field) == getattr(theirs, field), field
    assert json.loads((tmp_path / "o" / "config.json").read_text())["model_type"] == "ernie_m"


def test_attribute_map_and_labels():
    config = emf.ErnieMConfig(num_classes=3, dropout=0.2)
    assert config.num_labels == 3 and config.num_classes == 3
    assert config.classifier_dropout == 0.2 and config.dropout == 0.2
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    config.num_labels = 5
    assert len(config.id2label) == 5 and config.label2id["LABEL_4"] == 4
    config.num_classes = 2
    assert config.num_labels == 2


def test_invalid_values_raise():
    with pytest.raises(ValueError, match="problem_type"):
        emf.ErnieMConfig(problem_type="ranking")
    with pytest.raises(ValueError, match="num_labels"):
        emf.ErnieMConfig(num_labels=0)
    with pytest.raises(ValueError, match="model_type"):
        emf.ErnieMConfig.from_dict({"model_type": "bert"})
