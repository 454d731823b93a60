"""`python -m bot --backup FILE` while the real bot takes a burst of splits: each copy is whole, and
a bot started on the copy (restored as the docs say) takes up the jobs it holds unfinished."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import sys
from pathlib import Path

from bot.models.jobs import UNFINISHED_STATES
from testing.discord_standin import InteractionRecord
from tests.e2e.conftest import REPO_ROOT, Stack

BURST = 12
SPACING = 0.4  # seconds between splits: the burst outlasts a backup's start-up several times
FIRST_USER = 1300000000000000500


async def run_backup(stack: Stack, name: str) -> tuple[int, str, str]:
    """`python -m bot --backup <name>` in the bot's working directory, on the bot's database."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--backup",
        name,
        cwd=stack.tmp_path,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO_ROOT),
            "DATABASE_URL": "sqlite:///data/stembot.db",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def unfinished(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        marks = ", ".join("?" for _ in UNFINISHED_STATES)
        return [
            row[0]
            for row in conn.execute(
                f"SELECT id FROM jobs WHERE state IN ({marks}) ORDER BY id", UNFINISHED_STATES
            )
        ]


async def test_a_backup_during_a_burst_of_splits_is_whole_and_a_bot_resumes_from_it(stack: Stack) -> None:
    stack.api.processing_seconds = 4.0  # the jobs stay unfinished while the backups are taken
    bot = await stack.start_bot()

    async def burst() -> list[InteractionRecord]:
        records = []
        for n in range(BURST):
            records.append(
                await stack.split(task_id=f"gen-{n}", audio_id=f"audio-{n}", user_id=FIRST_USER + n)
            )
            await asyncio.sleep(SPACING)
        return records

    async def backups(burst: asyncio.Task[list[InteractionRecord]]) -> list[tuple[int, str, str]]:
        taken = []
        while not burst.done() or len(taken) < 2:
            taken.append(await run_backup(stack, f"backups/copy-{len(taken)}.db"))
        return taken

    # The bot holds the one-process lock all along: the backups never wait for it.
    splitting = asyncio.create_task(burst())
    taken = await backups(splitting)
    records = await splitting
    for record in records:
        await record.wait_for_ack()
    mid_burst = None
    for n, (code, out, err) in enumerate(taken):
        assert code == 0, err
        copy = stack.tmp_path / "backups" / f"copy-{n}.db"
        assert f"Backed up data/stembot.db to backups/copy-{n}.db" in out
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            shown = dict(re.findall(r"^  (\w+): (\d+) rows$", out, re.MULTILINE))
            assert "jobs" in shown and "ledger" in shown
            for table, rows in shown.items():
                assert conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] == int(rows)
        if 0 < int(shown["jobs"]) < BURST and unfinished(copy):
            mid_burst = copy
    assert mid_burst is not None, "no backup was taken in the middle of the burst"
    resumed = unfinished(mid_burst)

    # Restore as the docs say: stop the bot, put the copy in the database's place, start the bot.
    bot.proc.send_signal(signal.SIGKILL)
    await bot.proc.wait()
    for leftover in ("stembot.db", "stembot.db-wal", "stembot.db-shm"):
        (stack.db_path.parent / leftover).unlink(missing_ok=True)
    shutil.copyfile(mid_burst, stack.db_path)
    await stack.start_bot()

    def taken_up() -> bool:
        jobs = {job["id"]: job for job in stack.jobs()}
        return all(
            jobs[i]["state"] not in UNFINISHED_STATES and jobs[i]["delivery"] == "delivered" for i in resumed
        )

    await stack.eventually(taken_up, timeout=30)
    assert stack.ledger_mismatches() == []
