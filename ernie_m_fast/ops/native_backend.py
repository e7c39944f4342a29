"""Backends `cpu`, `cuda` and `cuda_sim`: the compiled kernels in csrc/, reached through raw pointers.

The extension never links libtorch (shared DESIGN.md "Build"): this module prepares tensors,
allocates outputs, and passes `data_ptr()`s, sizes, a dtype code and a stream handle to the
compiled function `{prefix}_{op name}`. Inputs were validated at the ops entry (ernie_m_fast/checks.py);
per-input limits of the kernels are declared in `not_supported_reasons`, so dispatch sees them
before any launch.

`cpu` runs csrc/cpu in ernie_m_fast._C; `cuda` runs csrc/cuda in ernie_m_fast._C; `cuda_sim` runs the
same csrc/cuda sources compiled for the host against csrc/sim, in ernie_m_fast._sim.
"""

from __future__ import annotations

import importlib
import inspect

import torch

from . import torch_ops

DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}

# The CUDA kernels' limits (csrc/cuda/kernel_limits.h; the compiled module reports them as
# `cuda_limits()`, and tests/kernels/test_ops.py checks these equal it).
CUDA_LIMITS = {"max_head_dim": 128, "max_layernorm_hidden": 32768, "max_batch": 65535, "max_heads": 65535}
_LAYERNORM_OPS = ("layernorm_residual", "bias_residual_layernorm", "embed_layernorm")


def not_supported_reasons(backend: str, op: str, args: tuple) -> list[str]:
    """Why `backend` cannot run `op` on `args` (inputs already validated); empty when it can."""
    if backend == "cpu":
        return []  # the C++ kernels take any size the checks accept
    reasons = []
    if op == "attention_varlen":
        q, cu_seqlens = args[0], args[3]
        if q.shape[-1] > CUDA_LIMITS["max_head_dim"]:
            reasons.append(f"head_dim {q.shape[-1]} is over the CUDA attention's limit of {CUDA_LIMITS['max_head_dim']}")
        if q.shape[1] > CUDA_LIMITS["max_heads"]:
            reasons.append(f"{q.shape[1]} heads is over the CUDA attention's limit of {CUDA_LIMITS['max_heads']}")
        if cu_seqlens.shape[0] - 1 > CUDA_LIMITS["max_batch"]:
            reasons.append(f"{cu_seqlens.shape[0] - 1} sequences is over the CUDA attention's limit of "
                           f"{CUDA_LIMITS['max_batch']}")
    elif op in _LAYERNORM_OPS:
        hidden = args[2].shape[-1] if op == "embed_layernorm" else args[0].shape[-1]
        if hidden > CUDA_LIMITS["max_layernorm_hidden"]:
            reasons.append(f"hidden size {hidden} is over the CUDA LayerNorm's limit of "
                           f"{CUDA_LIMITS['max_layernorm_hidden']} (one fp32 row in shared memory)")
    return reasons


def _import(module: str):
    try:
        return importlib.import_module(module), None
    except ImportError as exc:
        return None, f"cannot import {module} ({exc})"


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, t.shape[-1]).contiguous()


