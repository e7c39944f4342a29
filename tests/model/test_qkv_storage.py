"""q/k/v weights are stored once: outside autograd the three projections' parameters are views of
the one fused tensor the QKV GEMM reads, so nothing holds a second copy, and any change to them —
in place, by loading, by casting — is what the next forward computes with."""

from __future__ import annotations

import torch

import ernie_m_fast as emf
from tiny import hf_model, random_ids


def _attn(model):
    return model.encoder.layers[0].self_attn.self_attn


def _model(tmp_path):
    hf = hf_model("ErnieMModel", "h32_d16_l2_n2")
    hf.save_pretrained(tmp_path)
    return hf, emf.ErnieMModel.from_pretrained(tmp_path)


def test_projections_are_views_of_the_fused_weight(tmp_path):
    _, model = _model(tmp_path)
    ids = random_ids(2, 7)
    with torch.inference_mode():
        model(input_ids=ids)
    attn = _attn(model)
    weight, bias = attn._qkv_cache
    size = attn.all_head_size
    for i, linear in enumerate((attn.q_proj, attn.k_proj, attn.v_proj)):
        assert linear.weight.data_ptr() == weight[i * size].data_ptr()
        assert linear.bias.data_ptr() == bias[i * size:].data_ptr()
    # the parameters' storage is the fused tensor's: one allocation for the three weights
    assert attn.q_proj.weight.untyped_storage().data_ptr() == weight.untyped_storage().data_ptr()
    assert not attn.q_proj.weight.is_inference()  # fused outside inference mode: training may update it in place


def test_changes_to_a_projection_reach_the_next_forward(tmp_path):
    hf, model = _model(tmp_path)
    ids = random_ids(3, 9)
    with torch.inference_mode():
        model(input_ids=ids)  # fuses
    with torch.no_grad():  # an in-place update, as an optimizer step makes it
        for layer_ours, layer_hf in zip(model.encoder.layers, hf.encoder.layers):
            delta = torch.randn_like(layer_ours.self_attn.self_attn.k_proj.weight) * 0.5
            layer_ours.self_attn.self_attn.k_proj.weight.add_(delta)
            layer_hf.self_attn.self_attn.k_proj.weight.add_(delta)
        hf.encoder.layers[0].self_attn.self_attn.v_proj.bias.fill_(0.25)
        _attn(model).v_proj.bias.fill_(0.25)
        expected = hf(input_ids=ids).last_hidden_state
    with torch.inference_mode():
        got = model(input_ids=ids).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # a new parameter object (assignment) and a move (what .to(device) does: new storage for every
    # parameter) both leave the old views behind: re-fused on the next forward, still right
    with torch.no_grad():
        _attn(model).q_proj.weight = torch.nn.Parameter(_attn(model).q_proj.weight * 1.5)
        hf.encoder.layers[0].self_attn.self_attn.q_proj.weight.mul_(1.5)
        expected = hf(input_ids=ids).last_hidden_state
    with torch.inference_mode():
        got = model(input_ids=ids).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    model._apply(lambda t: t.clone())
    assert _attn(model)._qkv_cache is None  # the stale fused tensor is not kept alive
    with torch.inference_mode():
        got = model(input_ids=ids).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_gradients_reach_the_three_projections_after_fusing(tmp_path):
    _, model = _model(tmp_path)
    ids = random_ids(2, 5)
    with torch.inference_mode():
        model(input_ids=ids)
    model(input_ids=ids).last_hidden_state.sum().backward()
    attn = _attn(model)
    for linear in (attn.q_proj, attn.k_proj, attn.v_proj):
        assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0
