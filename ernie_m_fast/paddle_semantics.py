"""PaddleNLP's input semantics, padding-free: what `paddle_pad_to=` on a forward turns on.

PaddleNLP's ErnieM, given no attention mask, masks token id 0 ([CLS]) as a key and attends to
everything else, [PAD] included; Taskflow feeds UIE-M exactly that way: `input_ids` and
`position_ids` only, every (prompt, text) window padded with [PAD] to `max_seq_len`, pads at
position 0. UIE-M checkpoints were tuned under those semantics, so reproducing Taskflow needs them.

`paddle_pad_to=S` means: each row is the PaddleNLP no-mask input made of the row's tokens (those the
attention_mask keeps; all of them without a mask) followed by [PAD]s at position 0 up to length S.
That costs no padding, exactly:
- the M = S - n pads of a row are identical in every layer (same id, same position, same keys to
  attend to), so they are computed once, as one extra packed row per sequence, and as a key that
  row stands for M keys: its attention score carries `+ log M` (M e^s = e^(s + log M));
- [CLS] (id 0) gets PaddleNLP's own additive -1e4 as a key (exp(-1e4) is 0 in fp32: nothing attends
  to it, while its own output is computed as PaddleNLP computes it).
Outputs at the columns the attention_mask drops are the pad row's (what PaddleNLP returns there).
The attention runs on plain torch with a per-key additive bias (`PackedBatch.key_bias`); every other
op runs on the model's backend.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from .packing import POSITION_OFFSET, PackedBatch, pack_batch, padded_layout

PADDLE_MASKED_TOKEN_ID = 0  # PaddleNLP's ErnieM masks `input_ids == 0` when no mask is given ([CLS])
PADDLE_MASK_SCORE = -1e4  # what it adds to a masked key's score


@dataclasses.dataclass
class PaddlePackedBatch(PackedBatch):
    """A packed batch with one virtual-pad row per sequence that needs one (see the module doc)."""

    pad_rows: Optional[torch.Tensor] = None  # (B,) packed row of each sequence's pads, -1 if it has none
    pad_columns: Optional[torch.Tensor] = None  # (B, L) columns the attention_mask drops: they are pads

    def scatter(self, packed: torch.Tensor) -> torch.Tensor:
        out = super().scatter(packed)
        b, j = (self.pad_columns & (self.pad_rows >= 0)[:, None]).nonzero(as_tuple=True)
        if b.numel():
            out = out.index_put((b, j), packed[self.pad_rows[b]])
        return out


def pack_paddle_batch(config, input_ids, attention_mask=None, position_ids=None, pad_to: int = 0,
                      inputs_embeds=None) -> PaddlePackedBatch:
    """Pack a padded batch under PaddleNLP's no-mask semantics, rows extended with [PAD] to `pad_to`."""
    if inputs_embeds is not None or input_ids is None:
        raise ValueError("paddle_pad_to needs input_ids (PaddleNLP's semantics depend on the token ids)")
    if isinstance(pad_to, bool) or not isinstance(pad_to, int) or pad_to < 1:
        raise ValueError(f"paddle_pad_to must be a positive int (Taskflow's max_seq_len), got {pad_to!r}")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a (batch, sequence_length) tensor")
    real = (torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None
            else torch.as_tensor(attention_mask, device=input_ids.device).bool())
    if real.shape != input_ids.shape:
        raise ValueError(f"attention_mask has shape {tuple(real.shape)} but the input is {tuple(input_ids.shape)}")
    counts = real.sum(1)
    longest = int(counts.max())
    if longest > pad_to:
        row = int(counts.argmax())
        raise ValueError(f"row {row} has {longest} tokens, more than paddle_pad_to={pad_to}")
    base = pack_batch(config, input_ids, real, position_ids)
    return _add_pad_rows(base, config, pad_to - counts, ~real)


