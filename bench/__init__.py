"""The benchmark harness: `make bench` (full) and `make bench-smoke` (tiny).

Every figure of the project is set against a floor, the thinnest
implementation of the same job, measured in the same run under the same
settings, so ratios stay meaningful on a busy machine. See docs/PERFORMANCE.md.
"""
