"""The SIMT emulation behind backend `cuda_sim` (csrc/sim): proof that it interleaves threads, exchanges
values across lanes as the hardware does, reports broken kernels instead of hanging or crashing, and
that the bindings reject bad arguments before launching anything.

The kernels run on CPU tensors, so `data_ptr()`s go straight to the emulated launches.
"""

from __future__ import annotations

import pytest
import torch

sim = pytest.importorskip("ernie_m_fast._sim", reason="ernie_m_fast._sim is not built (ERNIE_M_FAST_SIM=OFF)")


@pytest.fixture
def schedule():
    """Sets the emulation's thread order for one test and restores it afterwards."""
    before = sim.sim_schedule()
    yield sim.sim_set_schedule
    sim.sim_set_schedule(before)


def test_build_info_says_sim():
    info = sim.build_info()
    assert info["sim"] is True and info["cuda"] is False


@pytest.mark.parametrize("n", [32, 128, 1024])
def test_block_reduction_with_barriers_is_exact(n):
    x = torch.arange(n, dtype=torch.float32)  # integers: the tree sum is exact in any order
    out = torch.zeros(1)
    sim.sim_selftest_block_sum(x.data_ptr(), out.data_ptr(), n, True)
    assert out.item() == n * (n - 1) / 2


def test_block_reduction_without_barriers_is_caught(schedule):
    """The same reduction with its __syncthreads removed must not come out right by luck: thread 0
    runs ahead and adds partial sums the other threads have not written yet."""
    schedule("forward")  # whatever EMF_SIM_SCHEDULE says
    x = torch.arange(128, dtype=torch.float32) + 1.0
    out = torch.zeros(1)
    sim.sim_selftest_block_sum(x.data_ptr(), out.data_ptr(), 128, True)
    good = out.item()
    assert good == 128 * 129 / 2
    x2 = x.flip(0) * 3.0  # fresh values: stale shared memory from the run above must not match either
    sim.sim_selftest_block_sum(x2.data_ptr(), out.data_ptr(), 128, False)
    assert out.item() != pytest.approx(float(x2.sum()))


def test_warp_shuffles_and_votes():
    out = torch.zeros(11, 64, dtype=torch.int32)
    sums = torch.zeros(64)
    sim.sim_selftest_warp_ops(out.data_ptr(), sums.data_ptr())
    t = torch.arange(64)
    lane, warp = t % 32, t // 32
    base = warp * 32
    expected = [
        (base + 31 - lane) * 10,                                  # __shfl_sync(src = 31 - lane)
        t ^ 5,                                                    # __shfl_xor_sync(5)
        torch.where(lane + 3 < 32, t + 3, t),                     # __shfl_down_sync(3): top lanes keep theirs
        torch.where(lane >= 2, t - 2, t),                         # __shfl_up_sync(2)
        base + (lane & ~7) + 1,                                   # __shfl_sync(1, width 8)
        t ^ 4,                                                    # __shfl_xor_sync(4, width 8)
        torch.full((64,), 0x49249249),                            # __ballot_sync(lane % 3 == 0)
        (warp == 1).int(),                                        # __any_sync(lane == 7 && warp == 1)
        torch.zeros(64, dtype=torch.long),                        # __all_sync(lane < 31)
        torch.where(lane < 16, base + 15 - lane, base + 47 - lane),  # two half-warp masks
        (base + (lane + 1) % 32) * 3,                             # shared memory after __syncwarp
    ]
    for op, exp in enumerate(expected):
        assert torch.equal(out[op].long(), exp.long()), f"warp op {op}: {out[op].tolist()}"
    assert torch.equal(sums, torch.where(warp == 0, 496.0, 1520.0))  # warp_sum via __shfl_xor_sync


