"""Benchmarks and fault drills: scripts that print figures, run with ``python -m bench.<name>``.

They are not tests and assert no timing; ``tests/test_bench_smoke.py`` only checks that each
one still starts and finishes a tiny configuration.
"""
