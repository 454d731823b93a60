"""Building the real services for tests, through the same `build_services` as `python -m bot`,
with the Discord side replaced by recorders."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot import models
from bot.keeping import PlaceRefused, PostedMessage, PostRetry, ThreadsUnavailable, Upload, UploadTooLarge
from bot.leases import Lease
from bot.models import (
    AcknowledgedSplit,
    BudgetAlert,
    DeliveredMessage,
    DeliveryVia,
    Job,
    Keep,
    KeepPlace,
    KeptStem,
    PauseReason,
    Refund,
)
from bot.render import keep as keep_words
from bot.runner import DeliveryOutcome, DeliveryResult
from bot.services import Services, build_services
from bot.settings import Secret, Settings
from bot.store import Store


def make_settings(**overrides: Any) -> Settings:
    """Settings as `python -m bot` would load them, with made-up secrets and the given changes."""
    return Settings(discord_token=Secret("test-discord-token"), api_key=Secret("test-key"), **overrides)


TEST_HOLDER = "test-process"


class RecordingDeliverer:
    """Stands in for Discord: records what the member would be shown; can fail on purpose. With
    `record_in`, remembers each result's message in that store as the real deliverer does (a keep
    puts its thread on it)."""

    def __init__(
        self, failures: int = 0, progress_seconds: float = 0.0, *, record_in: Store | None = None
    ) -> None:
        self.progress_seconds = progress_seconds
        self.record_in = record_in
        self.next_message_id = 7_000_000
        self.delivered: list[Job] = []
        self.progress: list[Job] = []
        self.cancelled: list[Job] = []
        self.cancel_refunds: list[Refund | None] = []  # what each cancelled job's message said came back
        self.attempts = 0
        self.failures = failures
        self._changed = asyncio.Event()

    async def deliver(self, job: Job) -> DeliveryOutcome:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            return DeliveryOutcome(DeliveryResult.RETRY)
        if self.record_in is not None:
            self.next_message_id += 1
            await self.record_in.deliveries.record(
                job.id, DeliveryVia.INTERACTION, 0, channel_id=job.channel_id, message_id=self.next_message_id
            )
        self.delivered.append(job)
        self._changed.set()
        return DeliveryOutcome(DeliveryResult.DELIVERED, DeliveryVia.INTERACTION)

    async def show_cancelled(self, job: Job, refund: Refund | None = None) -> None:
        self.cancelled.append(job)
        self.cancel_refunds.append(refund)

    async def show_progress(self, job: Job) -> None:
        await asyncio.sleep(self.progress_seconds)
        self.progress.append(job)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Job]:
        async with asyncio.timeout(timeout):
            while len(self.delivered) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.delivered


class RecordingAnswerer:
    """Stands in for Discord when a split acknowledged by a process that died is answered: records
    each answer; `failures` answers fail first (Discord unreachable), as the real one reports."""

    def __init__(self, failures: int = 0) -> None:
        self.answered: list[AcknowledgedSplit] = []
        self.failures = failures

    async def split_not_started(self, ack: AcknowledgedSplit) -> bool:
        if self.failures > 0:
            self.failures -= 1
            return False
        self.answered.append(ack)
        return True


class AlerterDouble:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def splitting_paused(self, reason: PauseReason) -> None:
        self.events.append(f"paused:{reason}")

    async def splitting_resumed(self) -> None:
        self.events.append("resumed")

    async def budget_alert(self, alert: BudgetAlert) -> None:
        self.events.append(f"budget:{alert.budget.guild_id}:{alert.level}:{alert.budget.spent}")

    async def bot_budget_alert(self, alert: models.DeploymentAlert) -> None:
        self.events.append(f"bot budget:{alert.level}:{alert.budget.spent}")


class RecordingReminders:
    """Stands in for Discord when reminding members: records each reminder; can refuse some."""

    def __init__(self, refusals: int = 0) -> None:
        self.sent: list[tuple[Job, list[DeliveredMessage]]] = []
        self.refusals = refusals
        self.changed = asyncio.Event()

    async def remind(self, job: Job, result: list[DeliveredMessage]) -> bool:
        if self.refusals > 0:
            self.refusals -= 1
            return False
        self.sent.append((job, result))
        self.changed.set()
        return True


def make_services(
    store: Store,
    session: aiohttp.ClientSession,
    settings: Settings | None = None,
    *,
    deliverer: Any = None,
    reminder_sender: Any = None,
    alerter: Any = None,
    keep_poster: Any = None,
    mix_poster: Any = None,
    split_answerer: Any = None,
    **overrides: Any,
) -> Services:
    """The bot's services over `store`, delivering to a `RecordingDeliverer` unless told otherwise.

    Every services a test builds are one process (one lease holder, `TEST_HOLDER`) unless it passes
    its own `lease`: a test's restart is that process coming back, which resumes its jobs at once.
    (A new process on PostgreSQL waits for the old one's leases to lapse: tests/test_processes.py.)
    """
    settings = settings or make_settings()
    # The retry bases are settings; tests that want retries fast still say so here.
    retries = {
        field: overrides.pop(name)
        for name, field in (("delivery_retry_base", "delivery_retry"), ("keep_retry_base", "keep_retry"))
        if name in overrides
    }
    settings = dataclasses.replace(settings, **retries)
    overrides.setdefault("lease", Lease(TEST_HOLDER, settings.job_lease))
    return build_services(
        settings,
        store=store,
        session=session,
        deliverer=deliverer or RecordingDeliverer(),
        reminder_sender=reminder_sender or RecordingReminders(),
        split_answerer=split_answerer or RecordingAnswerer(),
        keep_poster=keep_poster or RecordingPoster(),
        mix_poster=mix_poster or keep_poster or RecordingPoster(),
        alerter=alerter or AlerterDouble(),
        gateway_connected=lambda: True,
        **overrides,
    )


class RecordingPoster:
    """Stands in for Discord when keeping stems: threads, messages with their files' hashes, the
    marks on result messages. Knobs make Discord refuse threads, refuse packs over a size (413),
    fail before a request takes effect, or take it and lose the answer (an unknown outcome), or
    stop there until `release` is set (a test stops the bot meanwhile). A knob names an operation
    ("thread", "files", "note", "recent", "mark") for its next call, or one call of it by its
    number ("files#2": the second upload this poster is asked for), and is used up once."""

    def __init__(self) -> None:
        self.next_id = 9_000_000
        self.threads: dict[int, int] = {}  # anchor message id -> thread id
        self.messages: list[PostedRecord] = []
        self.shown_kept: list[tuple[int, str | None]] = []  # (job id, kept place's channel id)
        self.threads_unavailable = False
        self.accepts_up_to: int | None = None  # a pack larger than this gets 413
        self.refuse_uploads = False  # no permission to attach files
        self.refuse_in_threads = False  # threads can be opened, but not posted in
        self.fail_before: list[str] = []  # operations that fail once, before taking effect
        self.lose_answer: list[str] = []  # operations that take effect once, then fail
        self.hang_before: list[str] = []  # operations that wait for `release`, before taking effect
        self.hang_after: list[str] = []  # operations that take effect, then wait for `release`
        self.hanging = asyncio.Event()  # set when an operation starts waiting for `release`
        self.release = asyncio.Event()
        self.calls: Counter[str] = Counter()  # operation -> how many times it was asked for
        self.changed = asyncio.Event()

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _take(self, operation: str, knob: list[str]) -> bool:
        for name in (f"{operation}#{self.calls[operation]}", operation):
            if name in knob:
                knob.remove(name)
                return True
        return False

    async def _wait_for_release(self) -> None:
        self.hanging.set()
        await self.release.wait()

    async def _before(self, operation: str) -> None:
        self.calls[operation] += 1
        if self._take(operation, self.fail_before):
            raise PostRetry(f"Discord failed ({operation})")
        if self._take(operation, self.hang_before):
            await self._wait_for_release()

    async def _after(self, operation: str) -> None:
        if self._take(operation, self.hang_after):
            await self._wait_for_release()
        if self._take(operation, self.lose_answer):
            raise PostRetry(f"the answer was lost ({operation})")

    async def open_thread(self, job: Job, anchor: DeliveredMessage) -> int:
        await self._before("thread")
        if self.threads_unavailable:
            raise ThreadsUnavailable("no threads here")
        if anchor.message_id not in self.threads:
            self.threads[anchor.message_id] = anchor.message_id
        await self._after("thread")
        return self.threads[anchor.message_id]

    async def post_files(
        self, job: Job, keep: Keep, files: Sequence[Upload], *, first: bool, key: str
    ) -> int:
        await self._before("files")
        if self.refuse_in_threads and keep.place is KeepPlace.THREAD:
            raise PlaceRefused("no permission to post in threads")
        if self.refuse_uploads:
            raise PlaceRefused("no permission to attach files")
        total = sum(upload.path.stat().st_size for upload in files)
        if len(files) > 10 or (self.accepts_up_to is not None and total > self.accepts_up_to):
            raise UploadTooLarge()
        record = PostedRecord(
            keep.channel_id or 0,
            self._id(),
            "first" if first else "",
            [
                (u.filename, hashlib.sha256(u.path.read_bytes()).hexdigest(), u.path.stat().st_size)
                for u in files
            ],
            keep.anchor_message_id if keep.place is KeepPlace.REPLIES else None,
        )
        self.messages.append(record)
        self.changed.set()
        await self._after("files")
        return record.message_id

    async def post_note(
        self, job: Job, keep: Keep, stems: Sequence[tuple[KeptStem, str]], *, key: str
    ) -> int:
        await self._before("note")
        record = PostedRecord(keep.channel_id or 0, self._id(), keep_words.skipped_note(job, stems), [], None)
        self.messages.append(record)
        await self._after("note")
        return record.message_id

    async def recent(self, keep: Keep) -> list[PostedMessage]:
        await self._before("recent")
        return [
            PostedMessage(m.message_id, m.content, tuple(name for name, _, _ in m.files))
            for m in reversed(self.messages)
            if m.channel_id == keep.channel_id
        ]

    async def show_kept(self, job: Job, keep: Keep, result: list[DeliveredMessage]) -> None:
        await self._before("mark")
        self.shown_kept.append((job.id, str(keep.channel_id)))
        await self._after("mark")

    def files(self) -> list[str]:
        """Every file posted, by name, in order."""
        return [name for message in self.messages for name, _, _ in message.files]


@dataclass
class PostedRecord:
    channel_id: int
    message_id: int
    content: str
    files: list[tuple[str, str, int]]  # (filename, sha256, size)
    reply_to: int | None
