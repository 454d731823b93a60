"""The sandbox's task lifecycle: tasks made from accepted submits, kept a bounded time in a bounded
number, finished lazily (a task is done once `time.monotonic()` passes its completion time, so a
poll costs a comparison), and called back by one `loop.call_later` timer per task."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Callable

import aiohttp
from yarl import URL

from bot.sandbox.contract import (
    CALLBACK_EXCEPTION,
    DEFAULT_TASK_LIFETIME,
    FAILURE_OUTCOMES,
    MAX_TASKS,
    PENDING,
    STEMS_2,
    STEMS_12,
    SUCCESS,
    SandboxTask,
    SubmitRequest,
    callback_block_reason,
    callback_payload,
)
from bot.sandbox.observer import CallbackAttempt, SandboxObserver, Unobserved

log = logging.getLogger(__name__)

CALLBACK_TIMEOUT = 15.0
"""How long one callback POST may take."""

StemUrl = Callable[[str, str], str]
"""Where a task's stem is served: (task id, stem) -> URL."""


class TaskBook:
    """The tasks of one sandbox. A task is forgotten `lifetime` seconds after its submit (the bot
    passes twice its job timeout), and at most `MAX_TASKS` are kept; ids come from `rng` (seed it
    and a run is reproducible)."""

    def __init__(self, *, lifetime: float = DEFAULT_TASK_LIFETIME, rng: random.Random | None = None) -> None:
        self.lifetime = lifetime
        self.rng = rng or random.Random()
        self.observer: SandboxObserver = Unobserved()
        self.tasks: dict[str, SandboxTask] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.deliveries: set[asyncio.Task[None]] = set()
        self._expiry: asyncio.TimerHandle | None = None  # forgets the oldest task when it expires
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None

    def started(self) -> None:
        """Call from the serving event loop before the first request."""
        self._loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()

    @property
    def capacity(self) -> int:
        """The most tasks kept at once: `MAX_TASKS` (a module constant, read when asked, so a
        test may lower it)."""
        return MAX_TASKS

    @property
    def full(self) -> bool:
        return len(self.tasks) >= self.capacity

    def new_task(
        self, request: SubmitRequest, *, processing: float, outcome: str, stem_url: StemUrl
    ) -> SandboxTask:
        """A task for an accepted submit, finishing `processing` seconds from now as `outcome`;
        not kept until `add`."""
        stems: tuple[str, ...] = STEMS_2 if request.mode == "separate_vocal" else STEMS_12
        if request.stem_name is not None:
            stems = (request.stem_name,)
        now, now_mono = time.time(), time.monotonic()
        task = SandboxTask(
            task_id=f"{self.rng.getrandbits(128):032x}",
            source_task_id=request.source_task_id,
            audio_id=request.audio_id,
            mode=request.mode,
            callback_url=request.callback_url,
            created_at=now,
            complete_at=now + processing,
            completed_at_monotonic=now_mono + processing,
            outcome=PENDING,
            stems={},
            price=request.price,
            stem_name=request.stem_name,
        )
        for stem in stems:
            task.stems[stem] = stem_url(task.task_id, stem)
            task.origin_ids[stem] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        task.set_outcome(outcome)
        task.expires_at_monotonic = now_mono + self.lifetime
        return task

    def add(self, task: SandboxTask) -> None:
        """Keep `task` and arm its callback (unless `callback_skipped` already says why not)."""
        self.tasks[task.task_id] = task
        self._arm_expiry()
        self._arm_callback(task)

    def finish_now(self, task_id: str, outcome: str | None = None) -> None:
        """Complete a pending task immediately (optionally with another outcome).

        On an already finished task only the outcome is changed; no new callback is sent.
        """
        task = self.tasks[task_id]
        if task.is_complete():
            if outcome is not None and outcome != task.outcome:
                task.set_outcome(outcome)
            return
        if outcome is not None:
            task.set_outcome(outcome)
        task.complete_at = time.time()
        task.completed_at_monotonic = time.monotonic()
        task.done_body = None
        handle = self.timers.pop(task_id, None)
        if handle is not None:
            handle.cancel()
            self._on_complete(task)
        else:
            task.finished = True

    async def stop(self) -> None:
        """Cancel pending callbacks and wake every waiting request."""
        if self.stopping is not None:
            self.stopping.set()
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deliveries = list(self.deliveries)
        for task in deliveries:
            task.cancel()
        if deliveries:
            await asyncio.gather(*deliveries, return_exceptions=True)
        self.deliveries.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ expiry

    def forget_expired(self) -> None:
        """Drop every expired task (the oldest come first: all live equally long) and its timer."""
        now = time.monotonic()
        while self.tasks:
            oldest = next(iter(self.tasks.values()))
            if oldest.expires_at_monotonic > now:
                break
            del self.tasks[oldest.task_id]
            handle = self.timers.pop(oldest.task_id, None)
            if handle is not None:
                handle.cancel()

    def _arm_expiry(self) -> None:
        """One timer for the whole sandbox: it fires when the oldest task expires, so memory is
        given back even when no request comes."""
        if self._expiry is not None or not self.tasks:
            return
        oldest = next(iter(self.tasks.values()))
        if math.isinf(oldest.expires_at_monotonic):
            return
        loop = self._loop or asyncio.get_running_loop()
        self._expiry = loop.call_at(
            loop.time() + max(0.0, oldest.expires_at_monotonic - time.monotonic()), self._on_expiry
        )

    def _on_expiry(self) -> None:
        self._expiry = None
        self.forget_expired()
        self._arm_expiry()

    # ------------------------------------------------------------------ callbacks

    def _arm_callback(self, task: SandboxTask) -> None:
        reason = task.callback_skipped or callback_block_reason(URL(task.callback_url))
        if reason is None and math.isinf(task.completed_at_monotonic):
            reason = "never_finishes"
        if reason is not None:
            task.callback_skipped = reason
            return
        loop = self._loop or asyncio.get_running_loop()
        delay = max(0.0, task.completed_at_monotonic - time.monotonic())
        self.timers[task.task_id] = loop.call_later(delay, self._on_complete, task)

    def _on_complete(self, task: SandboxTask) -> None:
        self.timers.pop(task.task_id, None)
        task.finished = True
        self.observer.completed(task)
        if task.outcome == CALLBACK_EXCEPTION:
            task.callback_skipped = "callback_exception"
            return
        if task.outcome != SUCCESS and task.outcome not in FAILURE_OUTCOMES:
            task.callback_skipped = "not_final"
            return
        if self.stopping is not None and self.stopping.is_set():
            return
        loop = self._loop or asyncio.get_running_loop()
        delivery = loop.create_task(self._deliver(task))
        self.deliveries.add(delivery)
        delivery.add_done_callback(self.deliveries.discard)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT),
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    async def _deliver(self, task: SandboxTask) -> None:
        payload = json.dumps(callback_payload(task)).encode()
        headers = {"Content-Type": "application/json"}
        session = self._client()
        for copy in range(max(0, task.callback_duplicates)):
            for attempt in range(max(0, task.callback_retries) + 1):
                if attempt:
                    await asyncio.sleep(task.callback_retry_delay)
                status: int | None = None
                error: str | None = None
                task.callback_attempts += 1
                try:
                    async with session.post(task.callback_url, data=payload, headers=headers) as resp:
                        await resp.read()
                        status = resp.status
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a dead receiver never breaks the API
                    error = f"{type(exc).__name__}: {exc}"
                    log.debug("callback for task %s failed: %s", task.task_id, error)
                url = task.callback_url
                self.observer.callback_sent(
                    CallbackAttempt(time.time(), task.task_id, url, copy, attempt, status, error)
                )
                if status is not None:
                    task.callbacks_sent += 1
                    task.callback_statuses.append(status)
                    if status < 500:
                        break
                else:
                    task.callback_statuses.append(error or "error")
