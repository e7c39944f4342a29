"""The compiled extension is built the way the project promises: CUDA kernels whenever nvcc exists
(so CI fails when they stop compiling), for sm_80 and sm_90 by default, and the emulation module."""

from __future__ import annotations

import os
import shutil

import pytest

import ernie_m_fast as emf


def _nvcc_available() -> bool:
    return shutil.which("nvcc") is not None or os.path.exists("/usr/local/cuda/bin/nvcc")


def test_cuda_kernels_are_built_when_nvcc_exists():
    info = emf.build_info()
    if not _nvcc_available():
        pytest.skip("no nvcc on this machine: the CUDA kernels are not expected in the build")
    if os.environ.get("ERNIE_M_FAST_CUDA", "").upper() == "OFF":
        pytest.skip("ERNIE_M_FAST_CUDA=OFF: the CUDA kernels were switched off for this build")
    assert info["cuda"] is True, "nvcc exists but ernie_m_fast._C was built without the CUDA kernels"


def test_default_cuda_archs_cover_sm80_and_sm90():
    info = emf.build_info()
    if not info["cuda"]:
        pytest.skip("built without CUDA")
    if os.environ.get("ERNIE_M_FAST_CUDA_ARCHS"):
        pytest.skip("ERNIE_M_FAST_CUDA_ARCHS overrides the default architectures")
    archs = {a.split("-")[0] for a in info["cuda_archs"].split(",")}
    assert {"80", "90"} <= archs, f"cuda_archs {info['cuda_archs']!r} must cover 80 and 90"


def test_cuda_build_exposes_the_launchers():
    from ernie_m_fast import _C

    if not _C.build_info()["cuda"]:
        pytest.skip("built without CUDA")
    for name in ("cuda_layernorm_residual", "cuda_bias_gelu", "cuda_attention_varlen"):
        assert hasattr(_C, name), name


def test_sim_module_is_built():
    if os.environ.get("ERNIE_M_FAST_SIM", "").upper() == "OFF":
        pytest.skip("ERNIE_M_FAST_SIM=OFF")
    from ernie_m_fast import _sim

    assert _sim.build_info()["sim"] is True
    assert "cuda_sim" in emf.ops.available_backends("cpu")
