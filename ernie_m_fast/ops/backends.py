"""Backend registry and dispatch: what each backend is, where it runs, and which one runs a call.

Two kinds of reasons keep a backend from running a call, in the manner of xformers' dispatcher:
- the backend cannot run on a device at all (`unavailable_reasons`: not built, no GPU, triton not
  installed); decided once per device, from the installation;
- it cannot run this op on these inputs (`not_supported_reasons`: e.g. the CUDA attention's
  head_dim limit), declared by each backend per op and per input, checked before any launch.
`backend="auto"` takes the first backend in `AUTO_ORDER` with neither; an explicit name that has
either raises a ValueError listing them, and so does `auto` when no backend can (every one's reasons).
"""

from __future__ import annotations

import functools
import importlib

import torch

from . import native_backend, torch_ops, triton_backend
from .table import OPS

# Names in the order `available_backends` lists them.
BACKEND_NAMES = ("torch", "cpu", "triton", "cuda", "cuda_sim")

# backend="auto" takes the first name in this order, for the tensors' device type, that can run the
# call. cuda_sim and interpreted triton are test vehicles, never chosen automatically.
AUTO_ORDER = {"cuda": ("triton", "cuda", "torch"), "cpu": ("cpu", "torch")}

# Where each backend's implementation and its per-input rules live.
_MODULES = {"cpu": native_backend, "cuda": native_backend, "cuda_sim": native_backend, "triton": triton_backend}


def _assume_constant_result(fn):
    """torch.compiler.assume_constant_result without its import of torch._dynamo (~1.3 s, which
    `import ernie_m_fast` must not pay): that decorator only sets this attribute, which dynamo reads
    when it traces a call (tests/test_import.py checks that it still does)."""
    fn._dynamo_marked_constant = True
    return fn


class TorchBackend:
    """The reference: every op is `torch_ops.<name>`."""

    name = "torch"

    def __getattr__(self, op_name: str):
        return getattr(torch_ops, op_name)

    def unavailable_reasons(self, device: torch.device) -> list[str]:
        return []


@functools.lru_cache(maxsize=None)
def _load(name: str):
    """The backend object for `name`, or a string saying why it could not be loaded."""
    if name == "torch":
        return TorchBackend()
    try:
        return _MODULES[name].make_backend(name)
    except ImportError as exc:  # a missing optional dependency (triton) or extension
        return f"{name}: {exc}"


def unavailable_reasons(name: str, device) -> list[str]:
    """Why backend `name` cannot run on `device` at all (empty: it can)."""
    device = torch.device(device)
    return list(_unavailable(name, device.type, device.index))


# Depends only on the arguments and the installation, so torch.compile bakes the answer in instead
# of tracing the registry (imports, caches) into every graph.
@_assume_constant_result
def _unavailable(name: str, device_type: str, index) -> tuple:
    return _unavailable_cached(name, device_type, index)


@functools.lru_cache(maxsize=None)  # every op call asks; the answer only changes with the installation
def _unavailable_cached(name: str, device_type: str, index) -> tuple:
    if name not in BACKEND_NAMES:
        return (f"unknown backend {name!r}; known: {', '.join(BACKEND_NAMES)}",)
    backend = _load(name)
    if isinstance(backend, str):
        return (backend,)
    device = torch.device(device_type) if index is None else torch.device(device_type, index)
    return tuple(backend.unavailable_reasons(device))


def not_supported_reasons(name: str, op_name: str, args: tuple) -> list[str]:
    """Why backend `name` (available on the inputs' device) cannot run `op_name` on `args`."""
    if name == "torch":
        return []
    return _MODULES[name].not_supported_reasons(name, op_name, args)


def available_backends(device="cpu") -> list[str]:
    """Backends that can run every op in the table on tensors of `device`."""
    return [name for name in BACKEND_NAMES if not unavailable_reasons(name, device)]


@_assume_constant_result
def _auto_candidates(device_type: str, index) -> tuple:
    return tuple(name for name in AUTO_ORDER.get(device_type, ("torch",)) if not _unavailable(name, device_type, index))


def resolve(backend: str, device) -> str:
    """The backend for `device`, inputs aside: "auto" -> the first available one; a name -> itself,
    after checking it can run there (ValueError listing why not)."""
    device = torch.device(device)
    if backend == "auto":
        return _auto_candidates(device.type, device.index)[0]
    reasons = _unavailable(backend, device.type, device.index)
    if reasons:
        raise ValueError(f"backend {backend!r} cannot run on {device}: " + "; ".join(reasons))
    return backend


def choose(op_name: str, backend: str, device: torch.device, args: tuple) -> str:
    """The backend that runs this call: `resolve`, then each candidate's per-input rules."""
    if backend != "auto":
        reasons = _unavailable(backend, device.type, device.index) or not_supported_reasons(backend, op_name, args)
        if reasons:
            raise ValueError(f"backend {backend!r} cannot run {op_name} on these inputs ({device}): "
                             + "; ".join(reasons))
        return backend
    refused = []
    for name in AUTO_ORDER.get(device.type, ("torch",)):
        reasons = _unavailable(name, device.type, device.index) or not_supported_reasons(name, op_name, args)
        if not reasons:
            return name
        refused.append(f"{name}: " + "; ".join(reasons))
    raise ValueError(f"no backend can run {op_name} on these inputs ({device}): " + " | ".join(refused))


def get(name: str):
    backend = _load(name)
    if isinstance(backend, str):
        raise ValueError(backend)
    return backend


def implementation(backend: str, op_name: str):
    """Backend `backend`'s implementation of `op_name`, found by name."""
    return getattr(get(backend), op_name)


def missing_implementations() -> dict[str, list[str]]:
    """{backend: [ops of the table it has no implementation for]} among the backends loadable here."""
    missing = {}
    for name in BACKEND_NAMES:
        backend = _load(name)
        if not isinstance(backend, str):
            missing[name] = [op.name for op in OPS if getattr(backend, op.name, None) is None]
    return {k: v for k, v in missing.items() if v}
