"""Claims with a lease: how several processes on one database share the work without a coordinator.

A process claims a job (or a keep) by writing its own id into the row with a lease; it renews the
leases of everything it holds every third of the lease, clears a claim when the work is done or the
process stops cleanly, and takes over work whose lease lapsed (its process died). The SQL lives in
the store (`store.jobs`, `store.keeps`); this module holds who "this process" is and the renewal
beat. Lease moments come from the database's clock, never this machine's (see
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

from bot.tasks import log_failure

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
    is logged and the next one runs as usual."""

    def __init__(self, action: Callable[[], Awaitable[None]], interval: float, *, name: str) -> None:
        self._action = action
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)
            self._task.add_done_callback(log_failure)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._action()
            except Exception as error:
                failures += 1
                # Once with the traceback, then a line per beat: a database outage fails every beat.
                log.warning(
                    "%s failed (%s in a row): %s: %.200s",
                    self._name,
                    failures,
                    type(error).__name__,
                    error,
                    exc_info=error if failures == 1 else None,
                )
            else:
                failures = 0
