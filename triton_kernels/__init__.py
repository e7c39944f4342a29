"""Triton kernels (installed as ernie_m_fast.triton_kernels so PyPI's triton_kernels cannot shadow them)."""
