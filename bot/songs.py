"""Songs, not ids: which tracks a music-generation task has, by title (the API's "Get Music
Generation Details"), and naming each job after the song it splits.

The lookup is advisory. A split that has both ids never waits for it and is never refused on its
word; it only lets members pick a track by title and lets messages name the song. So it is bounded
and cached: each call to the API has a time limit, concurrent lookups of one task share one call,
a finished task's tracks are kept in the database (they never change, so no process asks again),
and a task the API could not describe is not asked about again for `RETRY_AFTER_SECONDS` (no call
per keystroke of an autocomplete). Lookups and their failures are counted in the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from bot.api import ApiError
from bot.metrics import Metrics
from bot.models import Job, Song, TaskTracks
from bot.store.songs import Songs

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30.0
"""A task the API could not describe (unknown, not finished, an error) is not asked about again
for this long; the answer "not known now" is given from memory meanwhile."""
REMEMBERED_TASKS = 2048
"""Tasks remembered in memory (kept ones are in the database too): the oldest are forgotten."""
MAX_NAMING = 200
"""Jobs being named in the background at once; beyond it a job keeps its ids (nothing is lost)."""
MAX_CALLS = 8
"""Calls to the API at once (different tasks; one task's lookups share one call): the lookup counts
against the API's rate limits, so a burst of new task ids queues here instead."""


class TrackSource(Protocol):
    """The API client's one call this service makes (`bot.api.SeparationClient.tracks`)."""

    async def tracks(self, task_id: str, *, within: float) -> TaskTracks | None: ...


class SongBook:
    """Looks up the tracks of generation tasks and names jobs after their song."""

    def __init__(
        self,
        store: Songs,
        api: TrackSource,
        metrics: Metrics,
        *,
        timeout: float,
        sandbox: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`timeout`: the longest one call to the API may take (TRACK_LOOKUP_SECONDS); `sandbox`:
        the deployment's songs are the sandbox's made-up ones, kept apart from real ones."""
        self._store = store
        self._api = api
        self._metrics = metrics
        self._timeout = timeout
        self._sandbox = sandbox
        self._clock = clock
        self._known: OrderedDict[str, TaskTracks] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # task -> asked again from then
        self._asking: dict[str, asyncio.Task[TaskTracks | None]] = {}
        self._naming: set[asyncio.Task[None]] = set()
        self._calls = asyncio.Semaphore(MAX_CALLS)

    @property
    def timeout(self) -> float:
        return self._timeout

    async def tracks(self, task_id: str, *, wait: float | None = None) -> TaskTracks | None:
        """The task's tracks; None when they are not known now (the API could not say, or not
        within `wait` seconds). A lookup still under way when `wait` runs out carries on, so the
        next question finds its answer."""
        known = await self.known(task_id)
        if known is not None:
            return known
        if self._clock() < self._unknown.get(task_id, 0.0):
            return None
        asking = self._asking.get(task_id)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(task_id))
            self._asking[task_id] = asking
            asking.add_done_callback(lambda _: self._asking.pop(task_id, None))
        try:
            # Shielded: one caller giving up (an autocomplete's short wait) leaves the call running.
            return await asyncio.wait_for(asyncio.shield(asking), wait)
        except TimeoutError:
            return None

    def asking(self, task_id: str) -> bool:
        """Whether a lookup of the task is under way (a caller that stopped waiting may wait again)."""
        return task_id in self._asking

    async def known(self, task_id: str) -> TaskTracks | None:
        """The task's tracks if they are known for good (memory, then the database); never asks
        the API."""
        remembered = self._known.get(task_id)
        if remembered is not None:
            self._known.move_to_end(task_id)
            return remembered
        kept = await self._store.tracks(task_id, sandbox=self._sandbox)
        if kept is not None:
            self._metrics.song_lookups.labels(outcome="kept").inc()
            self._remember(kept)
        return kept

    async def task_of(self, audio_id: str) -> str | None:
        """The task a known track belongs to (the database's word)."""
        return await self._store.task_of(audio_id, sandbox=self._sandbox)

    async def _ask(self, task_id: str) -> TaskTracks | None:
        try:
            async with asyncio.timeout(self._timeout):  # the wait for a turn counts too
                async with self._calls:
                    found = await self._api.tracks(task_id, within=self._timeout)
        except (ApiError, TimeoutError) as error:
            self._metrics.song_lookups.labels(outcome="failed").inc()
            log.info("Could not look up the tracks of a generation task: %s", error or "no answer in time")
            self._not_known(task_id)
            return None
        if found is None:
            self._metrics.song_lookups.labels(outcome="not_final").inc()
            self._not_known(task_id)
            return None
        self._metrics.song_lookups.labels(outcome="found").inc()
        self._remember(found)
        try:
            await self._store.keep(found, sandbox=self._sandbox)
        except Exception:
            # Still known in memory; the next process asks the API once more.
            log.exception("Could not keep the tracks of a generation task")
        return found

    def _remember(self, tracks: TaskTracks) -> None:
        self._unknown.pop(tracks.task_id, None)
        self._known[tracks.task_id] = tracks
        self._known.move_to_end(tracks.task_id)
        while len(self._known) > REMEMBERED_TASKS:
            self._known.popitem(last=False)

    def _not_known(self, task_id: str) -> None:
        self._unknown[task_id] = self._clock() + RETRY_AFTER_SECONDS
        self._unknown.move_to_end(task_id)
        while len(self._unknown) > REMEMBERED_TASKS:
            self._unknown.popitem(last=False)

    # -- naming jobs ---------------------------------------------------------------------------

    async def named(self, job: Job) -> Job:
        """The job with its song, from what is known now (memory or the database, never the API);
        when the song is not known, it is looked up in the background (`name_later`), so the
        messages that follow name it. Never raises: a job without a name keeps its ids."""
        if job.song is not None:
            return job
        try:
            known = await self.known(job.source_task_id)
            track = known.track(job.audio_id) if known is not None else None
            if known is None or track is None:
                if known is None:
                    self.name_later(job)
                return job
            song = Song.of(track, known)
            await self._store.name_job(job.id, song)
        except Exception:
            log.exception("job %s: could not name it after its song", job.id)
            return job
        return _with_song(job, song)

    def name_later(self, job: Job) -> None:
        """Look the job's task up in the background and give the job its song when found. Never
        delays anything: the split goes on without it."""
        if len(self._naming) >= MAX_NAMING:
            return
        naming = asyncio.ensure_future(self._name(job))
        self._naming.add(naming)
        naming.add_done_callback(self._naming.discard)

    async def _name(self, job: Job) -> None:
        try:
            found = await self.tracks(job.source_task_id)
            track = found.track(job.audio_id) if found is not None else None
            if found is not None and track is not None:
                await self._store.name_job(job.id, Song.of(track, found))
        except Exception:
            log.exception("job %s: could not name it after its song", job.id)

    async def stop(self) -> None:
        """Stop every lookup and naming under way (a job left unnamed keeps its ids)."""
        pending = [*self._naming, *self._asking.values()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _with_song(job: Job, song: Song) -> Job:
    return replace(job, song=song)
