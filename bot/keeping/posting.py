"""Posting a keep's stems: downloads packed into messages as Discord's limits allow, each stem's
state stored before the upload that carries it, and what an unknown outcome left 'posting' found
again in the place's recent messages before anything is sent twice."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bot import reasons
from bot.downloads import PART_SUFFIX, Downloaded, DownloadError, DownloadRefused, format_size, remove_file
from bot.keeping.poster import Downloader, PlaceRefused, Poster, PostRetry, Upload, UploadTooLarge
from bot.models import Job, Keep, KeptStem, StemKeepState
from bot.product import stem_name
from bot.reasons import because
from bot.store import Store

log = logging.getLogger(__name__)

FILES_PER_MESSAGE = 10
"""Discord's limit of attachments on one message."""
AUDIO_EXTENSIONS = frozenset({"mp3", "wav", "flac", "ogg", "m4a"})


class StemPosting:
    """Posts one keep's stems in its place (chosen already), one transfer at a time."""

    def __init__(self, store: Store, poster: Poster, download: Downloader, folder: Path) -> None:
        self._store = store
        self._poster = poster
        self._download = download
        self._folder = folder

    async def recover(self, job: Job, keep: Keep, stems: list[KeptStem]) -> list[KeptStem]:
        """Stems 'posting' when the last attempt stopped: find them in the place's recent
        messages (posted, or noted), or send them again. Messages another keep recorded as its
        own are not looked at: its stems have the same names."""
        assert keep.channel_id is not None
        others = await self._store.keeps.messages_of_others(job.id, keep.channel_id)
        recent = [m for m in await self._poster.recent(keep) if m.message_id not in others]
        found_files: dict[str, int] = {}
        for message in recent:
            for name in message.filenames:
                found_files.setdefault(comparable_filename(name), message.message_id)
        for stem in stems:
            if stem.state is not StemKeepState.POSTING:
                continue
            if stem.skipped_why is None:
                message_id = found_files.get(comparable_filename(stem.filename))
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

    async def post_files(self, job: Job, keep: Keep, stems: list[KeptStem]) -> Keep:
        """Download the pending stems in order and post them, as many per message as Discord
        allows, the first message led by a few words; a stem that cannot be downloaded, or is
        too large, is marked to stay a link. The keep as it stands after (its upload limit may
        have come down)."""
        pending = [stem for stem in stems if stem.state is StemKeepState.PENDING]
        first = not any(stem.state is StemKeepState.POSTED for stem in stems)
        folder = self._folder
        folder.mkdir(parents=True, exist_ok=True)
        batch: list[tuple[KeptStem, Downloaded]] = []
        # The upload limit only ever comes down (a 413), and only in `_send`, which returns the
        # keep with it.
        try:
            for stem in pending:
                dest = folder / f"{job.id}-{stem.position}{PART_SUFFIX}"
                try:
                    downloaded = await self._download(job.stems[stem.position].url, dest, keep.upload_limit)
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
                sizes = [d.size for _, d in batch] + [downloaded.size]
                if batch and not fits_in_one_message(sizes, keep.upload_limit):
                    keep = await self._send(job, keep, batch, first=first)
                    batch, first = [], False
                batch.append((stem, downloaded))
            if batch:
                keep = await self._send(job, keep, batch, first=first)
                batch = []
        finally:
            for _, downloaded in batch:
                remove_file(downloaded.path)
        return keep

    async def _named(self, job: Job, stem: KeptStem, downloaded: Downloaded) -> KeptStem:
        """A stem whose link showed no audio extension is named by what its bytes are."""
        if "." in stem.filename:
            return stem
        named = KeptStem(stem.job_id, stem.position, f"{stem.filename}.{downloaded.kind}", stem.state)
        await self._store.keeps.rename(job.id, stem.position, named.filename)
        return named

    async def _send(
        self,
        job: Job,
        keep: Keep,
        batch: list[tuple[KeptStem, Downloaded]],
        *,
        first: bool = False,
    ) -> Keep:
        """Upload one message of files; if Discord says it is too large, pack smaller and retry.
        The files are removed once posted. The keep after (its upload limit lowered by a 413)."""
        positions = [stem.position for stem, _ in batch]
        await self._store.keeps.posting(job.id, positions)
        try:
            message_id = await self._poster.post_files(
                job,
                keep,
                [Upload(downloaded.path, stem.filename) for stem, downloaded in batch],
                first=first,
                key=message_key(job, "files", positions),
            )
        except UploadTooLarge:
            await self._store.keeps.unsent(job.id, positions)  # a 413 posted nothing
            total = sum(downloaded.size for _, downloaded in batch)
            if len(batch) == 1:
                stem, downloaded = batch[0]
                remove_file(downloaded.path)
                lowered = await self._store.keeps.apply(keep.packed_smaller(max(1, downloaded.size - 1)))
                await self._store.keeps.skipped(
                    job.id, stem.position, because(reasons.OVER_DISCORD_LIMIT), size=downloaded.size
                )
                return lowered
            keep = await self._store.keeps.apply(keep.packed_smaller(max(1, total - 1)))
            log.info(
                "job %s: Discord refused %s of files as too large; packing smaller",
                job.id,
                format_size(total),
            )
            middle = len(batch) // 2
            keep = await self._send(job, keep, batch[:middle], first=first)
            return await self._send(job, keep, batch[middle:])
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
        return keep

    async def post_note(self, job: Job, keep: Keep, stems: list[KeptStem]) -> None:
        positions = [stem.position for stem in stems]
        await self._store.keeps.posting(job.id, positions)
        message_id = await self._poster.post_note(
            job,
            keep,
            [(stem, job.stems[stem.position].url) for stem in stems],
            key=message_key(job, "note", positions),
        )
        await self._store.keeps.noted(job.id, positions, message_id)


def message_key(job: Job, kind: str, positions: Sequence[int]) -> str:
    return f"keep:{job.id}:{kind}:{','.join(map(str, positions))}"


def filename(key: str, url: str) -> str:
    """The stem's name with its file's extension from the link (none if the link shows none: the
    downloaded bytes then name it)."""
    suffix = unquote(urlsplit(url).path).rsplit(".", 1)
    extension = suffix[1].lower() if len(suffix) == 2 else ""
    name = stem_name(key)
    return f"{name}.{extension}" if extension in AUDIO_EXTENSIONS else name


def comparable_filename(filename: str) -> str:
    """A filename as Discord may store it (it replaces spaces and some characters)."""
    return re.sub(r"[^0-9a-z.]+", "_", filename.lower())


def _note_mentions(content: str, filename: str) -> bool:
    return filename in content or comparable_filename(filename) in comparable_filename(content)


def fits_in_one_message(sizes: Sequence[int], limit: int) -> bool:
    """Whether files of these sizes may go in one message: at most FILES_PER_MESSAGE of them,
    together within the upload limit. Stems are packed in order, a message filled until the next
    file would not fit."""
    return len(sizes) <= FILES_PER_MESSAGE and sum(sizes) <= limit
