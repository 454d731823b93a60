"""Claims with a lease: how several processes on one database share the work without a coordinator.

A process claims a job (or a keep) by writing its own id into the row with a lease; it renews the
leases of everything it holds every third of the lease, clears a claim when the work is done or the
process stops cleanly, and takes over work whose lease lapsed (its process died). The SQL lives in
the store (`store.jobs`, `store.keeps`); this module holds who "this process" is and the renewal
beat. Lease moments come from the database's clock, never this machine's (see
`bot.store.database.Tx.current_time`).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.worker import Loop

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Lease:
    """Who this process is in the claims it writes, and how long a claim lasts unrenewed."""

    holder: str
    seconds: float

    @classmethod
    def for_this_process(cls, seconds: float) -> Lease:
        """A holder id new at every start: a restarted process never mistakes its predecessor's
        claims for its own (they lapse, or on SQLite are taken at start-up)."""
        return cls(f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}", seconds)

    @property
    def renew_every(self) -> float:
        """Renewing every third of the lease survives two missed beats (a slow database, a busy
        event loop) before the claim lapses."""
        return self.seconds / 3


class Beat:
    """A background task that runs `action` every `interval` seconds until stopped; a failing beat
    is logged and the next one runs as usual (a `bot.worker.Loop` whose round is the action)."""

    def __init__(self, action: Callable[[], Awaitable[None]], interval: float, *, name: str) -> None:
        self._action = action
        self._interval = interval
        self._loop = Loop(self._beat, name=name, error_delay=interval, first_delay=interval)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _beat(self) -> float:
        await self._action()
        return self._interval
