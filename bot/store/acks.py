"""Acknowledged splits: a /split the bot acknowledged whose job is not stored yet (see `bot.acks`).

A record is written before the acknowledgement is sent, claimed by the process that took the split (the
claim and its lease as on jobs, `bot.leases`), and removed in the transaction that stores the job,
or once the member was told why there is none. One left behind by a process that died is claimed
by another (or by the next start), which answers the member and removes it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.errors import AckTaken
from bot.leases import Lease
from bot.models import AcknowledgedSplit
from bot.product import Mode
from bot.store.database import Database, Row, Tx


class AcknowledgedSplits:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, acks: Sequence[AcknowledgedSplit], lease: Lease) -> None:
        """Write the records in one transaction (one commit for a burst), claimed by `lease.holder`."""
        async with self._db.transaction() as tx:
            for ack in acks:
                options = json.dumps(
                    {"mode": ack.mode.value, "task_id": ack.task_id, "audio_id": ack.audio_id}
                )
                await tx.execute(
                    "INSERT INTO acknowledged_splits (interaction_id, application_id, token, guild_id, "
                    "channel_id, user_id, options, acknowledged_at, expires_at, claimed_by, lease_until) "
                    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {tx.current_time} + ?) "
                    "ON CONFLICT (interaction_id) DO NOTHING",
                    (
                        ack.interaction_id,
                        ack.application_id,
                        ack.token,
                        ack.guild_id,
                        ack.channel_id,
                        ack.user_id,
                        options,
                        ack.acknowledged_at,
                        ack.expires_at,
                        lease.holder,
                        lease.seconds,
                    ),
                )

    async def forget(self, interaction_id: int) -> None:
        """The member has their answer: the record goes."""
        await self._db.write("DELETE FROM acknowledged_splits WHERE interaction_id = ?", (interaction_id,))

    async def claim_unanswered(
        self, lease: Lease, *, now: float, starting: bool = False
    ) -> list[AcknowledgedSplit]:
        """Drop the records whose token has expired (nobody can be answered any more), then claim
        for `lease.holder` those nobody holds or whose holder's lease lapsed; the claimed, oldest
        first. `starting` on an SQLite file: every record (whoever held them is gone)."""
        params: tuple[str, ...]
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM acknowledged_splits WHERE expires_at <= ?", (now,))
            if starting and not self._db.shared:
                claimable, params = "TRUE", ()
            else:
                # A lapsed claim is anyone's, this process's own included: it renews the splits it
                # is still taking, so one of its own that lapsed was let go of.
                claimable = f"(claimed_by IS NULL OR COALESCE(lease_until, 0) < {tx.current_time})"
                params = ()
            rows = await tx.fetchall(
                f"UPDATE acknowledged_splits SET claimed_by = ?, lease_until = {tx.current_time} + ? "
                "WHERE interaction_id IN (SELECT interaction_id FROM acknowledged_splits WHERE "
                f"{claimable} ORDER BY interaction_id{tx.skip_locked}) AND {claimable} RETURNING *",
                (lease.holder, lease.seconds, *params, *params),
            )
        return sorted((_from_row(row) for row in rows), key=lambda ack: ack.acknowledged_at)

    async def renew(self, lease: Lease, interaction_ids: Sequence[int]) -> int:
        """Extend the claims of `lease.holder` on the splits it is taking right now; how many. The
        records it holds but let go of lapse, so a look answers them. Rows locked by a reservation
        storing its job are skipped, not waited for (that reservation removes them anyway)."""
        if not interaction_ids:
            return 0
        marks = ", ".join("?" * len(interaction_ids))
        async with self._db.reading() as tx:
            return await tx.execute(
                f"UPDATE acknowledged_splits SET lease_until = {tx.current_time} + ? "
                "WHERE interaction_id IN (SELECT interaction_id FROM acknowledged_splits "
                f"WHERE claimed_by = ? AND interaction_id IN ({marks}) "
                f"ORDER BY interaction_id{tx.skip_locked}) AND claimed_by = ?",
                (lease.seconds, lease.holder, *interaction_ids, lease.holder),
            )

    async def release(self, interaction_id: int, holder: str) -> None:
        """Could not answer now: let whichever process looks next try again."""
        await self._db.write(
            "UPDATE acknowledged_splits SET claimed_by = NULL, lease_until = NULL "
            "WHERE interaction_id = ? AND claimed_by = ?",
            (interaction_id, holder),
        )


async def became_job(tx: Tx, interaction_id: int, holder: str | None) -> None:
    """In the transaction that stores the split's job: its record goes with it. Raises `AckTaken`
    (rolling the job back) if another process claimed the record to answer it meanwhile."""
    held = " AND claimed_by = ?" if holder is not None else ""
    removed = await tx.execute(
        f"DELETE FROM acknowledged_splits WHERE interaction_id = ?{held}",
        (interaction_id, *([holder] if holder is not None else [])),
    )
    if not removed:
        raise AckTaken(interaction_id)


def _from_row(row: Row) -> AcknowledgedSplit:
    options = json.loads(row["options"])
    return AcknowledgedSplit(
        interaction_id=row["interaction_id"],
        application_id=row["application_id"],
        token=row["token"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        mode=Mode(options["mode"]),
        task_id=options["task_id"],
        audio_id=options["audio_id"],
        acknowledged_at=row["acknowledged_at"],
        expires_at=row["expires_at"],
    )
