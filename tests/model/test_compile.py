"""torch.compile over the model: one graph break (packing, which must read the data), outputs = eager.

The fused ops are torch.library custom ops with fake implementations, so the compiled graph holds
each of them as a single node; the `torch` backend is traced into plain aten ops.
"""

from __future__ import annotations

import pytest
import torch

import ernie_m_fast as emf
from tiny import hf_model, scenario

COMPILE_BACKENDS = [b for b in ("torch", "cpu") if b in emf.ops.available_backends("cpu")]


@pytest.mark.slow
@pytest.mark.parametrize("backend", COMPILE_BACKENDS)
def test_compiled_model_matches_eager_with_one_graph_break(tmp_path, backend):
    hf_model("ErnieMForSequenceClassification", "h32_d16_l2_n2").save_pretrained(tmp_path)
    model = emf.ErnieMForSequenceClassification.from_pretrained(tmp_path, backend=backend)
    ids, mask = scenario("left_padding")
    torch._dynamo.reset()
    with torch.inference_mode():
        eager = model(input_ids=ids, attention_mask=mask).logits
        explained = torch._dynamo.explain(model)(input_ids=ids, attention_mask=mask)
        compiled = torch.compile(model, dynamic=True)
        out = compiled(input_ids=ids, attention_mask=mask).logits
        ids2, mask2 = scenario("holes")  # other lengths: the dynamic graph is reused, not retraced per shape
        out2 = compiled(input_ids=ids2, attention_mask=mask2).logits
        eager2 = model(input_ids=ids2, attention_mask=mask2).logits
    assert explained.graph_break_count == 1, [r.reason for r in explained.break_reasons]
    # fp32, same kernels; inductor may fuse/reorder the torch backend's elementwise math: 1e-5
    torch.testing.assert_close(out, eager, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out2, eager2, atol=1e-5, rtol=1e-5)
    if backend != "torch":
        ops_in_graph = {str(n.target) for g in explained.graphs for n in g.graph.nodes if n.op == "call_function"}
        assert any("ernie_m_fast" in name for name in ops_in_graph), sorted(ops_in_graph)
