"""Triton kernels (installed as ernie_m_fast.triton_kernels so PyPI's triton_kernels cannot shadow them).

One op per module: the @triton.jit kernel, its launcher (validation, block choice, launch) and its
config table. Importing this package imports triton; the `triton` backend treats an ImportError as
"backend unavailable".

    layernorm_residual(x, residual, weight, bias, eps=1e-5)          # LayerNorm(x + residual)
    bias_gelu(x, bias, approximate="none")                           # GELU(x + bias)
    attention_varlen(q, k, v, cu_seqlens, max_seqlen, softmax_scale) # packed-sequence flash attention
    embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps=1e-5)
"""

from .attention import attention_varlen
from .embedding import embed_layernorm
from .gelu import bias_gelu
from .layernorm import layernorm_residual

__all__ = ["layernorm_residual", "bias_gelu", "attention_varlen", "embed_layernorm"]
