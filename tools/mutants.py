#!/usr/bin/env python
"""Plants known bugs in a scratch copy of the repository, one at a time, and checks that the tests catch each.

Outside CI (it rebuilds the extension for every C++ mutant: most of an hour on a busy 2-core VM). Run from the
repository root with the project's virtualenv active:

    python tools/mutants.py              # every mutant; exit status 1 if any is not caught
    python tools/mutants.py --list       # the mutants and the tests each runs
    python tools/mutants.py -k attention # only mutants whose name contains "attention"

The scratch copy (the files git tracks or would track, so uncommitted edits count) is built with CMake
into its own build directory and imported instead of the editable install, so the working tree and
its build are never touched. Each mutant replaces one exact snippet of one file (a stale snippet is
an error, not a pass), runs the narrowed tests named with it, and is restored. First the narrowed
tests run once unmutated: they must pass, or "caught" would mean nothing.

Adding a mutant: append a Mutant to MUTANTS (or extend barrier_mutants for new .cu files, which it
finds by itself): a name, the file, the exact text to replace, its replacement, and the tests that
must fail (pytest arguments; keep them narrow, every mutant runs them).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    old: str  # exact text replaced ...
    new: str  # ... by this
    checks: tuple[tuple[str, ...], ...]  # pytest argument lists; the mutant must fail each of them
    occurrence: int = 1  # which occurrence of `old` (1-based)

    @property
    def native(self) -> bool:
        return self.path.startswith("csrc/") or self.path.endswith("CMakeLists.txt")


def tests(*args: str) -> tuple[str, ...]:
    return args


OPS = "tests/kernels/test_ops.py"
TABLE = "tests/kernels/test_op_table.py"
CPU = "tests/kernels/test_cpu_kernels.py"
SIM = "tests/kernels/test_cuda_sim.py"
TRITON = "tests/kernels/test_triton_kernels.py"
MODEL = "tests/model/test_backends.py"
DTYPES = ("fp32", "fp16", "bf16")


def barrier_mutants(root: Path) -> list[Mutant]:
    """Every __syncthreads() / __syncwarp() in every csrc/cuda kernel (.cu and .cuh) removed in turn; each
    must fail the cuda_sim tests in every dtype on its own (a race can hide in one dtype's path). A .cu
    is tested through its op's tests; a .cuh, shared by several ops, through all cuda_sim op tests."""
    mutants = []
    for cu in sorted((root / "csrc/cuda").glob("*.cu*")):
        text = cu.read_text()
        op = cu.stem if cu.suffix == ".cu" else "cuda_sim"
        seen: dict[str, int] = {}
        for match in re.finditer(r"__sync(threads|warp)\([^)]*\);", text):
            stmt = match.group(0)
            seen[stmt] = seen.get(stmt, 0) + 1
            line = text.count("\n", 0, match.start()) + 1
            checks = tuple(tests(OPS, "-k", f"{op} and cuda_sim and {dtype}") for dtype in DTYPES)
            mutants.append(Mutant(f"{cu.name}:{line} {stmt} removed", str(cu.relative_to(root)), stmt, "", checks,
                                  seen[stmt]))
    return mutants


def _one(*args: str) -> tuple[tuple[str, ...], ...]:
    return (tests(*args),)


MUTANTS = [
    # ---- csrc/cpu -------------------------------------------------------------------------------
    Mutant("cpu layernorm: first block's partial sum dropped from the row mean", "csrc/cpu/layernorm_residual.cpp",
           "sum_d += block_d;", "sum_d += i0 == 0 ? 0.0f : block_d;", _one(CPU, "-k", "layernorm")),
    Mutant("cpu blocked_sum: first block dropped (the layernorm's exact-variance fallback)", "csrc/cpu/cpu_common.h",
           "total += block;", "total += i0 == 0 ? 0.0f : block;", _one(CPU, "-k", "layernorm")),
    Mutant("cpu bias_residual_layernorm: the Linear's bias not added", "csrc/cpu/layernorm_residual.cpp",
           "return (load(xr[i]) + xbias[i]) + load(rr[i]);", "return load(xr[i]) + load(rr[i]);",
           _one(TABLE, "-k", "bias_residual_layernorm and cpu")),
    Mutant("cpu bias_gelu: bias dropped in a 16-bit row's last (partial) block", "csrc/cpu/bias_gelu.cpp",
           "stage[i] = load(xr[i0 + i]) + bias[i0 + i];",
           "stage[i] = load(xr[i0 + i]) + (n == kStageBlock ? bias[i0 + i] : 0.0f);", _one(CPU, "-k", "bias_gelu")),
    Mutant("cpu gelu_tanh: 0.044715 -> 0.0447", "csrc/cpu/bias_gelu.cpp", "0.044715f", "0.0447f",
           _one(CPU, "-k", "bias_gelu and fp32")),
    # ---- csrc/cuda (under the emulation) ---------------------------------------------------------
    Mutant("cuda warp_sum: last butterfly step dropped", "csrc/cuda/cuda_compat.h", "offset > 0;", "offset > 1;",
           _one(OPS, "-k", "layernorm and cuda_sim")),
    Mutant("cuda attention: row sum's shuffle between the row's two lanes dropped", "csrc/cuda/attention_varlen.cu",
           "tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);", "",
           _one(OPS, "-k", "attention_varlen and cuda_sim")),
    Mutant("cuda attention: softmax scale off by 1%", "csrc/cuda/attention_varlen.cu", "v_stride, scale, vec);",
           "v_stride, scale * 1.01f, vec);", _one(OPS, "-k", "attention_varlen and cuda_sim")),
    Mutant("cuda bias_gelu: bias dropped in the scalar tail only", "csrc/cuda/bias_gelu.cu",
           "gelu(to_float(xr[i]) + to_float(bias[i]), tanh_approx)", "gelu(to_float(xr[i]), tanh_approx)",
           _one(OPS, "-k", "bias_gelu and cuda_sim")),
    Mutant("cuda layernorm: bias dropped in the scalar tail only", "csrc/cuda/layernorm_rows.cuh",
           "* rstd * to_float(weight[i]) + to_float(bias[i]));", "* rstd * to_float(weight[i]));",
           _one(OPS, "-k", "layernorm_residual and cuda_sim")),
    Mutant("cuda bias_residual_layernorm: the Linear's bias dropped in the scalar tail only",
           "csrc/cuda/layernorm_rows.cuh", "(xbias != nullptr ? to_float(xbias[i]) : 0.f)", "0.f",
           _one(TABLE, "-k", "bias_residual_layernorm and cuda_sim")),
    Mutant("cuda gelu_tanh: 0.044715 -> 0.0447", "csrc/cuda/bias_gelu.cu", "0.044715f", "0.0447f",
           _one(OPS, "-k", "bias_gelu and cuda_sim and fp32")),
    # ---- triton_kernels (under the interpreter) --------------------------------------------------
    Mutant("triton layernorm: single-pass column mask off by one", "triton_kernels/layernorm.py",
           "mask = row_mask[:, None] & (cols[None, :] < hidden)", "mask = row_mask[:, None] & (cols[None, :] <= hidden)",
           _one(OPS, "-k", "layernorm_residual and triton")),
    Mutant("triton layernorm: chunked statistics mask off by one", "triton_kernels/layernorm.py",
           "mask = row_mask[:, None] & (c[None, :] < hidden)", "mask = row_mask[:, None] & (c[None, :] <= hidden)",
           _one(TRITON, "-k", "layernorm")),
    Mutant("triton layernorm: row mask off by one", "triton_kernels/layernorm.py", "row_mask = row < rows",
           "row_mask = row <= rows", _one(OPS, "-k", "layernorm and triton")),
    Mutant("triton layernorm: chunk merge drops the between-chunk variance term", "triton_kernels/layernorm.py",
           "m2 += m2_b + delta * delta * (count * n_b / n)", "m2 += m2_b", _one(TRITON, "-k", "layernorm")),
    Mutant("triton layernorm: chunked output column mask off by one", "triton_kernels/layernorm.py",
           "col_mask = c < hidden", "col_mask = c <= hidden", _one(TABLE, "-k", "layernorm and triton")),
    Mutant("triton bias_residual_layernorm: the bias's single-pass mask off by one", "triton_kernels/layernorm.py",
           "cols, mask, cols < hidden, HAS_XBIAS)", "cols, mask, cols <= hidden, HAS_XBIAS)",
           _one(TABLE, "-k", "bias_residual_layernorm and triton")),
    Mutant("triton bias_residual_layernorm: the Linear's bias not added", "triton_kernels/layernorm.py",
           "s += tl.load(xbias_ptr + c, mask=col_mask, other=0.0).to(tl.float32)[None, :]", "pass",
           _one(TABLE, "-k", "bias_residual_layernorm and triton")),
    Mutant("triton bias_gelu: column mask off by one", "triton_kernels/gelu.py", "col_mask = col < hidden",
           "col_mask = col <= hidden", _one(OPS, "-k", "bias_gelu and triton")),
    Mutant("triton gelu_tanh: 0.044715 -> 0.0447", "triton_kernels/gelu.py", "0.044715 * s * s * s",
           "0.0447 * s * s * s", _one(OPS, "-k", "bias_gelu and triton and fp32")),
    Mutant("triton attention: key mask off by one", "triton_kernels/attention.py",
           "n_mask = offs_n < seq_len - n_start", "n_mask = offs_n <= seq_len - n_start",
           _one(OPS, "-k", "attention_varlen and triton")),
    Mutant("triton attention: query mask off by one", "triton_kernels/attention.py",
           "m_mask = offs_m < seq_len - m_start", "m_mask = offs_m <= seq_len - m_start",
           _one(OPS, "-k", "attention_varlen and triton")),
    Mutant("triton attention: head-dim mask off by one", "triton_kernels/attention.py", "d_mask = offs_d < head_dim",
           "d_mask = offs_d <= head_dim", _one(TRITON, "-k", "attention_odd_head_dims")),
    Mutant("triton attention: softmax scale off by 1%", "triton_kernels/attention.py", "scale * LOG2_E,",
           "scale * LOG2_E * 1.01,", _one(OPS, "-k", "attention_varlen and triton")),
    # ---- the model path: cuda_sim's default scale, seen by the model-level tests alone ----------------
    Mutant("native backends: default softmax scale off by 1% (model tests only)", "ernie_m_fast/ops/native_backend.py",
           "scale = head_dim**-0.5 if softmax_scale is None", "scale = head_dim**-0.5 * 1.01 if softmax_scale is None",
           _one(MODEL, "-k", "matches_transformers and ErnieMModel and cuda_sim")),
]


# ---------------------------------------------------------------------------------- the scratch copy

# Run in the child interpreter: drop the editable install's import redirect so that `ernie_m_fast`
# resolves to the scratch copy (first on sys.path), then run pytest.
_BOOT = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "ScikitBuildRedirectingFinder"]
sys.path.insert(0, {root!r})
if sys.argv[1:] == ["--where"]:
    import ernie_m_fast, ernie_m_fast._C, ernie_m_fast._sim
    print(ernie_m_fast.__file__, ernie_m_fast._C.__file__, ernie_m_fast._sim.__file__)
    raise SystemExit(0)
