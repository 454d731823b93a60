"""The SQLite store: the only module that speaks SQL.

One aiosqlite connection serves the whole bot. Because statements from different coroutines would
otherwise interleave inside each other's transactions on that connection, every access goes
through one asyncio lock; SQLite allows a single writer anyway. One bot process serves a database
(as the job runner requires), so each server's economy settings are cached here and dropped
whenever this store changes them.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import aiosqlite

from bot import economy
from bot.economy import RefillSchedule
from bot.models import (
    SERVER_WIDE,
    UNFINISHED_STATES,
    Adjustment,
    AllowanceRule,
    AllowanceUpdate,
    Balance,
    CreditSummary,
    Delivery,
    DeliveryVia,
    EconomySettings,
    Failure,
    HistoryPage,
    Job,
    JobState,
    LedgerEntry,
    LedgerKind,
    NewJob,
    Period,
    ReuseCharge,
    Share,
    StemLink,
)
from bot.product import Mode

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Refusal(enum.StrEnum):
    INSUFFICIENT_CREDITS = "insufficient_credits"
    TOO_MANY_IN_FLIGHT = "too_many_in_flight"
    BLOCKED = "blocked"
    COOLDOWN = "cooldown"


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of `Store.reserve_job`: a job, or the reason there is none, with the figures."""

    job: Job | None
    balance: int
    in_flight: int
    refusal: Refusal | None = None
    jobs_per_member: int = 0  # the limit in force in this server
    retry_at: float | None = None  # COOLDOWN: when the member may split again
    blocked_reason: str | None = None  # BLOCKED: what the moderator said, if anything


@dataclass(frozen=True, slots=True)
class _Account:
    guild_id: int
    user_id: int
    balance: Balance
    period_allowance: int  # this period's full allowance
    period_start: float  # the last refill (or when the account opened)
    blocked_reason: str | None
    blocked: bool = False


_TICK = 1e-3  # the smallest step between two moments the store records, in seconds

_UNFINISHED = ", ".join("?" for _ in UNFINISHED_STATES)
# The same states written out: SQLite uses a partial index (`jobs_unfinished`) only for a query
# whose condition names its values, never through bound parameters.
_UNFINISHED_LITERAL = ", ".join(f"'{state.value}'" for state in UNFINISHED_STATES)
NEEDING_WORK_SQL = (
    f"SELECT * FROM jobs WHERE state IN ({_UNFINISHED_LITERAL}) OR delivery = '{Delivery.PENDING.value}' "
    "ORDER BY id"
)
"""What the runner carries on with at start-up; through the two partial indexes, not the table."""
_LEADER_STATES = (JobState.RESERVED, JobState.SUBMITTING, JobState.SUBMITTED)
_LEADERS = ", ".join("?" for _ in _LEADER_STATES)

REUSE_MIN_LINK_LIFE = 24 * 3600.0
"""A stored result is reused only while its links have at least this long left."""
_SETTINGS_COLUMNS = tuple(f.name for f in fields(EconomySettings))
_ADJUSTABLE_SETTINGS = frozenset(
    {
        "refill_minute",
        "timezone",
        "jobs_per_member",
        "cooldown_seconds",
        "moderator_role_id",
        "audit_channel_id",
        "reuse_charge",
    }
)


class MigrationError(Exception):
    """The schema cannot be brought up to date: the migration files shipped with this StemBot are
    inconsistent, or the database is newer than they are. Start-up stops with this message."""


def load_migrations(folder: Traversable | None = None) -> list[tuple[int, str]]:
    """The migration scripts as (version, script), numbered 1, 2, 3… with none missing or twice.

    Files are named `NNN_what.sql`; any other `.sql` name, a duplicate or a gap is refused, since
    applying the rest would leave a schema no code was written for.
    """
    folder = folder or resources.files("bot") / "migrations"
    found: dict[int, list[str]] = {}
    scripts: dict[int, str] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number = entry.name.split("_", 1)[0]
        if not number.isdigit() or "_" not in entry.name:
            raise MigrationError(f"migration file {entry.name} is not named NNN_description.sql")
        found.setdefault(int(number), []).append(entry.name)
        scripts[int(number)] = entry.read_text(encoding="utf-8")
    twice = {version: sorted(names) for version, names in found.items() if len(names) > 1}
    if twice:
        version, names = min(twice.items())
        raise MigrationError(f"migration version {version} is used twice: {', '.join(names)}")
    missing = sorted(set(range(1, max(found, default=0) + 1)) - set(found))
    if missing:
        present = ", ".join(f"{version:03d}" for version in sorted(found))
        raise MigrationError(f"migration version {missing[0]:03d} is missing (found {present})")
    return sorted(scripts.items())


