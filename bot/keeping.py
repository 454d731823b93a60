"""Keeping results in Discord: every stem downloaded once and posted as an audio attachment in a
thread on the result message, so the files outlive the API's 14-day links (issue 9).

Who may keep a result: its member or a moderator (`bot.library`), where the server's `keep_stems`
setting is not 'off'. Asking only records the wish (`store.keeps`); a worker does the rest, from
the database, like the reminders: after a restart it carries on where it stopped.

Exactly once: each stem's state is stored, and 'posting' is written before the upload that carries
it. A stem found 'posting' after a crash or an unknown answer from Discord is looked for in the
place's recent messages before anything is sent again. Two presses at once make one keep, and the
same stems already kept in the server (shared, reused or split again) are linked, not uploaded
again, when their result is in the same channel (elsewhere they are kept again: a link would
point into a channel the member may not see).

Files wait on disk between download and upload, never in memory. At most `concurrency` results
are worked on at once for the whole bot, each one transfer at a time: so at most that many
downloads and uploads run at once, and the disk holds at most that many messages' files. What is
left in the folder after a crash is removed at start-up. This module knows nothing of Discord:
the `Poster` is the Discord side.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from bot.downloads import (
    PART_SUFFIX,
    Downloaded,
    DownloadError,
    DownloadRefused,
    clear_leftovers,
    format_size,
    remove_file,
)
from bot.errors import CannotAttachFiles, KeepingOff, LinksExpired, NothingToKeep, UnknownJob
from bot.invite import PERMISSIONS
from bot.leases import Beat, Lease
from bot.library import LibraryService
from bot.models import (
    DeliveredMessage,
    Delivery,
    DeliveryVia,
    Job,
    JobState,
    Keep,
    KeepPlace,
    KeepState,
    KeepStems,
    KeptStem,
    StemKeepState,
)
from bot.product import DEFAULT_UPLOAD_LIMIT, stem_name
from bot.quota import Actor
from bot.store import Store
from bot.tasks import log_failure

log = logging.getLogger(__name__)

FILES_PER_MESSAGE = 10
"""Discord's limit of attachments on one message."""
AUDIO_EXTENSIONS = frozenset({"mp3", "wav", "flac", "ogg", "m4a"})
MAX_ATTEMPTS = 8
"""Rounds that failed in a way that may pass before a keep gives up."""
RETRY_BASE = 5.0
RETRY_CAP = 900.0
WAIT_FOR_TWIN = 5.0
"""How long a keep waits while the same stems are being kept for another job here."""
IDLE_SECONDS = 3600.0


# -- the Discord side -------------------------------------------------------------------------


class PostRetry(Exception):
    """Discord failed in a way that may pass (5xx, network, rate limit): try again later. Whether
    the request took effect is unknown."""


class PlaceRefused(Exception):
    """Discord refused for good: no permission here, or a channel that cannot hold this. `reason`
    is plain words, safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ThreadsUnavailable(PlaceRefused):
    """A thread cannot be opened on this message (permission, or a channel without threads)."""


class UploadTooLarge(Exception):
    """Discord answered 413: the files of this message together are over what it accepts. Nothing
    was posted."""


@dataclass(frozen=True, slots=True)
class Upload:
    path: Path
    filename: str


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """One of the bot's own messages in a place, as far as finding what it posted needs."""

    message_id: int
    content: str
    filenames: tuple[str, ...]


class Poster(Protocol):
    """Posts a kept result's files (the Discord side, `bot.keeper`)."""

    async def open_thread(self, job: Job, anchor: DeliveredMessage) -> int:
        """Open a thread on the result message `anchor`, or find the one already on it; its id.
        Raises ThreadsUnavailable, PostRetry."""
        ...

    async def post_files(
        self, job: Job, keep: Keep, files: Sequence[Upload], *, first: bool, key: str
    ) -> int:
        """Post one message with these files in the keep's place (for REPLIES, a reply to its
        anchor), led by a few words if it is the `first`; its id. `key` names this message's
        content: the same key sent again within minutes must not post it twice (Discord's
        enforced nonce). Raises UploadTooLarge, PlaceRefused, PostRetry."""
        ...

    async def post_note(
        self, job: Job, keep: Keep, stems: Sequence[tuple[KeptStem, str]], *, key: str
    ) -> int:
        """Post the note that these stems (each with its URL) stay links, and why, naming each
        by its filename; its id. Raises PlaceRefused, PostRetry."""
        ...

    async def recent(self, keep: Keep) -> list[PostedMessage]:
        """The bot's own recent messages in the keep's place. Raises PostRetry."""
        ...

    async def show_kept(self, job: Job, keep: Keep, result: list[DeliveredMessage]) -> None:
        """Make the result's messages say the stems are kept, with a link. Raises PostRetry."""
        ...


