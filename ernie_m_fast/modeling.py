"""ErnieM: the base encoder and its five task heads, padding-free, on the fused ops.

Module names and parameter names are transformers' (4.57) so state dicts move between the two
libraries unchanged. The data path is: padded batch -> `pack_batch` -> embeddings -> encoder layers
on packed rows -> head on packed rows -> scatter to the padded shapes the API returns.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

from . import ops
from .activations import FUSED_GELU, get_activation
from .configuration import ErnieMConfig
from .linear import linear_gelu, linear_matmul
from .outputs import (BaseModelOutputWithPoolingAndCrossAttentions, MultipleChoiceModelOutput,
                      QuestionAnsweringModelOutput, SequenceClassifierOutput, TokenClassifierOutput)
from .packing import PackedBatch, as_tensor_input, fit_static, pack_batch
from .paddle_semantics import key_bias_attention, pack_paddle_batch
from .pretrained import ErnieMPreTrainedModel


class ErnieMEmbeddings(nn.Module):
    """word_embeddings[id] + position_embeddings[position + 2], LayerNorm, dropout."""

    def __init__(self, config: ErnieMConfig):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.layer_norm = nn.LayerNorm(normalized_shape=config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(p=config.hidden_dropout_prob)
        self.padding_idx = config.pad_token_id

    def forward(self, batch: PackedBatch, backend: str) -> torch.Tensor:
        norm = self.layer_norm
        if batch.input_ids is not None:
            x = ops.embed_layernorm(batch.input_ids, batch.position_ids, self.word_embeddings.weight,
                                    self.position_embeddings.weight, norm.weight, norm.bias, norm.eps, backend=backend)
        else:
            positions = self.position_embeddings(batch.position_ids)
            x = ops.layernorm_residual(batch.inputs_embeds.to(positions.dtype), positions, norm.weight, norm.bias,
                                       norm.eps, backend=backend)
        return self.dropout(x)


class ErnieMSelfAttention(nn.Module):
    def __init__(self, config: ErnieMConfig):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(
                f"The hidden size ({config.hidden_size}) is not a multiple of the number of attention "
                f"heads ({config.num_attention_heads})"
            )
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.q_proj = nn.Linear(config.hidden_size, self.all_head_size)
        self.k_proj = nn.Linear(config.hidden_size, self.all_head_size)
        self.v_proj = nn.Linear(config.hidden_size, self.all_head_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self._qkv_cache: Optional[tuple] = None  # (weight, bias) the q/k/v parameters are views of
        self.qkv: Optional[nn.Module] = None  # one packed QKV layer once `pack_qkv` has run

    def pack_qkv(self, make) -> None:
        """Replace q/k/v by one packed layer `make(weight (3 * all_head_size, hidden), bias)`; the
        separate projections are dropped so that no weight is kept twice."""
        weight, bias = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight]), torch.cat(
            [self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        self.qkv = make(weight, bias)
        del self.q_proj, self.k_proj, self.v_proj
        self._qkv_cache = None
        self._register_state_dict_hook(_split_qkv_state)

    def project_qkv(self, hidden: torch.Tensor) -> torch.Tensor:
        """(rows, hidden) -> (rows, 3 * all_head_size): q, k, v side by side, one GEMM."""
        if self.qkv is not None:
            return self.qkv(hidden)
        weight, bias = self.fused_qkv()
        return F.linear(hidden, weight, bias)

    def fused_qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """q/k/v projections as one (3 * all_head_size, hidden) weight and (3 * all_head_size,) bias.

        Outside autograd the three projections' parameters are views into one fused tensor (made on
        first use, and again whenever something gave them new storage: loading, .to(), assignment),
        so the one GEMM reads them in place and no weight is stored twice; in-place updates to a
        projection's weight are updates of the fused tensor. Under autograd or torch.compile the
        concatenation is built per call, so gradients flow to the three parameters as usual.
        """
        params = (self.q_proj.weight, self.k_proj.weight, self.v_proj.weight,
                  self.q_proj.bias, self.k_proj.bias, self.v_proj.bias)
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and any(p.requires_grad for p in params)):
            return torch.cat(params[:3]), torch.cat(params[3:])  # traced / differentiable
        if not self._shares_fused_storage(params):
            self._fuse_storage(params)
        return self._qkv_cache

    def _shares_fused_storage(self, params) -> bool:
        if self._qkv_cache is None:
            return False
        for fused, parts in ((self._qkv_cache[0], params[:3]), (self._qkv_cache[1], params[3:])):
            step = parts[0].numel() * parts[0].element_size()
            if any(p.dtype != fused.dtype or p.device != fused.device or not p.is_contiguous()
                   or p.data_ptr() != fused.data_ptr() + i * step for i, p in enumerate(parts)):
                return False
        return True

    def _fuse_storage(self, params) -> None:
        # outside inference mode, so the parameters stay ordinary tensors that training may update in place
        with torch.inference_mode(False), torch.no_grad():
            weight, bias = torch.cat([p.detach() for p in params[:3]]), torch.cat([p.detach() for p in params[3:]])
            size = self.all_head_size
            for i, linear in enumerate((self.q_proj, self.k_proj, self.v_proj)):
                linear.weight.data = weight[i * size:(i + 1) * size]
                linear.bias.data = bias[i * size:(i + 1) * size]
        self._qkv_cache = (weight, bias)

    def _apply(self, fn, recurse=True):
        self._qkv_cache = None  # moved or cast parameters get new storage: re-fuse on next use, keep no stale copy
        return super()._apply(fn, recurse)


def _split_qkv_state(module: ErnieMSelfAttention, state: dict, prefix: str, local_metadata) -> None:
    """A packed QKV layer saves as transformers' q_proj / k_proj / v_proj (state-dict names are the contract)."""
    if prefix + "qkv.weight" not in state:
        return  # this packing has no dense weight to give (int8): save_pretrained refuses such a model
    weight, bias = state.pop(prefix + "qkv.weight"), state.pop(prefix + "qkv.bias")
    size = module.all_head_size
    for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
        state[f"{prefix}{name}.weight"] = weight[i * size:(i + 1) * size]
        state[f"{prefix}{name}.bias"] = bias[i * size:(i + 1) * size]


