"""Jobs: reading them, moving them between unfinished states, recording their delivery.

Finishing a job moves credits too, so it lives with the other cross-aggregate transactions in
`bot.store.reservations`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from bot.leases import Lease
from bot.models import (
    UNFINISHED_STATES,
    Delivery,
    DeliveryVia,
    EconomySettings,
    Failure,
    Job,
    JobState,
    LibraryPage,
    OrphanedTask,
    Outcome,
    Share,
    StemLink,
)
from bot.product import DEFAULT_UPLOAD_LIMIT, Mode
from bot.store.database import Database, Row, Tx

UNFINISHED = ", ".join("?" for _ in UNFINISHED_STATES)
"""Placeholders for `UNFINISHED_STATES` in an `IN (...)` list."""

_NOT_KEPT = (
    "NOT EXISTS (SELECT 1 FROM keeps k WHERE k.job_id = j.id AND k.state = 'kept' "
    "AND NOT EXISTS (SELECT 1 FROM kept_stems s WHERE s.job_id = k.job_id AND s.state = 'skipped'))"
)
"""Results kept in Discord get no expiry reminder: their files outlive the links. One with a stem
that stayed a link (too large, not audio) still gets one: that stem expires with its link."""

# The same states written out: SQLite uses a partial index (`jobs_unfinished`) only for a query
# whose condition names its values, never through bound parameters.
_UNFINISHED_LITERAL = ", ".join(f"'{state.value}'" for state in UNFINISHED_STATES)
NEEDING_WORK_SQL = (
    f"SELECT * FROM jobs WHERE state IN ({_UNFINISHED_LITERAL}) OR delivery = '{Delivery.PENDING.value}' "
    "ORDER BY id"
)
"""What the runner carries on with at start-up; through the two partial indexes, not the table."""

_NEEDING_WORK = f"(state IN ({_UNFINISHED_LITERAL}) OR delivery = '{Delivery.PENDING.value}')"


def _claimable(tx: Tx) -> str:
    """Jobs `?` (a holder) may take: held by nobody, or by another process whose lease lapsed.
    One parameter: the holder."""
    return f"(claimed_by IS NULL OR (claimed_by <> ? AND COALESCE(lease_until, 0) < {tx.current_time}))"


def _held(tx: Tx) -> str:
    """The ids of the jobs `?` (a holder) holds, their rows locked by id ascending (the store's lock
    order: a statement that changes many jobs would otherwise lock them in whatever order it finds
    them, and wait for one while holding another)."""
    return f"SELECT id FROM jobs WHERE claimed_by = ? ORDER BY id{tx.for_update}"


class Jobs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, job_id: int) -> Job | None:
        async with self._db.reading() as tx:
            return await get(tx, job_id)

    async def needing_work(self) -> list[Job]:
        """Jobs the runner must carry on with: unfinished, or finished but not yet delivered."""
        return [job_from_row(row) for row in await self._db.fetchall(NEEDING_WORK_SQL)]

    async def claim_needing_work(self, lease: Lease, *, starting: bool = False) -> list[Job]:
        """Claim for `lease.holder` every job needing work (unfinished, or undelivered) that nobody
        holds or whose holder let its lease lapse; the jobs claimed, by id. On PostgreSQL rows
        another transaction has locked are skipped, not waited for: the next scan takes them.

        `starting`: the holder has just started, so claims already in its name are its own from
        before and taken too; so is everything on an SQLite file (one process uses it: whoever
        held a job before is gone). Otherwise the holder's own claims are left alone: it is
        working on them."""
        params: tuple[str, ...]
        async with self._db.transaction() as tx:
            if starting and not self._db.shared:
                claimable, params = "TRUE", ()
            elif starting:
                claimable, params = f"(claimed_by = ? OR {_claimable(tx)})", (lease.holder, lease.holder)
            else:
                claimable, params = _claimable(tx), (lease.holder,)
            rows = await tx.fetchall(
                f"UPDATE jobs SET claimed_by = ?, lease_until = {tx.current_time} + ? WHERE id IN ("
                f"SELECT id FROM jobs WHERE {_NEEDING_WORK} AND {claimable} ORDER BY id{tx.skip_locked}"
                f") AND {claimable} RETURNING *",
                (lease.holder, lease.seconds, *params, *params),
            )
        return sorted((job_from_row(row) for row in rows), key=lambda job: job.id)

    async def claim(self, job_id: int, lease: Lease) -> Job | None:
        """Claim (or renew) one job needing work for `lease.holder` if nobody else holds it, or its
        holder's lease lapsed: the job as claimed, or None (another process holds it, or nothing is
        left to do for it)."""
        async with self._db.reading() as tx:
            row = await tx.fetchone(
                f"UPDATE jobs SET claimed_by = ?, lease_until = {tx.current_time} + ? "
                f"WHERE id = ? AND {_NEEDING_WORK} AND (claimed_by = ? OR {_claimable(tx)}) RETURNING *",
                (lease.holder, lease.seconds, job_id, lease.holder, lease.holder),
            )
        return job_from_row(row) if row else None

    async def renew(self, lease: Lease) -> int:
        """Extend every claim `lease.holder` holds by a lease from now; how many."""
        async with self._db.reading() as tx:
            return await self._db.running_again(
                lambda: tx.execute(
                    f"UPDATE jobs SET lease_until = {tx.current_time} + ? WHERE id IN ({_held(tx)}) "
                    "AND claimed_by = ?",
                    (lease.seconds, lease.holder, lease.holder),
                ),
                what=f"renewing the claims of {lease.holder}",
            )

    async def release(self, holder: str) -> int:
        """Give up every claim `holder` holds (it stops cleanly): other processes take the jobs
        at their next scan instead of waiting for the leases to lapse. How many."""
        async with self._db.reading() as tx:
            return await self._db.running_again(
                lambda: tx.execute(
                    "UPDATE jobs SET claimed_by = NULL, lease_until = NULL "
                    f"WHERE id IN ({_held(tx)}) AND claimed_by = ?",
                    (holder, holder),
                ),
                what=f"releasing the claims of {holder}",
            )

    async def count_by_state(self) -> dict[JobState, int]:
        """Every server's jobs in each state (states with none left out), for the bot's operator.
        Kept by triggers on `jobs` (migration 005), so this reads a few rows however many jobs there
        have ever been: `/metrics` asks on every scrape."""
        rows = await self._db.fetchall("SELECT state, total FROM job_state_counts WHERE total > 0")
        return {JobState(r["state"]): int(r["total"]) for r in rows}

    async def count_guild_by_state(self, guild_id: int) -> dict[JobState, int]:
        """One server's jobs by state (read from the `jobs_member` index, which covers it)."""
        rows = await self._db.fetchall(
            "SELECT state, COUNT(*) AS n FROM jobs WHERE guild_id = ? GROUP BY state", (guild_id,)
        )
        return {JobState(r["state"]): int(r["n"]) for r in rows}

    async def by_callback_token(self, token: str) -> Job | None:
        rows = await self._db.fetchall("SELECT * FROM jobs WHERE callback_token = ?", (token,))
        return job_from_row(rows[0]) if rows else None

    async def recent(
        self, guild_id: int, user_id: int | None, limit: int = 10, *, number: str = ""
    ) -> list[Job]:
        """The newest jobs in a server: one member's, or everyone's (`user_id` None). With `number`,
        only jobs whose number starts with those digits (what someone typed so far)."""
        where: list[str] = ["guild_id = ?"]
        params: list[object] = [guild_id]
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        digits = "".join(ch for ch in number if ch.isdigit())[:19]
        if digits:
            where.append("CAST(id AS TEXT) LIKE ?")
            params.append(f"{digits}%")
        rows = await self._db.fetchall(
            f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [job_from_row(row) for row in rows]

    async def library_page(
        self, guild_id: int, user_id: int, *, page: int, page_size: int, newest_id: int | None = None
    ) -> LibraryPage:
        """One page of the member's jobs in a server, newest first. Pass the first page's
        `newest_id` to later pages so jobs made meanwhile don't shift them."""
        async with self._db.reading() as tx:
            if newest_id is None:
                newest_id = int(
                    await tx.scalar(
                        "SELECT COALESCE(MAX(id), 0) FROM jobs WHERE guild_id = ? AND user_id = ?",
                        (guild_id, user_id),
                    )
                )
            where, params = "guild_id = ? AND user_id = ? AND id <= ?", (guild_id, user_id, newest_id)
            total = int(await tx.scalar(f"SELECT COUNT(*) FROM jobs WHERE {where}", params))
            pages = max(1, -(-total // page_size))
            page = min(max(page, 0), pages - 1)
            rows = await tx.fetchall(
                f"SELECT * FROM jobs WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, page_size, page * page_size),
            )
        return LibraryPage(tuple(job_from_row(row) for row in rows), page, pages, total, newest_id)

    async def to_remind(self, *, window: float, now: float, limit: int = 100) -> list[Job]:
        """Succeeded jobs whose reminder is due by `now` (their links expire within `window`
        seconds and have not yet), not yet reminded and not waiting for a retry, oldest expiry
        first. Left out for good: jobs whose links had less than `window` left when they finished
        (a reused result near its end: its message said so), results kept in Discord (the files
        outlive the links), and members who turned reminders off."""
        rows = await self._db.fetchall(
            "SELECT j.* FROM jobs j LEFT JOIN member_preferences p ON p.user_id = j.user_id "
            "WHERE j.state = 'succeeded' AND j.reminded_at IS NULL "
            "AND j.links_expire_at <= ? AND j.links_expire_at > ? "
            "AND (j.reminder_retry_at IS NULL OR j.reminder_retry_at <= ?) "
            "AND j.links_expire_at - j.finished_at > ? AND COALESCE(p.reminders, 1) = 1 "
            f"AND {_NOT_KEPT} ORDER BY j.links_expire_at LIMIT ?",
            (now + window, now, now, window, limit),
        )
        return [job_from_row(row) for row in rows]

    async def next_reminder_at(self, *, window: float, now: float) -> float | None:
        """When the next reminder falls due: its links' expiry less `window`, or its retry if that
        is later (None: none is waiting)."""
        due = await self._db.fetchall(
            "SELECT MIN(CASE WHEN j.reminder_retry_at > j.links_expire_at - ? THEN j.reminder_retry_at "
            "ELSE j.links_expire_at - ? END) AS due FROM jobs j "
            "LEFT JOIN member_preferences p ON p.user_id = j.user_id "
            "WHERE j.state = 'succeeded' AND j.reminded_at IS NULL AND j.links_expire_at > ? "
            "AND j.links_expire_at - j.finished_at > ? AND COALESCE(p.reminders, 1) = 1 "
            f"AND {_NOT_KEPT}",
            (window, window, now, window),
        )
        at = due[0]["due"] if due else None
        return None if at is None else float(at)

    async def claim_reminder(self, job_id: int) -> bool:
        """Mark the job's reminder as sent, if nobody did yet: send it only when this is True."""
        return (
            await self._db.write(
                "UPDATE jobs SET reminded_at = ? WHERE id = ? AND reminded_at IS NULL",
                (self._db.now(), job_id),
            )
            == 1
        )

    async def unclaim_reminder(self, job_id: int) -> None:
        """Let the job's reminder be sent again (its retry state stands)."""
        await self._db.write("UPDATE jobs SET reminded_at = NULL WHERE id = ?", (job_id,))

    async def reminder_failed(self, job_id: int, *, retry_at: float, max_attempts: int) -> int:
        """The reminder could not be sent after all: count the failure and, below `max_attempts`,
        let it be tried again from `retry_at` (at the last, it stays marked sent: never tried
        again). How many sends failed so far. Stored, so a restart or a takeover keeps the count
        and the pause."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE jobs SET reminder_attempts = reminder_attempts + 1 WHERE id = ?", (job_id,)
            )
            attempts = int(
                await tx.scalar("SELECT reminder_attempts FROM jobs WHERE id = ?", (job_id,)) or 0
            )
            if attempts < max_attempts:
                await tx.execute(
                    "UPDATE jobs SET reminded_at = NULL, reminder_retry_at = ? WHERE id = ?",
                    (retry_at, job_id),
                )
        return attempts

    async def transition(
        self,
        job_id: int,
        from_states: Iterable[JobState],
        to_state: JobState,
        *,
        durable: bool = False,
        holder: str | None = None,
        **fields: Any,
    ) -> bool:
        """Move a job between unfinished states if it is in one of `from_states`.

        Returns False (and changes nothing) when the job was elsewhere: compare-and-set, so a
        stale worker can never undo another's progress. `durable=True` for a transition that
        must survive a power loss once this returns (see `Database.write`): the record that a
        paid call may be on the wire, and of its answer. `holder`: only if that process holds the
        job's claim.
        """
        assert not to_state.finished, "finish a job through Reservations.settle: it settles the credits"
        assignments = ", ".join(f"{name} = ?" for name in ["state", *fields])
        sources = tuple(from_states)
        placeholders = ", ".join("?" for _ in sources)
        held = " AND claimed_by = ?" if holder is not None else ""
        changed = await self._db.write(
            f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({placeholders}){held}",
            (to_state, *fields.values(), job_id, *sources, *([holder] if holder is not None else [])),
            durable=durable,
        )
        return changed == 1

    async def record_orphan(self, job_id: int, api_task_id: str, *, holder: str) -> None:
        """Keep, for the operator, a paid API task no job holds (see `OrphanedTask`). Durable: it
        is the only record of money spent."""
        await self._db.write(
            "INSERT INTO orphaned_tasks (job_id, api_task_id, holder, created_at) VALUES (?, ?, ?, ?)",
            (job_id, api_task_id, holder, self._db.now()),
            durable=True,
        )

    async def orphans(self, limit: int = 5) -> tuple[list[OrphanedTask], int]:
        """The newest orphaned API tasks (at most `limit`), newest first, and how many there are."""
        async with self._db.reading() as tx:
            total = int(await tx.scalar("SELECT COUNT(*) FROM orphaned_tasks"))
            rows = await tx.fetchall(
                "SELECT job_id, api_task_id, created_at FROM orphaned_tasks ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [OrphanedTask(r["job_id"], r["api_task_id"], r["created_at"]) for r in rows], total

    async def record_delivery(self, job_id: int, delivery: Delivery, via: DeliveryVia | None = None) -> None:
        """Record a delivery outcome; the interaction token is dropped once it is of no more use.
        A success delivered in a server whose `keep_stems` is 'always' is queued to be kept in
        Discord in the same transaction, so a restart cannot lose it."""
        if delivery is Delivery.PENDING:
            await self._db.write(
                "UPDATE jobs SET delivery_attempts = delivery_attempts + 1 WHERE id = ?", (job_id,)
            )
            return
        async with self._db.transaction() as tx:
            now = self._db.now()
            # Nothing is left to do for the job: nobody holds it any more.
            await tx.execute(
                "UPDATE jobs SET delivery = ?, delivered_via = ?, delivered_at = ?, "
                "delivery_attempts = delivery_attempts + 1, interaction_token = NULL, "
                "claimed_by = NULL, lease_until = NULL WHERE id = ?",
                (delivery, via, now, job_id),
            )
            if delivery is Delivery.DELIVERED:
                await tx.execute(
                    "INSERT INTO keeps (job_id, guild_id, state, upload_limit, created_at) "
                    "SELECT j.id, j.guild_id, 'pending', COALESCE(j.filesize_limit, ?), ? "
                    "FROM jobs j JOIN economy_settings s ON s.guild_id = j.guild_id "
                    "WHERE j.id = ? AND j.state = 'succeeded' AND j.stems IS NOT NULL "
                    "AND s.keep_stems = 'always' ON CONFLICT (job_id) DO NOTHING",
                    (DEFAULT_UPLOAD_LIMIT, now, job_id),
                )


# -- statements run inside other aggregates' units of work -----------------------------------


async def get(tx: Tx, job_id: int, *, lock: bool = False) -> Job | None:
    """The job; `lock`: its row stays locked until the transaction ends (see `Tx.for_update`), for
    a decision on its state that no other process may change meanwhile."""
    row = await tx.fetchone("SELECT * FROM jobs WHERE id = ?" + (tx.for_update if lock else ""), (job_id,))
    return job_from_row(row) if row else None


async def in_flight(tx: Tx, guild_id: int, user_id: int) -> int:
    """How many of the member's jobs in this server are unfinished."""
    return int(
        await tx.scalar(
            f"SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND state IN ({UNFINISHED})",
            (guild_id, user_id, *UNFINISHED_STATES),
        )
    )


async def cooldown_until(tx: Tx, settings: EconomySettings, user_id: int, now: float) -> float | None:
    """When the member may start their next split, if the server's cooldown is running now."""
    if settings.cooldown_seconds <= 0:
        return None
    last = await tx.scalar(
        "SELECT MAX(created_at) FROM jobs WHERE guild_id = ? AND user_id = ?", (settings.guild_id, user_id)
    )
    if last is None or now >= last + settings.cooldown_seconds:
        return None
    return float(last) + settings.cooldown_seconds


async def finish(
    tx: Tx, job_id: int, outcome: Outcome, now: float, *, from_states: Sequence[JobState] = UNFINISHED_STATES
) -> Job | None:
    """Mark a job in one of `from_states` finished with its outcome; None if it was elsewhere
    (already finished, say). Credits are the caller's business: see `bot.store.reservations`. A
    cancelled job has nothing to deliver, so nobody holds it any more."""
    sources = ", ".join("?" for _ in from_states)
    release = ", claimed_by = NULL, lease_until = NULL" if outcome.cancelled else ""
    rows = await tx.fetchall(
        "UPDATE jobs SET state = ?, stems = ?, links_expire_at = ?, failure = ?, "
        f"failure_detail = ?, finished_at = ?, delivery = ?{release} "
        f"WHERE id = ? AND state IN ({sources}) RETURNING *",
        (
            outcome.state,
            stems_json(outcome.stems),
            outcome.links_expire_at,
            outcome.failure,
            outcome.failure_detail,
            now,
            Delivery.NONE if outcome.cancelled else Delivery.PENDING,
            job_id,
            *from_states,
        ),
    )
    return job_from_row(rows[0]) if rows else None


def stems_json(stems: Sequence[StemLink]) -> str | None:
    return json.dumps([[s.key, s.url] for s in stems]) if stems else None


def job_from_row(row: Row) -> Job:
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
        response_message_id=row["response_message_id"],
        budget_cost=row["budget_cost"],
        budget_month=row["budget_month"],
        app_permissions=row["app_permissions"],
        reminded_at=row["reminded_at"],
        sandbox=bool(row["sandbox"]),
        filesize_limit=row["filesize_limit"],
        claimed_by=row["claimed_by"],
        lease_until=row["lease_until"],
    )
