"""Every acknowledged /split ends in an answer, even when the process that acknowledged it dies.

A /split is acknowledged at once (Discord allows 3 seconds), before its job is stored: if the
process died in between, the member was left on "thinking…" for good. So the acknowledgement is
recorded before the defer is sent (`record`: the records of a burst share one commit, so this costs
an acknowledgement one short write, not a queue of them), the record is
removed in the transaction that stores the job (`bot.store.reservations`) or once the member was
told why there is none (`answered`), and whatever is left behind by a process that died is answered
at start-up and at every lease beat by whichever process claims it first (a claim with a lease, as
for jobs): through the interaction, while its token lives (15 minutes), saying plainly that the
split did not start, nothing was charged, and to try again. Records older than that are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from bot.leases import Beat, Lease
from bot.models import AcknowledgedSplit
from bot.store import Store
from bot.tasks import log_failure

log = logging.getLogger(__name__)

RECORDS_PER_COMMIT = 500
"""At most this many records written in one transaction: a burst is written in a few."""


class SplitAnswerer(Protocol):
    """Tells a member their split did not start. Implemented by the Discord side."""

    async def split_not_started(self, ack: AcknowledgedSplit) -> bool:
        """Answer through the interaction; False if Discord could not be reached now (try later).
        True also when the interaction cannot be answered any more (never acknowledged, expired)."""
        ...


class Acknowledgements:
    def __init__(
        self, store: Store, answerer: SplitAnswerer, *, lease: Lease, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._answerer = answerer
        self._lease = lease
        self._clock = clock
        self._beat = Beat(self._look, lease.renew_every, name="acknowledged splits")
        self._waiting: list[tuple[AcknowledgedSplit, asyncio.Future[None]]] = []
        # The splits this process is taking right now: only their records' claims are renewed, so
        # a record this process lets go of (an error nobody answered) lapses and is answered.
        self._taking: set[int] = set()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Answer what an earlier process left (on an SQLite file: all of it), then keep looking."""
        await self._answer(
            await self._store.acks.claim_unanswered(self._lease, now=self._clock(), starting=True)
        )
        self._beat.start()

    async def stop(self) -> None:
        """Stop looking. This process's own records are not released: a split being taken as it
        stops may still be stored; if not, another process answers it once the lease lapses."""
        await self._beat.stop()

    async def record(self, ack: AcknowledgedSplit) -> None:
        """The split is about to be acknowledged and its job is not stored yet: stored when this
        returns. Records that arrive while a write is under way are written together by the next
        one (group commit), so a burst of thousands costs a few commits, not thousands in a row."""
        stored = asyncio.get_running_loop().create_future()
        self._taking.add(ack.interaction_id)
        self._waiting.append((ack, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="acknowledged splits: writer")
            self._writer.add_done_callback(log_failure)
        try:
            await asyncio.shield(stored)  # a caller that gives up does not take the others' write with it
        except BaseException:
            self._taking.discard(ack.interaction_id)
            raise

    async def _write_waiting(self) -> None:
        batch: list[tuple[AcknowledgedSplit, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                batch = self._waiting[:RECORDS_PER_COMMIT]
                self._waiting = self._waiting[RECORDS_PER_COMMIT:]
                try:
                    await self._store.acks.record([ack for ack, _ in batch], self._lease)
                except Exception as error:
                    for _, stored in batch:
                        if not stored.done():
                            stored.set_exception(error)
                            stored.exception()  # retrieved: a caller that gave up leaves no warning
                else:
                    for _, stored in batch:
                        if not stored.done():
                            stored.set_result(None)
        finally:  # cancelled (shutting down): nobody may wait for ever
            for _, stored in [*batch, *self._waiting]:
                if not stored.done():
                    stored.cancel()

    def taken(self, interaction_id: int) -> None:
        """This process is done with the split: its job was stored (the record went with it), or it
        was handed to the error handler, which answers and removes it; if nobody does, the record's
        claim now lapses and the next look answers the member."""
        self._taking.discard(interaction_id)

    async def answered(self, interaction_id: int) -> None:
        """The member was told why their split did not start (a refusal, an error)."""
        self._taking.discard(interaction_id)
        await self._store.acks.forget(interaction_id)

    async def _look(self) -> None:
        await self._store.acks.renew(self._lease, sorted(self._taking))
        await self._answer(await self._store.acks.claim_unanswered(self._lease, now=self._clock()))

    async def _answer(self, claimed: list[AcknowledgedSplit]) -> None:
        for ack in claimed:
            if ack.interaction_id in self._taking:
                continue  # still being taken here (its lease was renewed late): not abandoned
            try:
                await self._answer_one(ack)
            except Exception:
                log.exception("interaction %s: could not answer its split now; later", ack.interaction_id)

    async def _answer_one(self, ack: AcknowledgedSplit) -> None:
        log.warning(
            "guild=%s member=%s: a split acknowledged %.0fs ago never became a job (its process "
            "stopped first, or nobody answered its error); telling the member it did not start",
            ack.guild_id,
            ack.user_id,
            self._clock() - ack.acknowledged_at,
        )
        if await self._answerer.split_not_started(ack):
            await self._store.acks.forget(ack.interaction_id)
        else:
            await self._store.acks.release(ack.interaction_id, self._lease.holder)
