"""The store and ledger on both backends: real SQLite files and a real PostgreSQL (see `databases`
in conftest.py); the few tests of SQLite's own machinery (PRAGMAs, its trace) on SQLite alone."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import time
from pathlib import Path

import pytest

from bot.models import (
    CreditPolicy,
    Failure,
    JobState,
    KeepState,
    LedgerKind,
    NewJob,
    Refusal,
    StemKeepState,
    StemLink,
)
from bot.product import Mode
from bot.store import Store
from bot.store.migrations import load_migrations, split_sql
from bot.store.postgres import numbered_placeholders, rowcount
from tests.unit_helpers import keep_change

GUILD, MEMBER = 1000, 2000


_serial = itertools.count(1)


@pytest.fixture
async def make_store(databases):
    """Stores with the given policy (the credits a member starts with, splits at once), each on a
    database of its own unless `name` says which (the same name: a restart, or a second process)."""
    opened: list[Store] = []

    async def make(default_credits: int = 100, jobs_per_member: int = 5, name: str | None = None) -> Store:
        target = await databases(name or f"store-{len(opened)}")
        store = await Store.open(target, CreditPolicy(default_credits, jobs_per_member))
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(databases):
    """A store with the bot's default policy, on each backend."""
    opened = await Store.open(await databases("default"))
    yield opened
    await opened.close()


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


async def test_new_member_starts_with_default_credits_recorded_in_ledger(make_store) -> None:
    store = await make_store(default_credits=100, name="once")
    assert await store.accounts.balance(GUILD, MEMBER) == 100
    await store.close()
    later = await make_store(default_credits=999, name="once")
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


async def test_concurrent_reservations_through_two_connections_never_overspend(make_store) -> None:
    # Two processes' worth of connections on one database: the conditional update still holds.
    one = await make_store(default_credits=50, jobs_per_member=1000, name="shared")
    two = await make_store(default_credits=50, jobs_per_member=1000, name="shared")
    await one.accounts.balance(GUILD, MEMBER)
    results = await asyncio.gather(*(s.reservations.reserve(new_job()) for s in [one, two] * 25))
    assert sum(r.job is not None for r in results) == 5
    assert await one.accounts.balance(GUILD, MEMBER) == 0
    assert await one.accounts.ledger_mismatches() == []


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


async def test_a_durable_transition_commits_with_synchronous_full(sqlite_store: Store) -> None:
    store = sqlite_store
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


async def test_an_ordinary_transition_leaves_synchronous_alone(sqlite_store: Store) -> None:
    store = sqlite_store
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


async def counted_by_scanning(store: Store) -> dict[JobState, int]:
    rows = await store.db.fetchall("SELECT state, COUNT(*) FROM jobs GROUP BY state")
    return {JobState(state): n for state, n in rows}


async def test_job_counts_follow_every_kind_of_change(store: Store) -> None:
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
    assert counts == await counted_by_scanning(store)


async def test_counting_jobs_reads_no_job_rows(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "counts.db", CreditPolicy(100, 5))  # SQLite's trace
    for _ in range(5):
        await store.reservations.reserve(new_job())
    statements = await traced(store)

    assert await store.jobs.count_by_state() == {JobState.RESERVED: 5}

    assert statements and not [s for s in statements if re.search(r"\bFROM jobs\b", s, re.IGNORECASE)], (
        statements
    )
    await store.close()


