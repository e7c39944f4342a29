"""Tiny random ErnieM checkpoints made by transformers 4.57.6 (the oracle), and batches to feed them.

Nothing is downloaded: every model is random-initialised by transformers and saved to a temp dir.
"""

from __future__ import annotations

import torch
import transformers

CLASS_NAMES = (
    "ErnieMModel",
    "ErnieMForSequenceClassification",
    "ErnieMForMultipleChoice",
    "ErnieMForTokenClassification",
    "ErnieMForQuestionAnswering",
    "ErnieMForInformationExtraction",
)

# Different widths, head counts (head_dim 16 and 64), depths, label counts and activations.
CONFIGS = {
    "h32_d16_l2_n2": dict(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=37, num_labels=2),
    "h128_d64_l1_n5": dict(hidden_size=128, num_attention_heads=2, num_hidden_layers=1, intermediate_size=64,
                           num_labels=5, hidden_act="gelu_new"),
    "h48_d16_l3_n1": dict(hidden_size=48, num_attention_heads=3, num_hidden_layers=3, intermediate_size=96,
                          num_labels=1, hidden_act="relu"),
}
VOCAB = 101
MAX_POSITIONS = 40  # so "maximum length" (max_position_embeddings - 2 = 38) stays cheap
PAD = 1


def hf_config(name: str, **overrides) -> "transformers.ErnieMConfig":
    kwargs = dict(vocab_size=VOCAB, max_position_embeddings=MAX_POSITIONS, pad_token_id=PAD, **CONFIGS[name])
    kwargs.update(overrides)
    return transformers.ErnieMConfig(**kwargs)


def hf_model(class_name: str, config_name: str, seed: int = 0, **overrides):
    config = hf_config(config_name, **overrides)
    if class_name == "ErnieMForQuestionAnswering":
        config.num_labels = 2  # qa_outputs gives start and end logits
    torch.manual_seed(seed)
    model = getattr(transformers, class_name)(config).eval()
    # transformers zero-initialises biases and sets LayerNorm to identity; randomise them so a
    # mix-up between bias and no-bias, or between the two norms, cannot cancel out.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def peak_attention(model, score_std: float = 4.0, seed: int = 0):
    """Re-draws every q_proj and k_proj weight so attention scores spread with std ~score_std.

    At transformers' init (std 0.02) scores spread by ~0.01, so attention is nearly uniform and an
    error in the scores (a softmax scale off by 1%) moves the outputs by ~5e-6, under any sensible
    tolerance. Scores q.k / sqrt(d) over unit-scale LayerNorm outputs spread by ~std(W)^2 * hidden,
    so std(W) = sqrt(score_std / hidden) makes each query attend mostly to a few keys.
    """
    g = torch.Generator().manual_seed(seed)
    std = (score_std / model.config.hidden_size) ** 0.5
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def random_ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(PAD + 1, VOCAB, (batch, length), generator=g)  # never the pad id itself


SCENARIOS = ("right_padding", "left_padding", "holes", "no_mask", "batch_of_one", "length_one", "max_length")


def scenario(name: str, seed: int = 0):
    """(input_ids, attention_mask or None) for one padding scenario; mask 1 = attend."""
    if name == "max_length":
        ids = random_ids(2, MAX_POSITIONS - 2, seed)
        mask = torch.ones_like(ids)
        mask[1, 20:] = 0
        return ids, mask
    if name == "batch_of_one":
        ids = random_ids(1, 11, seed)
        return ids, torch.ones_like(ids)
    if name == "length_one":
        ids = random_ids(3, 1, seed)
        return ids, torch.ones_like(ids)
    ids = random_ids(4, 13, seed)
    mask = torch.ones_like(ids)
    if name == "right_padding":
        for row, length in enumerate((13, 7, 1, 10)):
            mask[row, length:] = 0
    elif name == "left_padding":
        for row, length in enumerate((13, 7, 1, 10)):
            mask[row, : 13 - length] = 0
    elif name == "holes":
        mask[0, [2, 5, 6]] = 0
        mask[1, 0] = 0  # a hole at column 0: the pooler reads a masked position
        mask[2, 1::2] = 0
        mask[3, 12] = 0
    elif name == "no_mask":
        for row, length in enumerate((13, 4, 9, 1)):
            ids[row, length:] = PAD  # transformers masks the pad id when no mask is given
        return ids, None
    ids = ids.masked_fill(mask == 0, PAD)
    return ids, mask


def attended(ids, mask):
    return (ids != PAD) if mask is None else mask.bool()
