"""CI runs exactly the test command the README gives, so what a developer runs is what CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_the_readmes_test_command():
    command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    readme_lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()

    assert command.startswith("python3 -m venv .venv && ")
    assert command in readme_lines