import pytest
raise SystemExit(pytest.main(sys.argv[1:]))
"""


class Scratch:
    def __init__(self, path: Path, jobs: int):
        self.root = path / "src"
        self.build = path / "build"
        self.jobs = jobs

    def copy_from(self, repo: Path) -> None:
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, check=True,
                               capture_output=True).stdout.decode().split("\0")
        for name in filter(None, files):
            src, dst = repo / name, self.root / name
            # Only changed files are written (with a new mtime), so a kept --workdir rebuilds what changed.
            if src.is_file() and not (dst.is_file() and dst.read_bytes() == src.read_bytes()):
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        # What the wheel maps elsewhere (pyproject's wheel.packages, e.g. triton_kernels/ installed as
        # ernie_m_fast/triton_kernels) is linked into place, as the editable install does.
        config = tomllib.loads((self.root / "pyproject.toml").read_text())
        for dest, src in config.get("tool", {}).get("scikit-build", {}).get("wheel", {}).get("packages", {}).items():
            link = self.root / dest
            if dest != src and not link.exists():
                link.symlink_to(os.path.relpath(self.root / src, link.parent))

    def configure(self) -> None:
        import pybind11

        subprocess.run(["cmake", "-S", str(self.root), "-B", str(self.build), "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=Release", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
                        f"-DPython_EXECUTABLE={sys.executable}", "-DERNIE_M_FAST_CUDA=OFF"],
                       check=True, capture_output=True)

    def rebuild(self) -> str | None:
        """Builds and installs the modules into the scratch package; returns the error output on failure."""
        done = subprocess.run(["cmake", "--build", str(self.build), "-j", str(self.jobs)], capture_output=True, text=True)
        if done.returncode:
            return (done.stdout + done.stderr)[-2000:]
        package = self.root / "ernie_m_fast"
        for module in list(self.build.glob("_C*.so")) + list(self.build.glob("_sim*.so")):
            tmp = package / (module.name + ".tmp")
            shutil.copy2(module, tmp)
            os.replace(tmp, package / module.name)
        return None

    def pytest(self, args: tuple[str, ...], timeout: float) -> tuple[str, str, float]:
        """(outcome, first failing test or message, seconds): outcome passed / failed / crashed / timeout / error."""
        start = time.monotonic()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, "-c", _BOOT.format(root=str(self.root)), "-x", "-q", "-p", "no:cacheprovider", *args]
        try:
            done = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", f"no result after {timeout:.0f} s", time.monotonic() - start
        seconds = time.monotonic() - start
        failed = next((line[7:] for line in done.stdout.splitlines() if line.startswith("FAILED ")), "")
        if done.returncode == 0:
            return "passed", "", seconds
        if done.returncode == 1:
            return "failed", failed, seconds
        if done.returncode < 0:
            return "crashed", f"signal {-done.returncode}", seconds
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return "error", last[0], seconds

    def where(self) -> str:
        cmd = [sys.executable, "-c", _BOOT.format(root=str(self.root)), "--where"]
        return subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, check=True).stdout.strip()


def baseline_runs(checks) -> list[tuple[str, ...]]:
    """The checks merged into one pytest run per set of test files (-k expressions or-ed): the same
    tests, without paying pytest's start-up (torch, triton) once per check."""
    by_files: dict[tuple[str, ...], list[str]] = {}
    for check in checks:
        files = tuple(a for a in check if a.startswith("tests/"))
        keyword = check[check.index("-k") + 1] if "-k" in check else ""
        by_files.setdefault(files, []).append(keyword)
    runs = []
    for files, keywords in sorted(by_files.items()):
        runs.append(files if "" in keywords else files + ("-k", " or ".join(f"({k})" for k in sorted(set(keywords)))))
    return runs