class Downloader(Protocol):
    """Fetches one stem into `dest`, at most `max_bytes` (`bot.downloads.download_stem`)."""

    async def __call__(self, url: str, dest: Path, max_bytes: int) -> Downloaded: ...


async def offers_keep_button(store: Store, job: Job) -> bool:
    """Whether the job's result message carries the Keep in Discord button: a success with stems,
    where the server has not turned keeping off."""
    if job.state is not JobState.SUCCEEDED or not job.stems:
        return False
    settings, _ = await store.economy.get(job.guild_id)
    return settings.keep_stems is not KeepStems.OFF


# -- the service ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeepRequest:
    """What asking to keep a result did: the job, its keep, and whether this ask started it
    (False: it was already kept, or being kept)."""

    job: Job
    keep: Keep
    started: bool
    last_failure: str | None = None  # why the previous try failed, when this one starts over


class Keeper:
    def __init__(
        self,
        store: Store,
        library: LibraryService,
        poster: Poster,
        download: Downloader,
        *,
        lease: Lease,
        folder: Path,
        concurrency: int = 2,
        clock: Callable[[], float] = time.time,
        retry_base: float = RETRY_BASE,
    ) -> None:
        """`lease`: this process's claims on keeps; a keep is worked on only by the process that
        claimed it (several processes on one PostgreSQL database)."""
        self._store = store
        self._lease = lease
        self._beat = Beat(self._keep_claims, lease.renew_every, name="keep leases")
        self._library = library
        self._poster = poster
        self._download = download
        self._folder = folder
        self._concurrency = concurrency
        self._clock = clock
        self._retry_base = retry_base
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._working: dict[int, asyncio.Task[None]] = {}

    # -- asking --

    async def setting(self, guild_id: int) -> KeepStems:
        settings, _ = await self._store.economy.get(guild_id)
        return settings.keep_stems

    async def request(
        self,
        guild_id: int | None,
        actor: Actor,
        job_id: int,
        *,
        channel_id: int | None = None,
        attach_here: bool = True,
        upload_limit: int | None = None,
    ) -> KeepRequest:
        """Keep job #`job_id`'s stems in Discord, asked in `guild_id` (None: in a DM, where only
        the member's own results can be kept). `attach_here`: whether Discord says the bot may
        attach files in `channel_id`, where this was asked (elsewhere, what Discord said at the
        /split counts); `upload_limit`: the limit Discord reported with this ask (the job's own
        wins). Raises a `KeepRefused` (or UnknownJob / NotYourJob) with plain words; nothing is
        changed then."""
        if guild_id is None:
            found = await self._store.jobs.get(job_id)
            if found is None or found.user_id != actor.user_id:
                raise UnknownJob(job_id)
            job = found
        else:
            job = await self._library.job(guild_id, actor, job_id, action="keep")
        if await self.setting(job.guild_id) is KeepStems.OFF:
            raise KeepingOff()
        existing = await self._store.keeps.get(job.id)
        if existing is not None and existing.state is not KeepState.FAILED:
            return KeepRequest(job, existing, started=False)
        if job.state is not JobState.SUCCEEDED or not job.stems:
            raise NothingToKeep(job.id, job.state, delivered=job.delivery is Delivery.DELIVERED)
        if job.delivery is not Delivery.DELIVERED:
            raise NothingToKeep(job.id, job.state, delivered=False)
        twin = await self._kept_twin(job)
        if twin is None:
            if job.links_expire_at is not None and job.links_expire_at <= self._clock():
                raise LinksExpired(job.id, job.links_expire_at)
            if job.delivered_via is not DeliveryVia.DM and not _may_attach(job, channel_id, attach_here):
                raise CannotAttachFiles()
        limit = _positive(job.filesize_limit) or _positive(upload_limit) or DEFAULT_UPLOAD_LIMIT
        keep, started = await self._store.keeps.request(job, requested_by=actor.user_id, upload_limit=limit)
        if started and twin is not None:
            await self._store.keeps.link(job.id, twin)
            keep = await self._require(job.id)
        log.info(
            "job %s guild=%s: keep in Discord asked by %s (%s)",
            job.id,
            job.guild_id,
            actor.user_id,
            "linked to the same stems" if twin else "started" if started else "already asked",
        )
        self.wake()
        last_failure = existing.failure if existing is not None and started else None
        return KeepRequest(job, keep, started, last_failure)

    # -- the worker --

    def start(self) -> None:
        """Empty the download folder (files left by a crash) and start working on the keeps."""
        if self._task is None:
            removed = clear_leftovers(self._folder)
            if removed:
                log.info("Removed %s unfinished stem download(s) left from before", removed)
            self._task = asyncio.create_task(self._run(), name="keeper")
            self._task.add_done_callback(log_failure)
            self._beat.start()

    async def stop(self, *, release: bool = True) -> None:
        """Stop working; the keeps stopped mid-way are released to other processes (`release=False`
        leaves their claims to lapse, as a crash would, for tests) and resume where they stopped."""
        tasks = [t for t in (self._task, *self._working.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._beat.stop()
        self._task = None
        self._working.clear()
        if release:
            try:
                await self._store.keeps.release(self._lease.holder)
            except Exception as error:  # the database is down: the claims lapse instead
                log.warning(
                    "Could not release this process's keeps (%s: %.200s)", type(error).__name__, error
                )

    async def _keep_claims(self) -> None:
        """Every third of the lease: renew the claims on the keeps being worked on here, and look
        for keeps whose process died (their lease lapsed)."""
        await self._store.keeps.renew(self._lease)
        self.wake()

    def wake(self) -> None:
        """Something may be due now: a keep was asked for, or a result delivered."""
        self._wake.set()

    async def run_due(self) -> int:
        """Start every keep due now that is not already being worked on; wait for them all. How
        many were taken up (for tests and the worker loop)."""
        started = self._start_due(await self._to_do())
        await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                self._start_due(await self._to_do())
                delay = await self._until_next()
            except Exception:
                log.exception("Keeping stems: a round failed; trying again later")
                delay = RETRY_BASE
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _to_do(self) -> list[Keep]:
        return await self._store.keeps.to_do(self._clock(), holder=self._lease.holder)

    def _start_due(self, keeps: list[Keep]) -> list[asyncio.Task[None]]:
        started = []
        for keep in keeps:
            if len(self._working) >= self._concurrency:
                break  # the rest wait for a free slot (a keep ending wakes the worker)
            if keep.job_id in self._working:
                continue
            task = asyncio.create_task(self._work_on(keep.job_id), name=f"keep-{keep.job_id}")
            self._working[keep.job_id] = task
            task.add_done_callback(functools.partial(self._finished, keep.job_id))
            started.append(task)
        return started

    def _finished(self, job_id: int, task: asyncio.Task[None]) -> None:
        if self._working.get(job_id) is task:
            del self._working[job_id]
        log_failure(task)
        self._wake.set()  # its next step (or a twin waiting for it) may be due

    async def _until_next(self) -> float:
        # A keep due by now was just taken up (or waits for one to end, which wakes the worker):
        # looking again while it works would only poll.
        now = self._clock()
        at = await self._store.keeps.next_retry_at(after=now)
        if at is None:
            return IDLE_SECONDS
        return max(0.05, min(IDLE_SECONDS, at - now))

    async def _work_on(self, job_id: int) -> None:
        """One round of work on a keep, under this process's claim (released when the round ends,
        so any process may take the next one; a round cut short by stopping keeps it until then)."""
        if not await self._store.keeps.claim(job_id, self._lease):
            return  # another process took it up first
        try:
            await self._work_on_claimed(job_id)
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._store.keeps.release(self._lease.holder, job_id)
            raise
        await self._store.keeps.release(self._lease.holder, job_id)

    async def _work_on_claimed(self, job_id: int) -> None:
        keep = await self._require(job_id)
        job = await self._store.jobs.get(job_id)
        assert job is not None
        try:
            if keep.state in (KeepState.PENDING, KeepState.WORKING):
                keep = await self._keep(job, keep)
            if keep.state is KeepState.KEPT and not keep.marked:
                await self._poster.show_kept(job, keep, await self._store.deliveries.result_messages(job.id))
                await self._store.keeps.mark(job.id)
                log.info("job %s: kept in Discord (%s %s)", job.id, keep.place, keep.channel_id)
        except PostRetry as error:
            await self._later(job, str(error) or "Discord did not answer")
        except PlaceRefused as error:
            if await self._fall_back_to_replies(job, error):
                return
            log.info("job %s: keeping in Discord refused: %s", job.id, error.reason)
            await self._store.keeps.fail(job.id, error.reason)
        except _Wait:
            pass
        except Exception:
            # A defect or the disk (full, say): never a tight loop; the stems' states stand.
            log.exception("job %s: keeping in Discord failed unexpectedly; will try again", job.id)
            await self._later(job, "an unexpected error")

    async def _later(self, job: Job, why: str) -> None:
        keep = await self._require(job.id)
        delay = min(RETRY_CAP, self._retry_base * 2**keep.attempts)
        attempts = await self._store.keeps.retry_later(job.id, self._clock() + delay, why)
        if attempts >= MAX_ATTEMPTS and keep.state is KeepState.KEPT:
            log.warning("job %s: could not show on the result that it is kept (%s); leaving it", job.id, why)
            await self._store.keeps.mark(job.id)
        elif attempts >= MAX_ATTEMPTS:
            log.warning("job %s: keeping in Discord failed %s times (%s); giving up", job.id, attempts, why)
            await self._store.keeps.fail(job.id, why)
        else:
            log.info("job %s: keeping in Discord will try again in %.0f s (%s)", job.id, delay, why)

    async def _keep(self, job: Job, keep: Keep) -> Keep:
        """Post every stem not yet posted, then the note about those that stay links; the keep
        as it stands after."""
        twin = await self._kept_twin(job)
        if twin is not None:
            await self._store.keeps.link(job.id, twin)
            return await self._require(job.id)
        if await self._twin_at_work(job, keep):
            await self._store.keeps.retry_later(
                job.id, self._clock() + WAIT_FOR_TWIN, "the same stems are being kept", count=False
            )
            raise _Wait()
        stems = await self._store.keeps.start(
            job.id, [(index, _filename(stem.key, stem.url)) for index, stem in enumerate(job.stems)]
        )
        if keep.place is None:
            keep = await self._choose_place(job)
        if any(stem.state is StemKeepState.POSTING for stem in stems):
            stems = await self._recover(job, keep, stems)
        await self._post_files(job, keep, stems)
        stems = await self._store.keeps.stems(job.id)
        unnoted = [s for s in stems if s.state is StemKeepState.SKIPPED and s.message_id is None]
        if unnoted:
            await self._post_note(job, keep, unnoted)
        await self._store.keeps.finish(job.id)
        return await self._require(job.id)

    async def _fall_back_to_replies(self, job: Job, error: PlaceRefused) -> bool:
        """The bot could open the thread but not post in it (no Send Messages in Threads, say):
        if nothing is in the thread yet, post the files as replies to the result instead. Whether
        it did (the keep then goes on at once)."""
        keep = await self._require(job.id)
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
        await self._store.keeps.set_place(
            job.id,
            KeepPlace.REPLIES,
            channel_id=result[0].channel_id,
            anchor_message_id=keep.anchor_message_id,
        )
        self.wake()
        return True

    async def _choose_place(self, job: Job) -> Keep:
        """A thread on the first message of the result; replies to it where threads cannot be
        made; the DM for a result delivered by DM."""
        result = await self._store.deliveries.result_messages(job.id)
        if not result or result[0].channel_id is None:
            raise PlaceRefused("the result message could not be found")
        anchor = result[0]
        assert anchor.channel_id is not None
        if anchor.via is DeliveryVia.DM:
            place, channel_id = KeepPlace.DM, anchor.channel_id
        else:
            try:
                place, channel_id = KeepPlace.THREAD, await self._poster.open_thread(job, anchor)
            except ThreadsUnavailable as error:
                log.info("job %s: no thread (%s); posting the files as replies", job.id, error.reason)
                place, channel_id = KeepPlace.REPLIES, anchor.channel_id
        await self._store.keeps.set_place(
            job.id, place, channel_id=channel_id, anchor_message_id=anchor.message_id
        )
        return await self._require(job.id)

    async def _recover(self, job: Job, keep: Keep, stems: list[KeptStem]) -> list[KeptStem]:
        """Stems 'posting' when the last attempt stopped: find them in the place's recent
        messages (posted, or noted), or send them again. Messages another keep recorded as its
        own are not looked at: its stems have the same names."""
        assert keep.channel_id is not None
        others = await self._store.keeps.messages_of_others(job.id, keep.channel_id)
        recent = [m for m in await self._poster.recent(keep) if m.message_id not in others]
        found_files: dict[str, int] = {}
        for message in recent:
            for name in message.filenames:
                found_files.setdefault(_comparable(name), message.message_id)
        for stem in stems:
            if stem.state is not StemKeepState.POSTING:
                continue
            if stem.skipped_why is None:
                message_id = found_files.get(_comparable(stem.filename))
                if message_id is not None:
                    await self._store.keeps.posted(job.id, [stem.position], message_id)
                    continue
            else:
                note = next((m for m in recent if _note_mentions(m.content, stem.filename)), None)
                if note is not None:
                    await self._store.keeps.noted(job.id, [stem.position], note.message_id)
                    continue
            await self._store.keeps.unsent(job.id, [stem.position])
        log.info(
            "job %s: resumed keeping after an unknown outcome (%s recent messages read)", job.id, len(recent)
        )
        return await self._store.keeps.stems(job.id)

    async def _post_files(self, job: Job, keep: Keep, stems: list[KeptStem]) -> None:
        """Download the pending stems in order and post them, as many per message as Discord
        allows, the first message led by a few words; a stem that cannot be downloaded, or is
        too large, is marked to stay a link."""
        pending = [stem for stem in stems if stem.state is StemKeepState.PENDING]
        first = not any(stem.state is StemKeepState.POSTED for stem in stems)
        folder = self._folder
        folder.mkdir(parents=True, exist_ok=True)
        batch: list[tuple[KeptStem, Downloaded]] = []
        try:
            for stem in pending:
                limit = (await self._require(job.id)).upload_limit
                dest = folder / f"{job.id}-{stem.position}{PART_SUFFIX}"
                try:
                    downloaded = await self._download(job.stems[stem.position].url, dest, limit)
                except DownloadRefused as error:
                    log.info("job %s: stem %s not kept: %s", job.id, stem.filename, error.reason)
                    await self._store.keeps.skipped(job.id, stem.position, error.reason, size=error.size)
                    continue
                except DownloadError as error:
                    log.info(
                        "job %s: stem %s could not be downloaded: %s", job.id, stem.filename, error.reason
                    )
                    await self._store.keeps.skipped(job.id, stem.position, error.reason)
                    continue
                stem = await self._named(job, stem, downloaded)
                if batch and not fits_in_one_message([d.size for _, d in batch] + [downloaded.size], limit):
                    await self._send(job, keep, batch, first=first)
                    batch, first = [], False
                batch.append((stem, downloaded))
            if batch:
                await self._send(job, keep, batch, first=first)
                batch = []
        finally:
            for _, downloaded in batch:
                remove_file(downloaded.path)

    async def _named(self, job: Job, stem: KeptStem, downloaded: Downloaded) -> KeptStem:
        """A stem whose link showed no audio extension is named by what its bytes are."""
        if "." in stem.filename:
            return stem
        named = KeptStem(stem.job_id, stem.position, f"{stem.filename}.{downloaded.kind}", stem.state)
        await self._store.keeps.rename(job.id, stem.position, named.filename)
        return named

    async def _send(
        self, job: Job, keep: Keep, batch: list[tuple[KeptStem, Downloaded]], *, first: bool = False
    ) -> None:
        """Upload one message of files; if Discord says it is too large, pack smaller and retry.
        The files are removed once posted."""
        positions = [stem.position for stem, _ in batch]
        await self._store.keeps.posting(job.id, positions)
        try:
            message_id = await self._poster.post_files(
                job,
                keep,
                [Upload(downloaded.path, stem.filename) for stem, downloaded in batch],
                first=first,
                key=_message_key(job, "files", positions),
            )
        except UploadTooLarge:
            await self._store.keeps.unsent(job.id, positions)  # a 413 posted nothing
            total = sum(downloaded.size for _, downloaded in batch)
            if len(batch) == 1:
                stem, downloaded = batch[0]
                remove_file(downloaded.path)
                await self._store.keeps.lower_limit(job.id, max(1, downloaded.size - 1))
                await self._store.keeps.skipped(
                    job.id, stem.position, "larger than Discord accepts here", size=downloaded.size
                )
                return
            await self._store.keeps.lower_limit(job.id, max(1, total - 1))
            log.info(
                "job %s: Discord refused %s of files as too large; packing smaller",
                job.id,
                format_size(total),
            )
            middle = len(batch) // 2
            await self._send(job, keep, batch[:middle], first=first)
            await self._send(job, keep, batch[middle:])
            return
        except PlaceRefused:
            await self._store.keeps.unsent(job.id, positions)
            for _, downloaded in batch:
                remove_file(downloaded.path)
            raise
        except PostRetry:
            for _, downloaded in batch:
                remove_file(downloaded.path)  # downloaded again next time, if the thread lacks them
            raise
        await self._store.keeps.posted(job.id, positions, message_id)
        for _, downloaded in batch:
            remove_file(downloaded.path)

    async def _post_note(self, job: Job, keep: Keep, stems: list[KeptStem]) -> None:
        positions = [stem.position for stem in stems]
        await self._store.keeps.posting(job.id, positions)
        message_id = await self._poster.post_note(
            job,
            keep,
            [(stem, job.stems[stem.position].url) for stem in stems],
            key=_message_key(job, "note", positions),
        )
        await self._store.keeps.noted(job.id, positions, message_id)

    async def _kept_twin(self, job: Job) -> Keep | None:
        """The keep of the same stems in this server that holds the files, if one is done, next
        to this result (see `_twins_here`)."""
        for other in await self._twins_here(job):
            if other.state is KeepState.KEPT and other.linked_to is None:
                return other
        return None

    async def _twins_here(self, job: Job) -> list[Keep]:
        """The keeps of the same stems whose result is in the same channel as this job's: only
        their files may stand for this one's. A thread elsewhere may be in a channel the member
        cannot see (a staff-only one): a link there would reveal it and leave nothing where their
        result is, so the stems are kept again here. A member's DM is theirs alone."""
        here = await self._result_channel(job.id)
        if here is None:
            return []
        twins = []
        for other in await self._store.keeps.same_track(job):
            if other.place is KeepPlace.DM:
                continue
            if await self._result_channel(other.job_id) == here:
                twins.append(other)
        return twins

    async def _result_channel(self, job_id: int) -> int | None:
        """The channel the job's result was posted in: where its keep's thread opens (the
        thread's parent) or its replies go."""
        result = await self._store.deliveries.result_messages(job_id)
        return result[0].channel_id if result else None

    async def _twin_at_work(self, job: Job, keep: Keep) -> bool:
        """Whether a keep of the same stems here, asked for before this one, is still being
        worked on: this one then waits for it and links to it rather than uploading the files
        twice. One that has begun posting carries on (it has a place); a twin that would not be
        linked (a DM, another channel) is not waited for."""
        if keep.place is not None:
            return False
        return any(
            other.state in (KeepState.PENDING, KeepState.WORKING)
            and (other.created_at, other.job_id) < (keep.created_at, keep.job_id)
            for other in await self._twins_here(job)
        )

    async def _require(self, job_id: int) -> Keep:
        keep = await self._store.keeps.get(job_id)
        assert keep is not None
        return keep


class _Wait(Exception):
    """This keep waits (for another), without counting as a failure."""


def _message_key(job: Job, kind: str, positions: Sequence[int]) -> str:
    return f"keep:{job.id}:{kind}:{','.join(map(str, positions))}"


def _may_attach(job: Job, channel_id: int | None, attach_here: bool) -> bool:
    """Whether the bot may attach files in the job's channel: Discord's word with this ask if it
    came from there, else its word at the /split (jobs from before that was stored: assumed)."""
    if channel_id == job.channel_id:
        return attach_here
    return job.app_permissions is None or bool(job.app_permissions & PERMISSIONS["Attach Files"])


def _positive(value: int | None) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _filename(key: str, url: str) -> str:
    """The stem's name with its file's extension from the link (none if the link shows none: the
    downloaded bytes then name it)."""
    suffix = unquote(urlsplit(url).path).rsplit(".", 1)
    extension = suffix[1].lower() if len(suffix) == 2 else ""
    name = stem_name(key)
    return f"{name}.{extension}" if extension in AUDIO_EXTENSIONS else name


def _comparable(filename: str) -> str:
    """A filename as Discord may store it (it replaces spaces and some characters)."""
    return re.sub(r"[^0-9a-z.]+", "_", filename.lower())


def _note_mentions(content: str, filename: str) -> bool:
    return filename in content or _comparable(filename) in _comparable(content)


def fits_in_one_message(sizes: Sequence[int], limit: int) -> bool:
    """Whether files of these sizes may go in one message: at most FILES_PER_MESSAGE of them,
    together within the upload limit. Stems are packed in order, a message filled until the next
    file would not fit."""
    return len(sizes) <= FILES_PER_MESSAGE and sum(sizes) <= limit
