"""Claims with a lease: how several processes on one database share the work without a coordinator.

A process claims a job (or a keep) by writing its own id into the row with a lease; it renews the
leases of everything it holds every third of the lease, clears a claim when the work is done or the
process stops cleanly, and takes over work whose lease lapsed (its process died). The SQL lives in
the store (`store.jobs`, `store.keeps`, `store.mixes`); this module holds who "this process" is,
the renewal beat, and `ClaimedWork`, the claim-work-release round the keeper and the mixer share.
Lease moments come from the database's clock, never this machine's (see
`bot.store.database.Tx.current_time`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

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


class Claims(Protocol):
    """A table of items a process claims under its lease (keeps, mixes): the store's verbs."""

    async def claim(self, key: int, lease: Lease, /) -> bool: ...

    async def renew(self, lease: Lease, /) -> int: ...

    async def release(self, holder: str, key: int | None = None, /) -> int: ...


class ClaimedWork:
    """One round of work per item under this process's claim, for a durable worker whose items
    several processes share: the claim is taken before the round and released when it ends (so
    any process may take the next one; a round cut short by stopping keeps it until it lapses),
    renewed meanwhile by a `Beat`, which then calls `renewed` (look for items whose process
    died). At stop, this process's claims are released, or left to lapse as a crash would."""

    def __init__(self, claims: Claims, lease: Lease, *, what: str, renewed: Callable[[], None]) -> None:
        self._claims = claims
        self._lease = lease
        self._what = what
        self._renewed = renewed
        self._beat = Beat(self._renew, lease.renew_every, name=f"{what} leases")

    def start(self) -> None:
        self._beat.start()

    async def stop(self, *, release: bool = True) -> None:
        await self._beat.stop()
        if release:
            try:
                await self._claims.release(self._lease.holder)
            except Exception as error:  # the database is down: the claims lapse instead
                log.warning(
                    "Could not release this process's %s (%s: %.200s)",
                    self._what,
                    type(error).__name__,
                    error,
                )

    async def run(self, key: int, work: Callable[[], Awaitable[None]]) -> bool:
        """`work()` under the claim of item `key`; True either way (another process may have
        taken it up first: then it is theirs)."""
        if not await self._claims.claim(key, self._lease):
            return True
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._claims.release(self._lease.holder, key)
            raise
        await self._claims.release(self._lease.holder, key)
        return True

    async def _renew(self) -> None:
        await self._claims.renew(self._lease)
        self._renewed()
