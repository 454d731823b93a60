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
        ([sys.executable, str(REPO / "bench" / "keep.py"), "--help"], "elsewhere"),
        ([sys.executable, "-m", "bench.keep", "--help"], "repo"),
        ([sys.executable, str(REPO / "bench" / "chaos.py"), "--help"], "elsewhere"),
        ([sys.executable, "-m", "bench.chaos", "--help"], "repo"),
        ([sys.executable, str(REPO / "bench" / "mix.py"), "--help"], "elsewhere"),
        ([sys.executable, "-m", "bench.mix", "--help"], "repo"),
        ([sys.executable, str(REPO / "bench" / "report.py"), "--help"], "elsewhere"),
        ([sys.executable, "-m", "bench.report", "--help"], "repo"),
    ],
    ids=[
        "script",
        "module",
        "simulator-script",
        "keep-script",
        "keep-module",
        "chaos-script",
        "chaos-module",
        "mix-script",
        "mix-module",
        "report-script",
        "report-module",
    ],
)
def test_the_benchmarks_start(command: list[str], cwd: str, tmp_path: Path) -> None:
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


@pytest.mark.e2e  # the benchmark drives the real bot process against the stand-ins
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


@pytest.mark.e2e  # the benchmark drives the real bot processes against the stand-ins
@pytest.mark.postgres  # on a throw-away server of the benchmark's own (`--postgres-server`)
def test_a_small_load_run_on_postgresql_with_two_bot_processes_delivers_once_paid_once() -> None:
    # Two bot processes (a shard each) on a throw-away PostgreSQL: each part of the run gets a
    # database of its own, so neither process resumes the ledger burst's jobs as its own.
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "--members", "6", "--api-seconds", "0.3",
         "--poll-interval", "0.1", "--postgres-server", "--processes", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (figures["database"], figures["processes"]) == ("postgresql", 2)
    assert (figures["delivered"], figures["delivered_twice"], figures["not_acked"]) == (6, 0, 0)
    assert (figures["overspend"], figures["ledger_mismatches"], figures["api_submits_per_job"]) == (0, 0, 1.0)
    assert figures["jobs_in_flight_peak"] <= 6
    assert figures["reservations_per_s"] > 0


def run_keep_benchmark(*options: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "keep.py"),
            "--results",
            "2",
            "--stem-bytes",
            "64KiB",
            *options,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return result, json.loads(lines[-1])


@pytest.mark.e2e  # the benchmark drives the real bot process against the stand-ins
def test_a_small_keep_run_posts_every_stem_once_with_the_apis_bytes() -> None:
    # 12 stems of 64 KiB under a 256 KiB limit: three messages per result, packed and checked.
    result, figures = run_keep_benchmark("--upload-limit", "256KiB")

    assert result.returncode == 0, result.stderr
    assert (figures["attachments"], figures["expected"], figures["kept"]) == (24, 24, 2)
    assert (figures["wrong_hash"], figures["missing"], figures["duplicates"]) == (0, 0, 0)
    assert figures["files_per_message"] == 4.0
    assert figures["leftover_files"] == 0
    assert 0 < figures["rss_mb_baseline"] <= figures["rss_mb_peak"] <= figures["vmhwm_mb"] + 1


@pytest.mark.e2e  # the benchmark drives the real bot process against the stand-ins
def test_the_keep_benchmark_fails_when_the_bot_uses_more_memory_than_the_target() -> None:
    result, figures = run_keep_benchmark("--target-mb", "1")

    assert figures["attachments"] == figures["expected"] == 24
    assert result.returncode == 1
    assert "NOT MET" in result.stdout


@pytest.mark.e2e  # the benchmark drives the real bot process against the stand-ins
def test_a_small_mix_run_posts_each_mix_once_holding_the_kept_tones() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "mix.py"), "--seconds", "3", "--mixes", "2", "--bursts", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    figures = json.loads(lines[-1])

    assert result.returncode == 0, result.stderr
    assert (figures["posted"], figures["wrong"]) == (2, 0)
    # The mixing process (and multiprocessing's resource tracker): its memory counts in the peak.
    assert figures["child_processes"] >= 1 and figures["rss_mb_children_peak"] > 0
    assert len(figures["mix_cpu_seconds"]) == 2 and all(s > 0 for s in figures["mix_cpu_seconds"])
    assert figures["acks_idle"] > 0 and figures["acks_mixing"] > 0
    assert 0 < figures["rss_mb_baseline"] <= figures["rss_mb_peak"]