class ErnieMAttention(nn.Module):
    def __init__(self, config: ErnieMConfig):
        super().__init__()
        self.self_attn = ErnieMSelfAttention(config)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch, backend: str, head_mask=None,
                output_attentions: bool = False):
        attn = self.self_attn
        rows, heads, head_dim = hidden.shape[0], attn.num_attention_heads, attn.attention_head_size
        qkv = attn.project_qkv(hidden).view(rows, 3, heads, head_dim)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # strided views: the kernels read them in place
        keyed = batch.num_keyed
        scale = head_dim**-0.5
        dropout_p = attn.dropout.p if self.training else 0.0
        probs = None
        if batch.key_bias is not None:  # PaddleNLP's semantics: a score bias per key (paddle_semantics.py)
            ctx = key_bias_attention(q, k, v, batch.cu_seqlens, batch.max_seqlen, batch.key_bias, scale, dropout_p)
        elif output_attentions or dropout_p > 0.0:
            # probabilities are materialised (and dropped out) only on the reference path
            ctx, probs = ops.attention_varlen_probs(q[:keyed], k[:keyed], v[:keyed], batch.cu_seqlens,
                                                    batch.max_seqlen, None, dropout_p, return_probs=True)
        else:
            ctx = ops.attention_varlen(q[:keyed], k[:keyed], v[:keyed], batch.cu_seqlens, batch.max_seqlen,
                                       backend=backend)
        if batch.num_query_only:
            extra = ops.query_only_attention(q[keyed:], k[:keyed], v[:keyed], batch.cu_seqlens, batch.max_seqlen,
                                             batch.query_only_rows, scale, dropout_p)
            ctx = torch.cat([ctx, extra])
        if batch.real_rows is not None:  # static layout: filler rows' attention output is unspecified
            ctx = ctx * batch.real_rows.to(ctx.dtype)[:, None, None]
        if head_mask is not None:
            head_mask = head_mask.to(device=ctx.device, dtype=ctx.dtype)
            ctx = ctx * head_mask.view(1, heads, 1)
            if probs is not None:
                probs = probs * head_mask.view(1, heads, 1, 1)
        # out_proj's bias is added by the add & norm that follows (ops.bias_residual_layernorm)
        return linear_matmul(self.out_proj, ctx.reshape(rows, heads * head_dim)), probs


