"""Backends `cpu`, `cuda` and `cuda_sim`: the compiled kernels in csrc/, reached through raw pointers.

The extension never links libtorch (shared DESIGN.md "Build"): this module validates and prepares
tensors, allocates outputs, and passes `data_ptr()`s, sizes, a dtype code and a stream handle.
Every compiled module exposes the same launcher signatures:

    {prefix}_layernorm_residual(out, x, residual, weight, bias, rows, hidden, eps, dtype, stream)
    {prefix}_bias_gelu(out, x, bias, rows, hidden, tanh, dtype, stream)
    {prefix}_attention_varlen(out, q, k, v, cu_seqlens, batch, heads, head_dim,
                              q_stride, k_stride, v_stride, max_seqlen, softmax_scale, dtype, stream)

`cpu` runs csrc/cpu in ernie_m_fast._C; `cuda` runs csrc/cuda in ernie_m_fast._C; `cuda_sim` runs the
same csrc/cuda sources compiled for the host against csrc/sim, in ernie_m_fast._sim.
"""

from __future__ import annotations

import importlib

import torch

from . import torch_ops

DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def _import(module: str):
    try:
        return importlib.import_module(module), None
    except ImportError as exc:
        return None, f"cannot import {module} ({exc})"


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
        reasons = []
        if self._load_error:
            reasons.append(self._load_error)
        elif self.name == "cuda" and self._m is not None and not self._m.build_info().get("cuda"):
            reasons.append("ernie_m_fast._C was built without CUDA kernels (no nvcc at build time)")
        elif self._fn("layernorm_residual") is None or self._fn("bias_gelu") is None:
            reasons.append(f"{self.name} kernels are not in this build")
        if device.type != self._device_type:
            reasons.append(f"{self.name} runs on {self._device_type} tensors, not {device.type}")
        return reasons

    def _stream(self, t: torch.Tensor) -> int:
        return torch.cuda.current_stream(t.device).cuda_stream if t.is_cuda else 0

    def layernorm_residual(self, x, residual, weight, bias, eps):
        hidden = x.shape[-1]
        x2 = x.reshape(-1, hidden).contiguous()
        r2 = residual.reshape(-1, hidden).contiguous()
        w = weight.to(x.dtype).contiguous()
        b = bias.to(x.dtype).contiguous()
        out = torch.empty_like(x2)
        if x2.shape[0]:
            self._fn("layernorm_residual")(out.data_ptr(), x2.data_ptr(), r2.data_ptr(), w.data_ptr(), b.data_ptr(),
                                           x2.shape[0], hidden, float(eps), DTYPE_CODES[x.dtype], self._stream(x))
        return out.view(x.shape)

    def bias_gelu(self, x, bias, approximate="none"):
        hidden = x.shape[-1]
        x2 = x.reshape(-1, hidden).contiguous()
        b = bias.to(x.dtype).contiguous()
        out = torch.empty_like(x2)
        if x2.shape[0]:
            self._fn("bias_gelu")(out.data_ptr(), x2.data_ptr(), b.data_ptr(), x2.shape[0], hidden,
                                  approximate == "tanh", DTYPE_CODES[x.dtype], self._stream(x))
        return out.view(x.shape)

    def attention_varlen(self, q, k, v, cu_seqlens, max_seqlen, softmax_scale):
        fn = self._fn("attention_varlen")
        if fn is None:  # `cpu`: torch's fused SDPA, one sequence at a time, is the fastest we have
            return torch_ops.attention_varlen_sdpa(q, k, v, cu_seqlens, max_seqlen, softmax_scale)
        total, heads, head_dim = q.shape
        out = torch.empty((total, heads, head_dim), dtype=q.dtype, device=q.device)
        cu = cu_seqlens.contiguous()
        if total:
            fn(out.data_ptr(), q.data_ptr(), k.data_ptr(), v.data_ptr(), cu.data_ptr(), cu.numel() - 1, heads,
               head_dim, q.stride(0), k.stride(0), v.stride(0), int(max_seqlen), float(softmax_scale),
               DTYPE_CODES[q.dtype], self._stream(q))
        return out


def make_backend(name: str) -> NativeBackend:
    if name == "cuda_sim":
        module, error = _import("ernie_m_fast._sim")
        return NativeBackend(name, module, "cuda", "cpu", error)
    module, error = _import("ernie_m_fast._C")
    return NativeBackend(name, module, name, name, error)
