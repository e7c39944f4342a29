"""Paths named in the README and in the sources exist: a renamed or deleted file leaves no stale mention."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# the README's "Adding an op" walks a placeholder op through its files
PLACEHOLDER = "my_op"
# repo-relative paths as the docs and comments write them: a top-level folder (or a package folder
# such as ops/), then a file or folder name; placeholders like csrc/cuda/<op>.cu are not paths
_REFERENCE = re.compile(r"(?<![\w./-])((?:docs|csrc|triton_kernels|ernie_m_fast|tests|tools|\.ci|ops|bench|pipelines|"
                        r"serving|tokenizer)/[\w./-]*\w)(?![<*{\w])")


def _sources() -> list[Path]:
    files = [REPO / "README.md"]
    for folder in ("ernie_m_fast", "tests", "triton_kernels"):
        files += sorted((REPO / folder).rglob("*.py"))
    return files


def _exists(reference: str, mentioned_in: Path) -> bool:
    # repo-relative, package-relative (ops/backends.py), or relative to the mentioning file's folder
    bases = (REPO, REPO / "ernie_m_fast", REPO / "csrc", mentioned_in.parent)
    return any((base / reference).exists() for base in bases)


def test_named_paths_exist():
    stale = []
    for path in _sources():
        for match in _REFERENCE.finditer(path.read_text(encoding="utf-8")):
            if PLACEHOLDER not in match.group(1) and not _exists(match.group(1), path):
                stale.append(f"{path.relative_to(REPO)} names {match.group(1)}, which does not exist")
    assert not stale, "\n".join(stale)


def test_no_merge_conflict_markers_were_committed():
    # built from pieces so this file does not match itself
    markers = re.compile("^(" + "<" * 7 + " |" + ">" * 7 + " |" + "=" * 7 + "$)", re.M)
    files = _sources() + sorted((REPO / "csrc").rglob("*.*")) + [REPO / "pyproject.toml", REPO / "CMakeLists.txt"]
    marked = [str(f.relative_to(REPO)) for f in files if f.is_file() and markers.search(f.read_text(errors="replace"))]
    assert not marked, f"merge conflict markers in {marked}"
