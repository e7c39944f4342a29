"""A forward reads the device from the host once: the batch's checks and sizes, in one copy.

On a GPU every host read of device data (`.tolist()`, `.item()`, `bool(t)`, a data-dependent
`nonzero()`) waits for the device to drain, so a forward that reads several times stalls several
times. Packing reads once (validation, and the counts that size its nonzero_static calls); no
layer reads at all. Counted with a TorchFunctionMode, by the file that reads: the model's own code
on every CPU backend (the same code a GPU runs), and the kernels' Python glue on `cuda_sim`, whose
glue is the `cuda` backend's. The `cpu` backend's attention and the Triton launchers' range checks
read on the host only for CPU tensors, where a read costs no sync.
"""

from __future__ import annotations

import collections
import traceback

import pytest
import torch
from torch.overrides import TorchFunctionMode

import ernie_m_fast as emf
from tiny import hf_model, random_ids

HOST_READS = {torch.Tensor.tolist, torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__int__,
              torch.Tensor.__float__, torch.Tensor.__index__, torch.nonzero, torch.Tensor.nonzero,
              torch.Tensor.cpu, torch.Tensor.numpy}


class CountHostReads(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.reads = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS:
            caller = traceback.extract_stack(limit=2)[0]
            where = "kernel glue" if any(part in caller.filename for part in KERNEL_GLUE) else "model"
            self.reads[where, f"{func.__name__} at {caller.filename}:{caller.lineno}"] += 1
        return func(*args, **(kwargs or {}))


KERNEL_GLUE = ("/ernie_m_fast/ops/", "triton_kernels/")


def _count(reads, where):
    return sum(n for (w, _), n in reads.items() if w == where)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("syncs")
    hf_model("ErnieMForTokenClassification", "h128_d64_l1_n5", num_hidden_layers=2).save_pretrained(path)
    return emf.ErnieMForTokenClassification.from_pretrained(path).eval()


def _reads(model, **inputs) -> collections.Counter:
    with torch.inference_mode(), CountHostReads() as counter:
        model(**inputs)
    return counter.reads


@pytest.mark.parametrize("backend", emf.ops.available_backends("cpu"))
@pytest.mark.parametrize("padding", ["right", "left"])
def test_a_forward_reads_the_device_once(model, backend, padding):
    ids = random_ids(3, 9)
    mask = torch.ones_like(ids)
    if padding == "right":
        mask[1, 6:] = 0
    else:  # column 0 masked: the pooler's query-only rows, sized from the same read
        mask[1, :3] = 0
    model.set_backend(backend)
    reads = _reads(model, input_ids=ids, attention_mask=mask)
    assert _count(reads, "model") == 1, dict(reads)
    if backend == "cuda_sim":  # the cuda backend's glue: sizes arrive as host integers
        assert _count(reads, "kernel glue") == 0, dict(reads)


def test_labels_on_masked_positions_cost_one_more_read(model):
    """A caller's mask of positions to compute anyway has a count nobody has read yet."""
    ids = random_ids(2, 7)
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    labels = torch.zeros_like(ids)  # labels everywhere, masked positions included
    model.set_backend("torch")
    reads = _reads(model, input_ids=ids, attention_mask=mask, labels=labels)
    assert _count(reads, "model") <= 2, dict(reads)
