"""The one table of fused ops: everything else (custom-op registration, the public functions,
dispatch, `available_backends`, the benchmarks, compile_check, the kernel tests) iterates `OPS`.

An entry declares an op once:
- `name`: the public function `ernie_m_fast.ops.<name>`, the custom op `ernie_m_fast::<name>`, and
  the name every backend's implementation is found by (`torch_ops.<name>`, the native backends'
  method `<name>`, `triton_kernels.<triton_module>.<name>`);
- the signature: that of the torch reference `torch_ops.<name>` (annotated; the custom op's schema
  is inferred from it, with a trailing `backend: str`);
- `check`: the input checks (ernie_m_fast/checks.py), run once at the ops entry, before any backend;
- `fake`: the output's shape, dtype and device from the inputs (torch.compile's meta function);
- `backward`: the autograd formula; None means "backward through the torch reference", which
  recomputes the reference on the saved inputs (ops/autograd.py);
- `device_arg`: the argument whose device picks the backend;
- `rowwise_scalars`: for a row-wise op (argument 0 of shape (..., hidden), the other tensors (..., hidden)
  or (hidden,)), the compiled kernels' scalar arguments from the op's non-tensor ones: the backends
  cpu/cuda/cuda_sim then call `{prefix}_<name>(out, <tensors>, rows, hidden, *scalars, dtype, stream)`
  with no per-op code (ops/native_backend.py); None for ops that have their own method there;
- `examples(dtype)`: small argument tuples on the CPU that exercise the launchers' configurations
  (compile_check records the Triton launches they make; benchmarks and tests build on them).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Optional

import torch

from .. import checks
from . import torch_ops


def _like_contiguous(x, *rest):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@dataclasses.dataclass(frozen=True)
class OpDef:
    name: str
    check: Callable[..., None]
    triton_module: str  # the file in triton_kernels/ that holds `<name>`
    examples: Callable[[torch.dtype], list]
    doc: str
    fake: Callable[..., torch.Tensor] = _like_contiguous  # default: shaped, typed and placed like argument 0
    device_arg: int = 0
    backward: Optional[Callable] = None
    rowwise_scalars: Optional[Callable[..., tuple]] = None

    @property
    def reference(self) -> Callable[..., torch.Tensor]:
        return getattr(torch_ops, self.name)

    @property
    def params(self) -> tuple:
        """((name, default or inspect.Parameter.empty), ...) of the reference's signature, in order."""
        return tuple((p.name, p.default) for p in inspect.signature(self.reference).parameters.values())


def _eps_scalar(eps):
    return (float(eps),)


def _rows(hidden: int, dtype, rows: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(rows, hidden, generator=g).to(dtype) for _ in range(2)] + [
        torch.randn(hidden, generator=g).to(dtype) for _ in range(3)]


# hidden sizes: one row per program, many rows per program, and the chunked (wide-row) path
_ROW_WIDTHS = (8, 768, 1031, 20000)


def _layernorm_examples(dtype):
    return [(x, r, w, b, 1e-5) for x, r, w, b, _ in (_rows(h, dtype) for h in _ROW_WIDTHS)]


def _bias_residual_layernorm_examples(dtype):
    return [(x, c, r, w, b, 1e-5) for x, r, w, b, c in (_rows(h, dtype) for h in _ROW_WIDTHS)]


def _bias_gelu_examples(dtype):
    x, _, b, _, _ = _rows(3072, dtype)
    return [(x, b, approximate) for approximate in ("none", "tanh")]


def _attention_examples(dtype):
    out = []
    for head_dim in (16, 32, 59, 64, 128):
        for max_len in (5, 512):
            q = torch.randn(max_len, 2, head_dim).to(dtype)
            out.append((q, q, q, torch.tensor([0, max_len], dtype=torch.int32), max_len, None))
    return out


def _embed_examples(dtype):
    ids = torch.tensor([0, 3, 7, 1], dtype=torch.int64)
    tables = [torch.randn(8, 768).to(dtype) for _ in range(2)]
    return [(ids, ids, *tables, torch.ones(768).to(dtype), torch.zeros(768).to(dtype), 1e-5)]


OPS: tuple[OpDef, ...] = (
    OpDef(
        name="layernorm_residual",
        check=checks.check_layernorm_residual,
        triton_module="layernorm",
        examples=_layernorm_examples,
        doc="LayerNorm(x + residual) over the last dimension",
        rowwise_scalars=_eps_scalar,
    ),
    OpDef(
        name="bias_residual_layernorm",
        check=checks.check_bias_residual_layernorm,
        triton_module="layernorm",
        examples=_bias_residual_layernorm_examples,
        doc="LayerNorm(x + bias + residual): a Linear's bias, the residual add and the LayerNorm after it",
        rowwise_scalars=_eps_scalar,
    ),
    OpDef(
        name="bias_gelu",
        check=checks.check_bias_gelu,
        triton_module="gelu",
        examples=_bias_gelu_examples,
        doc="GELU(x + bias), exact erf form or tanh approximation",
        rowwise_scalars=lambda approximate: (approximate == "tanh",),
    ),
    OpDef(
        name="attention_varlen",
        check=checks.check_attention_varlen,
        fake=lambda q, *rest: q.new_empty(q.shape),
        triton_module="attention",
        examples=_attention_examples,
        doc="softmax(q k^T * scale) v within each packed sequence",
    ),
    OpDef(
        name="embed_layernorm",
        check=checks.check_embed_layernorm,
        fake=lambda ids, pos, words, *rest: words.new_empty(tuple(ids.shape) + (words.shape[1],)),
        device_arg=2,
        triton_module="embedding",
        examples=_embed_examples,
        doc="LayerNorm(word_embeddings[input_ids] + position_embeddings[position_ids])",
    ),
)

BY_NAME: dict[str, OpDef] = {op.name: op for op in OPS}
