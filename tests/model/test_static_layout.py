"""The fixed-shape (CUDA graph) path: packing into a StaticShape changes no result.

On this CPU host the layouts run eagerly (no capture); tests/gpu/test_model_gpu.py captures and
replays real CUDA graphs. Every backend must leave real rows untouched by the filler rows and empty
sequences a static layout adds.
"""

from __future__ import annotations

import pytest
import torch

import ernie_m_fast as emf
from ernie_m_fast.cuda_graphs import StaticShape, disable_cuda_graphs, enable_cuda_graphs
from ernie_m_fast.packing import pack_batch
from tiny import hf_model, scenario

BACKENDS = emf.ops.available_backends("cpu")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("class_name", ["ErnieMForSequenceClassification", "ErnieMForTokenClassification"])
def test_static_layout_matches_eager(tmp_path, backend, class_name):
    hf_model(class_name, "h32_d16_l2_n2").save_pretrained(tmp_path)
    model = getattr(emf, class_name).from_pretrained(tmp_path, backend=backend)
    ids, mask = scenario("right_padding")  # 31 tokens in 4 sequences, longest 13
    with torch.inference_mode():
        eager = model(input_ids=ids, attention_mask=mask).logits
        runner = enable_cuda_graphs(model, [StaticShape(rows=16, sequences=2, max_seqlen=16),  # too small
                                            StaticShape(rows=48, sequences=6, max_seqlen=20)])
        static = runner.layout_for(pack_batch(model.config, ids, mask, query_only="first"))
        assert static == StaticShape(rows=48, sequences=6, max_seqlen=20)
        graphed = model(input_ids=ids, attention_mask=mask).logits
        # a second batch of the same layout reuses the captured entry with new contents
        ids2, mask2 = scenario("right_padding", seed=7)
        graphed2 = model(input_ids=ids2, attention_mask=mask2).logits
        assert len(runner._captured) == 1
        disable_cuda_graphs(model)
        eager2 = model(input_ids=ids2, attention_mask=mask2).logits
    valid = mask.bool()
    tol = dict(atol=1e-5, rtol=1e-5)  # fp32: the same kernels on the same real rows
    if graphed.dim() == 3:
        torch.testing.assert_close(graphed[valid], eager[valid], **tol)
        torch.testing.assert_close(graphed2[mask2.bool()], eager2[mask2.bool()], **tol)
    else:
        torch.testing.assert_close(graphed, eager, **tol)
        torch.testing.assert_close(graphed2, eager2, **tol)


def test_batches_that_fit_no_layout_run_eagerly(tmp_path):
    hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2").save_pretrained(tmp_path)
    model = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path)
    runner = enable_cuda_graphs(model, [StaticShape(rows=8, sequences=2, max_seqlen=8)])
    ids, mask = scenario("left_padding")
    with torch.inference_mode():
        assert runner.layout_for(pack_batch(model.config, ids, mask, query_only="first")) is None  # column 0 masked
        out = model(input_ids=ids, attention_mask=mask).logits
        disable_cuda_graphs(model)
        ref = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(out, ref, atol=0, rtol=0)
    assert not runner._captured
    with pytest.raises(ValueError, match="positive"):
        enable_cuda_graphs(model, [StaticShape(rows=0, sequences=1, max_seqlen=1)])
