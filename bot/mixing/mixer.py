"""`Mixer`: what the rest of the bot holds of mixing, the requests and the worker over one store."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bot.keeping.place import ENGLISH_ONLY, Languages
from bot.keeping.poster import Downloader
from bot.leases import Lease
from bot.mixing.poster import MixPoster
from bot.mixing.requests import MixRequests
from bot.mixing.worker import RETRY_BASE, MixWorker
from bot.store import Store


class Mixer:
    """Mixing stems: the requests (`job`, `price`, `request`) and the worker (`start`, `stop`, `wake`,
    `run_due`) over one store."""

    def __init__(
        self,
        store: Store,
        poster: MixPoster,
        download: Downloader,
        *,
        lease: Lease,
        folder: Path,
        concurrency: int = 1,
        max_stem_bytes: int = 100 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
        retry_base: float = RETRY_BASE,
        languages: Languages = ENGLISH_ONLY,
    ) -> None:
        """`languages`: what the file's name and line are said in (the server's language, or the
        member's for a DM result), and the member's own for their private answer."""
        self.worker = MixWorker(
            store,
            poster,
            download,
            lease=lease,
            folder=folder,
            concurrency=concurrency,
            max_stem_bytes=max_stem_bytes,
            clock=clock,
            retry_base=retry_base,
            languages=languages,
        )
        self.requests = MixRequests(store, clock=clock, asked=self.worker.wake, languages=languages)
        # The parts' own methods, not wrappers that repeat their signatures.
        self.job = self.requests.job
        self.price = self.requests.price
        self.request = self.requests.request
        self.start = self.worker.start
        self.stop = self.worker.stop
        self.wake = self.worker.wake
        self.run_due = self.worker.run_due
