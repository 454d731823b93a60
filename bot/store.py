"""The SQLite store: the only module that speaks SQL.

One aiosqlite connection serves the whole bot. Because statements from different coroutines would
otherwise interleave inside each other's transactions on that connection, every access goes
through one asyncio lock; SQLite allows a single writer anyway.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot.models import (
    UNFINISHED_STATES,
    Delivery,
    DeliveryVia,
    Failure,
    Job,
    JobState,
    LedgerEntry,
    LedgerKind,
    NewJob,
    StemLink,
)
from bot.product import Mode

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Refusal(enum.StrEnum):
    INSUFFICIENT_CREDITS = "insufficient_credits"
    TOO_MANY_IN_FLIGHT = "too_many_in_flight"


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of `Store.reserve_job`: a job, or the reason there is none, with the figures."""

    job: Job | None
    balance: int
    in_flight: int
    refusal: Refusal | None = None


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bot") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Store:
    def __init__(self, conn: aiosqlite.Connection, clock: Clock = time.time) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._clock = clock

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
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            cursor = await self._conn.execute(sql, params)
            return list(await cursor.fetchall())

    async def _migrate(self) -> None:
        async with self._transaction() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cursor = await conn.execute("SELECT MAX(version) FROM schema_version")
            row = await cursor.fetchone()
            current = row[0] if row and row[0] is not None else 0
            for version, script in _migrations():
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

    async def _ensure_account(
        self, conn: aiosqlite.Connection, guild_id: int, user_id: int, starting: int
    ) -> int:
        """Return the member's balance, opening the account with `starting` credits if new."""
        cursor = await conn.execute(
            "SELECT balance FROM accounts WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        row = await cursor.fetchone()
        if row is not None:
            return int(row["balance"])
        now = self._clock()
        await conn.execute(
            "INSERT INTO accounts (guild_id, user_id, balance, created_at) VALUES (?, ?, ?, ?)",
            (guild_id, user_id, starting, now),
        )
        await conn.execute(
            "INSERT INTO ledger (guild_id, user_id, kind, amount, balance_after, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guild_id, user_id, LedgerKind.ALLOWANCE, starting, starting, "starting credits", now),
        )
        return starting

    async def balance(self, guild_id: int, user_id: int, starting: int) -> int:
        async with self._transaction() as conn:
            return await self._ensure_account(conn, guild_id, user_id, starting)

    async def jobs_in_flight(self, guild_id: int, user_id: int) -> int:
        rows = await self._fetchall(
            "SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND user_id = ? AND state IN (?, ?, ?)",
            (guild_id, user_id, *UNFINISHED_STATES),
        )
        return int(rows[0]["n"])

    async def reserve_job(self, new: NewJob, *, starting: int, max_in_flight: int) -> Reservation:
        """Atomically: open the account if needed, check the in-flight limit, take the cost with
        a conditional update, and record the job and its reserve ledger row."""
        async with self._transaction() as conn:
            balance = await self._ensure_account(conn, new.guild_id, new.user_id, starting)
            cursor = await conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND state IN (?, ?, ?)",
                (new.guild_id, new.user_id, *UNFINISHED_STATES),
            )
            in_flight = int((await cursor.fetchone())[0])
            if in_flight >= max_in_flight:
                return Reservation(None, balance, in_flight, Refusal.TOO_MANY_IN_FLIGHT)
            cursor = await conn.execute(
                "UPDATE accounts SET balance = balance - ? "
                "WHERE guild_id = ? AND user_id = ? AND balance >= ?",
                (new.cost, new.guild_id, new.user_id, new.cost),
            )
            if cursor.rowcount != 1:
                return Reservation(None, balance, in_flight, Refusal.INSUFFICIENT_CREDITS)
            now = self._clock()
            cursor = await conn.execute(
                "INSERT INTO jobs (guild_id, channel_id, user_id, mode, source_task_id, audio_id, "
                "cost, state, callback_token, application_id, interaction_token, "
                "interaction_expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.guild_id,
                    new.channel_id,
                    new.user_id,
                    new.mode,
                    new.source_task_id,
                    new.audio_id,
                    new.cost,
                    JobState.RESERVED,
                    new.callback_token,
                    new.application_id,
                    new.interaction_token,
                    new.interaction_expires_at,
                    now,
                ),
            )
            job_id = cursor.lastrowid
            assert job_id is not None
            await conn.execute(
                "INSERT INTO ledger (guild_id, user_id, kind, amount, balance_after, job_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (new.guild_id, new.user_id, LedgerKind.RESERVE, -new.cost, balance - new.cost, job_id, now),
            )
            job = await self._get_job(conn, job_id)
        assert job is not None
        return Reservation(job, balance - new.cost, in_flight + 1)

    async def ledger(self, guild_id: int, user_id: int) -> list[LedgerEntry]:
        """The member's ledger, oldest first."""
        rows = await self._fetchall(
            "SELECT * FROM ledger WHERE guild_id = ? AND user_id = ? ORDER BY id", (guild_id, user_id)
        )
        return [_ledger_entry(row) for row in rows]

    async def ledger_mismatches(self) -> list[tuple[int, int, int, int]]:
        """Accounts whose balance differs from the sum of their ledger: (guild, user, balance, sum)."""
        rows = await self._fetchall(
            "SELECT a.guild_id, a.user_id, a.balance, COALESCE(SUM(l.amount), 0) AS total "
            "FROM accounts a LEFT JOIN ledger l ON l.guild_id = a.guild_id AND l.user_id = a.user_id "
            "GROUP BY a.guild_id, a.user_id HAVING a.balance != total"
        )
        return [(r["guild_id"], r["user_id"], r["balance"], r["total"]) for r in rows]

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
        rows = await self._fetchall(
            "SELECT * FROM jobs WHERE state IN (?, ?, ?) OR delivery = ? ORDER BY id",
            (*UNFINISHED_STATES, Delivery.PENDING),
        )
        return [_job(row) for row in rows]

    async def count_jobs_by_state(self) -> dict[JobState, int]:
        rows = await self._fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        return {JobState(r["state"]): int(r["n"]) for r in rows}

    async def transition(
        self, job_id: int, from_states: Iterable[JobState], to_state: JobState, **fields: Any
    ) -> bool:
        """Move a job between unfinished states if it is in one of `from_states`.

        Returns False (and changes nothing) when the job was elsewhere: compare-and-set, so a
        stale worker can never undo another's progress.
        """
        assert not to_state.finished, "use finish_job() to finish a job: it settles the credits"
        assignments = ", ".join(f"{name} = ?" for name in ["state", *fields])
        sources = tuple(from_states)
        placeholders = ", ".join("?" for _ in sources)
        async with self._transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({placeholders})",
                (to_state, *fields.values(), job_id, *sources),
            )
            return cursor.rowcount == 1

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
        now = self._clock()
        state = JobState.SUCCEEDED if succeeded else JobState.FAILED
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET state = ?, stems = ?, links_expire_at = ?, failure = ?, "
                "failure_detail = ?, finished_at = ?, delivery = ? "
                "WHERE id = ? AND state IN (?, ?, ?)",
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
            if cursor.rowcount != 1:
                return None
            job = await self._get_job(conn, job_id)
            assert job is not None
            cursor = await conn.execute(
                "SELECT balance FROM accounts WHERE guild_id = ? AND user_id = ?",
                (job.guild_id, job.user_id),
            )
            balance = int((await cursor.fetchone())["balance"])
            if succeeded:
                kind, amount = LedgerKind.CHARGE, 0
            else:
                kind, amount = LedgerKind.REFUND, job.cost
                await conn.execute(
                    "UPDATE accounts SET balance = balance + ? WHERE guild_id = ? AND user_id = ?",
                    (amount, job.guild_id, job.user_id),
                )
            await conn.execute(
                "INSERT INTO ledger (guild_id, user_id, kind, amount, balance_after, job_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.guild_id, job.user_id, kind, amount, balance + amount, job.id, now),
            )
        return job

    async def record_delivery(self, job_id: int, delivery: Delivery, via: DeliveryVia | None = None) -> None:
        """Record a delivery outcome; the interaction token is dropped once it is of no more use."""
        now = self._clock()
        async with self._transaction() as conn:
            if delivery is Delivery.PENDING:
                await conn.execute(
                    "UPDATE jobs SET delivery_attempts = delivery_attempts + 1 WHERE id = ?",
                    (job_id,),
                )
            else:
                await conn.execute(
                    "UPDATE jobs SET delivery = ?, delivered_via = ?, delivered_at = ?, "
                    "delivery_attempts = delivery_attempts + 1, interaction_token = NULL "
                    "WHERE id = ?",
                    (delivery, via, now, job_id),
                )

    async def recent_jobs(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        rows = await self._fetchall(
            "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [_job(row) for row in rows]


def _split_sql(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


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
    )
