"""Sharing results: which earlier or running job a new request for the same track and mode can
use instead of a paid API call, and which jobs follow a running one."""

from __future__ import annotations

from bot.models import JobState, NewJob
from bot.store.database import Tx

REUSE_MIN_LINK_LIFE = 24 * 3600.0
"""A stored result is reused only while its links have at least this long left."""

LEADER_STATES = (JobState.RESERVED, JobState.SUBMITTING, JobState.SUBMITTED)
"""States of a job that others may follow: it will make its own API call, or has."""
_LEADERS = ", ".join("?" for _ in LEADER_STATES)


async def to_share(tx: Tx, new: NewJob, now: float) -> int | None:
    """The job this request can share, if any: an earlier success for the same track and mode
    with fresh links, else the oldest such job in flight; only among jobs of the same kind (sandbox
    or real: a simulated result never stands in for a paid one). Read without a lock: the caller
    locks it (before the member's account, in the store's lock order) and checks it again."""
    shared = await tx.scalar(
        "SELECT id FROM jobs WHERE source_task_id = ? AND audio_id = ? AND mode = ? AND sandbox = ? "
        f"AND ((state = ? AND links_expire_at > ?) OR state IN ({_LEADERS})) "
        "ORDER BY state = ? DESC, links_expire_at DESC, id LIMIT 1",
        (
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
    return None if shared is None else int(shared)


async def following(tx: Tx, leader_id: int, *, limit: int | None = None, lock: bool = False) -> list[int]:
    """The ids of the jobs still following `leader_id`, ascending; `lock`: their rows stay locked
    until the transaction ends, taken in that order (the store's lock order)."""
    sql = "SELECT id FROM jobs WHERE source_job_id = ? AND state = ? ORDER BY id"
    params: tuple[object, ...] = (leader_id, JobState.FOLLOWING)
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    if lock:
        sql += tx.for_update
    return [row["id"] for row in await tx.fetchall(sql, params)]
