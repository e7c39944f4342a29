"""Tokenizer fixtures: pairs of (transformers' ErnieMTokenizer, ours) loaded from the same files.

transformers is the oracle; it is a test-only dependency, so the whole directory skips without it.
"""

from __future__ import annotations

import logging
import os

import pytest
from spm_fixtures import build_tiny_tokenizer_dir  # tests/tokenizer is on pytest's pythonpath (pyproject)

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()  # its truncation warnings would flood the output
logging.getLogger("ernie_m_fast.tokenization").setLevel(logging.CRITICAL)

from ernie_m_fast import ErnieMTokenizer  # noqa: E402

# name -> (trainer options, tokenizer options). "base" is the common case; the others reach the
# branches a 1,000-piece model does not: many single-character pieces and [UNK]s (small), lowercasing,
# lone "▁" pieces at the end of a text (whitespace kept), and ids taken from sentencepiece (no vocab.txt).
MODEL_VARIANTS = {
    "base": (dict(vocab_size=1000), {}),
    "small": (dict(vocab_size=700, character_coverage=0.98), {}),
    "lower": (dict(vocab_size=1000), dict(do_lower_case=True)),
    "keep_spaces": (dict(vocab_size=800, remove_extra_whitespaces=False), {}),
    "sp_ids": (dict(vocab_size=700, character_coverage=0.99), dict(vocab_file=None)),
}


def _load_pair(path: str, options: dict):
    if "vocab_file" in options:  # build from the model file alone
        model = os.path.join(path, "sentencepiece.bpe.model")
        return transformers.ErnieMTokenizer(model), ErnieMTokenizer(model)
    return (transformers.ErnieMTokenizer.from_pretrained(path, **options),
            ErnieMTokenizer.from_pretrained(path, **options))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> str:
    return build_tiny_tokenizer_dir(tmp_path_factory.mktemp("tiny_base"), vocab_size=1000)


@pytest.fixture(scope="session")
def base_pair(tiny_dir):
    return _load_pair(tiny_dir, {})


@pytest.fixture(scope="session", params=sorted(MODEL_VARIANTS))
def variant_pair(request, tmp_path_factory):
    trainer, options = MODEL_VARIANTS[request.param]
    path = build_tiny_tokenizer_dir(tmp_path_factory.mktemp(f"tiny_{request.param}"), **trainer)
    theirs, ours = _load_pair(path, options)
    return request.param, theirs, ours
