"""Training through the fused kernels: a forward under grad mode runs the backend's kernels (the custom
ops carry autograd formulas), gradients match transformers on every backend, and a step lowers the loss."""

from __future__ import annotations

import pytest
import torch

import ernie_m_fast as emf
from ernie_m_fast.ops import backends
from tiny import hf_model, scenario

BACKENDS = emf.ops.available_backends("cpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_match_transformers(tmp_path, backend):
    ref = hf_model("ErnieMForTokenClassification", "h32_d16_l2_n2")
    ref.save_pretrained(tmp_path)
    ours = emf.ErnieMForTokenClassification.from_pretrained(tmp_path, backend=backend)
    ids, mask = scenario("left_padding")
    labels = torch.randint(0, 2, ids.shape, generator=torch.Generator().manual_seed(0)).masked_fill(mask == 0, -100)
    ref(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    ours(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        # fp32 gradients of a 2-layer model: same tolerance as the forward outputs
        torch.testing.assert_close(p.grad, ref_grads[name].grad, atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")


def test_a_finetuning_step_reduces_the_loss(tmp_path):
    hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2").save_pretrained(tmp_path)
    model = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path).train()
    ids, mask = scenario("right_padding")
    labels = torch.tensor([0, 1, 1, 0])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(0)
    model.eval()  # measure without dropout noise
    before = model(input_ids=ids, attention_mask=mask, labels=labels).loss.item()
    model.train()
    for _ in range(3):
        opt.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        after = model(input_ids=ids, attention_mask=mask, labels=labels).loss.item()
    assert after < before, (before, after)


def test_grad_mode_runs_the_fused_kernels(tmp_path, monkeypatch):
    """A transformers user's `model(**batch)` with grad mode on gets the fused path, not the reference."""
    hf_model("ErnieMModel", "h32_d16_l2_n2").save_pretrained(tmp_path)
    model = emf.ErnieMModel.from_pretrained(tmp_path)
    assert torch.is_grad_enabled() and all(p.requires_grad for p in model.parameters())
    assert model.resolve_backend("cpu") == emf.ops.resolve_backend("auto", "cpu") != "torch"
    ran = []
    original = backends.implementation
    monkeypatch.setattr(backends, "implementation", lambda name, op: ran.append((name, op)) or original(name, op))
    ids, mask = scenario("right_padding")
    model(input_ids=ids, attention_mask=mask).last_hidden_state.sum().backward()
    fused = {op for name, op in ran if name == model.resolve_backend("cpu")}
    assert {"embed_layernorm", "bias_residual_layernorm", "bias_gelu", "attention_varlen"} <= fused, ran
    assert model.embeddings.word_embeddings.weight.grad is not None


def test_a_model_built_or_loaded_under_inference_mode_runs(tmp_path):
    """Serving code loads under torch.inference_mode(); its parameters are inference tensors, which
    have no version counter (the fused-QKV cache must not read it)."""
    hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2").save_pretrained(tmp_path)
    ids, mask = scenario("left_padding")
    reference = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path)  # ordinary parameters
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask)
    with torch.inference_mode():
        model = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path)
        assert all(p.is_inference() for p in model.parameters())
        first = model(input_ids=ids, attention_mask=mask).logits
        layer = model.ernie_m.encoder.layers[0].self_attn.self_attn
        layer.q_proj.weight.mul_(2.0)  # in-place change: the next forward must see it
        changed = model(input_ids=ids, attention_mask=mask).logits
        built = emf.ErnieMModel(model.config)
        built(input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(first, expected.logits, atol=0, rtol=0)
    assert not torch.equal(changed, first)
