"""Batching by a real-token budget, and running batches through a model.

The model is padding-free: it packs the attended tokens of a padded `[B, L]` batch into `[T, H]` rows
and spends no FLOP on padding. So what a batch costs is its number of *real* tokens, not `B x L`,
and the batcher fills each batch up to a token budget (`max_tokens`) instead of a fixed number of
rows. Sequences are sorted by length first, so the padded `[B, L]` id tensor the model receives (and
the `[B, L, ...]` outputs it scatters back) stay close to the real token count too.

`max_tokens=None` gives the conventional scheme instead: fixed groups of `batch_size` sequences in
input order (what transformers' pipelines do); the benchmark compares the two.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

DEFAULT_MAX_TOKENS = 8192


def plan_batches(lengths: Sequence[int], max_tokens: Optional[int] = DEFAULT_MAX_TOKENS,
                 batch_size: Optional[int] = None) -> list[list[int]]:
    """Group sequence indices into batches.

    With `max_tokens`: longest first, each batch holds as many sequences as fit in `max_tokens` real
    tokens (a sequence longer than the budget runs alone) and at most `batch_size` of them.
    With `max_tokens=None`: consecutive groups of `batch_size` (default 1) in input order.
    """
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive number of tokens or None, got {max_tokens}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of sequences or None, got {batch_size}")
    n = len(lengths)
    if max_tokens is None:
        step = batch_size or 1
        return [list(range(i, min(i + step, n))) for i in range(0, n, step)]
    order = sorted(range(n), key=lambda i: -lengths[i])  # stable: equal lengths keep input order
    batches: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for i in order:
        full = batch_size is not None and len(current) >= batch_size
        if current and (tokens + lengths[i] > max_tokens or full):
            batches.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += lengths[i]
    if current:
        batches.append(current)
    return batches


def pad_ids(rows: Sequence[Sequence[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into `input_ids` and `attention_mask` tensors of shape `[B, longest]`."""
    longest = max(len(r) for r in rows)
    ids = np.full((len(rows), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), longest), dtype=np.int64)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = row
        mask[b, : len(row)] = 1
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


# forward(input_ids, attention_mask) -> tensors; per-token ones are [B, L, ...], per-sequence ones [B, ...]
Forward = Callable[[torch.Tensor, torch.Tensor], Sequence[torch.Tensor]]


def run_batched(rows: Sequence[Sequence[int]], forward: Forward, token_level: Sequence[bool], *, pad_id: int,
                device=None, max_tokens: Optional[int] = DEFAULT_MAX_TOKENS, batch_size: Optional[int] = None,
                on_batch: Optional[Callable[[int], None]] = None) -> list[tuple[np.ndarray, ...]]:
    """Run every id list through `forward` in token-budget batches; one tuple of arrays per row, in input order.

    `token_level[k]` says whether output k is per token (its row is cut to the sequence's length) or
    per sequence. Arrays come back as float32 numpy on the CPU whatever the model's device and dtype.
    `on_batch(n)` is called after each batch with the number of rows it held (progress bars).
    """
    results: list[Optional[tuple[np.ndarray, ...]]] = [None] * len(rows)
    lengths = [len(r) for r in rows]
    if any(n == 0 for n in lengths):
        raise ValueError("cannot run an empty sequence through the model")
    for batch in plan_batches(lengths, max_tokens, batch_size):
        input_ids, attention_mask = pad_ids([rows[i] for i in batch], pad_id, device)
        with torch.inference_mode():
            outputs = forward(input_ids, attention_mask)
        arrays = [o.detach().float().cpu().numpy() for o in outputs]
        for b, i in enumerate(batch):
            results[i] = tuple(a[b, : lengths[i]] if per_token else a[b] for a, per_token in zip(arrays, token_level))
        if on_batch is not None:
            on_batch(len(batch))
    return results  # type: ignore[return-value]


def chunked(items: Iterator, size: Optional[int]) -> Iterator[list]:
    """Consecutive lists of `size` items from an iterator (the last may be shorter; None: one list of all)."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
