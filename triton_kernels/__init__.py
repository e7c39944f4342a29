"""Triton kernels (installed as ernie_m_fast.triton_kernels so PyPI's triton_kernels cannot shadow them).

One op per module: the @triton.jit kernel, its launcher (block choice, launch) and its config table;
the op table (ernie_m_fast/ops/table.py) names the module of each op. Importing this package imports
triton; the `triton` backend treats an ImportError as "backend unavailable". `triton_kernels.<op>`
finds the op's launcher in whichever module defines it (no list of ops here).
"""

import importlib
import pkgutil

import triton  # noqa: F401  (an ImportError here marks the backend unavailable)


def __getattr__(name: str):
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name != "compile_check":
            found = getattr(importlib.import_module(f"{__name__}.{module.name}"), name, None)
            if callable(found) and not name.startswith("_"):
                return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
