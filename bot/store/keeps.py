"""Keeping results in Discord: one row per kept result (`keeps`) and one per stem (`kept_stems`),
so the work resumes after a restart where it stopped and never posts a stem twice (see
`bot.keeping`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.leases import Lease
from bot.models import Job, Keep, KeepChange, KeepPlace, KeepState, KeptStem, StemKeepState
from bot.store.database import Database, Row, Tx

_TO_DO = "(state IN ('pending', 'working') OR (state = 'kept' AND marked = 0))"
"""Keeps with work left; the same condition as the partial index `keeps_to_do`."""


def _free_for(tx: Tx, shared: bool) -> str:
    """Keeps `?` (a holder) may work on: its own, nobody's, or those of a process whose lease
    lapsed; on an SQLite file, any (one process uses it: an earlier holder is gone)."""
    if not shared:
        return "(claimed_by IS NULL OR claimed_by = ? OR TRUE)"
    return f"(claimed_by IS NULL OR claimed_by = ? OR COALESCE(lease_until, 0) < {tx.current_time})"


def _held(tx: Tx) -> str:
    """The keeps `?` (a holder) holds, their rows locked by job id ascending (the store's lock order)."""
    return f"SELECT job_id FROM keeps WHERE claimed_by = ? ORDER BY job_id{tx.for_update}"


class Keeps:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def request(self, job: Job, *, requested_by: int | None, upload_limit: int) -> tuple[Keep, bool]:
        """Ask to keep the job's stems: (the keep, whether this call started it). One keep per
        job, however many ask at once; a failed keep starts over."""
        async with self._db.transaction() as tx:
            now = self._db.now()
            started = await tx.execute(
                "INSERT INTO keeps (job_id, guild_id, state, requested_by, upload_limit, created_at) "
                "VALUES (?, ?, 'pending', ?, ?, ?) ON CONFLICT (job_id) DO NOTHING",
                (job.id, job.guild_id, requested_by, upload_limit, now),
            )
            if not started:
                started = await tx.execute(
                    "UPDATE keeps SET state = 'pending', requested_by = ?, failure = NULL, attempts = 0, "
                    "retry_at = NULL, finished_at = NULL WHERE job_id = ? AND state = 'failed'",
                    (requested_by, job.id),
                )
            row = await tx.fetchone("SELECT * FROM keeps WHERE job_id = ?", (job.id,))
        assert row is not None
        return keep_from_row(row), bool(started)

    async def get(self, job_id: int) -> Keep | None:
        row = await self._db.fetchone("SELECT * FROM keeps WHERE job_id = ?", (job_id,))
        return keep_from_row(row) if row else None

    async def of_jobs(self, job_ids: Iterable[int]) -> dict[int, Keep]:
        """The keeps of these jobs (those that have one), by job id."""
        ids = list(job_ids)
        if not ids:
            return {}
        rows = await self._db.fetchall(
            f"SELECT * FROM keeps WHERE job_id IN ({', '.join('?' for _ in ids)})", ids
        )
        return {row["job_id"]: keep_from_row(row) for row in rows}

    async def to_do(self, now: float, limit: int = 100, *, holder: str | None = None) -> list[Keep]:
        """Keeps with work left whose next attempt is due, oldest first; with `holder`, only those
        that process may take (see `claim`)."""
        async with self._db.reading() as tx:
            free = f" AND {_free_for(tx, self._db.shared)}" if holder is not None else ""
            rows = await tx.fetchall(
                f"SELECT * FROM keeps WHERE {_TO_DO} AND (retry_at IS NULL OR retry_at <= ?){free} "
                "ORDER BY created_at LIMIT ?",
                (now, *([holder] if holder is not None else []), limit),
            )
        return [keep_from_row(row) for row in rows]

    async def claim(self, job_id: int, lease: Lease) -> bool:
        """Claim (or renew) the keep for `lease.holder` unless another live process holds it:
        whether this process may work on it now. Two processes never work on one keep."""
        async with self._db.reading() as tx:
            return (
                await tx.execute(
                    f"UPDATE keeps SET claimed_by = ?, lease_until = {tx.current_time} + ? "
                    f"WHERE job_id = ? AND {_free_for(tx, self._db.shared)}",
                    (lease.holder, lease.seconds, job_id, lease.holder),
                )
                == 1
            )

    async def renew(self, lease: Lease) -> int:
        """Extend every keep claim `lease.holder` holds by a lease from now; how many."""
        async with self._db.reading() as tx:
            return await tx.execute(
                f"UPDATE keeps SET lease_until = {tx.current_time} + ? WHERE job_id IN ({_held(tx)}) "
                "AND claimed_by = ?",
                (lease.seconds, lease.holder, lease.holder),
            )

    async def release(self, holder: str, job_id: int | None = None) -> int:
        """Give up `holder`'s claim on the keep of `job_id` (a round of work on it ended), or on
        every keep (the process stops cleanly). How many."""
        if job_id is None:
            async with self._db.reading() as tx:
                return await tx.execute(
                    "UPDATE keeps SET claimed_by = NULL, lease_until = NULL "
                    f"WHERE job_id IN ({_held(tx)}) AND claimed_by = ?",
                    (holder, holder),
                )
        return await self._db.write(
            "UPDATE keeps SET claimed_by = NULL, lease_until = NULL WHERE job_id = ? AND claimed_by = ?",
            (job_id, holder),
        )

    async def next_retry_at(self, after: float) -> float | None:
        """When the earliest keep waiting to be tried again after `after` is due (None: none
        waits). Those due by then are not waiting: the worker has taken them up."""
        value = await self._db.fetchone(
            f"SELECT MIN(retry_at) AS at FROM keeps WHERE {_TO_DO} AND retry_at > ?", (after,)
        )
        return None if value is None or value["at"] is None else float(value["at"])

    async def same_track(self, job: Job) -> list[Keep]:
        """Other keeps in the job's server of the same stems: the same track and mode (shared,
        reused or split again), of the same kind (sandbox or real), oldest first."""
        rows = await self._db.fetchall(
            "SELECT k.* FROM keeps k JOIN jobs j ON j.id = k.job_id "
            "WHERE k.guild_id = ? AND k.job_id <> ? AND j.source_task_id = ? AND j.audio_id = ? "
            "AND j.mode = ? AND j.sandbox = ? ORDER BY k.job_id",
            (job.guild_id, job.id, job.source_task_id, job.audio_id, job.mode, job.sandbox),
        )
        return [keep_from_row(row) for row in rows]

    async def start(self, job_id: int, stems: Sequence[tuple[int, str]]) -> list[KeptStem]:
        """The worker takes the keep up: 'working', with a row per stem (position, filename) if it
        has none yet. Every stem's state, in order."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE keeps SET state = 'working' WHERE job_id = ? AND state = 'pending'", (job_id,)
            )
            for position, filename in stems:
                await tx.execute(
                    "INSERT INTO kept_stems (job_id, position, filename, state) VALUES (?, ?, ?, 'pending') "
                    "ON CONFLICT (job_id, position) DO NOTHING",
                    (job_id, position, filename),
                )
            rows = await tx.fetchall("SELECT * FROM kept_stems WHERE job_id = ? ORDER BY position", (job_id,))
        return [kept_stem_from_row(row) for row in rows]

    async def stems(self, job_id: int) -> list[KeptStem]:
        rows = await self._db.fetchall(
            "SELECT * FROM kept_stems WHERE job_id = ? ORDER BY position", (job_id,)
        )
        return [kept_stem_from_row(row) for row in rows]

    async def messages_of_others(self, job_id: int, channel_id: int) -> set[int]:
        """The messages other keeps recorded as theirs in this channel: a DM, or a channel where
        the files are replies, holds several results' files of the same names."""
        rows = await self._db.fetchall(
            "SELECT DISTINCT s.message_id FROM kept_stems s JOIN keeps k ON k.job_id = s.job_id "
            "WHERE k.channel_id = ? AND s.job_id <> ? AND s.message_id IS NOT NULL",
            (channel_id, job_id),
        )
        return {row["message_id"] for row in rows}

    async def rename(self, job_id: int, position: int, filename: str) -> None:
        """A stem whose link showed no extension is named by its downloaded bytes."""
        await self._stems_write("filename = ?", job_id, [position], filename)

    async def posting(self, job_id: int, positions: Sequence[int]) -> None:
        """Written, durably, before the message that carries these stems (or their note) is sent:
        after a crash, the thread is read before they are sent again."""
        await self._stems_write("state = 'posting'", job_id, positions, durable=True)

    async def posted(self, job_id: int, positions: Sequence[int], message_id: int) -> None:
        await self._stems_write(
            "state = 'posted', message_id = ?, skipped_why = NULL", job_id, positions, message_id
        )

    async def skipped(self, job_id: int, position: int, why: str, *, size: int | None = None) -> None:
        """The stem stays a link; its note in the thread is still to be sent."""
        await self._stems_write(
            "state = 'skipped', skipped_why = ?, size = ?, message_id = NULL", job_id, [position], why, size
        )

    async def noted(self, job_id: int, positions: Sequence[int], message_id: int) -> None:
        """The note that these stems stay links is in the thread."""
        await self._stems_write("state = 'skipped', message_id = ?", job_id, positions, message_id)

    async def unsent(self, job_id: int, positions: Sequence[int]) -> None:
        """What was 'posting' did not arrive (the thread does not have it): send it again. A
        skipped stem goes back to waiting for its note, any other to pending."""
        await self._stems_write(
            "state = CASE WHEN skipped_why IS NULL THEN 'pending' ELSE 'skipped' END, message_id = NULL",
            job_id,
            positions,
            only_state=StemKeepState.POSTING,
        )

    async def apply(self, change: KeepChange) -> Keep:
        """Store one transition of a keep (see `Keep`'s): the keep as it stands after, without
        reading it again. A transition to a finished state is made only from an unfinished one: if
        the keep was finished meanwhile, nothing changes and the keep as stored is returned."""
        if not change.fields:
            return change.after
        keep = change.before
        assignments = ", ".join(f"{name} = ?" for name in change.fields)
        values = [_column(value) for value in change.fields.values()]
        sources = change.only_from or ()
        guard = f" AND state IN ({', '.join('?' for _ in sources)})" if sources else ""
        changed = await self._db.write(
            f"UPDATE keeps SET {assignments} WHERE job_id = ?{guard}", (*values, keep.job_id, *sources)
        )
        if changed == 1:
            return change.after
        stored = await self.get(keep.job_id)
        assert stored is not None
        return stored

    async def _stems_write(
        self,
        assignments: str,
        job_id: int,
        positions: Sequence[int],
        *values: object,
        durable: bool = False,
        only_state: StemKeepState | None = None,
    ) -> None:
        """One UPDATE of these stems of the job (atomic by itself)."""
        if not positions:
            return
        condition = " AND state = ?" if only_state else ""
        await self._db.write(
            f"UPDATE kept_stems SET {assignments} WHERE job_id = ? "
            f"AND position IN ({', '.join('?' for _ in positions)}){condition}",
            (*values, job_id, *positions, *([only_state] if only_state else [])),
            durable=durable,
        )


def _column(value: object) -> object:
    """A keep's field as its column stores it (a flag as 0 or 1)."""
    return int(value) if isinstance(value, bool) else value


def keep_from_row(row: Row) -> Keep:
    return Keep(
        job_id=row["job_id"],
        guild_id=row["guild_id"],
        state=KeepState(row["state"]),
        requested_by=row["requested_by"],
        upload_limit=row["upload_limit"],
        place=KeepPlace(row["place"]) if row["place"] else None,
        channel_id=row["channel_id"],
        anchor_message_id=row["anchor_message_id"],
        linked_to=row["linked_to"],
        failure=row["failure"],
        attempts=row["attempts"],
        retry_at=row["retry_at"],
        marked=bool(row["marked"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


def kept_stem_from_row(row: Row) -> KeptStem:
    return KeptStem(
        job_id=row["job_id"],
        position=row["position"],
        filename=row["filename"],
        state=StemKeepState(row["state"]),
        size=row["size"],
        skipped_why=row["skipped_why"],
        message_id=row["message_id"],
    )
