"""The whole encoder: ours (padding-free, fused kernels) against transformers (padded), one run.

A batch of sentences with very unequal lengths, as real traffic has; both see the same padded
tensors. Reports each time and the speed-up of ours over transformers and over our own `torch`
backend (which isolates what the fused kernels add beyond padding-free execution).
"""

from __future__ import annotations

import tempfile

import torch

from .. import ops
from ..configuration import ErnieMConfig
from ..modeling import ErnieMModel
from .timing import time_interleaved


def run(batch: int = 32, min_len: int = 8, max_len: int = 128, hidden: int = 256, layers: int = 4, heads: int = 4,
        dtype=torch.float32, device=None, repeats: int = 5, seed: int = 0) -> dict:
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = ErnieMConfig(vocab_size=1000, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=4 * hidden, max_position_embeddings=max_len + 2)
    torch.manual_seed(seed)
    ours = ErnieMModel(config).to(device=device, dtype=dtype).eval()
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (batch,), generator=g)
    ids = torch.randint(5, 1000, (batch, int(lengths.max())), generator=g)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    ids, mask = ids.masked_fill(mask == 0, config.pad_token_id).to(device), mask.to(device)

    transformers_error = None
    torch_backend = ErnieMModel(config).to(device=device, dtype=dtype).eval()
    torch_backend.load_state_dict(ours.state_dict())
    torch_backend.set_backend("torch")
    fns = {
        "ours": lambda: ours(input_ids=ids, attention_mask=mask),
        "ours_torch_backend": lambda: torch_backend(input_ids=ids, attention_mask=mask),
    }
    try:
        import transformers

        with tempfile.TemporaryDirectory() as tmp:
            ours.save_pretrained(tmp)
            reference = transformers.ErnieMModel.from_pretrained(tmp, dtype=dtype).to(device).eval()
        with torch.inference_mode():
            reference(input_ids=ids, attention_mask=mask)
        fns["transformers"] = lambda: reference(input_ids=ids, attention_mask=mask)
    except ImportError:  # transformers is optional: the ratio against our torch backend remains
        pass
    except RuntimeError as exc:  # transformers' ErnieM adds an fp32 mask: it cannot run in fp16/bf16
        transformers_error = f"transformers cannot run this dtype: {str(exc).splitlines()[0]}"
    with torch.inference_mode():
        times = time_interleaved(fns, repeats=repeats, device=device)
    result = {
        "device": str(device), "dtype": str(dtype), "backend": ops.resolve_backend("auto", device),
        "batch": batch, "tokens": int(lengths.sum()), "padded_tokens": batch * int(lengths.max()),
        "ms": {k: round(v * 1e3, 2) for k, v in times.items()},
        "speedup_vs_torch_backend": round(times["ours_torch_backend"] / times["ours"], 2),
    }
    if "transformers" in times:
        result["speedup_vs_transformers"] = round(times["transformers"] / times["ours"], 2)
    elif transformers_error:
        result["transformers"] = transformers_error
    return result
