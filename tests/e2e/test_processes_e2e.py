"""Two real bot processes on one PostgreSQL database: jobs claimed with a lease, taken over when a
process dies, callbacks reaching the process that does not hold the job, reservations from both.

Each test starts `python -m bot` twice (`SHARD_COUNT=2`, one shard each, a server on each shard)
against the Discord stand-in and the API simulator, on a fresh database of the PostgreSQL 16 the
test session started (`pgserver`, `tests/postgres.py`), with a short `JOB_LEASE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pytest

from testing.discord_standin import DEFAULT_USER_ID, BotProcess, InteractionRecord
from tests.e2e.conftest import Stack
from tests.e2e.test_split_e2e import READY, WORKING
from tests.ports import free_port
from tests.postgres import PostgresServer

SHARDS = (0, 1)
LEASE = 5.0  # JOB_LEASE_SECONDS: the shortest the settings allow

T = TypeVar("T")


class Deployment:
    """Two bot processes, one shard each, sharing one PostgreSQL database; a server on each shard."""

    def __init__(self, stack: Stack, url: str) -> None:
        self.stack = stack
        self.standin = stack.standin
        self.api = stack.api
        self.url = url
        self.standin.shard_count = len(SHARDS)
        self.guilds = {
            shard: self.standin.add_guild(shard=shard, name=f"Server on shard {shard}") for shard in SHARDS
        }
        self.ports = {shard: free_port() for shard in SHARDS}
        self.bots: dict[int, BotProcess] = {}

    async def start(self, shard: int, **settings: Any) -> BotProcess:
        """Start (or start again) the process of `shard` and wait until its shard is connected."""
        env = {
            "SHARD_COUNT": len(SHARDS),
            "SHARD_IDS": shard,
            "DATABASE_URL": self.url,
            "JOB_LEASE_SECONDS": LEASE,
            "CALLBACK_PORT": self.ports[shard],
            **settings,
        }
        bot = await self.stack.start_bot(**env)
        await self.standin.wait_for(lambda: self.standin.shard_ready(shard), timeout=20)
        self.bots[shard] = bot
        return bot

    async def start_both(self, **settings: Any) -> None:
        for shard in SHARDS:
            await self.start(shard, **settings)

    async def split(self, shard: int, audio_id: str, *, user_id: int = DEFAULT_USER_ID) -> InteractionRecord:
        """A member of the server on `shard` splits a track of their own."""
        return await self.stack.split(
            f"gen-{audio_id}", audio_id, guild_id=self.guilds[shard], user_id=user_id
        )

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def jobs(self) -> list[asyncpg.Record]:
        return await self.fetch("SELECT * FROM jobs ORDER BY id")

    async def ledger_kinds(self, job_id: int) -> list[str]:
        return [
            row["kind"]
            for row in await self.fetch("SELECT kind FROM ledger WHERE job_id = $1 ORDER BY id", job_id)
        ]

    async def balance(self, shard: int, user_id: int = DEFAULT_USER_ID) -> int:
        [row] = await self.fetch(
            "SELECT balance FROM accounts WHERE guild_id = $1 AND user_id = $2", self.guilds[shard], user_id
        )
        return int(row["balance"])

    async def eventually(self, check: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Re-run `check` on the database until its answer is truthy."""
        async with asyncio.timeout(timeout):
            while not (result := await check()):
                await asyncio.sleep(0.05)
        return result

    async def delivered(self) -> list[asyncpg.Record]:
        return [job for job in await self.jobs() if job["delivery"] == "delivered"]

    async def ledger_mismatches(self) -> list[tuple[Any, ...]]:
        """Accounts whose balance is not the sum of their ledger, or below zero."""
        rows = await self.fetch(
            "SELECT a.guild_id, a.user_id, a.balance, COALESCE(SUM(l.amount), 0) AS total "
            "FROM accounts a LEFT JOIN ledger l USING (guild_id, user_id) "
            "GROUP BY a.guild_id, a.user_id, a.balance HAVING a.balance != COALESCE(SUM(l.amount), 0) "
            "OR a.balance < 0"
        )
        return [tuple(row) for row in rows]


