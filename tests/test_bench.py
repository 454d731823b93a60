"""The benchmarks start both ways the docs give, without the test suite on the path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("command", "cwd"),
    [
        ([sys.executable, str(REPO / "bench" / "load.py"), "--help"], "elsewhere"),
        ([sys.executable, "-m", "bench.load", "--help"], "repo"),
        ([sys.executable, str(REPO / "bench" / "sim_server.py"), "--help"], "elsewhere"),
    ],
    ids=["script", "module", "simulator-script"],
)
def test_the_load_benchmark_starts(command: list[str], cwd: str, tmp_path: Path) -> None:
    result = subprocess.run(
        command,
        cwd=REPO if cwd == "repo" else tmp_path,
        env={"PATH": "", "PYTHONPATH": str(REPO)} if "sim_server" in command[1] else {"PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_benchmarks_import_nothing_from_the_test_suite() -> None:
    for path in (REPO / "bench").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from tests" not in text and "import tests" not in text, path.name


def test_a_small_load_run_sees_every_split_delivered_once_paid_once() -> None:
    # The benchmark recognises a delivered result by its words: if they drift from what the bot
    # sends, every run "delivers" nothing and waits out its timeout.
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "--members", "3", "--api-seconds", "0.3",
         "--poll-interval", "0.1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (figures["delivered"], figures["not_acked"], figures["overspend"]) == (3, 0, 0)
    assert figures["api_submits_per_job"] == 1.0
