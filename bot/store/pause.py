"""The pause switch every process shares: splitting is paused for the whole deployment while the
API account cannot take jobs (see `bot.operations`). Kept in `meta` (one row while paused), so a
process started later, or restarted, finds it; every change is announced on `PAUSE_CHANNEL`.

Pausing and resuming are conditional (an insert that does nothing when the row is there, a delete
that finds it or not), so of several processes meeting the same error at once exactly one is told
it paused, and of several seeing the account work again exactly one that it resumed: that one
alerts the servers, once for the deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.models import PauseReason
from bot.store.database import Database

PAUSE_CHANNEL = "stembot_pause"
_KEY = "splitting_paused"


@dataclass(frozen=True, slots=True)
class Pause:
    reason: PauseReason
    since: float


class PauseSwitch:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def state(self) -> Pause | None:
        """The deployment's pause, if splitting is paused."""
        value = await self._db.fetchone("SELECT value FROM meta WHERE key = ?", (_KEY,))
        if value is None:
            return None
        reason, _, since = str(value[0]).partition(" ")
        return Pause(PauseReason(reason), float(since))

    async def pause(self, reason: PauseReason, since: float) -> bool:
        """Pause splitting for every process; whether this call paused it (False: it already was,
        and `reason`, the latest, replaces the one stored)."""
        paused = await self._db.write(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (_KEY, f"{reason.value} {since!r}"),
        )
        if not paused:
            current = await self.state()
            if current is None or current.reason is reason:
                return False
            await self._db.write(
                "UPDATE meta SET value = ? WHERE key = ?", (f"{reason.value} {current.since!r}", _KEY)
            )
        await self._db.notify(PAUSE_CHANNEL, reason.value)
        return bool(paused)

    async def resume(self) -> bool:
        """Resume splitting for every process; whether this call resumed it (False: it was not
        paused, another process resumed it first)."""
        resumed = await self._db.write("DELETE FROM meta WHERE key = ?", (_KEY,))
        if resumed:
            await self._db.notify(PAUSE_CHANNEL, "")
        return bool(resumed)

    async def listen(self, changed: Callable[[], None]) -> None:
        """Call `changed()` whenever any process pauses, resumes or gives a new reason (and after
        notifications may have been missed): read `state()` again then."""
        await self._db.listen(PAUSE_CHANNEL, lambda _payload: changed())