def _add_pad_rows(base: PackedBatch, config, pads: torch.Tensor, pad_columns: torch.Tensor) -> PaddlePackedBatch:
    """Insert, at the end of each sequence's keyed rows, one row standing for its `pads[b]` [PAD]s."""
    device = base.token_index.device
    batch, keyed = base.batch_size, base.num_keyed
    has_pad = (pads > 0).to(torch.int64)
    lengths = (base.cu_seqlens[1:] - base.cu_seqlens[:-1]).to(torch.int64) + has_pad
    cu_seqlens = torch.zeros(batch + 1, dtype=torch.int32, device=device)
    cu_seqlens[1:] = torch.cumsum(lengths, 0)
    shift = torch.cumsum(has_pad, 0) - has_pad  # pad rows inserted before each sequence's rows
    num_pads = int(has_pad.sum())
    new_keyed = keyed + num_pads

    seq_of_keyed = torch.repeat_interleave(torch.arange(batch, device=device),
                                           (base.cu_seqlens[1:] - base.cu_seqlens[:-1]).to(torch.int64))
    old_to_new = torch.cat([torch.arange(keyed, device=device) + shift[seq_of_keyed],
                            torch.arange(keyed, base.num_rows, device=device) + num_pads])
    pad_rows = torch.where(has_pad.bool(), cu_seqlens[1:].to(torch.int64) - 1, torch.full_like(has_pad, -1))
    new_pad_rows = pad_rows[pad_rows >= 0]
    rows = base.num_rows + num_pads

    def place(values: torch.Tensor, pad_value) -> torch.Tensor:
        out = values.new_full((rows,) + tuple(values.shape[1:]), pad_value)
        out[old_to_new] = values
        return out

    key_bias = torch.zeros(new_keyed, dtype=torch.float32, device=device)
    key_bias[old_to_new[:keyed]] = torch.where(base.input_ids[:keyed] == PADDLE_MASKED_TOKEN_ID, PADDLE_MASK_SCORE, 0.0)
    key_bias[new_pad_rows] = torch.log(pads[has_pad.bool()].to(torch.float32))  # M pads act as one key + log M
    first = base.first_token_rows
    first = torch.where(first >= 0, old_to_new[first.clamp(min=0)], pad_rows)  # a dropped column 0 is a pad
    return PaddlePackedBatch(
        batch_size=batch,
        seq_len=base.seq_len,
        token_index=place(base.token_index, batch * base.seq_len),  # pad rows: the scatter's spare slot
        num_keyed=new_keyed,
        cu_seqlens=cu_seqlens,
        max_seqlen=int(lengths.max()),
        query_only_rows=base.query_only_rows,
        position_ids=place(base.position_ids, POSITION_OFFSET),  # Taskflow gives pads position 0
        input_ids=place(base.input_ids, config.pad_token_id),
        inputs_embeds=None,
        first_token_rows=first,
        key_bias=key_bias,
        pad_rows=pad_rows,
        pad_columns=pad_columns,
    )


def key_bias_attention(q, k, v, cu_seqlens, max_seqlen: int, key_bias, scale: float, dropout_p: float = 0.0):
    """softmax(q k^T * scale + key_bias) v within each packed sequence (plain torch).

    q, k, v: (T, heads, d) packed rows; cu_seqlens: (B + 1,) int32; key_bias: (T,) fp32 additive score
    of each row as a key. Returns (T, heads, d).
    """
    index, valid = padded_layout(cu_seqlens, max_seqlen)  # (B, L)
    bias = key_bias[index].masked_fill(~valid, float("-inf"))  # (B, L)
    qp, kp, vp = q[index], k[index], v[index]  # (B, L, heads, d)
    scores = torch.einsum("bqhd,bkhd->bhqk", qp, kp).float() * scale + bias[:, None, None, :]
    probs = torch.softmax(scores, dim=-1).to(v.dtype)
    if dropout_p > 0.0:
        probs = torch.nn.functional.dropout(probs, p=dropout_p, training=True)
    return torch.einsum("bhqk,bkhd->bqhd", probs, vp)[valid]  # back to packed order: sequences are contiguous
