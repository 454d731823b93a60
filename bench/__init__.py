"""Benchmarks of the whole stack and of the ledger (docs/internals/benchmarks.md).

Run one with `python -m bench.<name>`."""
