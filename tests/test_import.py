"""`import ernie_m_fast` does little beyond `import torch`: heavy modules load when first needed.

Measured in fresh interpreters (the import cache of this test process says nothing). This is about
the work an import does, not speed: on the 2-core development machine `import torch` takes ~1.7 s
and our own import ~0.1-0.2 s on top (it was 1.8 s when ops/backends.py pulled in torch._dynamo and
triton came in eagerly). The bound is relative, so a loaded CI machine that slows both imports
alike cannot fail it: ours may add at most 40% of torch's own import time, which a module like
torch._dynamo (~75% of torch's time) or triton alone breaks.
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch

# Modules that must not load with `import ernie_m_fast` (each costs about as much as torch itself).
HEAVY = ("torch._dynamo", "triton", "transformers", "torch._inductor")

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import ernie_m_fast
t2 = time.perf_counter()
print(json.dumps({"torch": t1 - t0, "ours": t2 - t1, "loaded": [m for m in %r if m in sys.modules]}))
"""


def _measure() -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD % (HEAVY,)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_module():
    assert _measure()["loaded"] == []


def test_import_costs_little_on_top_of_torch():
    # the best of three runs in fresh processes: a noisy neighbour only ever adds time
    runs = [_measure() for _ in range(3)]
    ratio = min(r["ours"] / r["torch"] for r in runs)
    assert ratio <= 0.4, f"import ernie_m_fast adds {ratio:.0%} of import torch's time: {runs}"


def test_assume_constant_result_still_only_marks_the_function():
    """ops/backends.py marks its constant functions the way torch.compiler.assume_constant_result does,
    without importing torch._dynamo; if torch changes how the decorator works, this fails."""
    from ernie_m_fast.ops.backends import _assume_constant_result

    def a():
        return 1

    def b():
        return 1

    marked_by_torch = torch.compiler.assume_constant_result(a)
    ours = _assume_constant_result(b)
    assert marked_by_torch is a and ours is b
    assert {k: v for k, v in vars(a).items()} == {k: v for k, v in vars(b).items()} == {"_dynamo_marked_constant": True}
