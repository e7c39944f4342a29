"""Compile every kernel, in the configurations its launcher picks, for real GPU targets: no GPU needed.

The interpreter proves the kernels' arithmetic on CPU; it never runs Triton's compiler. This module
does: it calls each launcher with small CPU tensors on representative shapes, intercepts the launch
(kernel, arguments, constexprs, num_warps/num_stages) instead of running it, and hands exactly that to
`triton.compile` for each target architecture (ttir -> ttgir -> llir -> ptx -> cubin with the ptxas in
Triton's wheel), so a kernel that the interpreter accepts but the GPU compiler rejects (or that spills
registers) shows up in CI. The pure bf16 attention path (native bf16 dots) is compiled here.

    python -m ernie_m_fast.triton_kernels.compile_check [--arch 80,90]

Must run without TRITON_INTERPRET (the kernels must be JIT functions, not interpreted ones);
`run_in_subprocess` takes care of that from an interpreted test session.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile

import torch

_TYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.int32: "i32",
               torch.int64: "i64"}
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class _Recorder:
    """Stands in for a JIT kernel: `kernel[grid](*args, **kwargs)` records the launch instead."""

    def __init__(self, kernel, launches: list):
        self.kernel = kernel
        self.launches = launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((self.kernel, args, kwargs, grid))

        return launch


def _op_modules() -> dict:
    """{op name: its module in this package}, from the op table (the only list of ops)."""
    import importlib

    from ernie_m_fast.ops.table import OPS

    return {op.name: importlib.import_module(f"{__package__}.{op.triton_module}") for op in OPS}


def _kernels(module) -> list[str]:
    """Names of the @triton.jit kernels a module launches (module-level `_..._kernel`, launched as
    `kernel[grid](...)`: a JITFunction, or an InterpretedFunction under TRITON_INTERPRET=1)."""
    return [name for name, value in vars(module).items()
            if name.endswith("_kernel") and hasattr(type(value), "__getitem__")]


def kernel_names() -> set[str]:
    """Every kernel the table's launchers can launch."""
    return {name for module in _op_modules().values() for name in _kernels(module)}


@contextlib.contextmanager
def recording(launches: list):
    """Within the block, launchers append (kernel, args, kwargs, grid) to `launches` instead of running."""
    modules = list({id(m): m for m in _op_modules().values()}.values())
    saved = [(m, name, getattr(m, name)) for m in modules for name in _kernels(m) + ["check_device"]]
    try:
        for m, name, value in saved:
            if name == "check_device":
                m.check_device = lambda **tensors: None  # CPU tensors stand in for CUDA ones; nothing runs
            else:
                setattr(m, name, _Recorder(value, launches))
        yield
    finally:
        for m, name, value in saved:
            setattr(m, name, value)


def _launches() -> list:
    """Every (kernel, args, kwargs, grid) the launchers produce on each op's example inputs (ops/table.py)."""
    from ernie_m_fast.ops.table import OPS

    modules = _op_modules()
    launches: list = []
    with recording(launches):
        for op in OPS:
            for dtype in DTYPES:
                for args in op.examples(dtype):
                    getattr(modules[op.name], op.name)(*args)
    return launches


def _signature(kernel, args, constexprs):
    sig = {}
    for name, value in zip(kernel.arg_names, args):
        if isinstance(value, torch.Tensor):
            sig[name] = "*" + _TYPE_NAMES[value.dtype]
        elif isinstance(value, bool):
            sig[name] = "i1"
        elif isinstance(value, int):
            sig[name] = "i32" if -(2**31) <= value < 2**31 else "i64"
        elif isinstance(value, float):
            sig[name] = "fp32"
        else:
            raise TypeError(f"{kernel.__name__}: cannot type argument {name}={value!r}")
    for name in constexprs:
        sig[name] = "constexpr"
    return sig


def _attrs(args) -> dict:
    """The JIT's specialisation: pointers 16-byte aligned and ints divisible by 16 are marked so, which
    lets the compiler vectorise loads exactly as it does for a real launch with these arguments."""
    attrs = {}
    for i, value in enumerate(args):
        if isinstance(value, torch.Tensor):
            aligned = value.data_ptr() % 16 == 0
        else:
            aligned = isinstance(value, int) and not isinstance(value, bool) and value % 16 == 0
        if aligned:
            attrs[(i,)] = [["tt.divisibility", 16]]
    return attrs


def _resource_usage(cubin: bytes) -> dict:
    """Registers, spill stores and shared memory from cuobjdump (shipped with Triton), when available."""
    tool = os.path.join(os.path.dirname(__import__("triton").__file__), "backends", "nvidia", "bin", "cuobjdump")
    if not os.path.exists(tool):
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+)", text)
    if not found:
        return {}
    regs, stack, shared = map(int, found.groups())
    return {"registers": regs, "stack_bytes": stack, "static_shared": shared}


def compile_all(archs=(80, 90), only: str = "") -> list[dict]:
    """Compile each recorded launch for each sm_<arch>; one dict per (launch, arch), errors included."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from ._common import interpreting

    if interpreting():
        raise RuntimeError("compile_check must run without TRITON_INTERPRET (use run_in_subprocess)")
    results, seen = [], set()
    for kernel, args, kwargs, _grid in _launches():
        if only not in kernel.__name__:
            continue
        options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages") if k in kwargs}
        key = (kernel.__name__, tuple(_TYPE_NAMES.get(getattr(a, "dtype", None), "s") for a in args),
               tuple(sorted(kwargs.items())), tuple(sorted(options.items())))
        if key in seen:
            continue
        seen.add(key)
        src = ASTSource(kernel, _signature(kernel, args, kwargs), constexprs=dict(kwargs), attrs=_attrs(args))
        dtype = next(_TYPE_NAMES[a.dtype] for a in args if isinstance(a, torch.Tensor))
        for arch in archs:
            row = {"kernel": kernel.__name__, "arch": arch, "dtype": dtype, **kwargs, **options}
            try:
                compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=dict(options))
                row.update(ok=True, shared_bytes=compiled.metadata.shared, **_resource_usage(compiled.asm["cubin"]))
            except Exception as exc:  # report every failure, not just the first
                row.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:2000]}")
            results.append(row)
    return results


def run_in_subprocess(archs=(80, 90), timeout: float = 1200) -> list[dict]:
    """compile_all in a fresh interpreter with TRITON_INTERPRET unset; returns its results."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    cmd = [sys.executable, "-m", "ernie_m_fast.triton_kernels.compile_check", "--json",
           "--arch", ",".join(map(str, archs))]
    # run outside the caller's directory: `python -m` puts the cwd first on sys.path, and in a source
    # checkout that is the un-installed ernie_m_fast/ (which has no triton_kernels subpackage)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise RuntimeError(f"compile_check failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Compile every triton kernel config for GPU targets (no GPU).")
    parser.add_argument("--arch", default="80,90", help="comma-separated sm versions, e.g. 80,90")
    parser.add_argument("--only", default="", help="compile only kernels whose name contains this")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    results = compile_all(tuple(int(a) for a in args.arch.split(",")), args.only)
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            status = "ok " if r["ok"] else "FAIL"
            extra = {k: v for k, v in r.items() if k not in ("ok", "kernel", "arch", "dtype", "error")}
            print(f"{status} sm_{r['arch']} {r['kernel']:<28} {r['dtype']:<5} {extra} {r.get('error', '')}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
