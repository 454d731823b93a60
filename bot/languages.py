"""Which language to speak when there is no interaction to ask, or when the message is public.

- Private answers speak the member's Discord language, straight from the interaction (the entry
  points call `bot.i18n.use`); nothing is looked up.
- Public messages (the `/split` queued and result messages, keep and mix threads, the audit
  channel) speak the server's language: the one its moderators chose with `/quota settings
  language`, else the server's own Discord language.
- What is sent without an interaction (a result delivered later, a DM, a reminder) uses the
  language last seen: the member's for them, the server's for public messages.

The languages seen are remembered from each command (`saw`), written only when they change.
"""

from __future__ import annotations

import re

from bot import i18n
from bot.i18n import Language
from bot.store import Store

LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?")
"""What a Discord locale code looks like ("ja", "es-419", "pt-BR"); anything else is not stored."""

MAX_REMEMBERED = 50_000


def clean_locale(locale: object) -> str | None:
    """A Discord locale code from an untrusted payload, or None."""
    code = getattr(locale, "value", locale)
    return code if isinstance(code, str) and LOCALE.fullmatch(code) else None


class Languages:
    def __init__(self, store: Store) -> None:
        self._store = store
        # The locales last seen or read, by ("member", user id) and ("server", guild id): a
        # command that shows the same ones again writes nothing.
        self._seen: dict[tuple[str, int], str | None] = {}

    def changed(self, user_id: int, member: object, guild_id: int | None, server: object) -> bool:
        """Whether an interaction shows a language not remembered yet (no I/O: asked on every
        command before anything is written)."""
        return self._seen.get(("member", user_id)) != clean_locale(member) or (
            guild_id is not None and self._seen.get(("server", guild_id)) != clean_locale(server)
        )

    async def saw(self, user_id: int, member: object, guild_id: int | None, server: object) -> None:
        """Remember the languages an interaction showed (untrusted: checked here)."""
        member_code, server_code = clean_locale(member), clean_locale(server)
        new_member = member_code is not None and self._seen.get(("member", user_id)) != member_code
        new_server = (
            guild_id is not None
            and server_code is not None
            and self._seen.get(("server", guild_id)) != server_code
        )
        if not new_member and not new_server:
            return
        await self._store.languages.record(
            user_id=user_id if new_member else None,
            member=member_code,
            guild_id=guild_id if new_server else None,
            server=server_code,
        )
        if len(self._seen) > MAX_REMEMBERED:  # a cache, not a copy of the table: start again
            self._seen.clear()
        if new_member:
            self._seen["member", user_id] = member_code
        if new_server and guild_id is not None:
            self._seen["server", guild_id] = server_code

    async def member(self, user_id: int) -> Language:
        """The member's own language, as last seen (English if never)."""
        key = ("member", user_id)
        if key not in self._seen:
            self._seen[key] = await self._store.languages.member(user_id)
        return i18n.language_for(self._seen[key])

    async def public(self, guild_id: int | None, seen: object = None) -> Language:
        """The language of a server's public messages: the moderators' choice, else the server's
        Discord language (`seen` with the interaction at hand, else as last seen), else English."""
        if guild_id is None:
            return i18n.language_for(seen)
        settings, _rules = await self._store.economy.get(guild_id)  # cached per process
        chosen = i18n.known_language(settings.language)
        if chosen is not None:
            return chosen
        if clean_locale(seen) is not None:
            return i18n.language_for(seen)
        key = ("server", guild_id)
        if key not in self._seen:
            self._seen[key] = await self._store.languages.server(guild_id)
        return i18n.language_for(self._seen[key])