class ErnieMEncoderLayer(nn.Module):
    """Post-LN: x = norm1(x + attn(x)); x = norm2(x + linear2(act(linear1(x))))."""

    def __init__(self, config: ErnieMConfig):
        super().__init__()
        dropout = 0.1 if config.hidden_dropout_prob is None else config.hidden_dropout_prob
        act_dropout = config.hidden_dropout_prob if config.act_dropout is None else config.act_dropout
        self.self_attn = ErnieMAttention(config)
        self.linear1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.dropout = nn.Dropout(act_dropout)
        self.linear2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = get_activation(config.hidden_act)
        self.fused_gelu = FUSED_GELU.get(config.hidden_act)  # None: activation not fused

    def _add_norm(self, x, linear: nn.Linear, dropout: nn.Dropout, residual, norm: nn.LayerNorm, backend: str):
        """norm(residual + dropout(x + linear.bias)), x being `linear`'s output without its bias."""
        if self.training and dropout.p > 0.0:  # dropout sits between the bias and the residual add
            return norm(residual + dropout(x + linear.bias))
        return ops.bias_residual_layernorm(x, linear.bias, residual, norm.weight, norm.bias, norm.eps, backend=backend)

    def forward(self, hidden, batch: PackedBatch, backend: str, head_mask=None, output_attentions=False):
        attn_out, probs = self.self_attn(hidden, batch, backend, head_mask, output_attentions)
        hidden = self._add_norm(attn_out, self.self_attn.out_proj, self.dropout1, hidden, self.norm1, backend)
        if self.fused_gelu is None:
            ff = self.activation(self.linear1(hidden))
        else:  # bias + GELU in the GEMM's epilogue where its library has one, else our fused kernel
            ff = linear_gelu(self.linear1, hidden, self.fused_gelu)
            if ff is None:
                ff = ops.bias_gelu(linear_matmul(self.linear1, hidden), self.linear1.bias, self.fused_gelu,
                                   backend=backend)
        ff = linear_matmul(self.linear2, self.dropout(ff) if self.training else ff)
        hidden = self._add_norm(ff, self.linear2, self.dropout2, hidden, self.norm2, backend)
        return hidden, probs