@pytest.fixture
async def deployment(stack: Stack, postgres_server: PostgresServer) -> AsyncIterator[Deployment]:
    url = await postgres_server.new_database()
    shared = Deployment(stack, url.reveal())
    yield shared
    for bot in stack.bots:
        await bot.stop()  # before the database goes away under them
    assert await shared.ledger_mismatches() == []
    await postgres_server.drop(url)


def shown_ready(record: InteractionRecord) -> int:
    """How many times the member's message was edited into a result (more than once: doubled)."""
    if record.original is None:
        return 0
    return sum(READY in (v.content or "") + str(v.embeds) for v in record.original.versions)


async def test_a_job_whose_process_is_killed_is_taken_over_after_its_lease_and_delivered_once(
    deployment: Deployment,
) -> None:
    d = deployment
    d.api.processing_seconds = 2.0
    await d.start_both()
    record = await d.split(0, "kill-1")
    await record.wait_for_edit(lambda m: WORKING in m.text(), timeout=10)
    [job] = await d.jobs()
    assert job["state"] == "submitted"

    d.bots[0].proc.send_signal(signal.SIGKILL)
    await d.bots[0].proc.wait()
    killed = time.monotonic()
    await record.wait_for_edit(lambda m: READY in m.text(), timeout=4 * LEASE)
    took_over = time.monotonic() - killed

    assert took_over <= 2 * LEASE, f"the job waited {took_over:.1f}s after its process died"
    assert f"job {job['id']} " in d.bots[1].output()  # the survivor finished it
    assert len(d.api.submits) == 1 and d.api.charged() == 10  # one paid submit, never resent
    [done] = await d.eventually(d.delivered)
    assert (done["state"], done["delivered_via"]) == ("succeeded", "interaction")
    assert await d.ledger_kinds(job["id"]) == ["reserve", "charge"]
    assert await d.balance(0) == 90
    await asyncio.sleep(1.0)  # a second delivery or settlement would come now
    assert shown_ready(record) == 1
    assert await d.ledger_kinds(job["id"]) == ["reserve", "charge"]


async def test_a_callback_reaching_the_process_that_does_not_hold_the_job_delivers_it_at_once(
    deployment: Deployment,
) -> None:
    d = deployment
    d.api.callbacks = True
    d.api.processing_seconds = 1.0
    # Each process tells the API to call the other back: as behind a load balancer that picked
    # the wrong one. Polling is the slow safety net (CALLBACK_POLL_INTERVAL_SECONDS, 60 s).
    for shard in SHARDS:
        await d.start(shard, CALLBACK_PUBLIC_URL=f"http://127.0.0.1:{d.ports[1 - shard]}")
    record = await d.split(0, "callback-1")
    message = await record.wait_for_edit(lambda m: READY in m.text(), timeout=10)

    [task] = d.api.tasks.values()
    [version] = [v for v in message.versions if READY in (v.content or "") + str(v.embeds)]
    assert version.wall - task.complete_at < 2.0  # the next poll was a minute away
    [callback] = [c for c in d.api.callback_log if c.task_id == task.task_id]
    assert callback.url.startswith(f"http://127.0.0.1:{d.ports[1]}/callback/") and callback.status == 200
    assert d.api.polls(task.task_id) <= 2  # record-info confirmed it; no polling loop found it
    [job] = await d.eventually(d.delivered)
    assert job["state"] == "succeeded"
    # The process holding the job was woken and finished it; the other only passed the word on.
    assert f"job {job['id']} guild={d.guilds[0]}" in d.bots[0].output()
    assert "succeeded" not in d.bots[1].output()
    assert await d.ledger_kinds(job["id"]) == ["reserve", "charge"]
    await asyncio.sleep(0.5)
    assert shown_ready(record) == 1


MEMBERS = 8  # per server
ASKS = 4  # splits each member fires at once


