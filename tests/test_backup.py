"""`python -m bot --backup FILE` and `--version`: a whole copy while the store is written, outside
the one-process lock, never over an existing file; PostgreSQL is pointed to pg_dump."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from bot.store import Store
from bot.store.backup import BackupRefused, backup_sqlite, size_text
from tests.postgres import PostgresServer
from tests.test_main import holder
from tests.test_settings import REPO

GUILD = 1200000000000000001


def run_bot(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in `cwd` (no developer's .env there), with only `env` set."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def made_database(path: Path, members: int = 3) -> None:
    """A migrated store at `path` with `members` accounts, each granted credits once."""
    store = await Store.open(path)
    try:
        for user in range(members):
            await store.accounts.grant(GUILD, user + 1, 5, actor_id=9, reason=None, role_ids=())
    finally:
        await store.close()


async def test_backups_taken_while_the_store_is_written_are_whole_and_open_as_a_store(tmp_path: Path) -> None:
    database = tmp_path / "data" / "stembot.db"
    store = await Store.open(database)
    stop = asyncio.Event()
    grants = 0

    async def write() -> None:
        nonlocal grants
        while not stop.is_set():
            await store.accounts.grant(GUILD, grants % 7 + 1, 1, actor_id=9, reason="burst", role_ids=())
            grants += 1

    writer = asyncio.create_task(write())
    copies = []
    try:
        await asyncio.sleep(0.1)
        for n in range(4):
            floor = grants
            copies.append(
                (floor, await asyncio.to_thread(backup_sqlite, database, tmp_path / f"copy-{n}.db"))
            )
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await writer
        await store.close()

    seen = []
    for floor, copy in copies:
        ledger = dict(copy.tables)["ledger"]
        assert ledger >= floor  # every grant committed before the backup began is in it
        seen.append(ledger)
        with sqlite3.connect(copy.destination) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        restored = await Store.open(copy.destination)
        try:
            assert await restored.accounts.ledger_mismatches() == []  # no grant torn in half
        finally:
            await restored.close()
    assert seen == sorted(seen) and seen[-1] > seen[0], "the store was not written during the backups"
    assert grants > seen[-1]


def test_a_backup_runs_while_a_bot_holds_the_lock_and_says_what_it_copied(tmp_path: Path) -> None:
    database = tmp_path / "data" / "stembot.db"
    asyncio.run(made_database(database))
    database.chmod(0o600)
    process = holder(database)  # as a running bot holds it
    try:
        result = run_bot(
            tmp_path, "--backup", "saved/stembot-backup.db", DATABASE_URL="sqlite:///data/stembot.db"
        )
    finally:
        process.kill()
        process.wait()

    assert result.returncode == 0, result.stderr
    copy = tmp_path / "saved" / "stembot-backup.db"
    assert sorted(p.name for p in copy.parent.iterdir()) == ["stembot-backup.db"]  # one file, no partial
    assert copy.stat().st_mode & 0o777 == 0o600  # no more readable than the database
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == "Backed up data/stembot.db to saved/stembot-backup.db: one consistent copy, integrity check ok."
    )
    shown = dict(re.findall(r"^  (\w+): (\d+) rows$", result.stdout, re.MULTILINE))
    with sqlite3.connect(copy) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert set(shown) == names - {"sqlite_sequence"}
        for table, rows in shown.items():
            assert conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] == int(rows)
    with sqlite3.connect(database) as source:  # the bot is gone: the source stands still
        assert all(
            source.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] == int(n) for t, n in shown.items()
        )
    assert shown["accounts"] == "3"
    size = copy.stat().st_size
    assert (
        lines[-1]
        == f"{len(shown)} tables, {sum(map(int, shown.values()))} rows, {size_text(size)} ({size} bytes)."
    )


def test_a_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    database = tmp_path / "data" / "stembot.db"
    asyncio.run(made_database(database))
    (tmp_path / "old.db").write_text("yesterday's backup")

    result = run_bot(tmp_path, "--backup", "old.db", DATABASE_URL="sqlite:///data/stembot.db")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Nothing was written: old.db already exists; a backup never overwrites a file. "
        "Choose a new file name."
    )
    assert (tmp_path / "old.db").read_text() == "yesterday's backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "old.db"]


def test_a_file_made_while_the_backup_runs_is_not_overwritten_either(tmp_path: Path) -> None:
    database = tmp_path / "stembot.db"
    asyncio.run(made_database(database))
    target = tmp_path / "copy.db"
    real_link = os.link

    def someone_else_first(source: str | Path, destination: str | Path) -> None:
        target.write_text("made meanwhile")
        real_link(source, destination)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "link", someone_else_first)
        with pytest.raises(BackupRefused):
            backup_sqlite(database, target)
    assert target.read_text() == "made meanwhile"
    assert [p.name for p in tmp_path.iterdir() if "copy" in p.name] == ["copy.db"]  # no partial left


def test_no_database_is_a_failure_and_nothing_is_made(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "--backup", "copy.db", DATABASE_URL="sqlite:///data/stembot.db")

    assert result.returncode == 2
    assert (
        "Cannot back up: there is no SQLite database at data/stembot.db: check DATABASE_URL" in result.stderr
    )
    assert list(tmp_path.iterdir()) == []  # neither the copy nor an empty database


def test_postgresql_is_pointed_to_pg_dump_without_its_password(tmp_path: Path) -> None:
    result = run_bot(
        tmp_path,
        "--backup",
        "copy.db",
        DATABASE_URL="postgresql://stembot:hunter2-secret@127.0.0.1:9/stembot",
    )

    assert result.returncode == 2
    assert "DATABASE_URL is PostgreSQL" in result.stderr
    assert 'pg_dump --format=custom --file=FILE "$DATABASE_URL"' in result.stderr
    assert "hunter2-secret" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


def test_version_prints_the_installed_version_and_exits_0(tmp_path: Path) -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]

    result = run_bot(tmp_path, "--version")

    assert result.returncode == 0
    assert result.stdout == f"StemBot {metadata.version('stembot')}\n"
    assert metadata.version("stembot") == declared


def test_version_of_a_checkout_never_installed_is_its_pyprojects(tmp_path: Path) -> None:
    # A checkout of the code with no package installed: the dependencies' folder without StemBot's
    # own metadata (`-S`: no site folder but that one), the code copied beside a pyproject.toml.
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    bare = tmp_path / "site"
    bare.mkdir()
    for entry in site.iterdir():
        if "stembot" not in entry.name:
            (bare / entry.name).symlink_to(entry)
    checkout = tmp_path / "checkout"
    for package in ("bot", "cogs"):
        shutil.copytree(REPO / package, checkout / package, ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "pyproject.toml").write_text('[project]\nname = "stembot"\nversion = "9.8.7"\n')

    result = subprocess.run(
        [sys.executable, "-S", "-m", "bot", "--version"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{checkout}{os.pathsep}{bare}"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "StemBot 9.8.7\n"


def test_sizes_read_as_people_read_them() -> None:
    assert [size_text(n) for n in (912, 49_357, 3_250_586, 1_503_238_553)] == [
        "912 bytes",
        "48.2 KB",
        "3.1 MB",
        "1.4 GB",
    ]


async def run_tool(tool: Path, *args: str) -> None:
    """One of PostgreSQL's own tools, which must succeed."""
    process = await asyncio.create_subprocess_exec(tool, *args, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()


async def test_the_postgresql_way_pg_dump_then_pg_restore_gives_the_same_books_back(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # What --backup tells a PostgreSQL operator to run, and the restore the docs give, on a real server.
    import pgserver

    tools = Path(pgserver.__file__).parent / "pginstall" / "bin"
    source = await postgres_server.new_database()
    store = await Store.open(source)
    try:
        for user in range(1, 4):
            await store.accounts.grant(GUILD, user, 5 * user, actor_id=9, reason=None, role_ids=())
        balances = [await store.accounts.balance(GUILD, user) for user in range(1, 4)]
        ledger = [await store.accounts.ledger(GUILD, user) for user in range(1, 4)]
    finally:
        await store.close()
    dump = tmp_path / "stembot.dump"
    await run_tool(tools / "pg_dump", "--format=custom", f"--file={dump}", source.reveal())
    target = await postgres_server.new_database(migrated=False)  # an empty database
    try:
        await run_tool(tools / "pg_restore", "--no-owner", f"--dbname={target.reveal()}", str(dump))
        restored = await Store.open(target)
        try:
            assert [await restored.accounts.balance(GUILD, user) for user in range(1, 4)] == balances
            assert [await restored.accounts.ledger(GUILD, user) for user in range(1, 4)] == ledger
            assert await restored.accounts.ledger_mismatches() == []
        finally:
            await restored.close()
    finally:
        await postgres_server.drop(source)
        await postgres_server.drop(target)
