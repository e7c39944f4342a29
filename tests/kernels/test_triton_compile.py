"""Every triton kernel, in every configuration its launcher picks on representative shapes, compiled by
Triton's real GPU compiler for sm_80 (A100) and sm_90 (H100) — no GPU needed (ptxas ships with Triton).

The interpreter (test_ops.py, test_triton_kernels.py) proves the arithmetic; this proves the same
source lowers to a cubin, including the pure bf16 attention path the interpreter cannot run, without
register spills and within each architecture's shared memory.
"""

from __future__ import annotations

import pytest

pytest.importorskip("triton")

from ernie_m_fast.triton_kernels import compile_check  # noqa: E402

# Largest dynamic shared memory per block (opt-in): sm_80 163 KiB, sm_90 227 KiB.
SHARED_LIMIT = {80: 163 * 1024, 90: 227 * 1024}

pytestmark = pytest.mark.slow  # ~30-60 s on 2 cores: one subprocess compiling ~90 kernels


@pytest.fixture(scope="module")
def compiled():
    return compile_check.run_in_subprocess(archs=tuple(SHARED_LIMIT))


def _describe(row):
    return ", ".join(f"{k}={v}" for k, v in row.items() if k != "error")


def test_every_config_compiles(compiled):
    failures = [f"{_describe(r)}\n  {r['error']}" for r in compiled if not r["ok"]]
    assert not failures, "kernels the GPU compiler rejects:\n" + "\n".join(failures)
    kernels = {r["kernel"] for r in compiled}
    assert kernels == compile_check.kernel_names()  # every kernel of every op in the table
    assert {"_layernorm_residual_kernel", "_bias_gelu_kernel", "_attention_varlen_kernel"} <= kernels


def test_pure_bf16_attention_is_compiled(compiled):
    bf16 = [r for r in compiled if r["kernel"] == "_attention_varlen_kernel" and r["dtype"] == "bf16"]
    assert bf16 and all(r["ok"] and r["DOT_IN_FP32"] is False for r in bf16)


def test_no_register_spills(compiled):
    if not any("stack_bytes" in r for r in compiled):
        pytest.skip("cuobjdump is not in this Triton install; resource usage unknown")
    spills = [_describe(r) for r in compiled if r.get("stack_bytes", 0) > 0]
    assert not spills, "configs that spill registers (pick smaller tiles or more warps):\n" + "\n".join(spills)


def test_shared_memory_fits(compiled):
    over = [_describe(r) for r in compiled if r["ok"] and r["shared_bytes"] > SHARED_LIMIT[r["arch"]]]
    assert not over, "configs over the shared-memory limit:\n" + "\n".join(over)
