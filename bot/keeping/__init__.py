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
left in the folder after a crash is removed at start-up. This package knows nothing of Discord:
the `Poster` is the Discord side.

The parts: `requests` (who may keep what, and when it is refused), `worker` (the durable worker
that does the keeping), `posting` (packing and posting the files, and finding them again after an
unknown outcome), `twins` (the same stems kept elsewhere here), `poster` (what Discord and the
file host must provide). `Keeper` is what the rest of the bot holds: the two sides in one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bot.keeping.place import ENGLISH_ONLY, Languages
from bot.keeping.poster import (
    Downloader,
    PlaceRefused,
    PostedMessage,
    Poster,
    PostRetry,
    ThreadsUnavailable,
    Upload,
    UploadTooLarge,
)
from bot.keeping.posting import AUDIO_EXTENSIONS, FILES_PER_MESSAGE, fits_in_one_message
from bot.keeping.requests import KeepRequest, KeepRequests, offers_keep_button
from bot.keeping.twins import Twins
from bot.keeping.worker import MAX_ATTEMPTS, RETRY_BASE, RETRY_CAP, WAIT_FOR_TWIN, KeepWorker
from bot.leases import Lease
from bot.library import LibraryService
from bot.store import Store

__all__ = [
    "AUDIO_EXTENSIONS",
    "FILES_PER_MESSAGE",
    "MAX_ATTEMPTS",
    "RETRY_BASE",
    "RETRY_CAP",
    "WAIT_FOR_TWIN",
    "Downloader",
    "KeepRequest",
    "Keeper",
    "Languages",
    "PlaceRefused",
    "PostRetry",
    "PostedMessage",
    "Poster",
    "ThreadsUnavailable",
    "Upload",
    "UploadTooLarge",
    "fits_in_one_message",
    "offers_keep_button",
]


class Keeper:
    """Keeping stems in Discord: the requests (`request`, `setting`) and the worker (`start`,
    `stop`, `wake`, `run_due`) over one store."""

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
        languages: Languages = ENGLISH_ONLY,
    ) -> None:
        """`languages`: what the thread's name, notes and files' names are said in (the server's
        language, or the member's for a DM result)."""
        twins = Twins(store)
        self.worker = KeepWorker(
            store,
            poster,
            download,
            twins,
            lease=lease,
            folder=folder,
            concurrency=concurrency,
            clock=clock,
            retry_base=retry_base,
            languages=languages,
        )
        self.requests = KeepRequests(store, library, twins, clock=clock, asked=self.worker.wake)
        # The requests' own methods, not wrappers that repeat their signatures.
        self.request = self.requests.request
        self.setting = self.requests.setting

    def start(self) -> None:
        self.worker.start()

    async def stop(self, *, release: bool = True) -> None:
        await self.worker.stop(release=release)

    def wake(self) -> None:
        self.worker.wake()

    async def run_due(self) -> int:
        return await self.worker.run_due()
