"""Autograd runs through the `torch` backend: gradients match transformers, and a step lowers the loss."""

from __future__ import annotations

import torch

import ernie_m_fast as emf
from tiny import hf_model, scenario


def test_gradients_match_transformers(tmp_path):
    ref = hf_model("ErnieMForTokenClassification", "h32_d16_l2_n2")
    ref.save_pretrained(tmp_path)
    ours = emf.ErnieMForTokenClassification.from_pretrained(tmp_path)
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


def test_grad_mode_uses_torch_backend_and_inference_uses_auto(tmp_path):
    hf_model("ErnieMModel", "h32_d16_l2_n2").save_pretrained(tmp_path)
    model = emf.ErnieMModel.from_pretrained(tmp_path)
    assert model.resolve_backend("cpu") == "torch"  # parameters require grad and grad mode is on
    with torch.inference_mode():
        assert model.resolve_backend("cpu") == emf.ops.resolve_backend("auto", "cpu")
