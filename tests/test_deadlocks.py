"""Deadlocks between processes on PostgreSQL, provoked on purpose: two connections lock two rows in
opposite orders, with an event between, so the database must abort one of them. The other side is
a raw connection whose `deadlock_timeout` is long, so the store's side is always the one aborted
(the side whose wait began first and whose timeout runs out first finds the cycle and gives way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.models import JobState, NewJob
from bot.product import Mode
from bot.settings import PostgresURL
from bot.store import Store
from bot.store.database import Tx
from tests.postgres import PostgresServer


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[PostgresURL]:
    url = await postgres_server.new_database()
    yield url
    await postgres_server.drop(url)


@pytest.fixture
async def store(database: PostgresURL) -> AsyncIterator[Store]:
    store = await Store.open(database)
    yield store
    await store.close()


@pytest.fixture
async def other(database: PostgresURL) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """Another process's connection, which never gives way first in a deadlock."""
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(database.reveal())
    await conn.execute("SET deadlock_timeout = '20s'")
    yield conn
    await conn.close()


async def waiting_for_a_lock(conn: asyncpg.Connection[asyncpg.Record], *, besides: int) -> None:
    """Until a backend other than `besides` waits for a lock in this database."""
    async with asyncio.timeout(10):
        while not await conn.fetchval(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> $1",
            besides,
        ):
            await asyncio.sleep(0.01)


async def test_a_transaction_aborted_by_a_deadlock_runs_again_from_the_start_and_succeeds(
    store: Store, other: asyncpg.Connection[asyncpg.Record], caplog: pytest.LogCaptureFixture
) -> None:
    await other.execute("CREATE TABLE pair (id INT PRIMARY KEY, n INT NOT NULL)")
    await other.execute("INSERT INTO pair VALUES (1, 0), (2, 0)")
    runs = 0
    holds_two = asyncio.Event()

    async def body(tx: Tx) -> int:
        nonlocal runs
        runs += 1
        await tx.execute("UPDATE pair SET n = n + 1 WHERE id = 2")
        holds_two.set()
        await tx.execute("UPDATE pair SET n = n + 1 WHERE id = 1")  # the first run waits for `other`
        return runs

    other_pid = other.get_server_pid()
    async with other.transaction():
        await other.execute("UPDATE pair SET n = n + 10 WHERE id = 1")
        caplog.set_level(logging.WARNING, "bot.store.database")
        ours = asyncio.create_task(store.db.transact(body, what="the test's transaction"))
        await holds_two.wait()
        await waiting_for_a_lock(other, besides=other_pid)
        # Row 2 is ours, row 1 theirs: a cycle. PostgreSQL aborts our run; `other` then gets row 2.
        await other.execute("UPDATE pair SET n = n + 10 WHERE id = 2")
    assert await ours == 2  # ran twice; the second run found the rows free
    assert dict(await other.fetch("SELECT id, n FROM pair")) == {1: 11, 2: 11}  # the aborted run left nothing
    [warning] = [r for r in caplog.records if "running it again" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "DeadlockDetectedError" in warning.getMessage()


async def test_a_transaction_with_effects_outside_the_database_is_not_run_again(
    store: Store, other: asyncpg.Connection[asyncpg.Record]
) -> None:
    """A plain `transaction()` (whose body may call out) is never repeated: the error reaches the
    caller, which decides."""
    await other.execute("CREATE TABLE pair (id INT PRIMARY KEY, n INT NOT NULL)")
    await other.execute("INSERT INTO pair VALUES (1, 0), (2, 0)")
    holds_two = asyncio.Event()
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        async with store.db.transaction() as tx:
            await tx.execute("UPDATE pair SET n = n + 1 WHERE id = 2")
            holds_two.set()
            await tx.execute("UPDATE pair SET n = n + 1 WHERE id = 1")

    async with other.transaction():
        await other.execute("UPDATE pair SET n = n + 10 WHERE id = 1")
        ours = asyncio.create_task(body())
        await holds_two.wait()
        await waiting_for_a_lock(other, besides=other.get_server_pid())
        await other.execute("UPDATE pair SET n = n + 10 WHERE id = 2")
    with pytest.raises(asyncpg.exceptions.DeadlockDetectedError):
        await ours
    assert runs == 1


async def test_the_runners_move_back_to_reserved_does_not_fail_when_another_job_moves_the_other_way(
    store: Store, other: asyncpg.Connection[asyncpg.Record]
) -> None:
    """The soak's deadlock: `JobRunner._submit_failed` moves a job from 'submitting' back to
    'reserved' (a 455) while another process moves another job from 'reserved' to 'submitting'.
    The job counts by state were locked in the middle of each statement, in opposite orders; `other`
    plays the second process, holding the 'reserved' count, then taking the 'submitting' one."""
    reserved = await store.reservations.reserve(
        NewJob(10, 1, 20, Mode.SEPARATE_VOCAL, "gen-1", "audio-1", 10, "token-1")
    )
    assert reserved.job is not None
    job = reserved.job
    assert await store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)

    async with other.transaction():
        await other.execute("UPDATE job_state_counts SET total = total WHERE state = 'reserved'")
        back = asyncio.create_task(store.jobs.transition(job.id, [JobState.SUBMITTING], JobState.RESERVED))
        await waiting_for_a_lock(other, besides=other.get_server_pid())
        await other.execute("UPDATE job_state_counts SET total = total WHERE state = 'submitting'")
    assert await back  # not DeadlockDetectedError
    assert (await store.jobs.get(job.id)).state is JobState.RESERVED  # type: ignore[union-attr]
    assert await store.jobs.count_by_state() == {JobState.RESERVED: 1}


async def test_a_reservation_following_a_job_locks_that_job_before_the_members_account(
    store: Store, other: asyncpg.Connection[asyncpg.Record], caplog: pytest.LogCaptureFixture
) -> None:
    """Settling a job locks it, then its members' accounts. A member asking for the same track
    locked their account first, then the job to follow: against a settlement of that job, a cycle.
    `other` settles the job (its row, then the member's account); the reservation must wait for the
    job without holding the account, so neither waits for the other (no deadlock, no run again)."""
    leader = await store.reservations.reserve(
        NewJob(10, 1, 20, Mode.SEPARATE_VOCAL, "gen-1", "audio-1", 10, "token-1")
    )
    assert leader.job is not None
    assert await store.accounts.balance(10, 21) == 100  # the second member's account exists
    caplog.set_level(logging.WARNING, "bot.store.database")

    async with other.transaction():
        await other.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", leader.job.id)
        following = asyncio.create_task(
            store.reservations.reserve(
                NewJob(10, 1, 21, Mode.SEPARATE_VOCAL, "gen-1", "audio-1", 10, "token-2")
            )
        )
        await waiting_for_a_lock(other, besides=other.get_server_pid())
        await other.execute("SELECT 1 FROM accounts WHERE guild_id = 10 AND user_id = 21 FOR UPDATE")
    reservation = await following
    assert reservation.job is not None and reservation.job.source_job_id == leader.job.id
    assert [r for r in caplog.records if "running it again" in r.getMessage()] == []
