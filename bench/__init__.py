"""Benchmarks: runnable scripts, not tests. Run each as ``.venv/bin/python -m bench.NAME``.

See docs/benchmarks.md for what each measures, its reference and the figures.
"""