class Store:
    def __init__(self, conn: aiosqlite.Connection, clock: Clock = time.time) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._clock = clock
        self._last_now = 0.0
        # Each server's settings and allowance rules, read on every credit operation but changed
        # only through this store: one bot process serves a database (the runner assumes it too).
        self._economy_cache: dict[int, tuple[EconomySettings, tuple[AllowanceRule, ...]]] = {}

    @classmethod
    async def open(cls, path: Path, clock: Clock = time.time) -> Store:
        """Open (creating folder and file if needed) and migrate the database at `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA busy_timeout = 5000")
            store = cls(conn, clock)
            await store._migrate()
        except BaseException:
            await conn.close()
            raise
        return store

    def _now(self) -> float:
        """The clock, but strictly increasing: two changes never share a moment, so "before" and
        "after" (an account opened, an allowance applied) are never ambiguous, even if the system
        clock steps back."""
        now = max(self._clock(), self._last_now + _TICK)
        self._last_now = now
        return now

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def ping(self) -> bool:
        async with self._lock:
            cursor = await self._conn.execute("SELECT 1")
            return (await cursor.fetchone()) is not None

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                # Whatever failed (the body, a busy COMMIT, a cancellation mid-BEGIN), never hand
                # the shared connection on with a transaction open: later writes would join it.
                # Shielded, so a cancellation cannot stop the rollback half-way either.
                await asyncio.shield(self._rollback())
                raise

    async def _rollback(self) -> None:
        if self._conn.in_transaction:
            await self._conn.execute("ROLLBACK")

    async def _write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = False) -> int:
        """One statement on its own (atomic by itself: no BEGIN/COMMIT round trips); the row count.

        `durable`: the commit reaches the disk before this returns, even if the machine loses
        power next (`synchronous = FULL`, which also syncs every commit before it). Otherwise the
        store runs at `NORMAL`, where WAL keeps the database consistent but an OS crash or power
        loss may undo the last commits: fine for most writes, never for the record of a paid call.
        The setting is per connection and cannot change inside a transaction, so it is switched
        here, under the lock, around this one statement.
        """
        async with self._lock:
            if not durable:
                cursor = await self._conn.execute(sql, params)
                return cursor.rowcount
            await self._conn.execute("PRAGMA synchronous = FULL")
            try:
                cursor = await self._conn.execute(sql, params)
                return cursor.rowcount
            finally:
                await asyncio.shield(self._conn.execute("PRAGMA synchronous = NORMAL"))

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            cursor = await self._conn.execute(sql, params)
            return list(await cursor.fetchall())

    async def _migrate(self) -> None:
        migrations = load_migrations()
        async with self._transaction() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cursor = await conn.execute("SELECT MAX(version) FROM schema_version")
            row = await cursor.fetchone()
            current = row[0] if row and row[0] is not None else 0
            latest = migrations[-1][0] if migrations else 0
            if current > latest:
                raise MigrationError(
                    f"the database is at schema version {current}, newer than this StemBot's "
                    f"({latest}): run the StemBot that last used it, or a newer one"
                )
            for version, script in migrations:
                if version <= current:
                    continue
                log.info("Applying database migration %03d", version)
                for statement in _split_sql(script):
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    # -- meta -------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        rows = await self._fetchall("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- credits ----------------------------------------------------------------------------
    #
    # Every method that touches an account first brings it up to date (opens it, or applies the
    # refill it is due) in the same transaction, using the rules in `bot.economy`. `starting` is
    # the server's allowance until a moderator sets one (DEFAULT_CREDITS); `role_ids` are the
    # member's roles, for role allowances.

    async def _economy(
        self, conn: aiosqlite.Connection, guild_id: int
    ) -> tuple[EconomySettings, list[AllowanceRule]]:
        cached = self._economy_cache.get(guild_id)
        if cached is not None:
            return cached[0], list(cached[1])
        cursor = await conn.execute("SELECT * FROM economy_settings WHERE guild_id = ?", (guild_id,))
        row = await cursor.fetchone()
        settings = _economy_settings(row) if row else EconomySettings(guild_id)
        cursor = await conn.execute(
            "SELECT role_id, amount, effective_from, refills FROM allowance_rules "
            "WHERE guild_id = ? ORDER BY effective_from, id",
            (guild_id,),
        )
        rules = [
            AllowanceRule(r["role_id"], r["amount"], r["effective_from"], bool(r["refills"]))
            for r in await cursor.fetchall()
        ]
        self._economy_cache[guild_id] = (settings, tuple(rules))
        return settings, rules

    @asynccontextmanager
    async def _changing_economy(self, guild_id: int) -> AsyncIterator[aiosqlite.Connection]:
        """A transaction that changes a server's settings or rules: the cached copy is dropped
        before and after, so nobody reads it stale, even if the change fails half-way."""
        self._economy_cache.pop(guild_id, None)
        try:
            async with self._transaction() as conn:
                self._economy_cache.pop(guild_id, None)
                yield conn
        finally:
            self._economy_cache.pop(guild_id, None)

    async def _current_account(
        self,
        conn: aiosqlite.Connection,
        guild_id: int,
        user_id: int,
        *,
        starting: int,
        role_ids: Sequence[int],
        now: float,
    ) -> tuple[_Account, EconomySettings, list[AllowanceRule]]:
        """The member's account as of `now`: opened with their allowance if new, refilled if due."""
        settings, rules = await self._economy(conn, guild_id)
        account = await self._read_account(conn, guild_id, user_id)
        if account is None:
            allowance = economy.allowance_at(rules, role_ids, starting, now)
            await conn.execute(
                "INSERT INTO accounts (guild_id, user_id, allowance_left, bonus, period_allowance, "
                "period_start, created_at) VALUES (?, ?, ?, 0, ?, ?, ?)",
                (guild_id, user_id, allowance, allowance, now, now),
            )
            fresh = _Account(guild_id, user_id, Balance(0, 0), allowance, now, None)
            await self._move(
                conn,
                fresh,
                LedgerKind.ALLOWANCE,
                allowance,
                0,
                now=now,
                reason="starting credits",
                already_applied=True,
            )
            return replace(fresh, balance=Balance(allowance, 0)), settings, rules
        due = economy.refill_due(settings, rules, role_ids, since=account.period_start, now=now)
        if due is None:
            return account, settings, rules
        allowance = economy.allowance_at(rules, role_ids, starting, due)
        change = allowance - account.balance.allowance_left
        after = await self._move(
            conn,
            account,
            LedgerKind.REFILL,
            change,
            0,
            now=due,
            period_allowance=allowance,
            period_start=due,
            record=change != 0,
        )
        assert after is not None
        return replace(account, balance=after, period_allowance=allowance, period_start=due), settings, rules

    async def _read_account(self, conn: aiosqlite.Connection, guild_id: int, user_id: int) -> _Account | None:
        rows = await conn.execute_fetchall(
            "SELECT * FROM accounts WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        row = next(iter(rows), None)
        if row is None:
            return None
        return _Account(
            guild_id,
            user_id,
            Balance(row["allowance_left"], row["bonus"]),
            row["period_allowance"],
            row["period_start"],
            row["blocked_reason"] if row["blocked_at"] is not None else None,
            blocked=row["blocked_at"] is not None,
        )

    async def _move(
        self,
        conn: aiosqlite.Connection,
        account: _Account,
        kind: LedgerKind,
        allowance_change: int,
        bonus_change: int,
        *,
        now: float,
        job_id: int | None = None,
        actor_id: int | None = None,
        reason: str | None = None,
        period_allowance: int | None = None,
        period_start: float | None = None,
        record: bool = True,
        already_applied: bool = False,
    ) -> Balance | None:
        """Change the member's balance and write its ledger row; the one way credits move.

        The update is conditional on neither part going below zero, so a spend can never overdraw
        even if `account` were stale; returns the balance after, or None when it would overdraw.
        `already_applied`: the caller changed the account itself (opening it, or the reserve's own
        conditional debit), so only the ledger row is written. `record=False` writes no row (a
        refill that changed nothing).
        """
        if not already_applied:
            assignments = ["allowance_left = allowance_left + ?", "bonus = bonus + ?"]
            values: list[Any] = [allowance_change, bonus_change]
            if period_allowance is not None:
                assignments.append("period_allowance = ?")
                values.append(period_allowance)
            if period_start is not None:
                assignments.append("period_start = ?")
                values.append(period_start)
            cursor = await conn.execute(
                f"UPDATE accounts SET {', '.join(assignments)} WHERE guild_id = ? AND user_id = ? "
                "AND allowance_left >= ? AND bonus >= ?",
                (*values, account.guild_id, account.user_id, -allowance_change, -bonus_change),
            )
            if cursor.rowcount != 1:
                return None
        after = Balance(
            account.balance.allowance_left + allowance_change, account.balance.bonus + bonus_change
        )
        if record:
            await conn.execute(
                "INSERT INTO ledger (guild_id, user_id, kind, amount, allowance_change, bonus_change, "
                "balance_after, job_id, actor_id, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account.guild_id,
                    account.user_id,
                    kind,
                    allowance_change + bonus_change,
                    allowance_change,
                    bonus_change,
                    after.total,
                    job_id,
                    actor_id,
                    reason,
                    now,
                ),
            )
        return after

    async def _in_flight(self, conn: aiosqlite.Connection, guild_id: int, user_id: int) -> int:
        rows = await conn.execute_fetchall(
            f"SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND state IN ({_UNFINISHED})",
            (guild_id, user_id, *UNFINISHED_STATES),
        )
        return int(next(iter(rows))[0])

    async def _cooldown_until(
        self, conn: aiosqlite.Connection, settings: EconomySettings, user_id: int, now: float
    ) -> float | None:
        """When the member may start their next split, if a cooldown is running now."""
        if settings.cooldown_seconds <= 0:
            return None
        cursor = await conn.execute(
            "SELECT MAX(created_at) FROM jobs WHERE guild_id = ? AND user_id = ?",
            (settings.guild_id, user_id),
        )
        last = (await cursor.fetchone())[0]
        if last is None or now >= last + settings.cooldown_seconds:
            return None
        return float(last) + settings.cooldown_seconds

    async def balance(self, guild_id: int, user_id: int, starting: int, role_ids: Sequence[int] = ()) -> int:
        async with self._transaction() as conn:
            account, _, _ = await self._current_account(
                conn, guild_id, user_id, starting=starting, role_ids=role_ids, now=self._now()
            )
            return account.balance.total

    async def credit_summary(
        self, guild_id: int, user_id: int, *, starting: int, max_in_flight: int, role_ids: Sequence[int]
    ) -> CreditSummary:
        """Everything about the member's credits, as of now. `max_in_flight` is the bot's default
        limit of splits at once, used unless the server set its own."""
        async with self._transaction() as conn:
            now = self._now()
            account, settings, rules = await self._current_account(
                conn, guild_id, user_id, starting=starting, role_ids=role_ids, now=now
            )
            cursor = await conn.execute(
                "SELECT COALESCE(SUM(-l.amount), 0) FROM ledger l JOIN jobs j ON j.id = l.job_id "
                "WHERE l.guild_id = ? AND l.user_id = ? AND l.kind IN (?, ?) AND j.created_at >= ?",
                (guild_id, user_id, LedgerKind.RESERVE, LedgerKind.REFUND, account.period_start),
            )
            spent = int((await cursor.fetchone())[0])
            in_flight = await self._in_flight(conn, guild_id, user_id)
            cooldown_until = await self._cooldown_until(conn, settings, user_id, now)
        return CreditSummary(
            allowance_left=account.balance.allowance_left,
            bonus=account.balance.bonus,
            allowance=account.period_allowance,
            next_allowance=economy.allowance_at(rules, role_ids, starting),
            period=settings.period,
            next_refill_at=economy.RefillSchedule.of(settings).next_refill(max(now, settings.schedule_from)),
            period_started_at=account.period_start,
            spent_this_period=spent,
            jobs_in_flight=in_flight,
            jobs_per_member=settings.jobs_per_member or max_in_flight,
            blocked=account.blocked,
            blocked_reason=account.blocked_reason,
            next_split_at=cooldown_until,
        )

    async def reserve_job(
        self, new: NewJob, *, starting: int, max_in_flight: int, role_ids: Sequence[int] = ()
    ) -> Reservation:
        """Atomically: bring the account up to date (open, refill), check the member is not
        blocked, the in-flight limit and the cooldown, then record the job and take its price.

        If this deployment already has the same track and mode split with links fresh for at
        least `REUSE_MIN_LINK_LIFE`, the job reuses that result; if such a job is in flight, the
        new one follows it. Either way the API is not called again, and the price is the server's
        `reuse_charge` (free, or the full cost). The cost is taken allowance first, then bonus,
        with a conditional update; the reserve ledger row says how much came from each part so a
        refund can put it back."""
        async with self._transaction() as conn:
            now = self._now()
            account, settings, _ = await self._current_account(
                conn, new.guild_id, new.user_id, starting=starting, role_ids=role_ids, now=now
            )
            balance = account.balance.total
            limit = settings.jobs_per_member or max_in_flight
            in_flight, shared_id = await self._intake_facts(conn, new, now)

            def refused(refusal: Refusal, **extra: Any) -> Reservation:
                return Reservation(None, balance, in_flight, refusal, jobs_per_member=limit, **extra)

            if account.blocked:
                return refused(Refusal.BLOCKED, blocked_reason=account.blocked_reason)
            if in_flight >= limit:
                return refused(Refusal.TOO_MANY_IN_FLIGHT)
            cooldown_until = await self._cooldown_until(conn, settings, new.user_id, now)
            if cooldown_until is not None:
                return refused(Refusal.COOLDOWN, retry_at=cooldown_until)

            source = await self._get_job(conn, shared_id) if shared_id is not None else None
            share = None if source is None else Share.REUSED if source.state.finished else Share.COALESCED
            cost = new.cost if share is None or settings.reuse_charge is ReuseCharge.FULL else 0
            from_allowance, from_bonus = economy.spend(cost, account.balance)
            if cost:
                cursor = await conn.execute(
                    "UPDATE accounts SET allowance_left = allowance_left - ?, bonus = bonus - ? "
                    "WHERE guild_id = ? AND user_id = ? AND allowance_left >= ? AND bonus >= ?",
                    (from_allowance, from_bonus, new.guild_id, new.user_id, from_allowance, from_bonus),
                )
                if cursor.rowcount != 1:
                    return refused(Refusal.INSUFFICIENT_CREDITS)
            state, stems, links_expire_at, finished_at, delivery = JobState.RESERVED, None, None, None, "none"
            if share is Share.REUSED:
                assert source is not None
                state, links_expire_at, finished_at = JobState.SUCCEEDED, source.links_expire_at, now
                stems, delivery = json.dumps([[x.key, x.url] for x in source.stems]), Delivery.PENDING
            elif share is Share.COALESCED:
                state = JobState.FOLLOWING
            rows = await conn.execute_fetchall(
                "INSERT INTO jobs (guild_id, channel_id, user_id, mode, source_task_id, audio_id, "
                "cost, state, callback_token, application_id, interaction_token, "
                "interaction_expires_at, created_at, share, source_job_id, stems, links_expire_at, "
                "finished_at, delivery) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING *",
                (
                    new.guild_id,
                    new.channel_id,
                    new.user_id,
                    new.mode,
                    new.source_task_id,
                    new.audio_id,
                    cost,
                    state,
                    new.callback_token,
                    new.application_id,
                    new.interaction_token,
                    new.interaction_expires_at,
                    now,
                    share,
                    source.id if source else None,
                    stems,
                    links_expire_at,
                    finished_at,
                    delivery,
                ),
            )
            job = _job(next(iter(rows)))
            after = account.balance
            if cost:
                moved = await self._move(
                    conn,
                    account,
                    LedgerKind.RESERVE,
                    -from_allowance,
                    -from_bonus,
                    now=now,
                    job_id=job.id,
                    already_applied=True,
                )
                assert moved is not None
                after = moved
                if share is Share.REUSED:  # delivered from stored links: settled at once
                    await self._move(
                        conn,
                        replace(account, balance=after),
                        LedgerKind.CHARGE,
                        0,
                        0,
                        now=now,
                        job_id=job.id,
                        already_applied=True,
                    )
        return Reservation(job, after.total, in_flight + 1, jobs_per_member=limit)

    async def _intake_facts(
        self, conn: aiosqlite.Connection, new: NewJob, now: float
    ) -> tuple[int, int | None]:
        """The member's jobs in flight, and the job this request can share, if any: an earlier
        success for the same track and mode with fresh links, else the oldest such job in flight.
        One query, as it is on every /split's path."""
        rows = await conn.execute_fetchall(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? "
            f"AND state IN ({_UNFINISHED})), "
            "(SELECT id FROM jobs WHERE source_task_id = ? AND audio_id = ? AND mode = ? "
            f"AND ((state = ? AND links_expire_at > ?) OR state IN ({_LEADERS})) "
            "ORDER BY state = ? DESC, links_expire_at DESC, id LIMIT 1)",
            (
                new.guild_id,
                new.user_id,
                *UNFINISHED_STATES,
                new.source_task_id,
                new.audio_id,
                new.mode,
                JobState.SUCCEEDED,
                now + REUSE_MIN_LINK_LIFE,
                *_LEADER_STATES,
                JobState.SUCCEEDED,
            ),
        )
        in_flight, shared_id = next(iter(rows))
        return int(in_flight), shared_id

    async def finish_followers(self, leader: Job) -> list[Job]:
        """Give a finished job's outcome to every job following it, settling each like its own:
        charged (if it cost anything) on success, refunded on failure. Returns the finished ones."""
        assert leader.state.finished
        # Most jobs have no followers: find out with one read before opening a transaction. (None
        # can join once the leader is finished: new requests then reuse it or start afresh.)
        waiting = await self._fetchall(
            "SELECT 1 FROM jobs WHERE source_job_id = ? AND state = ? LIMIT 1",
            (leader.id, JobState.FOLLOWING),
        )
        if not waiting:
            return []
        finished: list[Job] = []
        now = self._now()
        async with self._transaction() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id FROM jobs WHERE source_job_id = ? AND state = ?", (leader.id, JobState.FOLLOWING)
            )
            for row in rows:
                job = await self._settle(
                    conn,
                    row["id"],
                    succeeded=leader.state is JobState.SUCCEEDED,
                    stems=leader.stems,
                    links_expire_at=leader.links_expire_at,
                    failure=leader.failure,
                    failure_detail=leader.failure_detail,
                    now=now,
                )
                if job is not None:
                    finished.append(job)
        return finished

    async def job_by_callback_token(self, token: str) -> Job | None:
        rows = await self._fetchall("SELECT * FROM jobs WHERE callback_token = ?", (token,))
        return _job(rows[0]) if rows else None

    async def audit_channels(self) -> list[tuple[int, int]]:
        """(guild id, audit channel id) of every server that set an audit channel."""
        rows = await self._fetchall(
            "SELECT guild_id, audit_channel_id FROM economy_settings WHERE audit_channel_id IS NOT NULL"
        )
        return [(r["guild_id"], r["audit_channel_id"]) for r in rows]

    # -- moderators' corrections ------------------------------------------------------------

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        actor_id: int,
        reason: str | None,
        starting: int,
        role_ids: Sequence[int],
    ) -> Adjustment:
        """Add `amount` bonus credits, or take `-amount` away (bonus first, then allowance).
        Refused (nothing changes, `after` is None) if the balance would go below zero."""
        async with self._transaction() as conn:
            now = self._now()
            account, _, _ = await self._current_account(
                conn, guild_id, user_id, starting=starting, role_ids=role_ids, now=now
            )
            before = account.balance
            if amount >= 0:
                from_allowance, from_bonus = 0, amount
            elif -amount > before.total:
                return await self._adjustment(conn, account, None)
            else:
                taken_allowance, taken_bonus = economy.take_away(-amount, before)
                from_allowance, from_bonus = -taken_allowance, -taken_bonus
            after = await self._move(
                conn,
                account,
                LedgerKind.GRANT,
                from_allowance,
                from_bonus,
                now=now,
                actor_id=actor_id,
                reason=reason,
            )
            return await self._adjustment(conn, account, after)

    async def set_balance(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        actor_id: int,
        reason: str | None,
        starting: int,
        role_ids: Sequence[int],
    ) -> Adjustment:
        """Set the balance to exactly `amount`: allowance up to this period's allowance, the rest bonus."""
        async with self._transaction() as conn:
            now = self._now()
            account, _, _ = await self._current_account(
                conn, guild_id, user_id, starting=starting, role_ids=role_ids, now=now
            )
            target = economy.set_to(amount, account.period_allowance)
            after = await self._move(
                conn,
                account,
                LedgerKind.SET,
                target.allowance_left - account.balance.allowance_left,
                target.bonus - account.balance.bonus,
                now=now,
                actor_id=actor_id,
                reason=reason,
            )
            return await self._adjustment(conn, account, after)

    async def reset_balance(
        self,
        guild_id: int,
        user_id: int,
        *,
        actor_id: int,
        reason: str | None,
        starting: int,
        role_ids: Sequence[int],
    ) -> Adjustment:
        """Back to this period's full allowance, bonus cleared."""
        async with self._transaction() as conn:
            now = self._now()
            account, _, _ = await self._current_account(
                conn, guild_id, user_id, starting=starting, role_ids=role_ids, now=now
            )
            after = await self._move(
                conn,
                account,
                LedgerKind.RESET,
                account.period_allowance - account.balance.allowance_left,
                -account.balance.bonus,
                now=now,
                actor_id=actor_id,
                reason=reason,
            )
            return await self._adjustment(conn, account, after)

    async def _adjustment(
        self, conn: aiosqlite.Connection, account: _Account, after: Balance | None
    ) -> Adjustment:
        in_flight = await self._in_flight(conn, account.guild_id, account.user_id)
        return Adjustment(account.balance, after, in_flight)

    async def set_blocked(
        self,
        guild_id: int,
        user_id: int,
        blocked: bool,
        *,
        actor_id: int,
        reason: str | None,
        starting: int,
        role_ids: Sequence[int],
    ) -> bool:
        """Block or unblock the member from starting splits; a ledger row (amount 0) records who and
        why. Returns False, changing nothing, if they already were."""
        async with self._transaction() as conn:
            now = self._now()
            account, _, _ = await self._current_account(
                conn, guild_id, user_id, starting=starting, role_ids=role_ids, now=now
            )
            if account.blocked == blocked:
                return False
            await conn.execute(
                "UPDATE accounts SET blocked_at = ?, blocked_by = ?, blocked_reason = ? "
                "WHERE guild_id = ? AND user_id = ?",
                (
                    now if blocked else None,
                    actor_id if blocked else None,
                    reason if blocked else None,
                    guild_id,
                    user_id,
                ),
            )
            kind = LedgerKind.BLOCK if blocked else LedgerKind.UNBLOCK
            await self._move(
                conn, account, kind, 0, 0, now=now, actor_id=actor_id, reason=reason, already_applied=True
            )
            return True

    # -- economy settings --------------------------------------------------------------------

    async def economy(self, guild_id: int) -> tuple[EconomySettings, list[AllowanceRule]]:
        """The server's settings and its allowance decisions, oldest first."""
        async with self._lock:
            return await self._economy(self._conn, guild_id)

    async def update_economy_settings(
        self, guild_id: int, changes: Mapping[str, Any], *, actor_id: int
    ) -> tuple[EconomySettings, EconomySettings]:
        """Change some of the server's settings (names as in `EconomySettings`; None clears one).
        Returns the settings before and after. A new refill time or time zone applies from the next
        refill under it; a refill that was already due is still given (see `economy.carry_refill`)."""
        unknown = set(changes) - _ADJUSTABLE_SETTINGS
        if unknown:
            raise ValueError(f"not adjustable settings: {sorted(unknown)}")
        zone = changes.get("timezone", "UTC")
        if not isinstance(zone, str) or not economy.timezone_loads(zone):
            # A zone that cannot be loaded would be computed in UTC behind the moderator's back.
            raise ValueError(f"time zone {zone!r} cannot be loaded")
        async with self._changing_economy(guild_id) as conn:
            now = self._now()
            before, _ = await self._economy(conn, guild_id)
            after = replace(before, **changes)
            if RefillSchedule.of(after) != RefillSchedule.of(before):
                after = replace(after, schedule_from=now, carried_refill_at=economy.carry_refill(before, now))
            await self._save_economy_settings(conn, after, actor_id=actor_id, now=now)
            return before, after

    async def set_allowance(
        self,
        guild_id: int,
        amount: int,
        *,
        role_id: int,
        period: Period | None,
        apply_now: bool,
        actor_id: int,
        starting: int,
    ) -> AllowanceUpdate:
        """Record an allowance decision for the server (`role_id` SERVER_WIDE) or a role, and the
        server's period if given. It applies from the next refill, or, with `apply_now`, refills
        everyone it concerns now."""
        async with self._changing_economy(guild_id) as conn:
            now = self._now()
            before, rules = await self._economy(conn, guild_id)
            previous = economy.current_rules(rules).get(role_id, starting if role_id == SERVER_WIDE else 0)
            after = before
            if period is not None and period is not before.period:
                after = replace(
                    before,
                    period=period,
                    schedule_from=now,
                    carried_refill_at=economy.carry_refill(before, now),
                )
                await self._save_economy_settings(conn, after, actor_id=actor_id, now=now)
            await conn.execute(
                "INSERT INTO allowance_rules (guild_id, role_id, amount, effective_from, refills, "
                "actor_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (guild_id, role_id, amount, now, int(apply_now), actor_id, now),
            )
        return AllowanceUpdate(
            role_id=role_id,
            amount=amount,
            previous_amount=previous,
            period=after.period,
            previous_period=before.period,
            applied_now=apply_now,
            next_refill_at=RefillSchedule.of(after).next_refill(now),
        )

    async def _save_economy_settings(
        self, conn: aiosqlite.Connection, settings: EconomySettings, *, actor_id: int, now: float
    ) -> None:
        columns = [name for name in _SETTINGS_COLUMNS if name != "guild_id"]
        await conn.execute(
            f"INSERT INTO economy_settings (guild_id, {', '.join(columns)}, updated_by, updated_at) "
            f"VALUES ({', '.join('?' for _ in range(len(columns) + 3))}) ON CONFLICT (guild_id) DO UPDATE "
            f"SET {', '.join(f'{c} = excluded.{c}' for c in columns)}, "
            "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (settings.guild_id, *(getattr(settings, c) for c in columns), actor_id, now),
        )

    # -- the ledger -------------------------------------------------------------------------

    async def ledger(self, guild_id: int, user_id: int) -> list[LedgerEntry]:
        """The member's ledger, oldest first."""
        rows = await self._fetchall(
            "SELECT * FROM ledger WHERE guild_id = ? AND user_id = ? ORDER BY id", (guild_id, user_id)
        )
        return [_ledger_entry(row) for row in rows]

    async def history_page(
        self, guild_id: int, user_id: int, *, page: int, page_size: int, newest_id: int | None = None
    ) -> HistoryPage:
        """One page of the member's credit changes, newest first. Zero-amount `charge` rows (a held
        cost becoming spent) are left out: the `reserve` row already shows the credits leaving.
        Pass the first page's `newest_id` to later pages so rows added meanwhile don't shift them."""
        async with self._lock:
            if newest_id is None:
                cursor = await self._conn.execute(
                    "SELECT COALESCE(MAX(id), 0) FROM ledger WHERE guild_id = ? AND user_id = ?",
                    (guild_id, user_id),
                )
                newest_id = int((await cursor.fetchone())[0])
            where = "guild_id = ? AND user_id = ? AND id <= ? AND kind != ?"
            params = (guild_id, user_id, newest_id, LedgerKind.CHARGE)
            cursor = await self._conn.execute(f"SELECT COUNT(*) FROM ledger WHERE {where}", params)
            total = int((await cursor.fetchone())[0])
            pages = max(1, -(-total // page_size))
            page = min(max(page, 0), pages - 1)
            cursor = await self._conn.execute(
                f"SELECT * FROM ledger WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, page_size, page * page_size),
            )
            entries = tuple(_ledger_entry(row) for row in await cursor.fetchall())
        return HistoryPage(entries, page, pages, total, newest_id)

    async def ledger_mismatches(self) -> list[tuple[int, int, int, int]]:
        """Where the ledger and the balances disagree, as (guild, user, balance, ledger total):
        accounts whose allowance or bonus part differs from the sum of its ledger changes, and
        ledger rows whose `balance_after` is not the running total of the rows up to them."""
        rows = await self._fetchall(
            "SELECT a.guild_id, a.user_id, a.balance, COALESCE(SUM(l.amount), 0) AS total FROM accounts a "
            "LEFT JOIN ledger l ON l.guild_id = a.guild_id AND l.user_id = a.user_id "
            "GROUP BY a.guild_id, a.user_id "
            "HAVING a.allowance_left != COALESCE(SUM(l.allowance_change), 0) "
            "OR a.bonus != COALESCE(SUM(l.bonus_change), 0)"
        )
        found = [(r["guild_id"], r["user_id"], r["balance"], r["total"]) for r in rows]
        rows = await self._fetchall(
            "SELECT guild_id, user_id, balance_after, running FROM (SELECT guild_id, user_id, "
            "balance_after, SUM(amount) OVER (PARTITION BY guild_id, user_id ORDER BY id) AS running "
            "FROM ledger) WHERE balance_after != running"
        )
        found += [(r["guild_id"], r["user_id"], r["balance_after"], r["running"]) for r in rows]
        return found

    # -- jobs -------------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        async with self._lock:
            return await self._get_job(self._conn, job_id)

    async def _get_job(self, conn: aiosqlite.Connection, job_id: int) -> Job | None:
        cursor = await conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        row = await cursor.fetchone()
        return _job(row) if row else None

    async def jobs_needing_work(self) -> list[Job]:
        """Jobs the runner must carry on with: unfinished, or finished but not yet delivered."""
        rows = await self._fetchall(NEEDING_WORK_SQL)
        return [_job(row) for row in rows]

    async def count_jobs_by_state(self) -> dict[JobState, int]:
        """Every server's jobs in each state (states with none left out), for the bot's operator.
        Kept by triggers on `jobs` (migration 005), so this reads a few rows however many jobs there
        have ever been: `/metrics` asks on every scrape."""
        rows = await self._fetchall("SELECT state, total FROM job_state_counts WHERE total > 0")
        return {JobState(r["state"]): int(r["total"]) for r in rows}

    async def count_guild_jobs_by_state(self, guild_id: int) -> dict[JobState, int]:
        """One server's jobs by state (read from the `jobs_member` index, which covers it)."""
        rows = await self._fetchall(
            "SELECT state, COUNT(*) AS n FROM jobs WHERE guild_id = ? GROUP BY state", (guild_id,)
        )
        return {JobState(r["state"]): int(r["n"]) for r in rows}

    async def transition(
        self,
        job_id: int,
        from_states: Iterable[JobState],
        to_state: JobState,
        *,
        durable: bool = False,
        **fields: Any,
    ) -> bool:
        """Move a job between unfinished states if it is in one of `from_states`.

        Returns False (and changes nothing) when the job was elsewhere: compare-and-set, so a
        stale worker can never undo another's progress. `durable=True` for a transition that
        must survive a power loss once this returns (see `_write`): the record that a paid call
        may be on the wire, and of its answer.
        """
        assert not to_state.finished, "use finish_job() to finish a job: it settles the credits"
        assignments = ", ".join(f"{name} = ?" for name in ["state", *fields])
        sources = tuple(from_states)
        placeholders = ", ".join("?" for _ in sources)
        changed = await self._write(
            f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({placeholders})",
            (to_state, *fields.values(), job_id, *sources),
            durable=durable,
        )
        return changed == 1

    async def finish_job(
        self,
        job_id: int,
        *,
        succeeded: bool,
        stems: Sequence[StemLink] = (),
        links_expire_at: float | None = None,
        failure: Failure | None = None,
        failure_detail: str | None = None,
    ) -> Job | None:
        """Finish an unfinished job and settle its reservation, in one transaction.

        Success charges the reservation; failure refunds it. Returns the finished job, or None if
        the job was already finished (settling twice changes nothing).
        """
        async with self._transaction() as conn:
            return await self._settle(
                conn,
                job_id,
                succeeded=succeeded,
                stems=stems,
                links_expire_at=links_expire_at,
                failure=failure,
                failure_detail=failure_detail,
                now=self._now(),
            )

    async def _settle(
        self,
        conn: aiosqlite.Connection,
        job_id: int,
        *,
        succeeded: bool,
        stems: Sequence[StemLink],
        links_expire_at: float | None,
        failure: Failure | None,
        failure_detail: str | None,
        now: float,
    ) -> Job | None:
        state = JobState.SUCCEEDED if succeeded else JobState.FAILED
        rows = await conn.execute_fetchall(
            "UPDATE jobs SET state = ?, stems = ?, links_expire_at = ?, failure = ?, "
            "failure_detail = ?, finished_at = ?, delivery = ? "
            f"WHERE id = ? AND state IN ({_UNFINISHED}) RETURNING *",
            (
                state,
                json.dumps([[s.key, s.url] for s in stems]) if stems else None,
                links_expire_at,
                failure,
                failure_detail,
                now,
                Delivery.PENDING,
                job_id,
                *UNFINISHED_STATES,
            ),
        )
        if not rows:
            return None
        job = _job(next(iter(rows)))
        if job.cost == 0:
            return job  # a free shared result: no credits were held, none move
        account = await self._read_account(conn, job.guild_id, job.user_id)
        assert account is not None
        if succeeded:
            settled = await self._move(
                conn, account, LedgerKind.CHARGE, 0, 0, now=now, job_id=job.id, already_applied=True
            )
        else:
            settled = await self._refund(conn, account, job, now)
        assert settled is not None
        return job

    async def _refund(
        self, conn: aiosqlite.Connection, account: _Account, job: Job, now: float
    ) -> Balance | None:
        """Give a failed job's credits back, each part where it came from (see `economy.refund`).

        No roles are known here, so the refill itself waits for the member's next command; but if
        any refill may have happened since the job started, the allowance part comes back as bonus.
        """
        cursor = await conn.execute(
            "SELECT allowance_change, bonus_change, created_at FROM ledger WHERE job_id = ? AND kind = ?",
            (job.id, LedgerKind.RESERVE),
        )
        reserve = await cursor.fetchone()
        from_allowance, from_bonus = (
            (-reserve["allowance_change"], -reserve["bonus_change"]) if reserve else (job.cost, 0)
        )
        reserved_at = reserve["created_at"] if reserve else job.created_at
        settings, rules = await self._economy(conn, job.guild_id)
        refilled = (
            account.period_start > reserved_at
            or economy.refill_due(settings, rules, None, since=reserved_at, now=now) is not None
        )
        to_allowance, to_bonus = economy.refund(
            from_allowance, from_bonus, account.balance, account.period_allowance, refilled=refilled
        )
        return await self._move(
            conn, account, LedgerKind.REFUND, to_allowance, to_bonus, now=now, job_id=job.id
        )

    async def record_delivery(self, job_id: int, delivery: Delivery, via: DeliveryVia | None = None) -> None:
        """Record a delivery outcome; the interaction token is dropped once it is of no more use."""
        if delivery is Delivery.PENDING:
            await self._write(
                "UPDATE jobs SET delivery_attempts = delivery_attempts + 1 WHERE id = ?", (job_id,)
            )
        else:
            await self._write(
                "UPDATE jobs SET delivery = ?, delivered_via = ?, delivered_at = ?, "
                "delivery_attempts = delivery_attempts + 1, interaction_token = NULL WHERE id = ?",
                (delivery, via, self._now(), job_id),
            )

    async def recent_jobs(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        rows = await self._fetchall(
            "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [_job(row) for row in rows]


def _split_sql(script: str) -> list[str]:
    """The statements of a migration script, each whole. A `;` ends a statement only where SQLite
    says the statement is complete, so a trigger body or a string holding `;` stays in one piece."""
    statements: list[str] = []
    start = 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            statement = _drop_leading_comments(script[start : end + 1])
            if statement != ";":
                statements.append(statement)
            start = end + 1
    if _drop_leading_comments(script[start:]):
        rest = script[start:].strip()
        raise MigrationError(f"a migration ends with an incomplete statement: {rest[:80]!r}")
    return statements


def _drop_leading_comments(sql: str) -> str:
    lines = sql.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip()


def _job(row: aiosqlite.Row) -> Job:
    stems = tuple(StemLink(key, url) for key, url in json.loads(row["stems"])) if row["stems"] else ()
    return Job(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        mode=Mode(row["mode"]),
        source_task_id=row["source_task_id"],
        audio_id=row["audio_id"],
        cost=row["cost"],
        state=JobState(row["state"]),
        api_task_id=row["api_task_id"],
        callback_token=row["callback_token"],
        application_id=row["application_id"],
        interaction_token=row["interaction_token"],
        interaction_expires_at=row["interaction_expires_at"],
        stems=stems,
        links_expire_at=row["links_expire_at"],
        failure=Failure(row["failure"]) if row["failure"] else None,
        failure_detail=row["failure_detail"],
        delivery=Delivery(row["delivery"]),
        delivery_attempts=row["delivery_attempts"],
        delivered_via=DeliveryVia(row["delivered_via"]) if row["delivered_via"] else None,
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        finished_at=row["finished_at"],
        delivered_at=row["delivered_at"],
        share=Share(row["share"]) if row["share"] else None,
        source_job_id=row["source_job_id"],
    )


def _ledger_entry(row: aiosqlite.Row) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        kind=LedgerKind(row["kind"]),
        amount=row["amount"],
        balance_after=row["balance_after"],
        job_id=row["job_id"],
        actor_id=row["actor_id"],
        reason=row["reason"],
        created_at=row["created_at"],
        allowance_change=row["allowance_change"],
        bonus_change=row["bonus_change"],
    )


def _economy_settings(row: aiosqlite.Row) -> EconomySettings:
    values = {name: row[name] for name in _SETTINGS_COLUMNS}
    values["period"] = Period(values["period"])
    values["reuse_charge"] = ReuseCharge(values["reuse_charge"])
    return EconomySettings(**values)