class NativeBackend:
    def __init__(self, name: str, module, prefix: str, device_type: str, load_error):
        self.name = name
        self._m = module
        self._prefix = prefix
        self._device_type = device_type
        self._load_error = load_error

    def _fn(self, op: str):
        return getattr(self._m, f"{self._prefix}_{op}", None)

    def unavailable_reasons(self, device: torch.device) -> list[str]:
        from .table import OPS

        reasons = []
        if self._load_error:
            reasons.append(self._load_error)
        elif self.name == "cuda" and self._m is not None and not self._m.build_info().get("cuda"):
            reasons.append("ernie_m_fast._C was built without CUDA kernels (no nvcc at build time)")
        else:
            # attention on `cpu` is torch's SDPA and embed_layernorm gathers with torch everywhere
            compiled = [op.name for op in OPS if op.name not in ("embed_layernorm", "attention_varlen")]
            absent = [op for op in compiled if self._fn(op) is None]
            if absent:
                reasons.append(f"{self.name} kernels for {', '.join(absent)} are not in this build")
        if device.type != self._device_type:
            reasons.append(f"{self.name} runs on {self._device_type} tensors, not {device.type}")
        return reasons

    def _stream(self, t: torch.Tensor) -> int:
        return torch.cuda.current_stream(t.device).cuda_stream if t.is_cuda else 0

    def _rowwise(self, op: str, x, vectors, tail_args):
        """Launch a row-wise kernel: out, x, then the other (rows, hidden) or (hidden,) tensors, rows,
        hidden, `tail_args`, dtype code, stream. Vectors are cast to x's dtype (parameters may differ)."""
        hidden = x.shape[-1]
        x2 = _rows(x)
        others = [_rows(t) if t.dim() > 1 else (t if t.dtype == x.dtype else t.to(x.dtype)).contiguous()
                  for t in vectors]
        out = torch.empty_like(x2)
        if x2.shape[0]:
            self._fn(op)(out.data_ptr(), x2.data_ptr(), *(t.data_ptr() for t in others), x2.shape[0], hidden,
                         *tail_args, DTYPE_CODES[x.dtype], self._stream(x))
        return out.view(x.shape)

    def __getattr__(self, name: str):
        """The row-wise ops (table entries with `rowwise_scalars`), launched through `_rowwise`."""
        from .table import BY_NAME

        op = BY_NAME.get(name)
        if op is None or op.rowwise_scalars is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

        params = op.params

        def run(*args, **kwargs):
            # the reference's signature: arguments in order, defaults filled in
            values = list(args)
            for param, default in params[len(args):]:
                if param not in kwargs and default is inspect.Parameter.empty:
                    raise TypeError(f"{name}() missing required argument {param!r}")
                values.append(kwargs.pop(param, default))
            if kwargs:
                raise TypeError(f"{name}() got unexpected keyword arguments {sorted(kwargs)}")
            tensors = [v for v in values if isinstance(v, torch.Tensor)]
            scalars = [v for v in values if not isinstance(v, torch.Tensor)]
            return self._rowwise(name, tensors[0], tensors[1:], op.rowwise_scalars(*scalars))

        self.__dict__[name] = run  # later look-ups find it without coming here
        return run

    def embed_layernorm(self, input_ids, position_ids, word_embeddings, position_embeddings, weight, bias, eps=1e-5):
        return torch_ops.gather_then_layernorm(self.layernorm_residual, input_ids, position_ids, word_embeddings,
                                               position_embeddings, weight, bias, eps)

    def attention_varlen(self, q, k, v, cu_seqlens, max_seqlen, softmax_scale=None):
        fn = self._fn("attention_varlen")
        if fn is None:  # `cpu`: torch's fused SDPA, one sequence at a time, is the fastest we have
            return torch_ops.attention_varlen_sdpa(q, k, v, cu_seqlens, max_seqlen, softmax_scale)
        total, heads, head_dim = q.shape
        scale = head_dim**-0.5 if softmax_scale is None else float(softmax_scale)
        out = torch.empty((total, heads, head_dim), dtype=q.dtype, device=q.device)
        cu = cu_seqlens.contiguous()
        if total:
            fn(out.data_ptr(), q.data_ptr(), k.data_ptr(), v.data_ptr(), cu.data_ptr(), cu.numel() - 1, heads,
               head_dim, q.stride(0), k.stride(0), v.stride(0), int(max_seqlen), scale,
               DTYPE_CODES[q.dtype], self._stream(q))
        return out


def make_backend(name: str) -> NativeBackend:
    if name == "cuda_sim":
        module, error = _import("ernie_m_fast._sim")
        return NativeBackend(name, module, "cuda", "cpu", error)
    module, error = _import("ernie_m_fast._C")
    return NativeBackend(name, module, name, name, error)
