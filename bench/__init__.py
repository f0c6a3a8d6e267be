"""Benchmarks of data-streams against the floor: `python -m bench` (see docs/benchmarks.md)."""
