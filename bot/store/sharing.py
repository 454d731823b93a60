"""Sharing results: which earlier or running job a new request for the same track and mode can
use instead of a paid API call, and which jobs follow a running one."""

from __future__ import annotations

from bot.models import UNFINISHED_STATES, JobState, NewJob
from bot.store.database import Tx
from bot.store.jobs import UNFINISHED

REUSE_MIN_LINK_LIFE = 24 * 3600.0
"""A stored result is reused only while its links have at least this long left."""

LEADER_STATES = (JobState.RESERVED, JobState.SUBMITTING, JobState.SUBMITTED)
"""States of a job that others may follow: it will make its own API call, or has."""
_LEADERS = ", ".join("?" for _ in LEADER_STATES)


async def intake_facts(tx: Tx, new: NewJob, now: float) -> tuple[int, int | None]:
    """The member's jobs in flight, and the job this request can share, if any: an earlier
    success for the same track and mode with fresh links, else the oldest such job in flight;
    only among jobs of the same kind (sandbox or real: a simulated result never stands in for a
    paid one). One query, as it is on every /split's path."""
    row = await tx.fetchone(
        "SELECT (SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? "
        f"AND state IN ({UNFINISHED})), "
        "(SELECT id FROM jobs WHERE source_task_id = ? AND audio_id = ? AND mode = ? AND sandbox = ? "
        f"AND ((state = ? AND links_expire_at > ?) OR state IN ({_LEADERS})) "
        "ORDER BY state = ? DESC, links_expire_at DESC, id LIMIT 1)",
        (
            new.guild_id,
            new.user_id,
            *UNFINISHED_STATES,
            new.source_task_id,
            new.audio_id,
            new.mode,
            new.sandbox,
            JobState.SUCCEEDED,
            now + REUSE_MIN_LINK_LIFE,
            *LEADER_STATES,
            JobState.SUCCEEDED,
        ),
    )
    assert row is not None
    in_flight, shared_id = row
    return int(in_flight), shared_id


async def following(tx: Tx, leader_id: int, *, limit: int | None = None) -> list[int]:
    """The ids of the jobs still following `leader_id`."""
    sql = "SELECT id FROM jobs WHERE source_job_id = ? AND state = ? ORDER BY id"
    params: tuple[object, ...] = (leader_id, JobState.FOLLOWING)
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    return [row["id"] for row in await tx.fetchall(sql, params)]
