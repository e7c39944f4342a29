"""Test-wide setup.

Triton kernels run on CPU tensors through Triton's interpreter. The interpreter is chosen when
`triton.jit` decorates a kernel, so the variable must be set before anything imports triton; it is
set only where there is no CUDA device, so a GPU host runs the real compiled kernels instead.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(max(1, os.cpu_count() or 1))
