"""The mix worker: takes up the mixes the database says are due (a `bot.worker.DurableWorker`, like
the keeper's), each under this process's claim with a lease, one round of work per mix: fetch the
stems, mix them off the event loop, post the file once, tell the member where it is.

Exactly once, as for keeping: 'posting' is stored before the upload, whose nonce comes from the
mix's id; a mix found 'posting' (a crash, or an answer lost) is looked for in the place's recent
messages before it is made and sent again. A failure for good (a stem that cannot be fetched or
read, a mix too large even at the lowest bitrate, Discord refusing the place) refunds the price
once and posts nothing; a failure that may pass is tried again later, then given up.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from bot import i18n, reasons
from bot.downloads import PART_SUFFIX, DownloadError, clear_leftovers, remove_file
from bot.keeping.place import ENGLISH_ONLY, Languages, place_language, result_place
from bot.keeping.poster import Downloader, PlaceRefused, PostRetry, Upload, UploadTooLarge
from bot.keeping.posting import comparable_filename
from bot.leases import ClaimedWork, Lease
from bot.mixing.outcomes import MixError, MixResult, MixStopped, StemUnreadable
from bot.mixing.poster import MixPoster
from bot.mixing.process import MixingProcesses
from bot.mixing.requests import stem_names
from bot.models import Job, Mix, MixState
from bot.reasons import because, english_stem_name
from bot.render import mix as words
from bot.store import Store
from bot.worker import Backoff, DurableWorker

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
RETRY_BASE = 5.0
RETRY_CAP = 600.0
IDLE_SECONDS = 3600.0


class MixFailed(Exception):
    """The mix cannot be made: `reason` is plain words, safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MixWorker:
    def __init__(
        self,
        store: Store,
        poster: MixPoster,
        download: Downloader,
        *,
        lease: Lease,
        folder: Path,
        concurrency: int,
        max_stem_bytes: int,
        clock: Callable[[], float],
        retry_base: float = RETRY_BASE,
        languages: Languages = ENGLISH_ONLY,
    ) -> None:
        """`concurrency`: mixes made at once (each decodes, sums and encodes in a mixing process
        of its own, `bot.mixing.process`); `max_stem_bytes`: the most one stem's download may be;
        `languages`: the file's line is said in the place's language (`place_language`), the
        member's answer in theirs."""
        self._languages = languages
        self._store = store
        self._poster = poster
        self._download = download
        self._folder = folder
        self._max_stem_bytes = max_stem_bytes
        self._clock = clock
        self._concurrency = concurrency
        self._processes: MixingProcesses | None = None
        self._backoff = Backoff(base=retry_base, cap=RETRY_CAP, max_attempts=MAX_ATTEMPTS)
        self._claims = ClaimedWork(store.mixes, lease, what="mixes", renewed=self.wake)
        self._worker: DurableWorker[Mix] = DurableWorker(
            name="mixer",
            due=lambda: store.mixes.to_do(clock(), holder=lease.holder),
            key=lambda mix: mix.id,
            step=self._work_on,
            next_due=lambda: store.mixes.next_retry_at(after=clock()),
            clock=clock,
            concurrency=concurrency,
            idle=IDLE_SECONDS,
            error_delay=RETRY_BASE,
        )

    def start(self) -> None:
        """Empty the mix folder (files left by a crash) and start working on the mixes."""
        if not self._worker.running:
            removed = clear_leftovers(self._folder)
            if removed:
                log.info("Removed %s unfinished mix file(s) left from before", removed)
            # The processes start when a mix first needs one.
            self._processes = MixingProcesses(self._concurrency)
            self._worker.start()
            self._claims.start()

    async def stop(self, *, release: bool = True) -> None:
        """Stop working; mixes stopped mid-way resume at the next start (here or elsewhere)."""
        await self._worker.stop()  # a mix cancelled tells its process to stop at its next block
        if self._processes is not None:
            await self._processes.close()
            self._processes = None
        await self._claims.stop(release=release)

    def wake(self) -> None:
        self._worker.wake()

    async def run_due(self) -> int:
        return len(await self._worker.run_due())

    async def _work_on(self, mix: Mix) -> bool:
        return await self._claims.run(mix.id, lambda: self._work_on_claimed(mix.id))

    async def _work_on_claimed(self, mix_id: int) -> None:
        mix = await self._require(mix_id)
        job = await self._store.jobs.get(mix.job_id)
        assert job is not None
        with i18n.speaking(await place_language(self._languages, job)):
            await self._round(job, mix)

    async def _round(self, job: Job, mix: Mix) -> None:
        mix_id = mix.id
        try:
            if mix.state in (MixState.PENDING, MixState.WORKING, MixState.POSTING):
                mix = await self._make_and_post(job, mix)
            if mix.state is MixState.POSTED and not mix.told:
                with i18n.speaking(await self._languages.member(mix.requested_by)):
                    answer = words.posted_answer(job, mix)
                await self._poster.tell(mix, answer)
                await self._store.mixes.told(mix.id)
        except (MixFailed, PlaceRefused) as error:
            await self._fail(job, mix_id, error.reason)
        except PostRetry as error:
            await self._later(job, mix_id, str(error) or because(reasons.DISCORD_NO_ANSWER))
        except MixStopped:
            log.info(
                "job %s: mix %s stopped with the bot; it is made again at the next start", job.id, mix_id
            )
        except Exception:
            log.exception("job %s: mix %s failed unexpectedly; will try again", job.id, mix_id)
            await self._later(job, mix_id, because(reasons.UNEXPECTED))

    async def _make_and_post(self, job: Job, mix: Mix) -> Mix:
        if mix.place is None:
            where = await result_place(self._store, self._poster, job)
            mix = await self._store.mixes.set_place(
                mix.id, where.place, channel_id=where.channel_id, anchor_message_id=where.anchor_message_id
            )
        line = words.file_line(job, mix, stem_names(job))
        if mix.state is MixState.POSTING:
            found = await self._find(job, mix)
            if found is not None:
                return await self._store.mixes.posted(mix.id, found)
            mix = await self._store.mixes.unsent(mix.id)
        mix = await self._store.mixes.working(mix.id)
        made = await self._make(job, mix)
        try:
            await self._store.mixes.posting(mix.id)
            try:
                message_id = await self._poster.post_mix(
                    job, mix, Upload(made, mix.filename), content=line, key=f"mix:{mix.id}"
                )
            except UploadTooLarge:
                await self._store.mixes.unsent(mix.id)  # a 413 posted nothing
                raise MixFailed(because(reasons.MIX_OVER_DISCORD_LIMIT)) from None
            except PlaceRefused:
                await self._store.mixes.unsent(mix.id)
                raise
        finally:
            remove_file(made)
        log.info("job %s: mix %s posted (%s)", job.id, mix.id, mix.filename)
        return await self._store.mixes.posted(mix.id, message_id)

    async def _find(self, job: Job, mix: Mix) -> int | None:
        """The message an unknown outcome may have posted: the bot's, with this mix's line (in
        any language) and file."""
        wanted = comparable_filename(mix.filename)
        lines = words.file_lines(job, mix)
        for message in await self._poster.recent(mix):
            if message.content in lines and any(
                comparable_filename(name) == wanted for name in message.filenames
            ):
                return message.message_id
        return None

    async def _make(self, job: Job, mix: Mix) -> Path:
        """Fetch the chosen stems and mix them, in a mixing process; the finished file (the caller
        removes it). Raises MixFailed naming what failed."""
        self._folder.mkdir(parents=True, exist_ok=True)
        names = [english_stem_name(stem.key) for stem in job.stems]  # stored reasons are English
        urls = await self._sources(job, mix)
        fetched: list[Path] = []
        try:
            for position in mix.positions:
                dest = self._folder / f"mix-{mix.id}-{position}{PART_SUFFIX}"
                try:
                    downloaded = await self._download(urls[position], dest, self._max_stem_bytes)
                except DownloadError as error:
                    raise MixFailed(
                        because(reasons.STEM_NOT_FETCHED, stem=names[position], why=error.reason)
                    ) from None
                fetched.append(downloaded.path)
            out = self._folder / f"mix-{mix.id}{PART_SUFFIX}"
            try:
                result = await self._in_process(fetched, out, max_bytes=mix.upload_limit)
            except StemUnreadable as error:
                name = names[mix.positions[error.index]]
                raise MixFailed(because(reasons.STEM_NOT_AUDIO, stem=name, why=error.reason)) from None
            except MixError as error:
                raise MixFailed(error.reason) from None
            log.info(
                "job %s: mix %s made: %.1f s at %s kbps, %s bytes",
                job.id,
                mix.id,
                result.seconds,
                result.bitrate_kbps,
                result.size,
            )
            return result.path
        finally:
            for path in fetched:
                remove_file(path)

    async def _in_process(self, inputs: Sequence[Path], dest: Path, *, max_bytes: int) -> MixResult:
        """Decode, sum and encode in a mixing process (`run_due` without `start`, as tests drive
        it: in a process started for this mix alone)."""
        if self._processes is not None:
            return await self._processes.mix(inputs, dest, max_bytes=max_bytes)
        alone = MixingProcesses(1)
        try:
            return await alone.mix(inputs, dest, max_bytes=max_bytes)
        finally:
            await alone.close()

    async def _sources(self, job: Job, mix: Mix) -> dict[int, str]:
        """Where each chosen stem is fetched from: the API's links while they live, else the kept
        attachments, their URLs read fresh from their messages."""
        expires = job.links_expire_at
        if expires is None or expires > self._clock():
            return {p: job.stems[p].url for p in mix.positions}
        keep = await self._store.keeps.get(job.id)
        if keep is not None and keep.linked_to is not None:
            keep = await self._store.keeps.get(keep.linked_to)
        stems = {s.position: s for s in await self._store.keeps.stems(keep.job_id)} if keep else {}
        urls: dict[int, str] = {}
        for position in mix.positions:
            kept = stems.get(position)
            url = None
            if keep is not None and kept is not None and kept.message_id is not None:
                url = await self._poster.attachment_url(keep, kept.message_id, kept.filename)
            if url is None:
                stem = english_stem_name(job.stems[position].key)
                raise MixFailed(because(reasons.STEM_EXPIRED, stem=stem))
            urls[position] = url
        return urls

    async def _fail(self, job: Job, mix_id: int, why: str) -> None:
        mix, back = await self._store.mixes.fail(mix_id, why)
        log.info("job %s: mix %s failed: %s (refunded %s)", job.id, mix_id, why, back)
        if mix.state is MixState.FAILED and not mix.told:
            with i18n.speaking(await self._languages.member(mix.requested_by)):
                answer = words.failed_answer(job, mix, back)
            with contextlib.suppress(PostRetry):
                await self._poster.tell(mix, answer)
            await self._store.mixes.told(mix_id)

    async def _later(self, job: Job, mix_id: int, why: str) -> None:
        mix = await self._require(mix_id)
        delay = self._backoff.delay(mix.attempts)
        attempts = await self._store.mixes.retry_later(mix_id, self._clock() + delay, why)
        if mix.state is MixState.POSTED:
            if self._backoff.exhausted(attempts):
                await self._store.mixes.told(mix_id)  # posted; the member's answer is past editing
            return
        if self._backoff.exhausted(attempts):
            if mix.state is MixState.POSTING and await self._posted_after_all(job, mix):
                return
            await self._fail(job, mix_id, why)
        else:
            log.info("job %s: mix %s will try again in %.0f s (%s)", job.id, mix_id, delay, why)

    async def _posted_after_all(self, job: Job, mix: Mix) -> bool:
        """A mix given up on while 'posting': its last upload may have landed with its answer lost.
        Found in its place, it is posted (the member is told at its next round), not failed and
        refunded for a file they have."""
        try:
            found = await self._find(job, mix)
        except PostRetry:
            return False
        if found is None:
            return False
        await self._store.mixes.posted(mix.id, found)
        log.info("job %s: mix %s found posted after its last attempt", job.id, mix.id)
        return True

    async def _require(self, mix_id: int) -> Mix:
        mix = await self._store.mixes.get(mix_id)
        assert mix is not None
        return mix
