"""Backend `triton`: the kernels in ernie_m_fast.triton_kernels (source: triton_kernels/ in the repo).

Runs on CUDA tensors, and on CPU tensors only under Triton's interpreter (TRITON_INTERPRET=1), which
is how CI proves the kernels without a GPU.
"""

from __future__ import annotations

import torch

from .backends import triton_interpreting


class TritonBackend:
    name = "triton"

    def __init__(self):
        from ernie_m_fast import triton_kernels  # imports triton; an ImportError marks the backend unavailable

        self._k = triton_kernels

    def unavailable_reasons(self, device: torch.device) -> list[str]:
        if device.type == "cuda":
            return []
        if device.type == "cpu" and triton_interpreting():
            return []
        return [f"triton runs on cuda tensors (or cpu tensors with TRITON_INTERPRET=1), not {device.type}"]

    def layernorm_residual(self, x, residual, weight, bias, eps):
        return self._k.layernorm_residual(x, residual, weight, bias, eps)

    def bias_gelu(self, x, bias, approximate="none"):
        return self._k.bias_gelu(x, bias, approximate)

    def attention_varlen(self, q, k, v, cu_seqlens, max_seqlen, softmax_scale):
        return self._k.attention_varlen(q, k, v, cu_seqlens, max_seqlen, softmax_scale)

    def embed_layernorm(self, input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps):
        """The fused gather + add + LayerNorm (other backends gather with torch: see ops.embed_layernorm)."""
        return self._k.embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias,
                                       eps)


def make_backend(name: str) -> TritonBackend:
    return TritonBackend()
