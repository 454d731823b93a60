"""What each member chose for themselves, across servers."""

from __future__ import annotations

from bot.store.database import Database


class MemberPreferences:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reminders(self, user_id: int) -> bool:
        """Whether the member wants expiry reminders (they do unless they said otherwise)."""
        rows = await self._db.fetchall(
            "SELECT reminders FROM member_preferences WHERE user_id = ?", (user_id,)
        )
        return bool(rows[0]["reminders"]) if rows else True

    async def set_reminders(self, user_id: int, enabled: bool) -> None:
        await self._db.write(
            "INSERT INTO member_preferences (user_id, reminders) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET reminders = excluded.reminders",
            (user_id, int(enabled)),
        )
