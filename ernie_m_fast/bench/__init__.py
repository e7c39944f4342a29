"""Benchmarks: each module times ernie_m_fast against its baseline in the same run and reports ratios."""