def apply(root: Path, m: Mutant) -> str:
    """Plants the mutant; returns the original text of the file."""
    path = root / m.path
    text = path.read_text()
    at = -1
    for _ in range(m.occurrence):
        at = text.find(m.old, at + 1)
        if at < 0:
            raise SystemExit(f"stale mutant {m.name!r}: {m.path} no longer contains {m.old!r} "
                             f"(occurrence {m.occurrence}); update tools/mutants.py")
    path.write_text(text[:at] + m.new + text[at + len(m.old):])
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="keyword", default="", help="only mutants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unmutated runs (only right after the whole suite passed on this tree)")
    args = parser.parse_args(argv)

    mutants = [m for m in barrier_mutants(ROOT) + MUTANTS if args.keyword in m.name]
    mutants.sort(key=lambda m: not m.native)  # C++ first: one rebuild back to the original afterwards
    if args.list:
        for m in mutants:
            print(f"{m.name}\n    {m.path}: {m.old!r} -> {m.new!r}")
            for check in m.checks:
                print("    pytest " + " ".join(check))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="emf-mutants-"))
    scratch = Scratch(workdir, args.jobs)
    print(f"scratch copy in {workdir}", flush=True)
    scratch.copy_from(ROOT)
    for m in mutants:  # every snippet must exist before anything runs
        apply(scratch.root, m)
        (scratch.root / m.path).write_text((ROOT / m.path).read_text())
    started = time.monotonic()
    scratch.configure()
    error = scratch.rebuild()
    if error:
        raise SystemExit(f"the unmutated copy does not build:\n{error}")
    print(f"built in {time.monotonic() - started:.0f} s; imports {scratch.where()}", flush=True)

    for check in [] if args.no_baseline else baseline_runs({c for m in mutants for c in m.checks}):
        outcome, detail, seconds = scratch.pytest(check, args.timeout)
        if outcome != "passed":
            raise SystemExit(f"unmutated, `pytest {' '.join(check)}` {outcome} ({detail}): fix that first")
        print(f"baseline passes: pytest {' '.join(check)} ({seconds:.0f} s)", flush=True)

    rows, needs_rebuild = [], False
    for m in mutants:
        if needs_rebuild and not m.native:
            if scratch.rebuild():
                raise SystemExit("the restored copy no longer builds")
            needs_rebuild = False
        original = apply(scratch.root, m)
        try:
            error = scratch.rebuild() if m.native else None
            for check in m.checks:
                if error:
                    result = ("BUILD FAILED", error.strip().splitlines()[-1], 0.0)
                else:
                    outcome, detail, seconds = scratch.pytest(check, args.timeout)
                    verdict = {"failed": "caught", "crashed": "caught (crash)", "timeout": "caught (timeout)",
                               "passed": "NOT CAUGHT", "error": "ERROR"}[outcome]
                    result = (verdict, detail, seconds)
                rows.append((m, check, *result))
                print(f"{result[0]:>16}  {m.name}  [pytest {' '.join(check)}]  {result[1]}", flush=True)
        finally:
            (scratch.root / m.path).write_text(original)
            needs_rebuild = needs_rebuild or m.native

    if needs_rebuild:  # leave a kept scratch build matching its sources
        scratch.rebuild()
    print("\n| mutant | file | tests | result | first failing test |\n|---|---|---|---|---|")
    for m, check, verdict, detail, seconds in rows:
        print(f"| {m.name} | {m.path} | `{' '.join(check)}` | {verdict} ({seconds:.0f} s) | {detail} |")
    caught = sum(r[2].startswith("caught") for r in rows)
    print(f"\n{caught} of {len(rows)} checks caught their mutant ({len(mutants)} mutants); "
          f"{time.monotonic() - started:.0f} s")
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
