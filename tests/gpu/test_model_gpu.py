"""The whole model on a real GPU: kernel backends vs the torch backend, CUDA graphs, torch.compile.

Skips (with the reason) on a machine without a CUDA device. The first GPU run of this module tells
the truth about the GPU paths that the CPU tests prove only through the interpreter and emulation.
"""

from __future__ import annotations

import time

import pytest
import torch

import ernie_m_fast as emf
from ernie_m_fast.cuda_graphs import StaticShape, enable_cuda_graphs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)"),
]

GPU_BACKENDS = [b for b in ("triton", "cuda") if torch.cuda.is_available() and b in emf.ops.available_backends("cuda")]


def _model(cls=emf.ErnieMForSequenceClassification, dtype=torch.float16, backend="auto"):
    config = emf.ErnieMConfig(vocab_size=1000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                              intermediate_size=1024, max_position_embeddings=514, num_labels=3)
    torch.manual_seed(0)
    return cls(config).to("cuda", dtype).eval().set_backend(backend)


def _batch(batch=8, max_len=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (batch,), generator=g)
    ids = torch.randint(5, 1000, (batch, int(lengths.max())), generator=g)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    return ids.masked_fill(mask == 0, 1).cuda(), mask.cuda()


@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_model_backend_tracks_fp32(backend, dtype):
    exact = _model(dtype=torch.float32, backend="torch")
    base = _model(dtype=dtype, backend="torch")
    ours = _model(dtype=dtype, backend=backend)
    ids, mask = _batch()
    with torch.inference_mode():
        ref = exact(input_ids=ids, attention_mask=mask).logits
        b = base(input_ids=ids, attention_mask=mask).logits.float()
        o = ours(input_ids=ids, attention_mask=mask).logits.float()
    floor = {torch.float16: 5e-3, torch.bfloat16: 4e-2}[dtype]
    assert (o - ref).abs().max() <= 2 * (b - ref).abs().max() + floor


@pytest.mark.parametrize("backend", GPU_BACKENDS + ["torch"])
def test_cuda_graph_replay_matches_eager(backend):
    model = _model(backend=backend)
    ids, mask = _batch(batch=8, max_len=60)
    ids2, mask2 = _batch(batch=6, max_len=64, seed=3)
    with torch.inference_mode():
        eager, eager2 = model(input_ids=ids, attention_mask=mask).logits, model(input_ids=ids2, attention_mask=mask2).logits
        runner = enable_cuda_graphs(model, [StaticShape(rows=512, sequences=8, max_seqlen=64)])
        graphed = model(input_ids=ids, attention_mask=mask).logits
        graphed2 = model(input_ids=ids2, attention_mask=mask2).logits  # same graph, new contents
    assert len(runner._captured) == 1 and next(iter(runner._captured.values())).graph is not None
    torch.testing.assert_close(graphed, eager, atol=2e-3, rtol=2e-3)  # fp16, same kernels: rounding only
    torch.testing.assert_close(graphed2, eager2, atol=2e-3, rtol=2e-3)


def test_torch_compile_reduce_overhead_runs():
    model = _model()
    ids, mask = _batch(batch=4, max_len=32)
    with torch.inference_mode():
        eager = model(input_ids=ids, attention_mask=mask).logits
        compiled = torch.compile(model, mode="reduce-overhead")
        for _ in range(3):
            out = compiled(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(out, eager, atol=2e-3, rtol=2e-3)


def test_report_model_speed_against_torch_backend(capsys):
    """Not an assertion on time: prints the ratio so the first GPU run reports the truth."""
    ids, mask = _batch(batch=32, max_len=256)
    timings = {}
    for backend in ["torch"] + GPU_BACKENDS:
        model = _model(backend=backend)
        with torch.inference_mode():
            for _ in range(3):
                model(input_ids=ids, attention_mask=mask)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(10):
                model(input_ids=ids, attention_mask=mask)
            torch.cuda.synchronize()
        timings[backend] = (time.perf_counter() - start) / 10
    with capsys.disabled():
        for backend, t in timings.items():
            print(f"\n[gpu model] {backend}: {t * 1e3:.2f} ms, speed-up vs torch {timings['torch'] / t:.2f}x")
