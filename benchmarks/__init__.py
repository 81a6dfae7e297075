"""Benchmarks (not timed tests): each module is ``python -m benchmarks.<name>`` and writes its
figures to ``docs/benchmarks.md``."""
