"""The `cpu` backend's attention must reach SDPA's fused CPU kernel, not its unfused math fallback
(bmm, softmax, bmm: 1.7x slower at 16 tokens and 6x at 256 on the base shape). SDPA picks the math
path silently, e.g. for 3-D inputs, so the choice is checked on the profiler's op names."""

import pytest
import torch

import ernie_m_fast as emf

pytestmark = pytest.mark.skipif("cpu" not in emf.ops.available_backends("cpu"), reason="no cpu backend in this build")


def test_cpu_attention_uses_the_fused_sdpa_kernel():
    qkv = torch.randn(37, 3, 4, 16)  # the fused QKV GEMM's output, read through strided views
    cu = torch.tensor([0, 5, 37], dtype=torch.int32)
    with torch.profiler.profile() as prof:
        out = emf.ops.attention_varlen(qkv[:, 0], qkv[:, 1], qkv[:, 2], cu, 32, backend="cpu")
    names = {e.name for e in prof.events()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in names
    assert "aten::_scaled_dot_product_attention_math" not in names
    reference = emf.ops.attention_varlen(qkv[:, 0], qkv[:, 1], qkv[:, 2], cu, 32, backend="torch")
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)  # fp32: rounding order only
