"""The composition root's start-up decisions, with real components on real local ports."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from bot.__main__ import lock_sqlite_database, start_web_server
from bot.models import NewJob
from bot.operations import Operations
from bot.product import Mode
from bot.settings import Settings, load_settings
from bot.store import Store
from bot.web import WebServer
from tests.test_settings import API_KEY, BASE, REPO, TOKEN
from tests.wiring import make_services

CLOSED = "http://127.0.0.1:9"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program already listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def settings_for(port: int, *, callbacks: bool) -> Settings:
    # The API at a closed local port: asking it anything fails at once, never reaches the internet.
    env = {**BASE, "CALLBACK_HOST": "127.0.0.1", "CALLBACK_PORT": str(port), "SEPARATION_API_URL": CLOSED}
    if callbacks:
        env["CALLBACK_PUBLIC_URL"] = "https://stembot.example.org"
    return load_settings(env)


@asynccontextmanager
async def built(settings: Settings, store: Store) -> AsyncIterator[tuple[WebServer, Operations]]:
    """The web server and operations exactly as `python -m bot` builds them for `settings`."""
    async with aiohttp.ClientSession() as session:
        services = make_services(store, session, settings)
        yield services.web, services.operations


async def test_a_taken_port_without_callbacks_is_a_warning_and_the_bot_runs_on(
    taken_port, caplog, store
) -> None:
    settings = settings_for(taken_port, callbacks=False)
    async with built(settings, store) as (web, operations):
        with caplog.at_level(logging.WARNING):
            listening = await start_web_server(web, settings, operations)
        await web.stop()
        report = await operations.report(store, callback_public_url=None, listening=None, poll_interval=10)

    assert listening is False and not web.running
    assert (
        operations.web_server_error is not None
        and f"CALLBACK_PORT {taken_port}" in operations.web_server_error
    )
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "Web server off" in record.getMessage()
    assert report.callbacks.web_server_error == operations.web_server_error


async def test_a_taken_port_with_callbacks_stops_start_up_with_one_line(taken_port, caplog, store) -> None:
    settings = settings_for(taken_port, callbacks=True)
    async with built(settings, store) as (web, operations):
        with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as stopped:
            await start_web_server(web, settings, operations)
        await web.stop()

    assert stopped.value.code == 2
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert (
        f"CALLBACK_PORT {taken_port}" in record.getMessage() and "choose a free port" in record.getMessage()
    )


async def test_a_free_port_is_listened_on(caplog, store) -> None:
    async with built(settings_for(0, callbacks=False), store) as (web, operations):
        try:
            assert await start_web_server(web, settings_for(0, callbacks=False), operations)
            assert web.running and web.port != 0 and operations.web_server_error is None
        finally:
            await web.stop()


async def test_a_metrics_scrape_reads_the_job_counts_and_only_the_unfinished_jobs_indexes(store) -> None:
    for n in range(3):
        job = NewJob(1, 2, 3 + n, Mode.SEPARATE_VOCAL, "t", f"a-{n}", Mode.SEPARATE_VOCAL.cost, f"cb-{n}")
        await store.reservations.reserve(job)
    async with built(settings_for(0, callbacks=False), store) as (web, _):
        await web.start()
        statements: list[str] = []
        await store.db._conn.set_trace_callback(statements.append)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{web.port}/metrics") as response:
                    text = await response.text()
        finally:
            await web.stop()

    assert 'stembot_jobs{state="reserved"} 3.0' in text
    # The job counts come from the counts table; what else reads `jobs` (the oldest unfinished job,
    # the jobs this process holds) reads only the partial indexes of unfinished work, never a scan
    # of every job however many there have been.
    on_jobs = [s for s in statements if re.search(r"\bFROM jobs\b", s, re.IGNORECASE)]
    assert statements and len(on_jobs) == 2
    for statement in on_jobs:
        plan = " ".join(
            str(row[3]) for row in await store.db._conn.execute_fetchall("EXPLAIN QUERY PLAN " + statement)
        )
        assert "SCAN" not in plan and ("jobs_unfinished" in plan or "jobs_claimed" in plan), plan


# -- one process per SQLite file ---------------------------------------------------------------

HOLD_LOCK = (
    "import sys; from pathlib import Path; from bot.__main__ import lock_sqlite_database; "
    "lock_sqlite_database(Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()"
)


def holder(database: Path) -> subprocess.Popen[str]:
    """Another process holding the database's lock, as a running bot does, until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(database)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    return process


def start_bot_process(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bot` on `sqlite:///data/stembot.db`, its Discord at a closed local port: should
    the lock let it through, it fails to log in (exit 1) without reaching the internet."""
    return subprocess.run(
        [sys.executable, "-m", "testing.launcher", "bot.__main__:main"],
        cwd=cwd,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "STANDIN_REST_BASE": f"{CLOSED}/api/v10",
            "STANDIN_GATEWAY": "ws://127.0.0.1:9/gateway",
            "DISCORD_TOKEN": TOKEN,
            "SEPARATION_API_KEY": API_KEY,
            "SEPARATION_API_URL": CLOSED,
            "DATABASE_URL": "sqlite:///data/stembot.db",
            "CALLBACK_PORT": "0",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_process_on_one_sqlite_file_exits_2_with_one_line(tmp_path: Path) -> None:
    process = holder(tmp_path / "data" / "stembot.db")
    try:
        result = start_bot_process(tmp_path)
    finally:
        process.kill()
        process.wait()

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "already running on the SQLite database data/stembot.db" in line
    assert (
        "SQLite is single-process; for several processes use PostgreSQL (DATABASE_URL=postgresql://" in line
    )
    assert TOKEN not in result.stderr + result.stdout
    assert not (tmp_path / "data" / "stembot.db").exists()  # refused before the store was opened


def test_the_lock_goes_with_the_process_that_held_it(tmp_path: Path) -> None:
    process = holder(tmp_path / "data" / "stembot.db")
    process.kill()  # however it ends, even SIGKILL
    process.wait()

    result = start_bot_process(tmp_path)

    assert result.returncode == 1  # past the lock, opened the database, then could not log in
    assert "Cannot reach Discord to log in" in result.stderr
    assert (tmp_path / "data" / "stembot.db.lock").exists()
    assert (tmp_path / "data" / "stembot.db").exists()


def test_the_lock_is_beside_the_database_and_released_with_its_descriptor(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "bot.db"
    first = lock_sqlite_database(database)
    try:
        assert (tmp_path / "nested" / "bot.db.lock").exists()
        process = subprocess.run(
            [sys.executable, "-c", HOLD_LOCK, str(database)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert process.returncode == 2 and "nested/bot.db" in process.stderr
    finally:
        os.close(first)
    os.close(lock_sqlite_database(database))


def test_a_database_folder_that_cannot_be_made_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the database folder should be")

    result = start_bot_process(tmp_path)

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "Cannot create data/stembot.db.lock beside the database" in line