@pytest.mark.parametrize(
    "mode, message",
    [
        (0, "deadlock"),                         # half a warp shuffles, half waits in __syncthreads
        (1, "divergent warp collective"),        # lanes of one mask in different collectives
        (2, "exited"),                           # the mask names lanes that returned
        (3, "invalid configuration"),            # 2048 threads per block
        (4, "aligned"),                          # wmma load from a misaligned pointer
        (5, "byte 128, past the 128 bytes"),     # a write beyond the launch's dynamic shared memory
    ],
)
def test_broken_kernels_raise_instead_of_hanging(mode, message):
    with pytest.raises(RuntimeError, match=message):
        sim.sim_selftest_broken(mode)


@pytest.mark.parametrize("dtype, code", [(torch.float16, 1), (torch.bfloat16, 2)])
@pytest.mark.parametrize("a_col, b_col", [(False, False), (True, False), (False, True), (True, True)])
def test_wmma_matches_matmul(dtype, code, a_col, b_col):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(16, 16, generator=g).to(dtype)
    b = torch.randn(16, 16, generator=g).to(dtype)
    a_mem = a.t().contiguous() if a_col else a.contiguous()  # column-major a == row-major a^T
    b_mem = b.t().contiguous() if b_col else b.contiguous()
    d = torch.zeros(16, 16)
    sim.sim_selftest_wmma(d.data_ptr(), a_mem.data_ptr(), b_mem.data_ptr(), code, a_col, b_col)
    ref = a.double() @ b.double()
    assert (d.double() - ref).abs().max().item() < 1e-4  # exact products, fp32 accumulation


@pytest.mark.parametrize("dtype, code", [(torch.float16, 1), (torch.bfloat16, 2)])
def test_half_conversions_round_like_torch(dtype, code):
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 65519.0, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8,
                            2.99e-8, 1e-9, 3.0e38, float("inf"), float("-inf"), 1.0 + 2**-11, 1.0 + 3 * 2**-11,
                            1.0 + 2**-8, 1.0 + 3 * 2**-8])
    values = torch.cat([special, torch.randn(4096) * 100, torch.randn(4096) * 1e-5])
    out = torch.empty(values.shape, dtype=dtype)
    sim.sim_selftest_convert(out.data_ptr(), values.data_ptr(), values.numel(), code)
    expected = values.to(dtype)
    assert torch.equal(out.view(torch.int16), expected.view(torch.int16))
    nan, src = torch.empty(1, dtype=dtype), torch.tensor([float("nan")])  # src kept alive across the call
    sim.sim_selftest_convert(nan.data_ptr(), src.data_ptr(), 1, code)
    assert torch.isnan(nan).all()


def test_bindings_reject_bad_arguments():
    with pytest.raises(ValueError, match="dtype code"):
        sim.cuda_layernorm_residual(1, 1, 1, 1, 1, 4, 8, 1e-5, 7, 0)
    with pytest.raises(ValueError, match="hidden"):
        sim.cuda_layernorm_residual(1, 1, 1, 1, 1, 4, 0, 1e-5, 0, 0)
    with pytest.raises(ValueError, match="rows"):
        sim.cuda_bias_gelu(1, 1, 1, -1, 8, False, 0, 0)
    with pytest.raises(ValueError, match="null"):
        sim.cuda_bias_gelu(0, 0, 0, 4, 8, False, 0, 0)
    with pytest.raises(ValueError, match="head_dim"):
        sim.cuda_attention_varlen(1, 1, 1, 1, 1, 1, 1, 256, 256, 256, 256, 4, 0.1, 0, 0)
    with pytest.raises(ValueError, match="stride"):
        sim.cuda_attention_varlen(1, 1, 1, 1, 1, 1, 2, 64, 64, 128, 128, 4, 0.1, 0, 0)


@pytest.mark.usefixtures("sim_schedule")
def test_kernels_reuse_shared_memory_across_launches():
    """Back-to-back launches with different shapes: the emulated shared memory and fiber pool are reused."""
    import ernie_m_fast as emf
    from cases import assert_close_to_reference, ref_layernorm_residual

    for hidden in (8, 1031, 64, 3000):
        x = torch.randn(9, hidden)
        r = torch.randn(9, hidden)
        w, b = torch.randn(hidden), torch.randn(hidden)
        out = emf.ops.layernorm_residual(x, r, w, b, backend="cuda_sim")
        assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), emf.ops.torch_ops.layernorm_residual(x, r, w, b),
                                  torch.float32, f"layernorm_residual hidden={hidden}")


