"""The store and ledger on real SQLite files."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import time
from pathlib import Path

import pytest

from bot.models import CreditPolicy, Failure, JobState, LedgerKind, NewJob, Refusal, StemLink
from bot.product import Mode
from bot.store import Store
from bot.store.migrations import load_migrations

GUILD, MEMBER = 1000, 2000


_serial = itertools.count(1)


@pytest.fixture
async def make_store(tmp_path: Path):
    """Stores with the given policy (the credits a member starts with, splits at once)."""
    opened: list[Store] = []

    async def make(default_credits: int = 100, jobs_per_member: int = 5, path: Path | None = None) -> Store:
        store = await Store.open(
            path or tmp_path / f"store-{len(opened)}.db", CreditPolicy(default_credits, jobs_per_member)
        )
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


def new_job(member: int = MEMBER, mode: Mode = Mode.SEPARATE_VOCAL, audio_id: str = "") -> NewJob:
    n = next(_serial)
    return NewJob(
        guild_id=GUILD,
        channel_id=3000,
        user_id=member,
        mode=mode,
        source_task_id="task",
        audio_id=audio_id or f"audio-{n}",  # a new track unless asked: the same one would be shared
        cost=mode.cost,
        callback_token=f"tok-{n}",
    )


async def test_open_creates_folder_and_applies_migrations_once(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.db"
    first = await Store.open(path)
    await first.close()
    second = await Store.open(path)  # re-opening must not re-run migrations
    await second.close()
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == [version for version, _ in load_migrations()]  # each once, in order
    assert journal == "wal"


async def test_new_member_starts_with_default_credits_recorded_in_ledger(tmp_path: Path, make_store) -> None:
    store = await make_store(default_credits=100, path=tmp_path / "once.db")
    assert await store.accounts.balance(GUILD, MEMBER) == 100
    await store.close()
    later = await make_store(default_credits=999, path=tmp_path / "once.db")
    assert await later.accounts.balance(GUILD, MEMBER) == 100  # opened once only
    [entry] = await later.accounts.ledger(GUILD, MEMBER)
    assert (entry.kind, entry.amount, entry.balance_after) == (LedgerKind.ALLOWANCE, 100, 100)


async def test_credits_are_per_server(store: Store) -> None:
    await store.reservations.reserve(new_job())
    assert await store.accounts.balance(GUILD, MEMBER) == 90
    assert await store.accounts.balance(GUILD + 1, MEMBER) == 100


async def test_reserve_takes_cost_and_records_job_and_ledger_row(store: Store) -> None:
    reservation = await store.reservations.reserve(new_job(mode=Mode.SPLIT_STEM))
    assert reservation.refusal is None and reservation.job is not None
    assert reservation.balance == 50
    assert reservation.job.state is JobState.RESERVED
    kinds = [(e.kind, e.amount, e.job_id) for e in await store.accounts.ledger(GUILD, MEMBER)]
    assert kinds == [(LedgerKind.ALLOWANCE, 100, None), (LedgerKind.RESERVE, -50, reservation.job.id)]


async def test_reserve_refuses_when_balance_too_low_and_changes_nothing(make_store) -> None:
    store = await make_store(default_credits=40)
    reservation = await store.reservations.reserve(new_job(mode=Mode.SPLIT_STEM))
    assert reservation.refusal is Refusal.INSUFFICIENT_CREDITS
    assert reservation.balance == 40
    assert await store.accounts.balance(GUILD, MEMBER) == 40
    assert await store.jobs.count_by_state() == {}


async def test_reserve_refuses_beyond_jobs_in_flight_limit(store: Store) -> None:
    for _ in range(2):
        assert (await store.reservations.reserve(new_job())).job is not None
    refused = await store.reservations.reserve(new_job())
    assert refused.refusal is Refusal.TOO_MANY_IN_FLIGHT
    assert refused.balance == 80


async def test_fifty_concurrent_reservations_never_overspend(make_store) -> None:
    store = await make_store(default_credits=50, jobs_per_member=1000)
    # Balance for exactly 5 two-stem jobs; 50 requests at once.
    results = await asyncio.gather(*(store.reservations.reserve(new_job()) for _ in range(50)))
    accepted = [r for r in results if r.job is not None]
    assert len(accepted) == 5
    assert all(r.refusal is Refusal.INSUFFICIENT_CREDITS for r in results if r.job is None)
    assert await store.accounts.balance(GUILD, MEMBER) == 0
    assert await store.accounts.ledger_mismatches() == []


async def test_concurrent_reservations_through_two_connections_never_overspend(tmp_path: Path) -> None:
    # Two processes' worth of connections on one file: the conditional update still holds.
    path = tmp_path / "shared.db"
    policy = CreditPolicy(default_credits=50, jobs_per_member=1000)
    one, two = await Store.open(path, policy), await Store.open(path, policy)
    try:
        await one.accounts.balance(GUILD, MEMBER)
        results = await asyncio.gather(*(s.reservations.reserve(new_job()) for s in [one, two] * 25))
        assert sum(r.job is not None for r in results) == 5
        assert await one.accounts.balance(GUILD, MEMBER) == 0
        assert await one.accounts.ledger_mismatches() == []
    finally:
        await one.close()
        await two.close()


async def test_success_charges_once_and_second_settlement_is_a_no_op(store: Store) -> None:
    job = (await store.reservations.reserve(new_job())).job
    assert job is not None
    stems = [StemLink("vocal", "https://x/v.mp3"), StemLink("instrumental", "https://x/i.mp3")]
    done = await store.reservations.settle(job.id, succeeded=True, stems=stems, links_expire_at=123.0)
    assert done is not None and done.state is JobState.SUCCEEDED and done.stems == tuple(stems)
    assert await store.reservations.settle(job.id, succeeded=True, stems=stems) is None
    assert await store.reservations.settle(job.id, succeeded=False, failure=Failure.TIMED_OUT) is None
    kinds = [e.kind for e in await store.accounts.ledger(GUILD, MEMBER)]
    assert kinds == [LedgerKind.ALLOWANCE, LedgerKind.RESERVE, LedgerKind.CHARGE]
    assert await store.accounts.balance(GUILD, MEMBER) == 90
    assert await store.accounts.ledger_mismatches() == []


async def test_failure_refunds_exactly_once(store: Store) -> None:
    job = (await store.reservations.reserve(new_job(mode=Mode.SPLIT_STEM))).job
    assert job is not None
    results = await asyncio.gather(
        *(
            store.reservations.settle(job.id, succeeded=False, failure=Failure.SEPARATION_FAILED)
            for _ in range(5)
        )
    )
    assert sum(r is not None for r in results) == 1
    assert await store.accounts.balance(GUILD, MEMBER) == 100
    refunds = [e for e in await store.accounts.ledger(GUILD, MEMBER) if e.kind is LedgerKind.REFUND]
    assert [(e.amount, e.balance_after, e.job_id) for e in refunds] == [(50, 100, job.id)]
    assert await store.accounts.ledger_mismatches() == []


async def test_transition_is_compare_and_set(store: Store) -> None:
    job = (await store.reservations.reserve(new_job())).job
    assert job is not None
    assert await store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)
    assert not await store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)
    assert await store.jobs.transition(job.id, [JobState.SUBMITTING], JobState.SUBMITTED, api_task_id="abc")
    stored = await store.jobs.get(job.id)
    assert stored is not None and stored.state is JobState.SUBMITTED and stored.api_task_id == "abc"


async def traced(store: Store) -> list[str]:
    """Every statement the store's connection runs from now on (SQLite's trace, values filled in).
    A statement that fires triggers is traced once more per trigger: see `statements_run`."""
    statements: list[str] = []
    await store.db._conn.set_trace_callback(statements.append)
    return statements


def statements_run(trace: list[str]) -> list[str]:
    return [s for i, s in enumerate(trace) if i == 0 or trace[i - 1] != s]


async def test_a_durable_transition_commits_with_synchronous_full(store: Store) -> None:
    job = (await store.reservations.reserve(new_job())).job
    assert job is not None
    statements = await traced(store)

    assert await store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING, durable=True)

    statements = statements_run(statements)
    assert statements[0] == "PRAGMA synchronous = FULL"
    assert statements[1].startswith("UPDATE jobs SET state = 'submitting'")
    assert statements[2:] == ["PRAGMA synchronous = NORMAL"]
    [(level,)] = await store.db._conn.execute_fetchall("PRAGMA synchronous")
    assert level == 1  # NORMAL again for every other write


async def test_an_ordinary_transition_leaves_synchronous_alone(store: Store) -> None:
    job = (await store.reservations.reserve(new_job())).job
    assert job is not None
    statements = await traced(store)

    assert await store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)

    assert [s for s in statements if "synchronous" in s] == []


async def test_jobs_needing_work_lists_unfinished_and_undelivered(make_store) -> None:
    store = await make_store(jobs_per_member=5)
    a = (await store.reservations.reserve(new_job())).job
    b = (await store.reservations.reserve(new_job())).job
    c = (await store.reservations.reserve(new_job())).job
    assert a and b and c
    await store.reservations.settle(b.id, succeeded=False, failure=Failure.TIMED_OUT)
    await store.reservations.settle(c.id, succeeded=False, failure=Failure.TIMED_OUT)
    from bot.models import Delivery, DeliveryVia

    await store.jobs.record_delivery(c.id, Delivery.DELIVERED, DeliveryVia.CHANNEL)
    assert [j.id for j in await store.jobs.needing_work()] == [a.id, b.id]
    delivered = await store.jobs.get(c.id)
    assert delivered is not None and delivered.interaction_token is None


def counted_by_scanning(path: Path) -> dict[JobState, int]:
    with sqlite3.connect(path) as conn:
        return {JobState(s): n for s, n in conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")}


async def test_job_counts_follow_every_kind_of_change(store: Store, tmp_path: Path) -> None:
    leader = (await store.reservations.reserve(new_job(audio_id="shared"))).job
    follower = (await store.reservations.reserve(new_job(member=MEMBER + 1, audio_id="shared"))).job
    failed = (await store.reservations.reserve(new_job())).job
    assert leader and follower and failed and follower.state is JobState.FOLLOWING
    await store.jobs.transition(leader.id, [JobState.RESERVED], JobState.SUBMITTING, durable=True)
    await store.jobs.transition(leader.id, [JobState.SUBMITTING], JobState.SUBMITTED, api_task_id="x")
    assert await store.jobs.count_by_state() == {
        JobState.RESERVED: 1,
        JobState.SUBMITTED: 1,
        JobState.FOLLOWING: 1,
    }
    done = await store.reservations.settle(
        leader.id,
        succeeded=True,
        stems=[StemLink("vocals", "https://x/v")],
        links_expire_at=time.time() + 14 * 86400,
    )
    assert done is not None
    await store.reservations.settle_followers(done)
    await store.reservations.settle(failed.id, succeeded=False, failure=Failure.TIMED_OUT)
    reused = (await store.reservations.reserve(new_job(member=MEMBER + 2, audio_id="shared"))).job
    assert reused is not None and reused.state is JobState.SUCCEEDED  # inserted finished

    counts = await store.jobs.count_by_state()

    assert counts == {JobState.SUCCEEDED: 3, JobState.FAILED: 1}
    assert counts == counted_by_scanning(tmp_path / "data" / "stembot.db")  # the store fixture's file


async def test_counting_jobs_reads_no_job_rows(make_store) -> None:
    store = await make_store(jobs_per_member=5)
    for _ in range(5):
        await store.reservations.reserve(new_job())
    statements = await traced(store)

    assert await store.jobs.count_by_state() == {JobState.RESERVED: 5}

    assert statements and not [s for s in statements if re.search(r"\bFROM jobs\b", s, re.IGNORECASE)], (
        statements
    )


async def test_job_counts_start_from_the_jobs_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = await Store.open(path, CreditPolicy(jobs_per_member=5))
    for _ in range(3):
        await store.reservations.reserve(new_job())
    await store.close()
    with sqlite3.connect(path) as conn:  # the database as it was before migration 005
        conn.executescript(
            "DROP TABLE job_state_counts; DROP TRIGGER jobs_counted_on_insert; "
            "DROP TRIGGER jobs_counted_on_state_change; DROP TRIGGER jobs_counted_on_delete; "
            "ALTER TABLE jobs DROP COLUMN response_message_id; "
            "DELETE FROM schema_version WHERE version >= 5; UPDATE jobs SET state = 'failed' WHERE id = 1; "
            # ... and before 007, which came after it
            "DROP TABLE budget_months; DROP TABLE server_budgets; "
            "ALTER TABLE jobs DROP COLUMN budget_cost; ALTER TABLE jobs DROP COLUMN budget_month;"
        )

    store = await Store.open(path)
    try:
        assert await store.jobs.count_by_state() == {JobState.RESERVED: 2, JobState.FAILED: 1}
    finally:
        await store.close()


async def test_job_repr_hides_interaction_token(store: Store) -> None:
    secret = "interaction-token-that-must-not-leak"
    new = NewJob(GUILD, 1, MEMBER, Mode.SEPARATE_VOCAL, "t", "a", 10, "cb", 42, secret, 1.0)
    job = (await store.reservations.reserve(new)).job
    assert job is not None and job.interaction_token == secret
    assert secret not in repr(job) and secret not in repr(new)


async def test_a_failed_transaction_never_leaves_the_connection_inside_it(store: Store) -> None:
    reservation = await store.reservations.reserve(new_job())
    assert reservation.job is not None
    with pytest.raises(sqlite3.IntegrityError):
        # A second reserve row for the same job breaks a unique index half-way through.
        async with store.db.transaction() as conn:
            await conn.execute("UPDATE accounts SET allowance_left = allowance_left - 1")
            await conn.execute(
                "INSERT INTO ledger (guild_id, user_id, kind, amount, allowance_change, bonus_change, "
                "balance_after, job_id, created_at) VALUES (?, ?, 'reserve', 0, 0, 0, 0, ?, 0)",
                (GUILD, MEMBER, reservation.job.id),
            )
    assert not store.db._conn.in_transaction
    assert await store.accounts.balance(GUILD, MEMBER) == 90  # the half-done change is gone
    assert await store.accounts.ledger_mismatches() == []