async def test_job_counts_start_from_the_jobs_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    with sqlite3.connect(path) as conn:  # a database made before migration 005, with jobs in it
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, script in load_migrations()[:4]:
            for statement in split_sql(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.executemany(
            "INSERT INTO jobs (guild_id, channel_id, user_id, mode, source_task_id, audio_id, cost, state, "
            "callback_token, created_at) VALUES (1, 2, 3, 'separate_vocal', 't', ?, 10, ?, ?, 0)",
            [("a1", "failed", "cb1"), ("a2", "reserved", "cb2"), ("a3", "reserved", "cb3")],
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


async def test_a_failed_transaction_never_leaves_the_connection_inside_it(sqlite_store: Store) -> None:
    store = sqlite_store
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


# -- several processes on one database (on PostgreSQL, transactions run side by side) --------------

PROCESSES = 4


async def processes(make_store, **policy) -> list[Store]:
    """Stores on one database, each with its own connections: as many bot processes would be."""
    return [await make_store(name="shared", **policy) for _ in range(PROCESSES)]


async def test_concurrent_reservations_from_many_processes_keep_the_in_flight_limit(make_store) -> None:
    stores = await processes(make_store, default_credits=1000, jobs_per_member=3)

    # A new member: the account is opened by whichever reservation comes first, once.
    results = await asyncio.gather(*(s.reservations.reserve(new_job()) for s in stores * 10))

    assert sum(r.job is not None for r in results) == 3
    assert {r.refusal for r in results if r.job is None} == {Refusal.TOO_MANY_IN_FLIGHT}
    ledger = await stores[0].accounts.ledger(GUILD, MEMBER)
    assert [e.kind for e in ledger].count(LedgerKind.ALLOWANCE) == 1
    assert await stores[0].accounts.balance(GUILD, MEMBER) == 1000 - 3 * Mode.SEPARATE_VOCAL.cost
    assert await stores[0].accounts.ledger_mismatches() == []


async def test_concurrent_reservations_from_many_processes_never_overspend(make_store) -> None:
    stores = await processes(make_store, default_credits=50, jobs_per_member=1000)

    results = await asyncio.gather(*(s.reservations.reserve(new_job()) for s in stores * 15))

    assert sum(r.job is not None for r in results) == 5  # 50 credits, 10 each
    assert {r.refusal for r in results if r.job is None} == {Refusal.INSUFFICIENT_CREDITS}
    assert await stores[0].accounts.balance(GUILD, MEMBER) == 0
    assert await stores[0].accounts.ledger_mismatches() == []


async def test_concurrent_reservations_from_many_processes_keep_the_cooldown(make_store) -> None:
    stores = await processes(make_store, default_credits=1000, jobs_per_member=100)
    await stores[0].economy.update_settings(GUILD, {"cooldown_seconds": 600}, actor_id=1)
    await stores[0].accounts.balance(GUILD, MEMBER)  # an account already open: its row is what locks

    results = await asyncio.gather(*(s.reservations.reserve(new_job()) for s in stores * 5))

    assert sum(r.job is not None for r in results) == 1
    assert {r.refusal for r in results if r.job is None} == {Refusal.COOLDOWN}


async def test_concurrent_requests_for_one_track_from_many_processes_make_one_paid_job(make_store) -> None:
    stores = await processes(make_store, default_credits=100, jobs_per_member=5)

    members = range(MEMBER, MEMBER + 5 * PROCESSES)
    results = await asyncio.gather(
        *(
            stores[i % PROCESSES].reservations.reserve(new_job(member=m, audio_id="one"))
            for i, m in enumerate(members)
        )
    )

    made = [r.job for r in results if r.job is not None]
    assert len(made) == len(members)
    [leader] = [job for job in made if job.share is None]
    assert leader.state is JobState.RESERVED
    assert {(job.state, job.source_job_id) for job in made if job is not leader} == {
        (JobState.FOLLOWING, leader.id)
    }


async def test_concurrent_reservations_from_many_processes_never_pass_the_monthly_budget(make_store) -> None:
    budget = 5 * Mode.SEPARATE_VOCAL.api_price
    stores = [
        await make_store(name="budget", default_credits=100, jobs_per_member=5) for _ in range(PROCESSES)
    ]
    for store in stores:
        store.budgets.default_budget = budget

    members = range(MEMBER, MEMBER + 5 * PROCESSES)
    results = await asyncio.gather(
        *(stores[i % PROCESSES].reservations.reserve(new_job(member=m)) for i, m in enumerate(members))
    )

    assert sum(r.job is not None for r in results) == 5
    assert {r.refusal for r in results if r.job is None} == {Refusal.BUDGET_USED_UP}
    assert (await stores[0].budgets.server(GUILD)).spent == budget
    assert await stores[0].budgets.mismatches() == []


# -- keeping results in Discord -------------------------------------------------------------------


async def test_a_kept_result_records_each_stem_once_and_its_upload_limit_only_shrinks(store: Store) -> None:
    job = (await store.reservations.reserve(new_job())).job
    assert job is not None
    done = await store.reservations.settle(
        job.id, succeeded=True, stems=[StemLink("vocals", "https://x/v")], links_expire_at=time.time() + 86400
    )
    assert done is not None
    big_id = 1_300_000_000_000_000_000  # Discord ids do not fit 32 bits

    keep, started = await store.keeps.request(done, requested_by=MEMBER, upload_limit=25_000_000)
    again, started_again = await store.keeps.request(done, requested_by=MEMBER, upload_limit=25_000_000)
    stems = await store.keeps.start(job.id, [(0, "vocals.mp3"), (1, "instrumental.mp3")])
    assert await store.keeps.start(job.id, [(0, "other.mp3")]) == stems  # rows made once
    await keep_change(store, job.id, lambda k: k.packed_smaller(10_000_000))
    await keep_change(store, job.id, lambda k: k.packed_smaller(20_000_000))
    await store.keeps.posting(job.id, [0])
    await store.keeps.posted(job.id, [0], big_id)
    await store.keeps.skipped(job.id, 1, "too big", size=30_000_000)
    await store.keeps.noted(job.id, [1], big_id + 1)
    await keep_change(store, job.id, lambda k: k.kept(time.time()))
    await keep_change(store, job.id, lambda k: k.shown_kept())

    assert (started, started_again, keep.state, again.job_id) == (True, False, KeepState.PENDING, job.id)
    kept = await store.keeps.get(job.id)
    assert kept is not None and (kept.state, kept.upload_limit, kept.marked) == (
        KeepState.KEPT,
        10_000_000,
        True,
    )
    assert [(s.state, s.message_id) for s in await store.keeps.stems(job.id)] == [
        (StemKeepState.POSTED, big_id),
        (StemKeepState.SKIPPED, big_id + 1),
    ]
    assert await store.keeps.to_do(time.time()) == []


# -- the PostgreSQL backend's own machinery ---------------------------------------------------------


def test_placeholders_are_numbered_outside_strings_names_and_comments() -> None:
    sql = "SELECT '?', \"a?\", ? -- why?\n, 'it''s ?', /* ? */ ? FROM t WHERE x IN (?, ?)"

    assert numbered_placeholders(sql) == (
        "SELECT '?', \"a?\", $1 -- why?\n, 'it''s ?', /* ? */ $2 FROM t WHERE x IN ($3, $4)"
    )


@pytest.mark.parametrize(
    ("status", "rows"), [("UPDATE 3", 3), ("INSERT 0 1", 1), ("DELETE 0", 0), ("BEGIN", 0)]
)
def test_the_row_count_comes_from_the_command_tag(status: str, rows: int) -> None:
    assert rowcount(status) == rows


async def test_a_durable_write_on_postgresql_commits_with_synchronous_commit_on(postgres_server) -> None:
    url = await postgres_server.new_database()
    store = await Store.open(url)
    try:
        record = "INSERT INTO meta (key, value) VALUES (?, current_setting('synchronous_commit'))"
        await store.db.write(record, ("durable",), durable=True)
        await store.db.write(record, ("ordinary",))
        async with store.db.transaction() as tx:
            await tx.execute(record, ("in a transaction",))
        rows = await store.db.fetchall("SELECT key, value FROM meta WHERE key <> 'commands' ORDER BY key")
    finally:
        await store.close()
        await postgres_server.drop(url)

    assert {key: value for key, value in rows} == {
        "durable": "on",
        "ordinary": "off",
        "in a transaction": "off",
    }