async def test_members_splitting_in_both_processes_at_once_never_overspend(deployment: Deployment) -> None:
    d = deployment
    d.api.processing_seconds = 1.5
    # Credit for three splits, two at a time: four at once must leave two taken (the limit),
    # and four more afterwards one (the balance).
    await d.start_both(DEFAULT_CREDITS=30, JOBS_PER_MEMBER=2)
    members = [DEFAULT_USER_ID + n for n in range(MEMBERS)]

    async def burst(round_: int) -> list[InteractionRecord]:
        return list(
            await asyncio.gather(
                *(
                    d.split(shard, f"r{round_}-s{shard}-m{member}-{n}", user_id=member)
                    for shard in SHARDS
                    for member in members
                    for n in range(ASKS)
                )
            )
        )

    async def settled(records: list[InteractionRecord]) -> None:
        for record in records:
            await record.wait_for(lambda r: any(not m.loading for m in r.messages), timeout=20)
        async with asyncio.timeout(30):
            while any(job["delivery"] != "delivered" for job in await d.jobs()):
                await asyncio.sleep(0.1)

    first = await burst(1)
    await settled(first)
    taken = await d.fetch("SELECT guild_id, user_id, COUNT(*) AS n FROM jobs GROUP BY guild_id, user_id")
    assert sorted(row["n"] for row in taken) == [2] * (MEMBERS * len(SHARDS))

    second = await burst(2)
    await settled(second)
    taken = await d.fetch("SELECT guild_id, user_id, COUNT(*) AS n FROM jobs GROUP BY guild_id, user_id")
    assert sorted(row["n"] for row in taken) == [3] * (MEMBERS * len(SHARDS))

    balances = await d.fetch("SELECT balance FROM accounts")
    assert [row["balance"] for row in balances] == [0] * (MEMBERS * len(SHARDS))
    assert await d.ledger_mismatches() == []
    jobs = await d.jobs()
    assert len(d.api.submits) == len(jobs) == 3 * MEMBERS * len(SHARDS)  # one paid submit each
    for record in first + second:
        assert shown_ready(record) <= 1
    assert sum(shown_ready(r) for r in first + second) == len(jobs)


async def test_the_same_track_asked_in_both_processes_at_once_makes_one_paid_job(
    deployment: Deployment,
) -> None:
    d = deployment
    d.api.processing_seconds = 1.5
    await d.start_both()
    members = [DEFAULT_USER_ID + n for n in range(5)]
    records = await asyncio.gather(
        *(
            d.stack.split("gen-shared", "audio-shared", guild_id=d.guilds[shard], user_id=member)
            for shard in SHARDS
            for member in members
        )
    )
    for record in records:
        await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    assert len(d.api.submits) == 1 and d.api.charged() == 10
    jobs = await d.eventually(lambda: _all_delivered(d, len(records)))
    assert sum(job["source_job_id"] is None for job in jobs) == 1  # one leader, every other follows
    assert {job["state"] for job in jobs} == {"succeeded"}
    await asyncio.sleep(0.5)
    assert [shown_ready(r) for r in records] == [1] * len(records)


async def _all_delivered(d: Deployment, count: int) -> list[asyncpg.Record]:
    jobs = await d.delivered()
    return jobs if len(jobs) == count else []


async def test_a_rolling_restart_loses_and_doubles_nothing(deployment: Deployment) -> None:
    d = deployment
    d.api.processing_seconds = 4.0
    await d.start_both()
    records = [
        await d.split(shard, f"rolling-{shard}-{n}", user_id=DEFAULT_USER_ID + n)
        for shard in SHARDS
        for n in range(3)
    ]
    for record in records:
        await record.wait_for_edit(lambda m: WORKING in m.text(), timeout=10)

    # Restart shard 0's process while its jobs run (SIGTERM, as a deploy does), then shard 1's.
    for shard in SHARDS:
        assert await d.bots[shard].stop(timeout=30) == 0
        await d.start(shard)
    for record in records:
        await record.wait_for_edit(lambda m: READY in m.text(), timeout=4 * LEASE)

    jobs = await d.eventually(lambda: _all_delivered(d, len(records)))
    assert {job["state"] for job in jobs} == {"succeeded"}
    assert len(d.api.submits) == len(records) and d.api.charged() == 10 * len(records)
    for job in jobs:
        assert await d.ledger_kinds(job["id"]) == ["reserve", "charge"]
    await asyncio.sleep(0.5)
    assert [shown_ready(r) for r in records] == [1] * len(records)
