"""The contenders of the model benchmark, each loaded from the same checkpoint directory and called on
the same padded batch: ours (padding-free), transformers (padded) and ONNX Runtime (transformers'
model exported, padded). Each engine is a callable returning the last hidden state as a torch tensor.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import torch

ENGINES = ("ours", "ours-eager", "transformers", "onnxruntime")


@dataclass
class Engine:
    name: str
    run: Callable[[], object]  # one forward on the benchmark's batch (what is timed)
    last_hidden: Callable[[], torch.Tensor]  # the same forward's last hidden state, (B, L, H) on CPU
    load_s: float = 0.0
    note: Optional[str] = None


def ours(checkpoint: str, ids: torch.Tensor, mask: torch.Tensor, *, dtype, device, backend: str = "auto",
         quantize: Optional[str] = None, prepack: bool = False, cuda_graphs: bool = False,
         name: str = "ours") -> Engine:
    """Our ErnieMModel; with `cuda_graphs`, the encoder replays a CUDA graph captured for exactly this
    batch's packed layout (ernie_m_fast.cuda_graphs; on a CPU the same static layout runs eagerly)."""
    from ..modeling import ErnieMModel

    kwargs = {"quantize": quantize} if quantize else {"prepack": prepack}
    model = ErnieMModel.from_pretrained(checkpoint, dtype=dtype, device=device, backend=backend, **kwargs)
    ids, mask = ids.to(device), mask.to(device)
    if cuda_graphs:
        from ..cuda_graphs import StaticShape, enable_cuda_graphs

        lengths = mask.sum(1)
        enable_cuda_graphs(model, [StaticShape(rows=int(lengths.sum()), sequences=ids.shape[0],
                                               max_seqlen=int(lengths.max()))])

    def run():
        with torch.inference_mode():
            return model(input_ids=ids, attention_mask=mask)

    note = f"from_pretrained(quantize={quantize!r})" if quantize else f"from_pretrained(prepack={prepack})"
    return Engine(name, run, lambda: run().last_hidden_state.float().cpu(),
                  note=note + (", CUDA graph" if cuda_graphs else ""))


def transformers_model(checkpoint: str, ids: torch.Tensor, mask: torch.Tensor, *, dtype, device) -> Engine:
    import transformers

    model = transformers.ErnieMModel.from_pretrained(checkpoint, dtype=dtype).to(device).eval()
    ids, mask = ids.to(device), mask.to(device)

    def run():
        with torch.inference_mode():
            return model(input_ids=ids, attention_mask=mask)

    return Engine("transformers", run, lambda: run().last_hidden_state.float().cpu())


def export_onnx(checkpoint: str, path: str, ids: torch.Tensor, mask: torch.Tensor) -> None:
    """transformers' ErnieM (a copy loaded for the purpose: tracing export alters the module it
    traces) to ONNX with dynamic batch and sequence axes; fp32."""
    import transformers

    class LastHidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]

    model = transformers.ErnieMModel.from_pretrained(checkpoint, dtype=torch.float32).eval()
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(LastHidden(model), (ids.cpu(), mask.cpu()), path, dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                          opset_version=17)
    del model


def onnxruntime_model(checkpoint: str, ids: torch.Tensor, mask: torch.Tensor, *, threads: int,
                      workdir: str) -> Engine:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise RuntimeError("--compare onnxruntime needs onnxruntime and onnx: pip install 'ernie-m-fast[bench]'") from exc
    path = os.path.join(workdir, "ernie_m.onnx")
    export_onnx(checkpoint, path, ids, mask)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids.cpu().numpy(), "attention_mask": mask.cpu().numpy()}

    def run():
        return session.run(None, feed)

    return Engine("onnxruntime", run, lambda: torch.from_numpy(run()[0]).float(),
                  note=f"onnxruntime {ort.__version__}, ORT_ENABLE_ALL, CPUExecutionProvider")


def build(name: str, checkpoint: str, ids, mask, *, dtype, device, threads: int, workdir: str,
          cuda_graphs: bool = False, prepack: bool = False) -> Engine:
    if name == "ours":
        return ours(checkpoint, ids, mask, dtype=dtype, device=device, cuda_graphs=cuda_graphs, prepack=prepack)
    if name == "ours-eager":  # the default load, no CUDA graph and no packing: what the options add
        return ours(checkpoint, ids, mask, dtype=dtype, device=device, name=name)
    if name == "transformers":
        return transformers_model(checkpoint, ids, mask, dtype=dtype, device=device)
    if name == "onnxruntime":
        if torch.device(device).type != "cpu" or dtype != torch.float32:
            raise ValueError("the onnxruntime comparison runs on CPU in float32 only")
        return onnxruntime_model(checkpoint, ids, mask, threads=threads, workdir=workdir)
    raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")


def scratch_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="ernie_m_fast_bench_")

