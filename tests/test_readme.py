"""The README's python examples run verbatim, so they stay true as the README is edited.

Every ```python block of README.md runs as written, in a fresh namespace that holds what the README
leaves to the reader: `path`, a small local checkpoint (a model of every head's base plus its
tokenizer, built here with no download); `emf` (the README's `import ernie_m_fast as emf`); and small
example tensors under the names the ops block uses (`x`, `residual`, `q`, ...). A block is skipped only
when the HTML comment on the line above its fence says why:

    <!-- readme-test: needs-hub -->   it loads a real checkpoint by repo id (tests never download)
    <!-- readme-test: needs-gpu -->   it needs a CUDA device (it runs where there is one)
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import ernie_m_fast as emf

README = Path(__file__).resolve().parent.parent / "README.md"
MARKERS = ("needs-hub", "needs-gpu")
_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_MARKER = re.compile(r"<!-- readme-test: ([\w-]+)")


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, code, marker or None) of every ```python block."""
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1), marker and marker.group(1)))
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    from ernie_m_fast.demo import build_small_checkpoints

    _, paths = build_small_checkpoints(str(tmp_path_factory.mktemp("readme")))
    return paths["ErnieMModel"]  # a base model and its tokenizer, as a hub repo holds them


def _namespace(path: str) -> dict:
    """What the README's blocks take from their surroundings (see the module docstring)."""
    g = torch.Generator().manual_seed(0)
    hidden, heads, head_dim = 8, 2, 4
    namespace = {
        "emf": emf, "path": path,
        "paddle_dir": str(Path(__file__).resolve().parent / "fixtures" / "paddle" / "uie_m"),  # PaddleNLP's layout
        "x": torch.randn(3, hidden, generator=g), "residual": torch.randn(3, hidden, generator=g),
        "weight": torch.ones(hidden), "bias": torch.zeros(hidden), "norm_bias": torch.zeros(hidden),
        "ids": torch.tensor([0, 5, 2]), "positions": torch.tensor([0, 1, 2]),
        "word_emb": torch.randn(10, hidden, generator=g), "pos_emb": torch.randn(10, hidden, generator=g),
        "q": torch.randn(5, heads, head_dim, generator=g), "k": torch.randn(5, heads, head_dim, generator=g),
        "v": torch.randn(5, heads, head_dim, generator=g),
        "cu_seqlens": torch.tensor([0, 2, 5], dtype=torch.int32), "max_seqlen": 3,
    }
    if torch.cuda.is_available():
        tok = emf.ErnieMTokenizer.from_pretrained(path)
        namespace["batch"] = tok(["Hello world", "你好，世界"], padding=True, return_tensors="pt").to("cuda")
    return namespace


def test_the_readme_has_examples_and_only_known_markers():
    assert len([b for b in BLOCKS if b[2] is None]) >= 3, "the README's examples were not found"
    for line, code, marker in BLOCKS:
        assert marker in (None, *MARKERS), f"README.md:{line}: unknown marker {marker!r}; known: {MARKERS}"
        if marker == "needs-hub":  # the marker is for downloads only: the block must load by repo id
            assert re.search(r"from_pretrained\(\"[\w.-]+/[\w.-]+\"", code), f"README.md:{line} loads no repo id"


@pytest.mark.parametrize("line,code,marker", BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_readme_block_runs_verbatim(checkpoint, tmp_path, monkeypatch, line, code, marker):
    if marker == "needs-hub":
        pytest.skip("loads a real checkpoint from the Hugging Face Hub; tests never download")
    if marker == "needs-gpu" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    monkeypatch.chdir(tmp_path)  # blocks may write files (save_pretrained("out/"))
    exec(compile(code, f"README.md:{line}", "exec"), _namespace(checkpoint))


def _backends_in_a_fresh_process(**env) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # tests/conftest.py sets it
    environ.update(env)
    # not from the repository root, whose source tree (without the compiled extensions of a non-editable
    # install) would shadow the installed package
    out = subprocess.run([sys.executable, "-c", "import ernie_m_fast as emf; print(emf.ops.available_backends('cpu'))"],
                         env=environ, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])


def test_available_backends_line_tells_the_truth():
    """The README's comment lists what a CPU host gets, and says when triton joins (under the interpreter)."""
    comment = next(line.split("#", 1)[1] for _, code, _ in BLOCKS for line in code.splitlines()
                   if "available_backends(\"cpu\")" in line)
    listed = ast.literal_eval(re.search(r"\[[^\]]*\]", comment).group(0))
    assert _backends_in_a_fresh_process() == listed
    if "TRITON_INTERPRET=1" in comment:
        pytest.importorskip("triton")
        assert set(_backends_in_a_fresh_process(TRITON_INTERPRET="1")) == set(listed) | {"triton"}
