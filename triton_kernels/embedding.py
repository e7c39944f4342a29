"""LayerNorm(word_embeddings[input_ids] + position_embeddings[position_ids]): the embedding layer in one pass.

No kernel of its own: it is the layernorm_residual kernel (layernorm.py) with GATHER on, reading the
x row from the word table and the residual row from the position table by index, so both paths share
one body (single-pass and chunked). Traffic per token: two table rows read, one row written, against
eager's two gathers written and re-read, a sum written and re-read, then the LayerNorm.
"""

from __future__ import annotations

import torch
import triton

from ._common import check_device, interpreter_rounds_bf16, launch_device
from .layernorm import LayerNormConfig, _layernorm_residual_kernel, choose_config


def _check_ids_on_host(name: str, ids: torch.Tensor, rows: int) -> None:
    """Out-of-range ids would read outside the table; checked for CPU tensors only (no device sync)."""
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= rows):
        raise ValueError(f"{name} must lie in [0, {rows}), got values in [{int(ids.min())}, {int(ids.max())}]")


def embed_layernorm(input_ids: torch.Tensor, position_ids: torch.Tensor, word_embeddings: torch.Tensor,
                    position_embeddings: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5,
                    *, config: LayerNormConfig | None = None) -> torch.Tensor:
    """LayerNorm(word_embeddings[input_ids] + position_embeddings[position_ids]).

    input_ids, position_ids: int64/int32, one shape (usually (total_tokens,) packed), already offset;
    word_embeddings (vocab, hidden), position_embeddings (max_positions, hidden): one dtype
    (fp32/fp16/bf16), unit stride along hidden; weight, bias: (hidden,). Returns (*input_ids.shape,
    hidden), contiguous, in the tables' dtype. Ids are range-checked only for CPU tensors.
    """
    check_device(input_ids=input_ids, position_ids=position_ids, word_embeddings=word_embeddings,
                 position_embeddings=position_embeddings, weight=weight, bias=bias)
    hidden = word_embeddings.shape[1]
    ids = input_ids.reshape(-1).contiguous()
    pos = position_ids.reshape(-1).contiguous()
    if word_embeddings.device.type == "cpu":
        _check_ids_on_host("input_ids", ids, word_embeddings.shape[0])
        _check_ids_on_host("position_ids", pos, position_embeddings.shape[0])
    words = word_embeddings if word_embeddings.stride(1) == 1 else word_embeddings.contiguous()
    positions = position_embeddings if position_embeddings.stride(1) == 1 else position_embeddings.contiguous()
    w, b = weight.contiguous(), bias.contiguous()
    rows = ids.numel()
    out = torch.empty((rows, hidden), dtype=words.dtype, device=words.device)
    if rows:
        cfg = config or choose_config(rows, hidden)
        grid = (triton.cdiv(rows, cfg.block_rows),)
        with launch_device(words):
            _layernorm_residual_kernel[grid](
                out, words, words, positions, w, b, ids, pos, rows, hidden, words.stride(0), positions.stride(0),
                out.stride(0), float(eps), BLOCK_ROWS=cfg.block_rows, BLOCK_N=cfg.block_n,
                ROUND_BF16=interpreter_rounds_bf16(out.dtype), SINGLE_PASS=cfg.single_pass, GATHER=True,
                HAS_XBIAS=False, num_warps=cfg.num_warps,
            )
    return out.view(*input_ids.shape, hidden)