class ErnieMEncoder(nn.Module):
    def __init__(self, config: ErnieMConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList([ErnieMEncoderLayer(config) for _ in range(config.num_hidden_layers)])


class ErnieMPooler(nn.Module):
    def __init__(self, config: ErnieMConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, first_token: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(first_token))


@dataclasses.dataclass
class EncoderRun:
    """One pass of the encoder over a packed batch, before anything is scattered back."""

    batch: PackedBatch
    sequence: torch.Tensor  # (N, H) last layer, packed
    hidden_states: Optional[tuple]  # packed (N, H) per layer, embeddings first
    attentions: Optional[tuple]  # (B, heads, L, L) per layer

    def scatter_hidden_states(self):
        if self.hidden_states is None:
            return None
        return tuple(self.batch.scatter(h) for h in self.hidden_states)


def _scatter_probs(batch: PackedBatch, probs: torch.Tensor) -> torch.Tensor:
    """(B, heads, Lk, Lk) probabilities over keyed tokens -> (B, heads, L, L) over padded columns."""
    cols, valid = batch.keyed_columns()
    full = probs.new_zeros(batch.batch_size, probs.shape[1], batch.seq_len, batch.seq_len)
    b, i, j = (valid[:, :, None] & valid[:, None, :]).nonzero(as_tuple=True)
    full[b, :, cols[b, i], cols[b, j]] = probs[b, :, i, j]
    return full


class ErnieMModel(ErnieMPreTrainedModel):
    """The bare ErnieM encoder: last_hidden_state and the tanh pooler over column 0."""

    def __init__(self, config: ErnieMConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.initializer_range = config.initializer_range
        self.embeddings = ErnieMEmbeddings(config)
        self.encoder = ErnieMEncoder(config)
        self.pooler = ErnieMPooler(config) if add_pooling_layer else None
        self.graph_runner = None  # set by ernie_m_fast.cuda_graphs.enable_cuda_graphs
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def _head_masks(self, head_mask):
        """transformers' head_mask: (heads,) for every layer or (layers, heads); 1 keeps a head."""
        layers, heads = self.config.num_hidden_layers, self.config.num_attention_heads
        if head_mask is None:
            return [None] * layers
        head_mask = torch.as_tensor(head_mask)
        if head_mask.dim() == 1 and head_mask.shape[0] == heads:
            return [head_mask] * layers
        if head_mask.shape == (layers, heads):
            return list(head_mask)
        raise ValueError(f"head_mask must have shape ({heads},) or ({layers}, {heads}), got {tuple(head_mask.shape)}")

    def encode(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
               output_hidden_states=False, output_attentions=False, query_only="none",
               paddle_pad_to: Optional[int] = None) -> EncoderRun:
        """Run the encoder on packed rows; the heads build their outputs from the result.

        paddle_pad_to: PaddleNLP's no-mask semantics, rows extended with [PAD] to this length, as
        Taskflow feeds UIE-M (see ernie_m_fast/paddle_semantics.py)."""
        lead = input_ids if input_ids is not None else inputs_embeds
        device = lead.device if isinstance(lead, torch.Tensor) else torch.device("cpu")
        backend = self._backend
        self.resolve_backend(device)  # an explicit backend that cannot run on this device fails here
        if paddle_pad_to is not None:  # never a captured CUDA-graph layout
            if output_attentions:
                raise ValueError("output_attentions is not available with paddle_pad_to")
            batch = pack_paddle_batch(self.config, input_ids, attention_mask, position_ids, paddle_pad_to, inputs_embeds)
            return self.run_layers(batch, backend, head_mask, output_hidden_states, output_attentions)
        batch = pack_batch(self.config, input_ids, attention_mask, position_ids, inputs_embeds, query_only)
        runner = self.graph_runner
        graphable = (runner is not None and batch.input_ids is not None and not self.training
                     and head_mask is None and not (output_hidden_states or output_attentions)
                     and not self.needs_autograd(inputs_embeds))
        static = runner.layout_for(batch) if graphable else None
        if static is not None:  # None when the batch fits no captured layout: the eager path runs
            batch = fit_static(batch, static, self.config)
            return EncoderRun(batch, runner.run(self, batch, backend), None, None)
        return self.run_layers(batch, backend, head_mask, output_hidden_states, output_attentions)

    def run_layers(self, batch: PackedBatch, backend: str, head_mask=None, output_hidden_states=False,
                   output_attentions=False) -> EncoderRun:
        """Embeddings and every layer on an already packed batch (what a CUDA graph captures)."""
        hidden = self.embeddings(batch, backend)
        all_hidden = (hidden,) if output_hidden_states else None
        all_attn = () if output_attentions else None
        for layer, layer_head_mask in zip(self.encoder.layers, self._head_masks(head_mask)):
            hidden, probs = layer(hidden, batch, backend, layer_head_mask, output_attentions)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden,)
            if output_attentions:
                all_attn = all_attn + (_scatter_probs(batch, probs),)
        return EncoderRun(batch, hidden, all_hidden, all_attn)

    def pool(self, run: EncoderRun) -> Optional[torch.Tensor]:
        if self.pooler is None:
            return None
        # every caller that pools packs with query_only="first", so column 0 is always a packed row
        return self.pooler(run.sequence[run.batch.first_token_rows])

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None,
                past_key_values=None, use_cache=None, output_hidden_states=None, output_attentions=None,
                return_dict=None, paddle_pad_to=None):
        _reject_cache(past_key_values, use_cache)
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        run = self.encode(input_ids, attention_mask, position_ids, head_mask, inputs_embeds, output_hidden_states,
                          output_attentions, query_only="first" if self.pooler is not None else "none",
                          paddle_pad_to=paddle_pad_to)
        sequence_output = run.batch.scatter(run.sequence)
        pooled = self.pool(run)
        hidden_states = run.scatter_hidden_states()
        if not return_dict:
            return (sequence_output, pooled) + tuple(x for x in (hidden_states, run.attentions) if x is not None)
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output, pooler_output=pooled, hidden_states=hidden_states,
            attentions=run.attentions,
        )