@pytest.mark.parametrize("seed", [3, 7])
def test_race_is_caught_under_random_thread_order(schedule, seed):
    # (Reverse order happens to run this particular tree in a valid order: each thread finishes
    # before the lower thread that reads it starts. Forward and random orders expose the race.)
    schedule("random", seed)
    x = torch.arange(128, dtype=torch.float32) + 1.0
    out = torch.zeros(1)
    sim.sim_selftest_block_sum(x.data_ptr(), out.data_ptr(), 128, True)
    assert out.item() == 128 * 129 / 2
    x2 = x * 5.0  # fresh values: what the correct run left in shared memory must not help
    sim.sim_selftest_block_sum(x2.data_ptr(), out.data_ptr(), 128, False)
    assert out.item() != 5.0 * 128 * 129 / 2


@pytest.mark.parametrize("order, seed", [("reverse", 0), ("random", 1), ("random", 2), ("runahead-forward", 0),
                                         ("runahead-reverse", 0), ("runahead-random", 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_kernels_do_not_depend_on_thread_order(schedule, order, seed, dtype):
    """The real kernels give the same answer whichever order the threads run in between barriers."""
    import ernie_m_fast as emf
    from cases import make_attention, make_rowwise

    schedule(order, seed)
    x, r, w, b = make_rowwise((37, 200), dtype)
    q, k, v, cu, max_len = make_attention(((70, 5, 33), 2, 64), dtype)
    sim.sim_set_schedule("forward")
    expected = (emf.ops.layernorm_residual(x, r, w, b, backend="cuda_sim"),
                emf.ops.bias_gelu(x, b, backend="cuda_sim"),
                emf.ops.attention_varlen(q, k, v, cu, max_len, backend="cuda_sim"))
    schedule(order, seed)
    got = (emf.ops.layernorm_residual(x, r, w, b, backend="cuda_sim"),
           emf.ops.bias_gelu(x, b, backend="cuda_sim"),
           emf.ops.attention_varlen(q, k, v, cu, max_len, backend="cuda_sim"))
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="schedule must be one of 'forward', .*'runahead-random'"):
        sim.sim_set_schedule("sideways")


LOCKSTEP = [("forward", 0), ("reverse", 0), ("random", 5)]
RUN_AHEAD = [("runahead-forward", 0), ("runahead-reverse", 0), ("runahead-random", 5)]


@pytest.mark.parametrize("order, seed", LOCKSTEP + RUN_AHEAD)
def test_race_between_warps_needs_run_ahead(schedule, order, seed):
    """Two warps read each other's half of a shared tile before a warp collective and overwrite their
    own after it, with no block barrier in between (attention's loop-top barrier removed, in small).
    Lockstep passes move warps one collective at a time together, so every read precedes every write
    and the race never shows there; a warp that runs ahead to the barrier exposes it."""
    out = torch.zeros(64)
    schedule(order, seed)
    sim.sim_selftest_warp_race(out.data_ptr(), True)
    partner = torch.arange(64) ^ 1  # the lane whose read each lane receives through the shuffle
    expected = 100 + 200 + 2 * ((partner + 32) % 64)  # steps 1 and 2: 100 * step + the other warp's index
    assert torch.equal(out, expected.float())
    sim.sim_selftest_warp_race(out.data_ptr(), False)
    assert torch.equal(out, expected.float()) == ((order, seed) in LOCKSTEP)


def test_static_shared_memory_is_poisoned_at_every_block_start():
    """Odd blocks read static __shared__ slots that only even blocks write: they must see NaN, not the
    previous block's values (dynamic shared memory is poisoned the same way)."""
    out = torch.zeros(4 * 32)
    sim.sim_selftest_stale_static_shared(out.data_ptr(), 4)
    out = out.view(4, 32)
    assert out[1::2].isnan().all()
    assert torch.equal(out[0::2], torch.arange(4 * 32).view(4, 32)[0::2].float())


# Shapes beyond the shared cases that exercise branches of the CUDA kernels themselves.
@pytest.mark.usefixtures("sim_schedule")
@pytest.mark.parametrize("head_dim", [1, 8, 59, 100])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_attention_odd_head_dims(head_dim, dtype):
    """Head dims that are not a multiple of 16 are zero-padded to the kernel's tile width."""
    import ernie_m_fast as emf
    from cases import assert_close_to_reference, make_attention, ref_attention

    q, k, v, cu, max_len = make_attention(((97, 3, 65), 2, head_dim), dtype)
    out = emf.ops.attention_varlen(q, k, v, cu, max_len, backend="cuda_sim")
    baseline = emf.ops.torch_ops.attention_varlen(q, k, v, cu, max_len)
    assert_close_to_reference(out, ref_attention(q, k, v, cu), baseline, dtype, f"attention d={head_dim}")


@pytest.mark.usefixtures("sim_schedule")
def test_layernorm_wide_rows_use_opt_in_shared_memory():
    """hidden = 20000: one fp32 row needs 80 KB of shared memory, over the 48 KB default, so the
    launcher must raise the kernel's limit (the emulation rejects the launch otherwise)."""
    import ernie_m_fast as emf
    from cases import assert_close_to_reference, make_rowwise, ref_layernorm_residual

    x, r, w, b = make_rowwise((3, 20000), torch.float32)
    out = emf.ops.layernorm_residual(x, r, w, b, backend="cuda_sim")
    assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), emf.ops.torch_ops.layernorm_residual(x, r, w, b),
                              torch.float32, "layernorm_residual hidden=20000")


