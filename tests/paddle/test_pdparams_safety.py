"""model_state.pdparams is a pickle: only numpy arrays and plain containers may come out of it."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest

import ernie_m_fast as emf
from ernie_m_fast.loading import CheckpointError
from ernie_m_fast.paddle import read_pdparams
from paddle_fixtures import UIE_DIR


class _RunsACommand:
    """Unpickling this calls os.system: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def _paddle_dir_with(tmp_path, state) -> str:
    target = tmp_path / "ckpt"
    shutil.copytree(UIE_DIR, target)
    with open(target / "model_state.pdparams", "wb") as f:
        pickle.dump(state, f, protocol=4)
    return str(target)


def _weights():
    return read_pdparams(str(UIE_DIR / "model_state.pdparams"))


@pytest.mark.parametrize("where", ["top level", "beside the arrays", "inside a nested container"])
def test_a_pickle_that_would_run_a_command_is_refused(tmp_path, where):
    marker = tmp_path / "pwned"
    payload = _RunsACommand(marker)
    state = {"top level": payload, "beside the arrays": _weights() | {"extra": payload},
             "inside a nested container": _weights() | {"extra": [{"x": (1, payload)}]}}[where]
    path = _paddle_dir_with(tmp_path, state)
    with pytest.raises(CheckpointError, match=r"refusing to load .*model_state\.pdparams.*(posix|os|nt)\.system"):
        emf.ErnieMFast.from_pretrained(path)
    assert not marker.exists(), "the checkpoint ran a command"


def test_any_other_callable_is_refused(tmp_path):
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(pickle.dumps({"w": _CallsEval()}, protocol=2))
    with pytest.raises(CheckpointError, match=r"(__builtin__|builtins)\.eval"):
        read_pdparams(str(path))


def test_persistent_ids_are_refused(tmp_path):
    class Persisting(pickle.Pickler):
        def persistent_id(self, obj):
            return "storage" if isinstance(obj, np.ndarray) else None

    path = tmp_path / "model_state.pdparams"
    with open(path, "wb") as f:
        Persisting(f, protocol=4).dump({"w": np.zeros(3, "float32")})
    with pytest.raises(CheckpointError, match="persistent id"):
        read_pdparams(str(path))


def test_object_arrays_and_non_arrays_are_refused(tmp_path):
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(pickle.dumps({"w": np.array([1, "a"], dtype=object)}, protocol=4))
    with pytest.raises(CheckpointError, match="'w' is a ndarray, not a numeric array"):
        read_pdparams(str(path))
    path.write_bytes(pickle.dumps({"w": "not an array"}, protocol=4))
    with pytest.raises(CheckpointError, match="'w' is a str"):
        read_pdparams(str(path))
    path.write_bytes(pickle.dumps([np.zeros(2)], protocol=4))
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        read_pdparams(str(path))


def test_paddle_save_forms_are_read(tmp_path):
    """paddle.save writes a bare Tensor as (name, array) and may add a structured-name table."""
    path = tmp_path / "model_state.pdparams"
    array = np.arange(6, dtype="float32").reshape(2, 3)
    path.write_bytes(pickle.dumps({"w": ("linear_0.w_0", array), "StructuredToParameterName@@": {"w": "linear_0.w_0"}},
                                  protocol=2))
    state = read_pdparams(str(path))
    assert list(state) == ["w"] and np.array_equal(state["w"], array)


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.999])
def test_a_truncated_file_names_itself(tmp_path, keep):
    data = (UIE_DIR / "model_state.pdparams").read_bytes()
    path = _paddle_dir_with(tmp_path, {})
    weights = os.path.join(path, "model_state.pdparams")
    with open(weights, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"cannot read .*ckpt/model_state\.pdparams: the file is truncated"):
        emf.ErnieMFast.from_pretrained(path)