class _ErnieMHead(ErnieMPreTrainedModel):
    """A task head over `self.ernie_m`; `_encode` applies the config's output flags as transformers does."""

    def _encode(self, input_ids, attention_mask, position_ids, head_mask, inputs_embeds, output_hidden_states,
                output_attentions, query_only, paddle_pad_to=None) -> EncoderRun:
        return self.ernie_m.encode(input_ids, attention_mask, position_ids, head_mask, inputs_embeds,
                                   _flag(output_hidden_states, self.config.output_hidden_states),
                                   _flag(output_attentions, self.config.output_attentions), query_only=query_only,
                                   paddle_pad_to=paddle_pad_to)


def _reject_cache(past_key_values, use_cache):
    if past_key_values is not None or use_cache:
        raise ValueError("ErnieM is an encoder: past_key_values / use_cache are not supported")


def _classifier_dropout(config: ErnieMConfig) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


def _finish(output, return_dict: bool):
    return output if return_dict else output.to_tuple()


class ErnieMForSequenceClassification(_ErnieMHead):
    """Linear classifier over the pooled output; regression when num_labels == 1."""

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ernie_m = ErnieMModel(config)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                past_key_values=None, use_cache=None, output_hidden_states=None, output_attentions=None,
                return_dict=True, labels=None):
        _reject_cache(past_key_values, use_cache)
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        run = self._encode(input_ids, attention_mask, position_ids, head_mask, inputs_embeds, output_hidden_states,
                           output_attentions, query_only="first")
        logits = self.classifier(self.dropout(self.ernie_m.pool(run)))
        loss = None
        if labels is not None:
            loss = self._loss(logits, labels)
        out = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=run.scatter_hidden_states(),
                                       attentions=run.attentions)
        return _finish(out, return_dict)

    def _loss(self, logits, labels):
        # transformers infers problem_type on the first labelled call and records it in the config
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif self.num_labels > 1 and labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            if self.num_labels == 1:
                return MSELoss()(logits.squeeze(), labels.squeeze())
            return MSELoss()(logits, labels)
        if self.config.problem_type == "single_label_classification":
            return CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
        return BCEWithLogitsLoss()(logits, labels)


