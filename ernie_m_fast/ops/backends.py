"""Backend registry: what each backend is, where it runs, and which one `backend="auto"` picks.

Each backend object answers the three public ops with the same signatures as `torch_ops`. A backend
says why it cannot run somewhere (`unavailable_reasons`), in the manner of xformers' dispatcher, so
an explicit request for it fails with every reason listed instead of a bare import error.
"""

from __future__ import annotations

import functools
import importlib
import os

import torch

from . import torch_ops

# Names in the order `available_backends` lists them.
BACKEND_NAMES = ("torch", "cpu", "triton", "cuda", "cuda_sim")

# backend="auto" takes the first available name in this order for the tensors' device type.
# cuda_sim and interpreted triton are test vehicles, never chosen automatically.
AUTO_ORDER = {"cuda": ("triton", "cuda", "torch"), "cpu": ("cpu", "torch")}


def triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


class TorchBackend:
    name = "torch"
    layernorm_residual = staticmethod(torch_ops.layernorm_residual)
    bias_gelu = staticmethod(torch_ops.bias_gelu)
    attention_varlen = staticmethod(torch_ops.attention_varlen)

    def unavailable_reasons(self, device: torch.device) -> list[str]:
        return []


@functools.lru_cache(maxsize=None)
def _load(name: str):
    """The backend object for `name`, or a string saying why it could not be loaded."""
    if name == "torch":
        return TorchBackend()
    module = {
        "cpu": "ernie_m_fast.ops.native_backend",
        "cuda": "ernie_m_fast.ops.native_backend",
        "cuda_sim": "ernie_m_fast.ops.native_backend",
        "triton": "ernie_m_fast.ops.triton_backend",
    }[name]
    try:
        return importlib.import_module(module).make_backend(name)
    except ImportError as exc:  # a missing optional dependency (triton) or extension
        return f"{name}: {exc}"


def unavailable_reasons(name: str, device: torch.device) -> list[str]:
    if name not in BACKEND_NAMES:
        return [f"unknown backend {name!r}; known: {', '.join(BACKEND_NAMES)}"]
    backend = _load(name)
    if isinstance(backend, str):
        return [backend]
    return backend.unavailable_reasons(torch.device(device))


def available_backends(device="cpu") -> list[str]:
    """Backends that can run every public op on tensors of `device`."""
    device = torch.device(device)
    return [name for name in BACKEND_NAMES if not unavailable_reasons(name, device)]


@functools.lru_cache(maxsize=None)
def _auto(device_type: str, index) -> str:
    device = torch.device(device_type) if index is None else torch.device(device_type, index)
    for name in AUTO_ORDER.get(device_type, ("torch",)):
        if not unavailable_reasons(name, device):
            return name
    return "torch"


def resolve(backend: str, device) -> str:
    """Turn "auto" into a concrete backend for `device`; check an explicit name can run there."""
    device = torch.device(device)
    return _resolve(backend, device.type, device.index)


# The answer depends only on the arguments and the installation, so torch.compile may bake it in
# instead of tracing the registry (and its caches) into every graph.
@torch.compiler.assume_constant_result
def _resolve(backend: str, device_type: str, index) -> str:
    if backend == "auto":
        return _auto(device_type, index)
    device = torch.device(device_type) if index is None else torch.device(device_type, index)
    reasons = unavailable_reasons(backend, device)
    if reasons:
        raise ValueError(f"backend {backend!r} cannot run on {device}: " + "; ".join(reasons))
    return backend


def get(name: str):
    backend = _load(name)
    if isinstance(backend, str):
        raise ValueError(backend)
    return backend
