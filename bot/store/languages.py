"""The Discord languages the bot last saw: each member's, and each server's (checked by the
caller, `bot.languages`)."""

from __future__ import annotations

from bot.store.database import Database


class SeenLanguages:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        user_id: int | None = None,
        member: str | None = None,
        guild_id: int | None = None,
        server: str | None = None,
    ) -> None:
        """Store the locales an interaction showed: its member's and its server's (either may be
        missing)."""
        now = self._db.now()
        async with self._db.transaction() as tx:
            if guild_id is not None and server is not None:
                await tx.execute(
                    "INSERT INTO server_languages (guild_id, locale, seen_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (guild_id) DO UPDATE SET locale = excluded.locale, "
                    "seen_at = excluded.seen_at",
                    (guild_id, server, now),
                )
            if user_id is not None and member is not None:
                await tx.execute(
                    "INSERT INTO member_languages (user_id, locale, seen_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (user_id) DO UPDATE SET locale = excluded.locale, "
                    "seen_at = excluded.seen_at",
                    (user_id, member, now),
                )

    async def member(self, user_id: int) -> str | None:
        async with self._db.reading() as tx:
            locale = await tx.scalar("SELECT locale FROM member_languages WHERE user_id = ?", (user_id,))
        return None if locale is None else str(locale)

    async def server(self, guild_id: int) -> str | None:
        async with self._db.reading() as tx:
            locale = await tx.scalar("SELECT locale FROM server_languages WHERE guild_id = ?", (guild_id,))
        return None if locale is None else str(locale)
