"""Backend `triton`: the kernels in ernie_m_fast.triton_kernels (source: triton_kernels/ in the repo).

Op `<name>` is `triton_kernels.<triton_module>.<name>`, the module named by its table entry, imported
on first use (importing it imports triton). Runs on CUDA tensors, and on CPU tensors only under
Triton's interpreter (TRITON_INTERPRET=1), which is how CI proves the kernels without a GPU.
"""

from __future__ import annotations

import importlib

import torch

from ..checks import triton_interpreting
from .table import BY_NAME

MAX_HEAD_DIM = 256  # triton_kernels/attention.py: the largest head_dim its tiles cover
MAX_GRID_Y = 65535  # CUDA's limit on grid axis 1, which holds the attention's query blocks


def not_supported_reasons(backend: str, op: str, args: tuple) -> list[str]:
    """Why the triton kernels cannot run `op` on `args` (inputs already validated); empty when they can."""
    if op != "attention_varlen":
        return []
    q, max_seqlen = args[0], args[4]
    reasons = []
    if q.shape[-1] > MAX_HEAD_DIM:
        reasons.append(f"head_dim {q.shape[-1]} is over the triton attention's limit of {MAX_HEAD_DIM}")
    if max_seqlen > 16 * MAX_GRID_Y:  # the smallest query tile is 16 rows
        reasons.append(f"max_seqlen {max_seqlen} needs more than {MAX_GRID_Y} query blocks")
    return reasons


class TritonBackend:
    name = "triton"

    def __init__(self):
        importlib.import_module("ernie_m_fast.triton_kernels")  # imports triton: ImportError = unavailable

    def __getattr__(self, op_name: str):
        if op_name not in BY_NAME:
            raise AttributeError(op_name)
        module = importlib.import_module(f"ernie_m_fast.triton_kernels.{BY_NAME[op_name].triton_module}")
        return getattr(module, op_name)

    def unavailable_reasons(self, device: torch.device) -> list[str]:
        if device.type == "cuda":
            return []
        if device.type == "cpu" and triton_interpreting():
            return []
        return [f"triton runs on cuda tensors (or cpu tensors with TRITON_INTERPRET=1), not {device.type}"]


def make_backend(name: str) -> TritonBackend:
    return TritonBackend()
