"""Benchmarks: each measures a baseline and ernie_m_fast in the same run and reports the ratio."""
