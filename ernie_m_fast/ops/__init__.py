"""The fused operations of the encoder, one entry point each, dispatched to a backend.

Every op of the table (ops/table.py) is a public function here, `ernie_m_fast.ops.<name>(..., backend="auto")`,
with its torch reference's signature and docstring:

    layernorm_residual(x, residual, weight, bias, eps=1e-5)                        # LayerNorm(x + residual)
    bias_residual_layernorm(x, bias, residual, weight, norm_bias, eps=1e-5)         # LayerNorm(x + bias + residual)
    bias_gelu(x, bias, approximate="none")                                         # gelu(x + bias)
    attention_varlen(q, k, v, cu_seqlens, max_seqlen, softmax_scale=None)
    embed_layernorm(input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps=1e-5)
    available_backends(device)

A call validates its inputs once (ernie_m_fast/checks.py), picks a backend (ops/backends.py: `auto`
takes the first one that can run these inputs), and runs it: `torch` calls plain PyTorch directly;
every other backend runs behind the torch.library custom op `ernie_m_fast::<name>`, with a fake
implementation (torch.compile sees one node per call) and an autograd formula (a forward under grad
mode runs the fused kernels, and gradients are the reference's). Eager calls that autograd need not
record call the backend's kernel directly: the custom op's dispatch would only add time.
"""

from __future__ import annotations

import inspect
import re

import torch

from . import autograd, backends, table, torch_ops
from .backends import available_backends
from .torch_ops import attention_varlen_probs, query_only_attention

resolve_backend = backends.resolve

# The table's ops, then the reference-only attention variants the model needs (no fused kernels:
# probabilities and dropout, query-only rows), then backend discovery.
__all__ = [op.name for op in table.OPS] + ["attention_varlen_probs", "query_only_attention", "available_backends",
                                           "resolve_backend"]


def _schema(op) -> str:
    """The reference's schema without defaults (the public function applies them), plus `str backend`."""
    schema = torch.library.infer_schema(op.reference, mutates_args=())
    schema = re.sub(r"=[^,)]*", "", schema)
    return schema.replace(") ->", ", str backend) ->", 1)


def _register(op):
    def kernel(*args):
        *op_args, backend = args
        return backends.implementation(backend, op.name)(*op_args)

    qualname = f"ernie_m_fast::{op.name}"
    custom = torch.library.custom_op(qualname, kernel, mutates_args=(), schema=_schema(op))
    custom.register_fake(lambda *args: op.fake(*args[:-1]))
    autograd.register(op, qualname)
    return custom


def _bind(op_name: str, params: tuple, args: tuple, kwargs: dict) -> tuple:
    """args and kwargs in the reference's parameter order, defaults filled in (plain Python, so
    torch.compile traces it)."""
    if len(args) > len(params):
        raise TypeError(f"{op_name}() takes {len(params)} positional arguments but {len(args)} were given")
    values = list(args)
    for name, default in params[len(args):]:
        if name in kwargs:
            values.append(kwargs.pop(name))
        elif default is not inspect.Parameter.empty:
            values.append(default)
        else:
            raise TypeError(f"{op_name}() missing required argument {name!r}")
    if kwargs:
        raise TypeError(f"{op_name}() got unexpected keyword arguments {sorted(kwargs)}")
    return tuple(values)


def _needs_custom_op(values: tuple) -> bool:
    """Whether a call must go through the custom op: while torch.compile traces (one opaque node
    with a fake implementation) or when autograd must record it (its backward formula)."""
    if torch.compiler.is_compiling():
        return True
    return torch.is_grad_enabled() and any(isinstance(v, torch.Tensor) and v.requires_grad for v in values)


def _public(op):
    custom = _register(op)
    params = op.params

    def call(*args, backend: str = "auto", **kwargs):
        values = _bind(op.name, params, args, kwargs)
        op.check(*values)
        name = backends.choose(op.name, backend, values[op.device_arg].device, values)
        if name == "torch":
            return op.reference(*values)
        if _needs_custom_op(values):
            return custom(*values, name)
        # Eager inference: the kernel itself. The custom op's dispatch (~40 us a call, 48 calls a
        # base forward) buys nothing here: no graph to stay opaque in, no gradient to route.
        return backends.implementation(name, op.name)(*values)

    signature = inspect.signature(op.reference)
    backend_param = inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default="auto", annotation=str)
    call.__signature__ = signature.replace(parameters=[*signature.parameters.values(), backend_param])
    call.__name__ = call.__qualname__ = op.name
    call.__module__ = __name__
    call.__doc__ = (op.reference.__doc__ or op.doc) + "\n\n    backend: 'auto' or a name from available_backends()."
    call.custom_op = custom
    return call


for _op in table.OPS:
    globals()[_op.name] = _public(_op)
del _op