class ErnieMForMultipleChoice(_ErnieMHead):
    """Scores each (batch, choice) sequence from its pooled output; softmax over choices."""

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.ernie_m = ErnieMModel(config)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=True):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        input_ids, attention_mask, position_ids = (as_tensor_input(name, value) for name, value in (
            ("input_ids", input_ids), ("attention_mask", attention_mask), ("position_ids", position_ids)))
        lead = input_ids if input_ids is not None else inputs_embeds
        if lead is None:
            raise ValueError("You have to specify either input_ids or inputs_embeds")
        if lead.dim() != (3 if input_ids is not None else 4):
            raise ValueError(f"multiple choice input must be (batch, num_choices, sequence_length), got {tuple(lead.shape)}")
        num_choices = lead.shape[1]

        def flat(t, trailing=1):
            return t.reshape((-1,) + tuple(t.shape[-trailing:])) if t is not None else None

        run = self._encode(flat(input_ids), flat(attention_mask), flat(position_ids), head_mask, flat(inputs_embeds, 2),
                           output_hidden_states, output_attentions, query_only="first")
        logits = self.classifier(self.dropout(self.ernie_m.pool(run)))
        reshaped_logits = logits.view(-1, num_choices)
        loss = CrossEntropyLoss()(reshaped_logits, labels) if labels is not None else None
        out = MultipleChoiceModelOutput(loss=loss, logits=reshaped_logits, hidden_states=run.scatter_hidden_states(),
                                        attentions=run.attentions)
        return _finish(out, return_dict)


def _labelled_positions(labels, ignore_index=-100):
    """Positions whose label enters the loss: masked ones among them are computed anyway (packing.py)."""
    return None if labels is None else labels != ignore_index


class ErnieMForTokenClassification(_ErnieMHead):
    """Per-token classifier (NER and friends) over the sequence output."""

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ernie_m = ErnieMModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                past_key_values=None, output_hidden_states=None, output_attentions=None, return_dict=True,
                labels=None):
        _reject_cache(past_key_values, None)
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        query_only = _labelled_positions(labels) if labels is not None else "none"
        run = self._encode(input_ids, attention_mask, position_ids, head_mask, inputs_embeds, output_hidden_states,
                           output_attentions, query_only)
        logits = run.batch.scatter(self.classifier(self.dropout(run.sequence)))
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
        out = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=run.scatter_hidden_states(),
                                    attentions=run.attentions)
        return _finish(out, return_dict)


def _span_loss(start_logits, end_logits, start_positions, end_positions, loss_fct_for):
    """transformers' span loss: targets clamped to [0, seq_len], seq_len being the ignored index."""
    # (B, 1) index targets are squeezed as in transformers; (B, L) per-token targets (the IE head's)
    # are left alone, where transformers would squeeze a length-1 batch into a shape error.
    if start_positions.dim() > 1 and start_positions.shape != start_logits.shape:
        start_positions = start_positions.squeeze(-1)
    if end_positions.dim() > 1 and end_positions.shape != end_logits.shape:
        end_positions = end_positions.squeeze(-1)
    ignored_index = start_logits.size(1)
    start_positions = start_positions.clamp(0, ignored_index)
    end_positions = end_positions.clamp(0, ignored_index)
    loss_fct = loss_fct_for(ignored_index)
    return (loss_fct(start_logits, start_positions) + loss_fct(end_logits, end_positions)) / 2


class _SpanHead(_ErnieMHead):
    """Per-token start and end logits; the loss sees every position, masked ones included, as in
    transformers, so labelled batches compute masked positions as query-only rows."""

    def _span_logits(self, sequence):  # packed (N, H) -> packed start, end logits (N,)
        raise NotImplementedError

    def _span_loss_fct(self, ignored_index):
        raise NotImplementedError

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                start_positions=None, end_positions=None, output_attentions=None, output_hidden_states=None,
                return_dict=True, paddle_pad_to=None):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        with_loss = start_positions is not None and end_positions is not None
        run = self._encode(input_ids, attention_mask, position_ids, head_mask, inputs_embeds, output_hidden_states,
                           output_attentions, query_only="all" if with_loss else "none", paddle_pad_to=paddle_pad_to)
        start_logits, end_logits = (run.batch.scatter(x).contiguous() for x in self._span_logits(run.sequence))
        loss = None
        if with_loss:
            loss = _span_loss(start_logits, end_logits, start_positions, end_positions, self._span_loss_fct)
        out = QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                           hidden_states=run.scatter_hidden_states(), attentions=run.attentions)
        return _finish(out, return_dict)


