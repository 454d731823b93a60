"""Several bot processes splitting Discord's shards, and one SQLite file refusing a second process.

Until the shared PostgreSQL store lands, each sharded process here has its own SQLite file, which
also shows whose process took which split.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp

from testing.discord_standin import DEFAULT_USER_ID, BotProcess
from tests.e2e.conftest import Stack
from tests.e2e.test_split_e2e import READY
from tests.ports import free_port

SHARDS = (0, 1)


def database(tmp_path: Path, shard: int) -> Path:
    return tmp_path / f"shard{shard}" / "stembot.db"


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return [tuple(row) for row in conn.execute(sql)]


async def healthz(port: int) -> tuple[int, object]:
    """The process's `/healthz` once it is healthy (15 s at most), else its last answer."""
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
        for _ in range(75):
            async with session.get("/healthz") as response:
                status, body = response.status, await response.json()
            if status == 200:
                break
            await asyncio.sleep(0.2)
    return status, body


async def test_two_processes_split_the_shards_and_each_answers_only_its_own_servers(
    stack: Stack, tmp_path: Path
) -> None:
    standin = stack.standin
    standin.shard_count = 2
    guilds = {shard: standin.add_guild(shard=shard, name=f"Server on shard {shard}") for shard in SHARDS}
    ports = {shard: free_port() for shard in SHARDS}
    bots: dict[int, BotProcess] = {}
    for shard in SHARDS:
        bots[shard] = await stack.start_bot(
            SHARD_COUNT=2,
            SHARD_IDS=shard,
            DATABASE_URL=f"sqlite:///shard{shard}/stembot.db",
            CALLBACK_PORT=ports[shard],
        )
    await standin.wait_for(lambda: all(standin.shard_ready(shard) for shard in SHARDS), timeout=20)
    assert [identify["shard"] for identify in standin.identifies] == [[0, 2], [1, 2]]

    records = {
        shard: await stack.split(
            f"gen-{shard}", f"audio-{shard}", guild_id=guilds[shard], user_id=DEFAULT_USER_ID
        )
        for shard in SHARDS
    }
    for record in records.values():
        await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)

    for shard in SHARDS:
        # The process of the server's shard took its split, and the other never heard of it.
        assert rows(database(tmp_path, shard), "SELECT guild_id, source_task_id, state FROM jobs") == [
            (guilds[shard], f"gen-{shard}", "succeeded")
        ]
        assert f"gen-{1 - shard}" not in bots[shard].output()
    assert len(stack.api.submits) == 2

    # One process synced the commands for the whole application; the other left them alone.
    assert len(standin.sync_calls) == 1
    assert "Synced" in bots[0].output()
    assert "Synced" not in bots[1].output()
    assert "Not syncing slash commands: the process that runs shard 0 syncs them" in bots[1].output()
    assert rows(database(tmp_path, 1), "SELECT key FROM meta WHERE key LIKE 'commands_synced:%'") == []

    # Each process is healthy: its own shard is connected.
    for shard in SHARDS:
        assert await healthz(ports[shard]) == (
            200,
            {"ok": True, "checks": {"database": True, "gateway": True, "runner": True}},
        )
    for shard in SHARDS:
        mismatches = rows(
            database(tmp_path, shard),
            "SELECT a.guild_id, a.user_id FROM accounts a LEFT JOIN ledger l USING (guild_id, user_id) "
            "GROUP BY a.guild_id, a.user_id HAVING a.balance != COALESCE(SUM(l.amount), 0)",
        )
        assert mismatches == []


async def test_a_second_process_on_the_same_sqlite_file_is_refused_with_one_line(stack: Stack) -> None:
    first = await stack.start_bot()

    second = await stack.spawn_bot()
    assert await asyncio.wait_for(second.proc.wait(), 30) == 2
    [line] = second.output().splitlines()
    assert "Another StemBot process is already running on the SQLite database data/stembot.db" in line
    assert "SQLite is single-process" in line and "DATABASE_URL=postgresql://" in line
    assert stack.standin.session_count == 1  # the second never reached Discord

    # The first runs on, untouched.
    record = await stack.split()
    await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    assert first.returncode is None
