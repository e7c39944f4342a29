"""The cpu kernel benchmark runs end to end on tiny shapes and reports its fields (no timing asserts)."""

import pytest
import torch

import ernie_m_fast as emf

pytestmark = pytest.mark.skipif("cpu" not in emf.ops.available_backends("cpu"),
                                reason="ernie_m_fast._C has no cpu kernels in this build")

FIELDS = {"op", "shape", "dtype", "repeats", "threads_torch", "threads_cpu", "isa", "baseline_ms", "ours_ms", "ratio",
          "baseline_min_ms", "ours_min_ms", "ratio_min", "baseline_gbps", "ours_gbps", "warmup_baseline_ms",
          "warmup_ours_ms"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_run_reports_every_field(dtype):
    from ernie_m_fast.bench import cpu_kernels

    results = cpu_kernels.run(shapes=((3, 8), (5, 33)), dtype=dtype, repeats=3)
    names = cpu_kernels.benchmarked_ops()  # the table's row-wise ops with a cpu kernel
    assert {"layernorm_residual", "bias_residual_layernorm", "bias_gelu"} <= set(names)
    assert [(r["op"], r["shape"]) for r in results] == [(op, shape) for shape in ((3, 8), (5, 33)) for op in names]
    for r in results:
        assert FIELDS <= set(r)
        assert r["dtype"] == str(dtype).replace("torch.", "")
        for key in ("baseline_ms", "ours_ms", "ratio", "ratio_min", "baseline_gbps", "ours_gbps"):
            assert r[key] > 0
    assert "ratio" in cpu_kernels.format_table(results)


def test_threads_are_applied_and_restored():
    from ernie_m_fast import _C
    from ernie_m_fast.bench import cpu_kernels

    before = torch.get_num_threads()
    (result,) = cpu_kernels.run(shapes=((4, 16),), repeats=1, ops_to_run=("bias_gelu",), threads=1)
    assert result["threads_torch"] == 1 and result["threads_cpu"] == 1
    assert torch.get_num_threads() == before
    assert _C.cpu_set_num_threads(0) == 0  # the kernels' cap was restored to "OpenMP's default"


def test_main_prints_a_table(capsys):
    from ernie_m_fast.bench import cpu_kernels

    cpu_kernels.main(["--dtype", "float32", "--repeats", "2", "--shapes", "4x16", "--threads", "1"])
    assert "layernorm_residual" in capsys.readouterr().out


def test_bad_arguments_raise_value_error():
    from ernie_m_fast.bench import cpu_kernels

    with pytest.raises(ValueError, match="repeats"):
        cpu_kernels.run(shapes=((2, 8),), repeats=0)
    with pytest.raises(ValueError, match="threads"):
        cpu_kernels.run(shapes=((2, 8),), repeats=1, threads=0)
    with pytest.raises(ValueError, match="unknown op"):
        cpu_kernels.run(shapes=((2, 8),), repeats=1, ops_to_run=("softmax",))