class ErnieMForQuestionAnswering(_SpanHead):
    """Extractive QA: start and end logits per token (qa_outputs, num_labels = 2), cross-entropy loss."""

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ernie_m = ErnieMModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def _span_logits(self, sequence):
        if self.qa_outputs.out_features != 2:  # transformers fails here with an unpacking error
            raise ValueError(
                f"ErnieMForQuestionAnswering needs config.num_labels == 2 (one start and one end logit per token); "
                f"this model has {self.qa_outputs.out_features}. Load a QA checkpoint, or pass num_labels=2 to "
                "from_pretrained to start a new QA head.")
        start, end = self.qa_outputs(sequence).split(1, dim=-1)
        return start.squeeze(-1), end.squeeze(-1)

    def _span_loss_fct(self, ignored_index):
        return CrossEntropyLoss(ignore_index=ignored_index)


class ErnieMForInformationExtraction(_SpanHead):
    """UIE-M: per-token start/end logits (linear_start, linear_end) trained with BCE.

    The pooler exists (its weights are in every UIE-M checkpoint) but its output is not part of this
    head's result, so it is not computed."""

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.ernie_m = ErnieMModel(config)
        self.linear_start = nn.Linear(config.hidden_size, 1)
        self.linear_end = nn.Linear(config.hidden_size, 1)
        self.sigmoid = nn.Sigmoid()
        self.post_init()

    def _span_logits(self, sequence):
        return self.linear_start(sequence).squeeze(-1), self.linear_end(sequence).squeeze(-1)

    def _span_loss_fct(self, ignored_index):
        return BCEWithLogitsLoss()


def _flag(value, default):
    return default if value is None else value


TASK_CLASSES = {
    "base": ErnieMModel,
    "feature-extraction": ErnieMModel,
    "sequence-classification": ErnieMForSequenceClassification,
    "text-classification": ErnieMForSequenceClassification,
    "multiple-choice": ErnieMForMultipleChoice,
    "token-classification": ErnieMForTokenClassification,
    "ner": ErnieMForTokenClassification,
    "question-answering": ErnieMForQuestionAnswering,
    "information-extraction": ErnieMForInformationExtraction,
    "uie": ErnieMForInformationExtraction,
}

ARCHITECTURES = {cls.__name__: cls for cls in set(TASK_CLASSES.values())}


class ErnieMFast:
    """Loads the right ErnieM class: from `task=` when given, else from config.architectures."""

    @staticmethod
    def class_for(config: ErnieMConfig, task: Optional[str] = None):
        if task is not None:
            if task not in TASK_CLASSES:
                raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASK_CLASSES)}")
            return TASK_CLASSES[task]
        for name in config.architectures or []:
            if name in ARCHITECTURES:
                return ARCHITECTURES[name]
        if config.architectures:
            raise ValueError(
                f"config.architectures {config.architectures} names no ErnieM class; pass task= one of {sorted(TASK_CLASSES)}"
            )
        return ErnieMModel

    @classmethod
    def from_pretrained(cls, path_or_repo_id, *, task: Optional[str] = None, **kwargs):
        config = kwargs.pop("config", None)
        if config is None:
            hub = {k: kwargs[k] for k in ("revision", "cache_dir", "token", "local_files_only") if k in kwargs}
            config = ErnieMConfig.from_pretrained(path_or_repo_id, **hub)
        return cls.class_for(config, task).from_pretrained(path_or_repo_id, config=config, **kwargs)

    @classmethod
    def from_config(cls, config: ErnieMConfig, *, task: Optional[str] = None):
        return cls.class_for(config, task)(config)
