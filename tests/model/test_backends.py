"""The whole model on every backend this CPU host can run equals transformers at attended positions.

`triton` runs under Triton's interpreter and `cuda_sim` runs the CUDA kernel sources under the SIMT
emulation, so this is the end-to-end proof of the GPU code paths too.

Tolerance, fp32: 1e-4 absolute + 1e-4 relative. Each fused kernel is within ~1e-6 of PyTorch in fp32
(tests/kernels), but it sums in another order (one-pass statistics, online softmax), and those
differences pass through LayerNorms of a 2-3 layer model; 1e-4 holds them with margin while a
wrong mask, position or missing bias moves outputs by >1e-2.

The models have peaked attention (tiny.peak_attention): with transformers' init attention is nearly
uniform, and a softmax scale off by 1% would move the outputs by only ~5e-6.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

import ernie_m_fast as emf
from tiny import CLASS_NAMES, hf_model, peak_attention, scenario

KERNEL_BACKENDS = [b for b in emf.ops.available_backends("cpu") if b != "torch"]
ATOL = RTOL = 1e-4


def test_every_backend_is_available_on_this_host():
    """A backend that silently dropped out of the build would otherwise skip its tests."""
    expected = {"torch", "cpu", "cuda_sim"}
    if importlib.util.find_spec("triton") is not None and os.environ.get("TRITON_INTERPRET") == "1":
        expected.add("triton")
    available = set(emf.ops.available_backends("cpu"))
    missing = {name: emf.ops.backends.unavailable_reasons(name, torch.device("cpu")) for name in expected - available}
    assert not missing, f"backends missing on this host: {missing}"


def _masked(t, mask):
    return t[mask] if t.dim() >= 2 and t.shape[: mask.dim()] == mask.shape else t


@pytest.mark.parametrize("class_name", CLASS_NAMES)
@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_model_on_backend_matches_transformers(tmp_path, backend, class_name):
    ref = peak_attention(hf_model(class_name, "h32_d16_l2_n2"))
    ref.save_pretrained(tmp_path)
    ours = getattr(emf, class_name).from_pretrained(tmp_path, backend=backend)
    for scenario_name in ("left_padding", "holes"):
        ids, mask = scenario(scenario_name)
        valid = mask.bool()
        if class_name == "ErnieMForMultipleChoice":
            ids, mask = ids.view(2, 2, -1), mask.view(2, 2, -1)
        with torch.inference_mode():
            assert ours.resolve_backend("cpu") == backend
            r = ref(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            o = ours(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        for key in r.keys():
            rv, ov = r[key], o[key]
            for a, b in zip(rv if isinstance(rv, tuple) else (rv,), ov if isinstance(ov, tuple) else (ov,)):
                torch.testing.assert_close(_masked(b, valid), _masked(a, valid), atol=ATOL, rtol=RTOL,
                                           msg=lambda m: f"{backend} {class_name} {scenario_name} {key}: {m}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_half_precision_model_on_backend_tracks_torch_backend(tmp_path, backend, dtype):
    """In half precision the oracle is our own `torch` backend in the same dtype; the kernel path may
    differ from it by at most twice its own distance from the fp32 model, plus a rounding floor."""
    ref = peak_attention(hf_model("ErnieMForQuestionAnswering", "h128_d64_l1_n5"))
    ref.save_pretrained(tmp_path)
    fp32 = emf.ErnieMForQuestionAnswering.from_pretrained(tmp_path, backend="torch")
    base = emf.ErnieMForQuestionAnswering.from_pretrained(tmp_path, dtype=dtype, backend="torch")
    ours = emf.ErnieMForQuestionAnswering.from_pretrained(tmp_path, dtype=dtype, backend=backend)
    ids, mask = scenario("right_padding")
    valid = mask.bool()
    with torch.inference_mode():
        exact = fp32(input_ids=ids, attention_mask=mask).start_logits[valid]
        baseline = base(input_ids=ids, attention_mask=mask).start_logits[valid].float()
        got = ours(input_ids=ids, attention_mask=mask).start_logits[valid].float()
    floor = {torch.float16: 5e-3, torch.bfloat16: 4e-2}[dtype]
    assert (got - exact).abs().max() <= 2 * (baseline - exact).abs().max() + floor


@pytest.mark.parametrize("config_name", ["h32_d16_l2_n2", "h128_d64_l1_n5"])
def test_test_models_attend_to_few_keys(config_name):
    """The property the tests above rely on: on average a query gives its largest key at least 40% of
    its attention (transformers' init gives 13% on these rows)."""
    model = peak_attention(hf_model("ErnieMModel", config_name))
    ids, mask = scenario("right_padding")
    with torch.inference_mode():
        attentions = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    valid = mask.bool()
    for layer, probs in enumerate(attentions):  # (batch, heads, query, key)
        top = probs.max(-1).values.permute(0, 2, 1)[valid]  # (attended queries, heads)
        assert top.mean() > 0.4, f"layer {layer}: mean largest attention weight {top.mean():.3f}"
