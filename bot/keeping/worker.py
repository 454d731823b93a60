"""The keep worker: takes up the keeps the database says are due (a `bot.worker.DurableWorker`),
each under this process's claim with a lease, one round of work per keep: choose the place, post
the stems, mark the result kept; a failure that may pass is stored with its next try, so a restart
or another process carries on where it stopped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bot import i18n, reasons
from bot.downloads import clear_leftovers
from bot.keeping.place import ENGLISH_ONLY, Languages, place_beside, place_language
from bot.keeping.poster import Downloader, PlaceRefused, Poster, PostRetry
from bot.keeping.posting import StemPosting, filename
from bot.keeping.twins import Twins
from bot.leases import ClaimedWork, Lease
from bot.models import Job, Keep, KeepPlace, KeepState, StemKeepState
from bot.reasons import because
from bot.store import Store
from bot.worker import Backoff, DurableWorker

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
"""Rounds that failed in a way that may pass before a keep gives up."""
RETRY_BASE = 5.0
RETRY_CAP = 900.0
WAIT_FOR_TWIN = 5.0
"""How long a keep waits while the same stems are being kept for another job here."""
IDLE_SECONDS = 3600.0


class KeepWorker:
    """The keep worker: one round of work per keep due, under this process's claim."""

    def __init__(
        self,
        store: Store,
        poster: Poster,
        download: Downloader,
        twins: Twins,
        *,
        lease: Lease,
        folder: Path,
        concurrency: int,
        clock: Callable[[], float],
        retry_base: float = RETRY_BASE,
        languages: Languages = ENGLISH_ONLY,
    ) -> None:
        """`lease`: this process's claims on keeps; a keep is worked on only by the process that
        claimed it (several processes on one PostgreSQL database). `languages`: each round speaks
        the language of the result's place (`place_language`): no interaction says it here."""
        self._languages = languages
        self._store = store
        self._poster = poster
        self._twins = twins
        self._folder = folder
        self._clock = clock
        self._backoff = Backoff(base=retry_base, cap=RETRY_CAP, max_attempts=MAX_ATTEMPTS)
        self._posting = StemPosting(store, poster, download, folder)
        self._claims = ClaimedWork(store.keeps, lease, what="keeps", renewed=self.wake)
        self._worker: DurableWorker[Keep] = DurableWorker(
            name="keeper",
            due=lambda: store.keeps.to_do(clock(), holder=lease.holder),
            key=lambda keep: keep.job_id,
            step=self._work_on,
            # A keep due by now was just taken up (or waits for one to end, which wakes the
            # worker): looking again while it works would only poll.
            next_due=lambda: store.keeps.next_retry_at(after=clock()),
            clock=clock,
            concurrency=concurrency,
            idle=IDLE_SECONDS,
            error_delay=RETRY_BASE,
        )

    def start(self) -> None:
        """Empty the download folder (files left by a crash) and start working on the keeps."""
        if not self._worker.running:
            removed = clear_leftovers(self._folder)
            if removed:
                log.info("Removed %s unfinished stem download(s) left from before", removed)
            self._worker.start()
            self._claims.start()

    async def stop(self, *, release: bool = True) -> None:
        """Stop working; the keeps stopped mid-way are released to other processes (`release=False`
        leaves their claims to lapse, as a crash would, for tests) and resume where they stopped."""
        await self._worker.stop()
        await self._claims.stop(release=release)

    def wake(self) -> None:
        """Something may be due now: a keep was asked for, or a result delivered."""
        self._worker.wake()

    async def run_due(self) -> int:
        """Start every keep due now that is not already being worked on; wait for them all. How
        many were taken up (for tests and the worker loop)."""
        return len(await self._worker.run_due())

    async def _work_on(self, keep: Keep) -> bool:
        """One round of work on a keep, under this process's claim (`ClaimedWork`)."""
        return await self._claims.run(keep.job_id, lambda: self._work_on_claimed(keep.job_id))

    async def _work_on_claimed(self, job_id: int) -> None:
        # The keep is read once, where the round begins; each transition returns it as it stands
        # after, and the round carries that on (through a failure too).
        round = _Round(await self._store.jobs.get(job_id), await self._require(job_id))
        with i18n.speaking(await place_language(self._languages, round.job)):
            await self._round(round)

    async def _round(self, round: _Round) -> None:
        job = round.job
        try:
            if round.keep.unfinished:
                await self._keep(round)
            if round.keep.state is KeepState.KEPT and not round.keep.marked:
                await self._poster.show_kept(
                    job, round.keep, await self._store.deliveries.result_messages(job.id)
                )
                round.keep = await self._store.keeps.apply(round.keep.shown_kept())
                log.info("job %s: kept in Discord (%s %s)", job.id, round.keep.place, round.keep.channel_id)
        except PostRetry as error:
            await self._later(round, str(error) or because(reasons.DISCORD_NO_ANSWER))
        except PlaceRefused as error:
            if await self._fall_back_to_replies(round, error):
                return
            log.info("job %s: keeping in Discord refused: %s", job.id, error.reason)
            await self._store.keeps.apply(round.keep.failed(error.reason, self._clock()))
        except _Wait:
            pass
        except Exception:
            # A defect or the disk (full, say): never a tight loop; the stems' states stand.
            log.exception("job %s: keeping in Discord failed unexpectedly; will try again", job.id)
            await self._later(round, because(reasons.UNEXPECTED))

    async def _later(self, round: _Round, why: str) -> None:
        job = round.job
        delay = self._backoff.delay(round.keep.attempts)
        keep = await self._store.keeps.apply(round.keep.retrying(self._clock() + delay, why))
        if self._backoff.exhausted(keep.attempts) and keep.state is KeepState.KEPT:
            log.warning("job %s: could not show on the result that it is kept (%s); leaving it", job.id, why)
            await self._store.keeps.apply(keep.shown_kept())
        elif self._backoff.exhausted(keep.attempts):
            log.warning(
                "job %s: keeping in Discord failed %s times (%s); giving up", job.id, keep.attempts, why
            )
            await self._store.keeps.apply(keep.failed(why, self._clock()))
        else:
            log.info("job %s: keeping in Discord will try again in %.0f s (%s)", job.id, delay, why)

    async def _keep(self, round: _Round) -> None:
        """Post every stem not yet posted, then the note about those that stay links; the round's
        keep is the keep as it stands after each step."""
        job, keep = round.job, round.keep
        twin = await self._twins.kept(job)
        if twin is not None:
            round.keep = await self._store.keeps.apply(keep.linked(twin, self._clock()))
            return
        if await self._twins.at_work(job, keep):
            waiting = keep.retrying(self._clock() + WAIT_FOR_TWIN, because(reasons.TWIN_AT_WORK), count=False)
            round.keep = await self._store.keeps.apply(waiting)
            raise _Wait()
        stems = await self._store.keeps.start(
            job.id, [(index, filename(stem.key, stem.url)) for index, stem in enumerate(job.stems)]
        )
        if keep.place is None:
            keep = round.keep = await self._choose_place(job, keep)
        if any(stem.state is StemKeepState.POSTING for stem in stems):
            stems = await self._posting.recover(job, keep, stems)
        keep = round.keep = await self._posting.post_files(job, keep, stems)
        stems = await self._store.keeps.stems(job.id)
        unnoted = [s for s in stems if s.state is StemKeepState.SKIPPED and s.message_id is None]
        if unnoted:
            await self._posting.post_note(job, keep, unnoted)
        round.keep = await self._store.keeps.apply(keep.kept(self._clock()))

    async def _fall_back_to_replies(self, round: _Round, error: PlaceRefused) -> bool:
        """The bot could open the thread but not post in it (no Send Messages in Threads, say):
        if nothing is in the thread yet, post the files as replies to the result instead. Whether
        it did (the keep then goes on at once)."""
        job, keep = round.job, round.keep
        if keep.place is not KeepPlace.THREAD or keep.anchor_message_id is None:
            return False
        stems = await self._store.keeps.stems(job.id)
        if any(
            stem.state in (StemKeepState.POSTED, StemKeepState.POSTING) or stem.message_id for stem in stems
        ):
            return False  # something is in the thread (or may be): the files stay together there
        result = await self._store.deliveries.result_messages(job.id)
        if not result or result[0].channel_id is None:
            return False
        log.info("job %s: the thread refused the files (%s); posting them as replies", job.id, error.reason)
        replies = keep.placed(
            KeepPlace.REPLIES, channel_id=result[0].channel_id, anchor_message_id=keep.anchor_message_id
        )
        round.keep = await self._store.keeps.apply(replies)
        self.wake()
        return True

    async def _choose_place(self, job: Job, keep: Keep) -> Keep:
        """Where the files go (`bot.keeping.place`): the thread a mix of this result opened, or
        one it opens now; replies where threads cannot be made; the DM for a DM result."""
        where = await place_beside(keep, self._store, self._poster, job)
        return await self._store.keeps.apply(
            keep.placed(where.place, channel_id=where.channel_id, anchor_message_id=where.anchor_message_id)
        )

    async def _require(self, job_id: int) -> Keep:
        """The keep as stored, read where a round begins (a transition returns it after that)."""
        keep = await self._store.keeps.get(job_id)
        assert keep is not None
        return keep


class _Round:
    """One round of work on a keep: its job, and the keep as its last transition left it."""

    def __init__(self, job: Job | None, keep: Keep) -> None:
        assert job is not None
        self.job = job
        self.keep = keep


class _Wait(Exception):
    """This keep waits (for another), without counting as a failure."""
