"""From a padded batch to packed tokens and back: the padding-free layout every layer runs on.

A padded `[B, L]` batch becomes `N = T + E` packed rows:
- the first T rows are the attended tokens, row-major (sequence b occupies rows cu_seqlens[b] to
  cu_seqlens[b+1]); they are both queries and keys, and attention runs on them with `cu_seqlens`;
- the last E rows are *query-only* tokens: masked positions whose output the API still needs
  (column 0 for the pooler under left padding; masked positions that carry a label in a loss).
  transformers computes every position, masked ones included, so these make the pooler and the
  losses agree with it exactly while the common case (right padding, no labels) has E = 0.
Positions and validation are computed once, here, before any layer runs.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch

POSITION_OFFSET = 2  # position ids are offset by 2, as in PaddleNLP's ErnieM


@dataclasses.dataclass(frozen=True)
class StaticShape:
    """A fixed packed layout (for CUDA graphs): every tensor's shape depends on these alone.

    rows: packed rows N (real tokens first, filler rows after them, covered by no sequence);
    sequences: cu_seqlens has sequences + 1 entries (unused ones are empty sequences);
    max_seqlen: the attention grid's bound on a sequence's length.
    """

    rows: int
    sequences: int
    max_seqlen: int

    def fits(self, batch_size: int, total_tokens: int, longest: int) -> bool:
        return batch_size <= self.sequences and total_tokens <= self.rows and longest <= self.max_seqlen


@dataclasses.dataclass
class PackedBatch:
    batch_size: int
    seq_len: int
    token_index: torch.Tensor  # (N,) flat index into B * L of every packed row
    num_keyed: int  # T: rows that are keys as well as queries
    cu_seqlens: torch.Tensor  # (B + 1,) int32 offsets of each sequence's keyed rows
    max_seqlen: int
    query_only_rows: torch.Tensor  # (E,) the sequence each query-only row belongs to
    position_ids: torch.Tensor  # (N,) already offset by POSITION_OFFSET
    input_ids: Optional[torch.Tensor]  # (N,) or None when inputs_embeds are given
    inputs_embeds: Optional[torch.Tensor]  # (N, H) or None
    first_token_rows: torch.Tensor  # (B,) packed row of column 0 of each sequence, -1 if not packed
    static: Optional[StaticShape] = None  # set when the layout has fixed shapes (filler rows included)
    real_rows: Optional[torch.Tensor] = None  # (N,) 1 for real rows, 0 for filler; static layouts only
    # (num_keyed,) fp32 additive attention score of each key row; PaddleNLP's semantics only (paddle_semantics.py)
    key_bias: Optional[torch.Tensor] = None

    @property
    def num_rows(self) -> int:
        return self.token_index.numel()

    @property
    def num_query_only(self) -> int:
        return self.num_rows - self.num_keyed

    def scatter(self, packed: torch.Tensor) -> torch.Tensor:
        """(N, ...) packed rows -> (B, L, ...) with zeros at positions that were not computed."""
        tail = packed.shape[1:]
        slots = self.batch_size * self.seq_len
        flat = packed.new_zeros((slots + 1,) + tail)  # the extra slot absorbs filler rows
        flat = flat.index_copy(0, self.token_index, packed)
        return flat[:slots].view((self.batch_size, self.seq_len) + tail)

    def keyed_columns(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, max_seqlen) column of each keyed token in its row, and which slots are real."""
        index, valid = padded_layout(self.cu_seqlens, self.max_seqlen)
        cols = self.token_index[: self.num_keyed][index.reshape(-1)].view(index.shape) % self.seq_len
        return cols, valid


def padded_layout(cu_seqlens: torch.Tensor, max_seqlen: int):
    """Index map from a packed [T, ...] layout to [B, max_seqlen, ...].

    Returns (gather_index [B, L] long, valid [B, L] bool). Invalid slots point at row 0 and must be masked.
    """
    starts = cu_seqlens[:-1].long()
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    cols = torch.arange(max_seqlen, device=cu_seqlens.device)
    valid = cols[None, :] < lengths[:, None]
    index = torch.where(valid, starts[:, None] + cols[None, :], torch.zeros_like(cols)[None, :])
    return index, valid


