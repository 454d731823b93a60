"""The messages each result was shown in, part by part: so a retry sends only the parts not yet
shown, and later features can find (reply to, edit, open a thread on) a result's messages."""

from __future__ import annotations

from bot.models import DeliveredMessage, DeliveryVia
from bot.store.database import Database, Row


class Deliveries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def shown(self, job_id: int, via: DeliveryVia) -> list[DeliveredMessage]:
        """The parts of the job's result already shown this way, in order."""
        rows = await self._db.fetchall(
            "SELECT * FROM delivered_messages WHERE job_id = ? AND via = ? ORDER BY part", (job_id, via)
        )
        return [_message(row) for row in rows]

    async def record(
        self, job_id: int, via: DeliveryVia, part: int, *, channel_id: int | None, message_id: int
    ) -> None:
        """Remember that part `part` of the job's result is shown in this message (once per part)."""
        await self._db.write(
            "INSERT INTO delivered_messages (job_id, via, part, channel_id, message_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, via, part) DO NOTHING",
            (job_id, via, part, channel_id, message_id, self._db.now()),
        )

    async def result_messages(self, job_id: int) -> list[DeliveredMessage]:
        """The messages the job's result was delivered in (the way that succeeded), in order."""
        rows = await self._db.fetchall(
            "SELECT m.* FROM delivered_messages m JOIN jobs j ON j.id = m.job_id "
            "WHERE m.job_id = ? AND m.via = j.delivered_via ORDER BY m.part",
            (job_id,),
        )
        return [_message(row) for row in rows]


def _message(row: Row) -> DeliveredMessage:
    return DeliveredMessage(
        job_id=row["job_id"],
        via=DeliveryVia(row["via"]),
        part=row["part"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
    )
