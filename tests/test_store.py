"""The store and ledger on real SQLite files."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import time
from pathlib import Path

import pytest

from bot.models import Failure, JobState, LedgerKind, NewJob, StemLink
from bot.product import Mode
from bot.store import Refusal, Store

GUILD, MEMBER = 1000, 2000


_serial = itertools.count(1)


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
    assert versions == [1, 2, 3, 4, 5]
    assert journal == "wal"


async def test_new_member_starts_with_default_credits_recorded_in_ledger(store: Store) -> None:
    assert await store.balance(GUILD, MEMBER, starting=100) == 100
    assert await store.balance(GUILD, MEMBER, starting=999) == 100  # opened once only
    [entry] = await store.ledger(GUILD, MEMBER)
    assert (entry.kind, entry.amount, entry.balance_after) == (LedgerKind.ALLOWANCE, 100, 100)


async def test_credits_are_per_server(store: Store) -> None:
    await store.reserve_job(new_job(), starting=100, max_in_flight=5)
    assert await store.balance(GUILD, MEMBER, starting=100) == 90
    assert await store.balance(GUILD + 1, MEMBER, starting=100) == 100


async def test_reserve_takes_cost_and_records_job_and_ledger_row(store: Store) -> None:
    reservation = await store.reserve_job(new_job(mode=Mode.SPLIT_STEM), starting=100, max_in_flight=2)
    assert reservation.refusal is None and reservation.job is not None
    assert reservation.balance == 50
    assert reservation.job.state is JobState.RESERVED
    kinds = [(e.kind, e.amount, e.job_id) for e in await store.ledger(GUILD, MEMBER)]
    assert kinds == [(LedgerKind.ALLOWANCE, 100, None), (LedgerKind.RESERVE, -50, reservation.job.id)]


async def test_reserve_refuses_when_balance_too_low_and_changes_nothing(store: Store) -> None:
    reservation = await store.reserve_job(new_job(mode=Mode.SPLIT_STEM), starting=40, max_in_flight=2)
    assert reservation.refusal is Refusal.INSUFFICIENT_CREDITS
    assert reservation.balance == 40
    assert await store.balance(GUILD, MEMBER, starting=40) == 40
    assert await store.count_jobs_by_state() == {}


async def test_reserve_refuses_beyond_jobs_in_flight_limit(store: Store) -> None:
    for _ in range(2):
        assert (await store.reserve_job(new_job(), starting=100, max_in_flight=2)).job is not None
    refused = await store.reserve_job(new_job(), starting=100, max_in_flight=2)
    assert refused.refusal is Refusal.TOO_MANY_IN_FLIGHT
    assert refused.balance == 80


async def test_fifty_concurrent_reservations_never_overspend(store: Store) -> None:
    # Balance for exactly 5 two-stem jobs; 50 requests at once.
    results = await asyncio.gather(
        *(store.reserve_job(new_job(), starting=50, max_in_flight=1000) for _ in range(50))
    )
    accepted = [r for r in results if r.job is not None]
    assert len(accepted) == 5
    assert all(r.refusal is Refusal.INSUFFICIENT_CREDITS for r in results if r.job is None)
    assert await store.balance(GUILD, MEMBER, starting=50) == 0
    assert await store.ledger_mismatches() == []


async def test_concurrent_reservations_through_two_connections_never_overspend(tmp_path: Path) -> None:
    # Two processes' worth of connections on one file: the conditional update still holds.
    path = tmp_path / "shared.db"
    one, two = await Store.open(path), await Store.open(path)
    try:
        await one.balance(GUILD, MEMBER, starting=50)
        results = await asyncio.gather(
            *(s.reserve_job(new_job(), starting=50, max_in_flight=1000) for s in [one, two] * 25)
        )
        assert sum(r.job is not None for r in results) == 5
        assert await one.balance(GUILD, MEMBER, starting=50) == 0
        assert await one.ledger_mismatches() == []
    finally:
        await one.close()
        await two.close()


async def test_success_charges_once_and_second_settlement_is_a_no_op(store: Store) -> None:
    job = (await store.reserve_job(new_job(), starting=100, max_in_flight=2)).job
    assert job is not None
    stems = [StemLink("vocal", "https://x/v.mp3"), StemLink("instrumental", "https://x/i.mp3")]
    done = await store.finish_job(job.id, succeeded=True, stems=stems, links_expire_at=123.0)
    assert done is not None and done.state is JobState.SUCCEEDED and done.stems == tuple(stems)
    assert await store.finish_job(job.id, succeeded=True, stems=stems) is None
    assert await store.finish_job(job.id, succeeded=False, failure=Failure.TIMED_OUT) is None
    kinds = [e.kind for e in await store.ledger(GUILD, MEMBER)]
    assert kinds == [LedgerKind.ALLOWANCE, LedgerKind.RESERVE, LedgerKind.CHARGE]
    assert await store.balance(GUILD, MEMBER, starting=100) == 90
    assert await store.ledger_mismatches() == []


async def test_failure_refunds_exactly_once(store: Store) -> None:
    job = (await store.reserve_job(new_job(mode=Mode.SPLIT_STEM), starting=100, max_in_flight=2)).job
    assert job is not None
    results = await asyncio.gather(
        *(store.finish_job(job.id, succeeded=False, failure=Failure.SEPARATION_FAILED) for _ in range(5))
    )
    assert sum(r is not None for r in results) == 1
    assert await store.balance(GUILD, MEMBER, starting=100) == 100
    refunds = [e for e in await store.ledger(GUILD, MEMBER) if e.kind is LedgerKind.REFUND]
    assert [(e.amount, e.balance_after, e.job_id) for e in refunds] == [(50, 100, job.id)]
    assert await store.ledger_mismatches() == []


async def test_transition_is_compare_and_set(store: Store) -> None:
    job = (await store.reserve_job(new_job(), starting=100, max_in_flight=2)).job
    assert job is not None
    assert await store.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)
    assert not await store.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)
    assert await store.transition(job.id, [JobState.SUBMITTING], JobState.SUBMITTED, api_task_id="abc")
    stored = await store.get_job(job.id)
    assert stored is not None and stored.state is JobState.SUBMITTED and stored.api_task_id == "abc"


async def traced(store: Store) -> list[str]:
    """Every statement the store's connection runs from now on (SQLite's trace, values filled in).
    A statement that fires triggers is traced once more per trigger: see `statements_run`."""
    statements: list[str] = []
    await store._conn.set_trace_callback(statements.append)
    return statements


def statements_run(trace: list[str]) -> list[str]:
    return [s for i, s in enumerate(trace) if i == 0 or trace[i - 1] != s]


async def test_a_durable_transition_commits_with_synchronous_full(store: Store) -> None:
    job = (await store.reserve_job(new_job(), starting=100, max_in_flight=2)).job
    assert job is not None
    statements = await traced(store)

    assert await store.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING, durable=True)

    statements = statements_run(statements)
    assert statements[0] == "PRAGMA synchronous = FULL"
    assert statements[1].startswith("UPDATE jobs SET state = 'submitting'")
    assert statements[2:] == ["PRAGMA synchronous = NORMAL"]
    [(level,)] = await store._conn.execute_fetchall("PRAGMA synchronous")
    assert level == 1  # NORMAL again for every other write


async def test_an_ordinary_transition_leaves_synchronous_alone(store: Store) -> None:
    job = (await store.reserve_job(new_job(), starting=100, max_in_flight=2)).job
    assert job is not None
    statements = await traced(store)

    assert await store.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)

    assert [s for s in statements if "synchronous" in s] == []


async def test_jobs_needing_work_lists_unfinished_and_undelivered(store: Store) -> None:
    a = (await store.reserve_job(new_job(), starting=100, max_in_flight=5)).job
    b = (await store.reserve_job(new_job(), starting=100, max_in_flight=5)).job
    c = (await store.reserve_job(new_job(), starting=100, max_in_flight=5)).job
    assert a and b and c
    await store.finish_job(b.id, succeeded=False, failure=Failure.TIMED_OUT)
    await store.finish_job(c.id, succeeded=False, failure=Failure.TIMED_OUT)
    from bot.models import Delivery, DeliveryVia

    await store.record_delivery(c.id, Delivery.DELIVERED, DeliveryVia.CHANNEL)
    assert [j.id for j in await store.jobs_needing_work()] == [a.id, b.id]
    delivered = await store.get_job(c.id)
    assert delivered is not None and delivered.interaction_token is None


def counted_by_scanning(path: Path) -> dict[JobState, int]:
    with sqlite3.connect(path) as conn:
        return {JobState(s): n for s, n in conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")}


async def test_job_counts_follow_every_kind_of_change(store: Store, tmp_path: Path) -> None:
    leader = (await store.reserve_job(new_job(audio_id="shared"), starting=100, max_in_flight=9)).job
    follower = (
        await store.reserve_job(new_job(member=MEMBER + 1, audio_id="shared"), starting=100, max_in_flight=9)
    ).job
    failed = (await store.reserve_job(new_job(), starting=100, max_in_flight=9)).job
    assert leader and follower and failed and follower.state is JobState.FOLLOWING
    await store.transition(leader.id, [JobState.RESERVED], JobState.SUBMITTING, durable=True)
    await store.transition(leader.id, [JobState.SUBMITTING], JobState.SUBMITTED, api_task_id="x")
    assert await store.count_jobs_by_state() == {
        JobState.RESERVED: 1,
        JobState.SUBMITTED: 1,
        JobState.FOLLOWING: 1,
    }
    done = await store.finish_job(leader.id, succeeded=True, stems=[StemLink("vocals", "https://x/v")],
                                  links_expire_at=time.time() + 14 * 86400)  # fmt: skip
    assert done is not None
    await store.finish_followers(done)
    await store.finish_job(failed.id, succeeded=False, failure=Failure.TIMED_OUT)
    reused = (
        await store.reserve_job(new_job(member=MEMBER + 2, audio_id="shared"), starting=100, max_in_flight=9)
    ).job
    assert reused is not None and reused.state is JobState.SUCCEEDED  # inserted finished

    counts = await store.count_jobs_by_state()

    assert counts == {JobState.SUCCEEDED: 3, JobState.FAILED: 1}
    assert counts == counted_by_scanning(tmp_path / "data" / "stembot.db")  # the store fixture's file


async def test_counting_jobs_reads_no_job_rows(store: Store) -> None:
    for _ in range(5):
        await store.reserve_job(new_job(), starting=100, max_in_flight=9)
    statements = await traced(store)

    assert await store.count_jobs_by_state() == {JobState.RESERVED: 5}

    assert statements and not [s for s in statements if re.search(r"\bFROM jobs\b", s, re.IGNORECASE)], (
        statements
    )


async def test_job_counts_start_from_the_jobs_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = await Store.open(path)
    for _ in range(3):
        await store.reserve_job(new_job(), starting=100, max_in_flight=9)
    await store.close()
    with sqlite3.connect(path) as conn:  # the database as it was before migration 005
        conn.executescript(
            "DROP TABLE job_state_counts; DROP TRIGGER jobs_counted_on_insert; "
            "DROP TRIGGER jobs_counted_on_state_change; DROP TRIGGER jobs_counted_on_delete; "
            "DELETE FROM schema_version WHERE version = 5; UPDATE jobs SET state = 'failed' WHERE id = 1;"
        )

    store = await Store.open(path)
    try:
        assert await store.count_jobs_by_state() == {JobState.RESERVED: 2, JobState.FAILED: 1}
    finally:
        await store.close()


async def test_job_repr_hides_interaction_token(store: Store) -> None:
    secret = "interaction-token-that-must-not-leak"
    new = NewJob(GUILD, 1, MEMBER, Mode.SEPARATE_VOCAL, "t", "a", 10, "cb", 42, secret, 1.0)
    job = (await store.reserve_job(new, starting=100, max_in_flight=2)).job
    assert job is not None and job.interaction_token == secret
    assert secret not in repr(job) and secret not in repr(new)


async def test_a_failed_transaction_never_leaves_the_connection_inside_it(store: Store) -> None:
    reservation = await store.reserve_job(new_job(), starting=100, max_in_flight=5)
    assert reservation.job is not None
    with pytest.raises(sqlite3.IntegrityError):
        # A second reserve row for the same job breaks a unique index half-way through.
        async with store._transaction() as conn:
            await conn.execute("UPDATE accounts SET allowance_left = allowance_left - 1")
            await conn.execute(
                "INSERT INTO ledger (guild_id, user_id, kind, amount, allowance_change, bonus_change, "
                "balance_after, job_id, created_at) VALUES (?, ?, 'reserve', 0, 0, 0, 0, ?, 0)",
                (GUILD, MEMBER, reservation.job.id),
            )
    assert not store._conn.in_transaction
    assert await store.balance(GUILD, MEMBER, starting=100) == 90  # the half-done change is gone
    assert await store.ledger_mismatches() == []