@dataclasses.dataclass
class _Validated:
    """A padded batch that passed validation: tensors on one device, the mask as bool, the host-side numbers."""

    batch: int
    length: int
    device: torch.device
    input_ids: Optional[torch.Tensor]
    inputs_embeds: Optional[torch.Tensor]
    mask: torch.Tensor  # (B, L) bool
    lengths: torch.Tensor  # (B,) attended tokens per row
    positions: torch.Tensor  # (B, L) position ids, not yet offset
    longest: int
    total: int  # attended tokens in the batch
    first_masked: int  # rows whose column 0 is masked


def as_tensor_input(name: str, value):
    """A model input as a tensor: tensors pass; (nested) lists of numbers, as a tokenizer returns
    without return_tensors, and numpy arrays are converted; anything else is a TypeError naming
    what is expected. Dtypes are checked afterwards, as for tensors."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    expected = "a torch.Tensor, a numpy array or a (nested) list of ints"
    if not (isinstance(value, (list, tuple)) or type(value).__module__ == "numpy"):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be {expected}; this {type(value).__name__} is not one ({exc})") from None


def validate_batch(config, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None) -> _Validated:
    """Every check of a padded batch, with the data-dependent ones in one device-to-host copy."""
    if input_ids is not None and inputs_embeds is not None:
        raise ValueError("You cannot specify both input_ids and inputs_embeds at the same time.")
    if input_ids is None and inputs_embeds is None:
        raise ValueError("You have to specify either input_ids or inputs_embeds")
    input_ids = as_tensor_input("input_ids", input_ids)
    attention_mask = as_tensor_input("attention_mask", attention_mask)
    position_ids = as_tensor_input("position_ids", position_ids)
    if inputs_embeds is not None and not isinstance(inputs_embeds, torch.Tensor):
        raise TypeError(f"inputs_embeds must be a torch.Tensor, got {type(inputs_embeds).__name__}")
    if input_ids is not None:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, sequence_length), got shape {tuple(input_ids.shape)}")
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool or input_ids.is_complex():
            raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        batch, length = input_ids.shape
        device = input_ids.device
    else:
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != config.hidden_size:
            raise ValueError(
                f"inputs_embeds must be (batch, sequence_length, {config.hidden_size}), got {tuple(inputs_embeds.shape)}"
            )
        batch, length = inputs_embeds.shape[:2]
        device = inputs_embeds.device
    if batch == 0 or length == 0:
        raise ValueError(f"the batch is empty (shape {(batch, length)})")
    max_positions = config.max_position_embeddings - POSITION_OFFSET
    if position_ids is None and length > max_positions:
        raise ValueError(
            f"sequence length {length} is longer than this model's maximum of {max_positions} "
            f"(max_position_embeddings {config.max_position_embeddings} - {POSITION_OFFSET})"
        )
    if position_ids is not None and position_ids.shape != (batch, length):
        raise ValueError(f"position_ids has shape {tuple(position_ids.shape)} but the input is {(batch, length)}")

    if attention_mask is None:
        # transformers masks the pad id when no mask is given
        mask = (input_ids != config.pad_token_id if input_ids is not None
                else torch.ones(batch, length, dtype=torch.bool, device=device))
    else:
        if attention_mask.shape != (batch, length):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but the input is {(batch, length)}; "
                "ErnieM takes a 2-D mask of the input's shape (1 = attend, 0 = masked)"
            )
        attention_mask = attention_mask.to(device)
        mask = attention_mask.bool()
    lengths = mask.sum(1)

    # Every data-dependent check, and the sizes packing needs, in one device-to-host copy: one sync
    # on a GPU per forward, not one per check or per nonzero().
    stats = {"longest": lengths.max(), "empty_rows": (lengths == 0).any(), "total": lengths.sum(),
             "first_masked": (~mask[:, 0]).sum()}
    if input_ids is not None:
        stats.update(id_min=input_ids.min(), id_max=input_ids.max())
    if attention_mask is not None and attention_mask.dtype != torch.bool:
        stats["mask_not_binary"] = ((attention_mask != 0) & (attention_mask != 1)).any()
    if position_ids is not None:
        stats.update(pos_min=position_ids.min(), pos_max=position_ids.max())
    stats = dict(zip(stats, torch.stack([v.to(torch.float64) for v in stats.values()]).tolist()))

    if "id_min" in stats:
        bad = stats["id_min"] if stats["id_min"] < 0 else stats["id_max"] if stats["id_max"] >= config.vocab_size else None
        if bad is not None:
            raise ValueError(f"input_ids holds token id {int(bad)}, outside the vocabulary [0, {config.vocab_size}) "
                             "of this model")
    if stats.get("mask_not_binary"):
        raise ValueError("attention_mask must hold only 0 and 1")
    if stats["empty_rows"]:
        empty = (lengths == 0).nonzero().flatten().tolist()
        raise ValueError(f"attention_mask attends to no token in row(s) {empty}; every sequence needs at least one")
    if position_ids is None:
        positions = torch.arange(length, device=device).expand(batch, length)
    else:
        if stats["pos_min"] < 0 or stats["pos_max"] >= max_positions:
            bad = stats["pos_min"] if stats["pos_min"] < 0 else stats["pos_max"]
            raise ValueError(
                f"position_ids holds {int(bad)}; positions must lie in [0, {max_positions}) "
                f"(max_position_embeddings {config.max_position_embeddings} - {POSITION_OFFSET})"
            )
        positions = position_ids.to(device)
    return _Validated(batch, length, device, input_ids, inputs_embeds, mask, lengths, positions, int(stats["longest"]),
                      int(stats["total"]), int(stats["first_masked"]))


def _pack(v: _Validated, query_only) -> PackedBatch:
    """Gather the attended tokens (then the query-only ones) of a validated batch into packed rows."""
    batch, length, device = v.batch, v.length, v.device
    flat_mask = v.mask.reshape(-1)
    # nonzero_static with the counts validation already read: no further host sync on a GPU
    keyed = torch.nonzero_static(flat_mask, size=v.total).flatten()
    extra_count = None  # unknown until counted (a caller's mask: its one extra sync)
    if isinstance(query_only, torch.Tensor):
        extra_mask = query_only.to(device=device, dtype=torch.bool).reshape(-1) & ~flat_mask
    elif query_only == "first":
        extra_mask, extra_count = torch.zeros_like(flat_mask), v.first_masked
        extra_mask[:: length] = ~v.mask[:, 0]
    elif query_only == "all":
        extra_mask, extra_count = ~flat_mask, batch * length - v.total
    elif query_only == "none":
        extra_mask = None
    else:
        raise ValueError(f"query_only must be 'none', 'first', 'all' or a mask, got {query_only!r}")
    if extra_mask is None or extra_count == 0:
        extra = keyed.new_empty(0)
    elif extra_count is None:
        extra = extra_mask.nonzero().flatten()
    else:
        extra = torch.nonzero_static(extra_mask, size=extra_count).flatten()
    token_index = torch.cat([keyed, extra]) if extra.numel() else keyed

    cu_seqlens = torch.zeros(batch + 1, dtype=torch.int32, device=device)
    cu_seqlens[1:] = torch.cumsum(v.lengths, 0)
    # packed row of column 0 of each sequence (the pooler's input); -1 where it was not packed
    slot = torch.full((batch * length,), -1, dtype=torch.long, device=device)
    slot[token_index] = torch.arange(token_index.numel(), device=device)
    first_rows = slot[::length]

    return PackedBatch(
        batch_size=batch,
        seq_len=length,
        token_index=token_index,
        num_keyed=keyed.numel(),
        cu_seqlens=cu_seqlens,
        max_seqlen=v.longest,
        query_only_rows=extra // length,
        position_ids=v.positions.reshape(-1)[token_index] + POSITION_OFFSET,
        input_ids=v.input_ids.reshape(-1)[token_index] if v.input_ids is not None else None,
        inputs_embeds=(v.inputs_embeds.reshape(batch * length, -1)[token_index]
                       if v.inputs_embeds is not None else None),
        first_token_rows=first_rows,
    )


_EAGER: dict = {}


def _eager(fn):
    """`fn` behind torch.compiler.disable while torch.compile traces, `fn` itself otherwise.

    Packing must read the data (validation, nonzero()), so under torch.compile it is the one graph
    break, run eagerly. The decorator is applied on first need rather than at import: it imports
    torch._dynamo (~1.3 s), which `import ernie_m_fast` must not pay.
    """
    if not torch.compiler.is_compiling():
        return fn
    disabled = _EAGER.get(fn)
    if disabled is None:
        disabled = _EAGER[fn] = torch.compiler.disable(fn)
    return disabled


def pack_batch(config, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
               query_only: str | torch.Tensor = "none", static: Optional[StaticShape] = None) -> PackedBatch:
    """Validate a padded batch, pack it, and (with `static`) fit it into that fixed layout.

    query_only: which masked positions to compute anyway — "none", "first" (column 0 of each row,
    for the pooler), "all", or a (B, L) bool tensor.
    static: pack into this fixed layout (no query-only rows allowed; raises ValueError if the batch
    does not fit).
    """
    return _eager(_pack_batch)(config, input_ids, attention_mask, position_ids, inputs_embeds, query_only, static)


def _pack_batch(config, input_ids, attention_mask, position_ids, inputs_embeds, query_only, static) -> PackedBatch:
    packed = _pack(validate_batch(config, input_ids, attention_mask, position_ids, inputs_embeds), query_only)
    return _fit_static(packed, static, config) if static is not None else packed


def fit_static(packed: PackedBatch, static: StaticShape, config) -> PackedBatch:
    """Pad a packed batch to the fixed layout `static` (eagerly under torch.compile, as packing is)."""
    return _eager(_fit_static)(packed, static, config)


def _fit_static(packed: PackedBatch, static: StaticShape, config) -> PackedBatch:
    """Pad a packed batch to a fixed layout: filler rows after the real ones, empty sequences after
    the real ones. Filler rows hold the pad id at the first position and belong to no sequence."""
    real = packed.num_rows
    if packed.num_query_only:
        raise ValueError("a static layout cannot hold query-only rows (column 0 masked, or labels on masked positions)")
    if not static.fits(packed.batch_size, real, packed.max_seqlen):
        raise ValueError(f"batch (sequences {packed.batch_size}, tokens {real}, longest {packed.max_seqlen}) "
                         f"does not fit the static layout {static}")
    filler = static.rows - real
    device = packed.token_index.device
    cu = torch.full((static.sequences + 1,), real, dtype=torch.int32, device=device)
    cu[: packed.batch_size + 1] = packed.cu_seqlens

    def pad(t, value):
        return torch.cat([t, t.new_full((filler,) + tuple(t.shape[1:]), value)]) if filler else t

    return dataclasses.replace(
        packed,
        token_index=pad(packed.token_index, packed.batch_size * packed.seq_len),  # the scatter's spare slot
        num_keyed=static.rows,
        cu_seqlens=cu,
        max_seqlen=static.max_seqlen,
        position_ids=pad(packed.position_ids, POSITION_OFFSET),
        input_ids=pad(packed.input_ids, config.pad_token_id) if packed.input_ids is not None else None,
        inputs_embeds=pad(packed.inputs_embeds, 0.0) if packed.inputs_embeds is not None else None,
        static=static,
        real_rows=(torch.arange(static.rows, device=device) < real),
    )
