"""Low latency on a GPU: the encoder captured as CUDA graphs for a few fixed packed layouts.

Padding-free batches have a different number of packed rows every time, which a CUDA graph cannot
follow. `enable_cuda_graphs` fixes a few layouts (`StaticShape`: packed rows, sequence slots, the
longest sequence); each batch is packed (eagerly: packing must read the mask) into the smallest
layout it fits — filler rows after the real ones, empty sequences after the real ones — and the
embeddings and every layer replay from a graph captured once per layout and backend. Heads and the
scatter back to padded shapes run eagerly (they are a few small ops). A batch that fits no layout,
or asks for something a graph does not hold (hidden states, attentions, head_mask, gradients,
query-only rows), takes the eager path, so results never depend on whether a graph was used.

    model = emf.ErnieMForSequenceClassification.from_pretrained(path, dtype=torch.float16, device="cuda")
    enable_cuda_graphs(model, [StaticShape(rows=256, sequences=8, max_seqlen=64),
                               StaticShape(rows=4096, sequences=32, max_seqlen=512)])
    with torch.inference_mode():
        out = model(**batch)        # replays the graph of the smallest layout the batch fits

Graphs hold the weights they were captured with: call `enable_cuda_graphs` again after changing
weights, dtype or device. On a CPU device the same layouts run eagerly (no capture), which is how the
static-layout path is tested without a GPU.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import torch

from .packing import PackedBatch, StaticShape

__all__ = ["StaticShape", "CUDAGraphRunner", "enable_cuda_graphs", "disable_cuda_graphs"]


@dataclasses.dataclass
class _Captured:
    batch: PackedBatch  # static input buffers the graph reads
    output: torch.Tensor  # static output buffer the graph writes
    graph: Optional["torch.cuda.CUDAGraph"]


class CUDAGraphRunner:
    def __init__(self, shapes: Sequence[StaticShape], capture: Optional[bool] = None, warmup: int = 2):
        if not shapes:
            raise ValueError("give at least one StaticShape")
        for shape in shapes:
            if min(shape.rows, shape.sequences, shape.max_seqlen) < 1:
                raise ValueError(f"every field of a StaticShape must be positive, got {shape}")
        self.shapes = sorted(shapes, key=lambda s: (s.rows, s.sequences, s.max_seqlen))
        self.capture = capture
        self.warmup = warmup
        self._captured: dict[tuple, _Captured] = {}

    def layout_for(self, batch: PackedBatch) -> Optional[StaticShape]:
        """The smallest layout this packed batch fits, or None (then the eager path runs). Uses only
        the sizes packing already read on the host: no extra device sync."""
        if batch.num_query_only or batch.input_ids is None:
            return None  # query-only rows (a masked column 0 under the pooler, labels) have no static slot
        return next((s for s in self.shapes if s.fits(batch.batch_size, batch.num_rows, batch.max_seqlen)), None)

    def run(self, model, batch: PackedBatch, backend: str) -> torch.Tensor:
        device = batch.position_ids.device
        key = (batch.static, backend, device, model.dtype)
        entry = self._captured.get(key)
        if entry is None:
            entry = self._captured[key] = self._capture(model, batch, backend, device)
        for name in ("input_ids", "position_ids", "cu_seqlens", "real_rows"):
            getattr(entry.batch, name).copy_(getattr(batch, name))
        if entry.graph is None:
            return model.run_layers(entry.batch, backend).sequence
        entry.graph.replay()
        return entry.output.clone()  # the buffer is overwritten by the next replay

    def _capture(self, model, batch: PackedBatch, backend: str, device) -> _Captured:
        static = dataclasses.replace(
            batch,
            input_ids=batch.input_ids.clone(),
            position_ids=batch.position_ids.clone(),
            cu_seqlens=batch.cu_seqlens.clone(),
            real_rows=batch.real_rows.clone(),
        )
        capture = device.type == "cuda" if self.capture is None else self.capture
        if not capture:
            return _Captured(static, torch.empty(0), None)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up: kernel compilation and caches, outside the graph
            for _ in range(self.warmup):
                model.run_layers(static, backend)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = model.run_layers(static, backend).sequence
        return _Captured(static, output, graph)


def enable_cuda_graphs(model, shapes: Sequence[StaticShape], capture: Optional[bool] = None, warmup: int = 2):
    """Route inference batches that fit one of `shapes` through captured graphs; returns the runner."""
    runner = CUDAGraphRunner(shapes, capture=capture, warmup=warmup)
    model.base_model.graph_runner = runner
    return runner


def disable_cuda_graphs(model) -> None:
    model.base_model.graph_runner = None
