"""Benchmarks of the whole stack and of the ledger (docs/benchmarks.md): `python -m bench.<name>`."""
