"""Bad input gets a clear ValueError naming what is wrong, and leaves the model working."""

from __future__ import annotations

import pytest
import torch

import ernie_m_fast as emf
from tiny import MAX_POSITIONS, VOCAB, hf_model, scenario


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt")
    ref = hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2")
    ref.save_pretrained(path)
    return ref, emf.ErnieMForSequenceClassification.from_pretrained(path)


def _still_correct(pair):
    ref, ours = pair
    ids, mask = scenario("right_padding")
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids, attention_mask=mask).logits,
                                   ref(input_ids=ids, attention_mask=mask).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad_id", [VOCAB, VOCAB + 1000, -1])
def test_out_of_vocabulary_ids(pair, bad_id):
    ids, mask = scenario("right_padding")
    ids[2, 0] = bad_id
    with pytest.raises(ValueError, match=rf"token id {bad_id}\b.*\[0, {VOCAB}\)"):
        pair[1](input_ids=ids, attention_mask=mask)
    _still_correct(pair)


def test_too_long(pair):
    ids = torch.full((1, MAX_POSITIONS - 1), 5)
    with pytest.raises(ValueError, match=rf"length {MAX_POSITIONS - 1}.*maximum of {MAX_POSITIONS - 2}"):
        pair[1](input_ids=ids)
    _still_correct(pair)


def test_position_ids_out_of_range(pair):
    ids = torch.full((1, 4), 5)
    with pytest.raises(ValueError, match="position_ids holds"):
        pair[1](input_ids=ids, position_ids=torch.tensor([[0, 1, 2, MAX_POSITIONS]]))
    _still_correct(pair)


@pytest.mark.parametrize("mask_shape", [(4, 12), (4, 1, 1, 13), (13,)])
def test_mask_shape_mismatch(pair, mask_shape):
    ids, _ = scenario("right_padding")
    with pytest.raises(ValueError, match="attention_mask has shape"):
        pair[1](input_ids=ids, attention_mask=torch.ones(mask_shape))
    _still_correct(pair)


def test_row_with_no_attended_token(pair):
    ids, mask = scenario("right_padding")
    mask[3] = 0
    with pytest.raises(ValueError, match=r"no token in row\(s\) \[3\]"):
        pair[1](input_ids=ids, attention_mask=mask)
    _still_correct(pair)


def test_all_pad_row_without_mask(pair):
    ids, _ = scenario("right_padding")
    ids[0] = 1
    with pytest.raises(ValueError, match="no token"):
        pair[1](input_ids=ids)
    _still_correct(pair)


def test_non_binary_mask_and_float_ids(pair):
    ids, mask = scenario("right_padding")
    with pytest.raises(ValueError, match="only 0 and 1"):
        pair[1](input_ids=ids, attention_mask=mask * 2)
    with pytest.raises(ValueError, match="integer token ids"):
        pair[1](input_ids=ids.float(), attention_mask=mask)
    with pytest.raises(ValueError, match="both input_ids and inputs_embeds"):
        pair[1](input_ids=ids, inputs_embeds=torch.zeros(4, 13, 32))
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        pair[1](attention_mask=mask)
    with pytest.raises(ValueError, match=r"\(batch, sequence_length\)"):
        pair[1](input_ids=ids[0])
    _still_correct(pair)


def test_mask_dtypes_are_equivalent(pair):
    ids, mask = scenario("holes")
    with torch.no_grad():
        outs = [pair[1](input_ids=ids, attention_mask=m).logits for m in (mask, mask.bool(), mask.float(), mask.int())]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], atol=0, rtol=0)


def test_lists_and_numpy_arrays_are_accepted_as_tensors(pair):
    """A tokenizer called without return_tensors returns lists of ints: the model takes them as is."""
    import numpy as np

    ids, mask = scenario("holes")
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    with torch.no_grad():
        expected = pair[1](input_ids=ids, attention_mask=mask, position_ids=positions).logits
        from_lists = pair[1](input_ids=ids.tolist(), attention_mask=mask.tolist(), position_ids=positions.tolist())
        from_numpy = pair[1](input_ids=ids.numpy(), attention_mask=mask.numpy(), position_ids=positions.numpy())
        single = pair[1](input_ids=[[0, 5, 6, 2]]).logits
    torch.testing.assert_close(from_lists.logits, expected, atol=0, rtol=0)
    torch.testing.assert_close(from_numpy.logits, expected, atol=0, rtol=0)
    assert single.shape == (1, 2)
    assert np is not None


@pytest.mark.parametrize("name", ["input_ids", "attention_mask", "position_ids"])
def test_other_input_types_raise_type_error_naming_the_expected_type(pair, name):
    ids, mask = scenario("right_padding")
    inputs = {"input_ids": ids, "attention_mask": mask}
    for bad in ("0 5 6 2", {"a": 1}, 3.5, [[0, 5], [6]]):
        with pytest.raises(TypeError, match=f"{name} must be a torch.Tensor, a numpy array or a"):
            pair[1](**{**inputs, name: bad})
    _still_correct(pair)


def test_config_rejects_bad_shapes():
    with pytest.raises(ValueError, match="not a multiple of the number of attention heads"):
        emf.ErnieMModel(emf.ErnieMConfig(hidden_size=30, num_attention_heads=4, vocab_size=10))
    with pytest.raises(ValueError, match="hidden_act"):
        emf.ErnieMModel(emf.ErnieMConfig(hidden_size=8, num_attention_heads=2, vocab_size=10, hidden_act="nope"))
    with pytest.raises(ValueError, match="backend"):
        emf.ErnieMModel(emf.ErnieMConfig(hidden_size=8, num_attention_heads=2, vocab_size=10)).set_backend("gpu")


def test_question_answering_head_with_other_than_two_labels_says_so(tmp_path):
    """A classifier's checkpoint (3 labels) loaded for QA: transformers fails with an unpacking error."""
    hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2", num_labels=3).save_pretrained(tmp_path)
    qa = emf.ErnieMForQuestionAnswering.from_pretrained(tmp_path)
    ids, mask = scenario("right_padding")
    with pytest.raises(ValueError, match=r"needs config.num_labels == 2 .* has 3\. .*num_labels=2"):
        qa(input_ids=ids, attention_mask=mask)
    fixed = emf.ErnieMForQuestionAnswering.from_pretrained(tmp_path, num_labels=2)
    assert fixed(input_ids=ids, attention_mask=mask).start_logits.shape == ids.shape
