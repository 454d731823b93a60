"""Benchmarks of the whole stack and of the ledger (docs/internals/benchmarks.md): `python -m bench.<name>`."""
