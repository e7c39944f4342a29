"""Paths and readers for the golden PaddleNLP fixtures (written by tools/make_paddle_fixtures.py).

Tolerance: PaddleNLP computes in fp32 too, in another order (it scales q before q k^T, its GEMMs
are Paddle's/oneDNN's, Taskflow runs a static graph); on a 32-wide, 2-layer model that rounding stays
near 1e-6, so 1e-5 is tight enough to catch any wrong weight, transpose or mask (those move outputs
by 1e-2 and more) and loose enough for summation order.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import torch

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "paddle"
BASE_DIR = FIXTURES / "ernie_m"
UIE_DIR = FIXTURES / "uie_m"
ATOL = 1e-5


def outputs(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}_outputs.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def case_inputs(data: dict, case: str) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(data[f"{case}.{key}"]) for key in ("input_ids", "attention_mask", "position_ids")
            if f"{case}.{key}" in data}


def taskflow_cases() -> list[dict]:
    return json.loads((FIXTURES / "taskflow.json").read_text(encoding="utf-8"))["cases"]


def legacy_uie_dir(tmp_path) -> pathlib.Path:
    """The UIE-M checkpoint in PaddleNLP < 2.5's layout: model_config.json instead of config.json."""
    target = tmp_path / "uie_m_legacy"
    shutil.copytree(UIE_DIR, target)
    (target / "config.json").unlink()
    shutil.copy(FIXTURES / "uie_m_legacy" / "model_config.json", target)
    return target
