"""Pipeline fixtures: a tiny tokenizer, random checkpoints made by transformers, and models whose
weights are set by hand so that the right answer is known.

Hand-set models: attention and feed-forward outputs are zeroed and every norm is the identity
affine map, so each token's final hidden state is LayerNorm(its word embedding) — a function of the
token alone. Each token id gets the embedding of a "class" (a random direction), and a head row is
the LayerNorm'd direction of the class it should fire for, scaled: a token's logit for its own class
is about `SCALE * hidden` and about a third of that at most for another class. Which token gets
which class is decided by the test, so it knows the answer.
"""

from __future__ import annotations

import logging
import shutil

import pytest
import torch

import ernie_m_fast as emf
from ernie_m_fast.tiny import train_tiny_tokenizer

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()
logging.getLogger("ernie_m_fast").setLevel(logging.ERROR)

HIDDEN = 32
MAX_POSITIONS = 64  # the model takes 62 tokens: long-input tests stay cheap
SCALE = 0.5


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are tiny: a forward is a few small GEMMs, and a second thread costs more in
    synchronisation than it gives (10x slower on a loaded 2-core machine). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tok_dir(tmp_path_factory) -> str:
    return train_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="session")
def tokenizer(tok_dir):
    return emf.ErnieMTokenizer.from_pretrained(tok_dir)


def _config(vocab_size: int, **overrides) -> dict:
    config = dict(vocab_size=vocab_size, hidden_size=HIDDEN, num_attention_heads=2, num_hidden_layers=2,
                  intermediate_size=48, max_position_embeddings=MAX_POSITIONS, initializer_range=0.3)
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def checkpoint(tok_dir, tokenizer, tmp_path_factory):
    """checkpoint(class_name, **config) -> a directory holding a random transformers model and the tokenizer."""
    made = {}

    def make(class_name: str, **overrides) -> str:
        key = (class_name, tuple(sorted((k, repr(v)) for k, v in overrides.items())))
        if key not in made:
            path = tmp_path_factory.mktemp(class_name)
            shutil.copytree(tok_dir, path, dirs_exist_ok=True)
            torch.manual_seed(len(made))
            config = transformers.ErnieMConfig(**_config(len(tokenizer), **overrides))
            model = getattr(transformers, class_name)(config).eval()
            with torch.no_grad():  # biases and norms too, so nothing is trivially symmetric
                for name, p in model.named_parameters():
                    if name.endswith("bias") or "norm" in name:
                        p.add_(torch.randn_like(p) * 0.1)
            model.save_pretrained(path)
            made[key] = str(path)
        return made[key]

    return make


ATOL = 1e-5  # fp32: batched and alone (or ours and transformers) differ by GEMM blocking, ~1e-7 observed


def assert_close(ours, theirs, atol: float = ATOL):
    """Same structure (dicts, lists, strings, ints exactly); floats within atol."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), (ours, theirs)
        for key in theirs:
            assert_close(ours[key], theirs[key], atol)
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            assert_close(a, b, atol)
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, abs=atol)
    else:
        assert ours == theirs


@pytest.fixture(scope="session")
def close():
    return assert_close


class HandSet:
    """Build models whose head fires for chosen tokens (see the module docstring)."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def model(self, cls, token_classes: dict, head_classes: list[int], bias: float = 0.0,
              num_classes: int = 4, **config):
        """`cls` with token id t embedded as class `token_classes.get(t, 0)` (or a {class: weight} mix),
        and head row r reading class `head_classes[r]`: its logit is SCALE * HIDDEN + bias on tokens
        of that class alone, `bias` on tokens without it, and in between for a mix."""
        model = cls(emf.ErnieMConfig(**_config(self.vocab_size, **config))).eval()
        # orthogonal zero-mean directions: LayerNorm only rescales them, so they stay orthogonal
        generator = torch.Generator().manual_seed(0)
        raw = torch.randn(HIDDEN, num_classes, generator=generator)
        q, _ = torch.linalg.qr(raw - raw.mean(dim=0))
        directions = q.T * HIDDEN ** 0.5  # each row already has LayerNorm's scale
        embeddings = directions[torch.zeros(self.vocab_size, dtype=torch.long)]
        for token, c in token_classes.items():
            mix = c if isinstance(c, dict) else {c: 1.0}
            embeddings[token] = sum(w * directions[k] for k, w in mix.items())
        heads = [m for _, m in model.named_children() if isinstance(m, torch.nn.Linear)]
        rows = directions[torch.tensor(head_classes)] * SCALE
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                elif any(k in name for k in ("out_proj", "linear2", "position_embeddings")):
                    p.zero_()
            model.base_model.embeddings.word_embeddings.weight.copy_(embeddings)
            for head, chunk in zip(heads, rows.split([h.weight.shape[0] for h in heads])):
                head.weight.copy_(chunk)
                head.bias.fill_(bias)
        return model


@pytest.fixture(scope="session")
def hand_set(tokenizer):
    return HandSet(len(tokenizer))