@pytest.mark.usefixtures("sim_schedule")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_rowwise_kernels_on_misaligned_storage(dtype):
    """Tensors starting one element past a 16-byte boundary take the scalar path (no 128-bit loads)."""
    import ernie_m_fast as emf
    from cases import assert_close_to_reference, ref_bias_gelu, ref_layernorm_residual

    def shifted(shape):  # contiguous, but data_ptr() is not 16-byte aligned
        t = torch.randn(1 + torch.Size(shape).numel()).to(dtype)[1:].view(shape)
        assert t.data_ptr() % 16 != 0
        return t

    x, r, w, b = shifted((5, 64)), shifted((5, 64)), shifted((64,)), shifted((64,))
    out = emf.ops.layernorm_residual(x, r, w, b, backend="cuda_sim")
    assert_close_to_reference(out, ref_layernorm_residual(x, r, w, b), emf.ops.torch_ops.layernorm_residual(x, r, w, b),
                              dtype, "misaligned layernorm_residual")
    out = emf.ops.bias_gelu(x, b, backend="cuda_sim")
    assert_close_to_reference(out, ref_bias_gelu(x, b), emf.ops.torch_ops.bias_gelu(x, b), dtype, "misaligned bias_gelu")


@pytest.mark.usefixtures("sim_schedule")
def test_attention_on_misaligned_storage_takes_the_element_path():
    """q/k/v starting one element past a 16-byte boundary: no 128-bit tile loads may be used."""
    import ernie_m_fast as emf
    from cases import assert_close_to_reference, make_attention, ref_attention

    q, k, v, cu, max_len = make_attention(((40, 9), 2, 64), torch.float16)
    shifted = [torch.empty(t.numel() + 1, dtype=t.dtype)[1:].view(t.shape).copy_(t) for t in (q, k, v)]
    assert all(t.data_ptr() % 16 for t in shifted)
    out = emf.ops.attention_varlen(*shifted, cu, max_len, backend="cuda_sim")
    baseline = emf.ops.torch_ops.attention_varlen(q, k, v, cu, max_len)
    assert_close_to_reference(out, ref_attention(q, k, v, cu), baseline, torch.float16, "misaligned attention")
