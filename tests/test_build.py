"""The compiled extension is built the way the project promises: CUDA kernels whenever nvcc exists
(so CI fails when they stop compiling), for sm_80 and sm_90 by default, and the emulation module."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


# each csrc/cuda/<op>.cu binds its own launcher as `cuda_<op>` (EMF_BIND); kernel_limits.cu binds cuda_limits
_CUDA_OPS = sorted(p.stem for p in (Path(__file__).parents[1] / "csrc" / "cuda").glob("*.cu") if p.stem != "kernel_limits")


def _assert_binds_each_cuda_op_once(module):
    assert _CUDA_OPS, "no csrc/cuda/*.cu found next to the tests"
    for name in [f"cuda_{op}" for op in _CUDA_OPS] + ["cuda_limits"]:
        assert hasattr(module, name), f"{module.__name__} has no {name}"
        # pybind11 chains a second m.def of the same name as an overload
        assert "Overloaded function" not in getattr(module, name).__doc__, f"{name} is bound more than once"


def test_cuda_build_exposes_the_launchers():
    from ernie_m_fast import _C

    if not _C.build_info()["cuda"]:
        pytest.skip("built without CUDA")
    _assert_binds_each_cuda_op_once(_C)


def test_sim_build_exposes_the_same_launchers():
    _sim = pytest.importorskip("ernie_m_fast._sim", reason="ernie_m_fast._sim is not built (ERNIE_M_FAST_SIM=OFF)")
    _assert_binds_each_cuda_op_once(_sim)


def test_sim_module_is_built():
    if os.environ.get("ERNIE_M_FAST_SIM", "").upper() == "OFF":
        pytest.skip("ERNIE_M_FAST_SIM=OFF")
    from ernie_m_fast import _sim

    assert _sim.build_info()["sim"] is True
    assert "cuda_sim" in emf.ops.available_backends("cpu")
