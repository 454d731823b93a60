"""Usage reports: grouped queries over the ledger and the jobs, and the display names the bot saw.

Every figure is summed by the database, one row per (day, kind, mode) or (day, server): a year of a
busy server's ledger never crosses into Python row by row. Days are local days: the caller gives
the period's UTC offsets (`OffsetSpan`, one per daylight-saving change), and the day of each row is
computed in SQL from its moment plus the offset in force then, which both SQLite and PostgreSQL can
do (neither needs time zone data for it).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from bot.models import UNFINISHED_STATES, JobState, KeepState
from bot.models.reports import BudgetDay, ExportRow, Gauges, JobOutcomes, LedgerDay, OffsetSpan, Spender
from bot.store.database import Database, Tx

EPOCH = date(1970, 1, 1)


class Reports:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- names ------------------------------------------------------------------------------

    async def record_names(
        self, guild_id: int, server_name: str | None, members: Sequence[tuple[int, str]]
    ) -> None:
        """Store the names the bot just saw (already cleaned): the server's and some members'."""
        now = self._db.now()
        async with self._db.transaction() as tx:
            if server_name is not None:
                await tx.execute(
                    "INSERT INTO server_names (guild_id, name, seen_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (guild_id) DO UPDATE SET name = excluded.name, seen_at = excluded.seen_at",
                    (guild_id, server_name, now),
                )
            # One order for every writer (by user id), so two processes never wait on each other.
            for user_id, name in sorted(members):
                await tx.execute(
                    "INSERT INTO member_names (guild_id, user_id, name, seen_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (guild_id, user_id) DO UPDATE SET name = excluded.name, "
                    "seen_at = excluded.seen_at",
                    (guild_id, user_id, name, now),
                )

    async def member_name(self, guild_id: int, user_id: int) -> str | None:
        async with self._db.reading() as tx:
            name = await tx.scalar(
                "SELECT name FROM member_names WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
        return None if name is None else str(name)

    async def server_names(self, guild_ids: Sequence[int]) -> dict[int, str]:
        if not guild_ids:
            return {}
        marks = ", ".join("?" * len(guild_ids))
        async with self._db.reading() as tx:
            rows = await tx.fetchall(
                f"SELECT guild_id, name FROM server_names WHERE guild_id IN ({marks})", tuple(guild_ids)
            )
        return {int(r["guild_id"]): str(r["name"]) for r in rows}

    # -- grouped figures --------------------------------------------------------------------

    async def ledger_days(
        self,
        guild_id: int,
        since: float,
        until: float,
        spans: Sequence[OffsetSpan],
        user_id: int | None = None,
    ) -> list[LedgerDay]:
        """The server's (or a member's) ledger from `since` until `until`, summed per local day and
        ledger kind (read from the `ledger_guild_report` index alone)."""
        async with self._db.reporting() as tx:
            day, day_params = _local_day(tx, "created_at", spans)
            member = " AND user_id = ?" if user_id is not None else ""
            rows = await tx.fetchall(
                f"SELECT {day} AS day, kind, "
                "SUM(CASE WHEN amount < 0 THEN -amount ELSE 0 END) AS debited, "
                "SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS credited, COUNT(*) AS n "
                f"FROM ledger WHERE guild_id = ? AND created_at >= ? AND created_at < ?{member} "
                "GROUP BY 1, 2",
                (*day_params, guild_id, since, until, *(() if user_id is None else (user_id,))),
            )
        return [
            LedgerDay(
                _day(r["day"]), str(r["kind"]), None, int(r["debited"]), int(r["credited"]), int(r["n"])
            )
            for r in rows
        ]

    async def mode_days(
        self,
        guild_id: int,
        since: float,
        until: float,
        spans: Sequence[OffsetSpan],
        user_id: int | None = None,
    ) -> list[LedgerDay]:
        """What the jobs asked for in the period cost their members, per local day and mode: how
        the ledger's reservations (one per job that cost anything, in the same transaction) split
        by mode, without joining every ledger row to its job."""
        async with self._db.reporting() as tx:
            day, day_params = _local_day(tx, "created_at", spans)
            member = " AND user_id = ?" if user_id is not None else ""
            rows = await tx.fetchall(
                f"SELECT {day} AS day, mode, SUM(cost) AS cost, COUNT(*) AS n FROM jobs "
                f"WHERE guild_id = ? AND created_at >= ? AND created_at < ? AND cost > 0{member} "
                "GROUP BY 1, 2",
                (*day_params, guild_id, since, until, *(() if user_id is None else (user_id,))),
            )
        return [
            LedgerDay(_day(r["day"]), "reserve", str(r["mode"]), int(r["cost"]), 0, int(r["n"])) for r in rows
        ]

    async def top_spenders(
        self, guild_id: int, since: float, until: float, *, not_spending: Sequence[str], limit: int
    ) -> list[Spender]:
        """The members who spent the most credits in the period (every ledger kind but
        `not_spending`, net of refunds), most first, with the names the bot last saw."""
        kinds = ", ".join("?" * len(not_spending))
        async with self._db.reporting() as tx:
            rows = await tx.fetchall(
                "SELECT s.user_id, s.spent, n.name FROM ("
                "SELECT user_id, SUM(-amount) AS spent FROM ledger "
                f"WHERE guild_id = ? AND created_at >= ? AND created_at < ? AND kind NOT IN ({kinds}) "
                "GROUP BY user_id) AS s "
                "LEFT JOIN member_names n ON n.guild_id = ? AND n.user_id = s.user_id "
                "WHERE s.spent > 0 ORDER BY s.spent DESC, s.user_id LIMIT ?",
                (guild_id, since, until, *not_spending, guild_id, limit),
            )
        return [Spender(int(r["user_id"]), r["name"], int(r["spent"])) for r in rows]

    async def job_outcomes(
        self, guild_id: int, since: float, until: float, user_id: int | None = None
    ) -> JobOutcomes:
        """Of the jobs asked for in the period, how many finished (succeeded or failed; a cancel is
        neither) and how many failed."""
        member = " AND user_id = ?" if user_id is not None else ""
        async with self._db.reporting() as tx:
            row = await tx.fetchone(
                "SELECT COUNT(*) AS finished, SUM(CASE WHEN state = ? THEN 1 ELSE 0 END) AS failed "
                "FROM jobs WHERE guild_id = ? AND created_at >= ? AND created_at < ? "
                f"AND state IN (?, ?){member}",
                (
                    JobState.FAILED,
                    guild_id,
                    since,
                    until,
                    JobState.SUCCEEDED,
                    JobState.FAILED,
                    *(() if user_id is None else (user_id,)),
                ),
            )
        assert row is not None
        return JobOutcomes(int(row["finished"]), int(row["failed"] or 0))

    async def budget_days(
        self, since: float, until: float, spans: Sequence[OffsetSpan], guild_id: int | None = None
    ) -> list[BudgetDay]:
        """API credits the paid jobs counted per local day, server and budget month, and what
        refunds gave back (on the day the job finished, to the month it counted in), from `since`
        until `until`; one server's or every server's."""
        server = " AND guild_id = ?" if guild_id is not None else ""
        one = () if guild_id is None else (guild_id,)
        async with self._db.reporting() as tx:
            counted_day, counted_params = _local_day(tx, "created_at", spans)
            released_day, released_params = _local_day(tx, "finished_at", spans)
            rows = await tx.fetchall(
                "SELECT day, guild_id, month, SUM(counted) AS counted, SUM(released) AS released FROM ("
                f"SELECT {counted_day} AS day, guild_id, budget_month AS month, budget_cost AS counted, "
                "0 AS released FROM jobs "
                f"WHERE budget_cost > 0 AND created_at >= ? AND created_at < ?{server} "
                f"UNION ALL SELECT {released_day} AS day, guild_id, budget_month AS month, 0 AS counted, "
                "budget_cost AS released FROM jobs WHERE budget_cost > 0 AND state IN (?, ?) "
                f"AND finished_at >= ? AND finished_at < ?{server}"
                ") AS b GROUP BY day, guild_id, month",
                (
                    *counted_params,
                    since,
                    until,
                    *one,
                    *released_params,
                    JobState.FAILED,
                    JobState.CANCELLED,
                    since,
                    until,
                    *one,
                ),
            )
        return [
            BudgetDay(
                _day(r["day"]), int(r["guild_id"]), str(r["month"]), int(r["counted"]), int(r["released"])
            )
            for r in rows
        ]

    # -- monitoring -------------------------------------------------------------------------

    async def gauges(self, holder: str) -> Gauges:
        """The figures `/metrics` reads at each scrape, each from an index of unfinished work."""
        async with self._db.reading() as tx:
            keeps = await tx.fetchall(
                "SELECT state, COUNT(*) AS n FROM keeps WHERE state IN (?, ?) GROUP BY state",
                (KeepState.PENDING, KeepState.WORKING),
            )
            states = ", ".join("?" * len(UNFINISHED_STATES))
            oldest = await tx.scalar(
                f"SELECT MIN(created_at) FROM jobs WHERE state IN ({states})", UNFINISHED_STATES
            )
            held = await tx.scalar("SELECT COUNT(*) FROM jobs WHERE claimed_by = ?", (holder,))
        return Gauges(
            keeps_unfinished={str(r["state"]): int(r["n"]) for r in keeps},
            oldest_unfinished_job_at=None if oldest is None else float(oldest),
            jobs_held=int(held or 0),
        )

    # -- the export -------------------------------------------------------------------------

    async def ledger_rows(
        self,
        guild_id: int,
        since: float,
        until: float,
        *,
        after: tuple[float, int] | None,
        limit: int,
    ) -> list[ExportRow]:
        """The next `limit` ledger rows of the period, oldest first, after (moment, id) `after`:
        pages that each use the index and never read the period again from its start."""
        where = "l.guild_id = ? AND l.created_at >= ? AND l.created_at < ?"
        params: tuple[Any, ...] = (guild_id, since, until)
        if after is not None:
            # The lower bound alone lets the index start at the page's first moment; the rest skips
            # the rows of that moment already written.
            where += " AND l.created_at >= ? AND (l.created_at > ? OR l.id > ?)"
            params += (after[0], after[0], after[1])
        async with self._db.reporting() as tx:
            rows = await tx.fetchall(
                "SELECT l.id, l.created_at, l.user_id, n.name, l.amount, l.balance_after, l.kind, "
                "l.job_id, l.reason, l.actor_id FROM ledger l "
                "LEFT JOIN member_names n ON n.guild_id = l.guild_id AND n.user_id = l.user_id "
                f"WHERE {where} ORDER BY l.created_at, l.id LIMIT ?",
                (*params, limit),
            )
        return [
            ExportRow(
                id=int(r["id"]),
                created_at=float(r["created_at"]),
                user_id=int(r["user_id"]),
                name=r["name"],
                amount=int(r["amount"]),
                balance_after=int(r["balance_after"]),
                kind=str(r["kind"]),
                job_id=r["job_id"],
                reason=r["reason"],
                actor_id=r["actor_id"],
            )
            for r in rows
        ]

    async def ledger_count(self, guild_id: int, since: float, until: float) -> int:
        async with self._db.reporting() as tx:
            return int(
                await tx.scalar(
                    "SELECT COUNT(*) FROM ledger WHERE guild_id = ? AND created_at >= ? AND created_at < ?",
                    (guild_id, since, until),
                )
            )


def _local_day(tx: Tx, column: str, spans: Sequence[OffsetSpan]) -> tuple[str, tuple[float, ...]]:
    """An SQL expression for the local day of `column` (days since 1970-01-01), and its parameters:
    the moment plus the UTC offset of the span it falls in, in whole days, rounded down."""
    assert spans, "a period has at least one offset"
    params: list[float] = []
    offset = "CAST(? AS DOUBLE PRECISION)"
    if len(spans) == 1:
        params.append(float(spans[0].offset))
    else:
        cases = []
        for span, following in itertools.pairwise(spans):
            cases.append(f"WHEN {column} < CAST(? AS DOUBLE PRECISION) THEN CAST(? AS DOUBLE PRECISION)")
            params += [following.start, float(span.offset)]
        offset = f"CASE {' '.join(cases)} ELSE CAST(? AS DOUBLE PRECISION) END"
        params.append(float(spans[-1].offset))
    moment = f"({column} + {offset}) / 86400"
    if tx.dialect == "postgresql":
        return f"CAST(FLOOR({moment}) AS BIGINT)", tuple(params)
    return f"CAST({moment} AS INTEGER)", tuple(params)  # truncation is flooring after 1970


def _day(days_since_epoch: Any) -> date:
    return EPOCH + timedelta(days=int(days_since_epoch))
