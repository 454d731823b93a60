"""Building the real services for tests, through the same `build_services` as `python -m bot`,
with the Discord side replaced by recorders."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bot.models import BudgetAlert, DeliveredMessage, DeliveryVia, Job, PauseReason
from bot.runner import DeliveryOutcome, DeliveryResult
from bot.services import Services, build_services
from bot.settings import Secret, Settings
from bot.store import Store


def make_settings(**overrides: Any) -> Settings:
    """Settings as `python -m bot` would load them, with made-up secrets and the given changes."""
    return Settings(discord_token=Secret("test-discord-token"), api_key=Secret("test-key"), **overrides)


class RecordingDeliverer:
    """Stands in for Discord: records what the member would be shown; can fail on purpose."""

    def __init__(self, failures: int = 0, progress_seconds: float = 0.0) -> None:
        self.progress_seconds = progress_seconds
        self.delivered: list[Job] = []
        self.progress: list[Job] = []
        self.cancelled: list[Job] = []
        self.attempts = 0
        self.failures = failures
        self._changed = asyncio.Event()

    async def deliver(self, job: Job) -> DeliveryOutcome:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            return DeliveryOutcome(DeliveryResult.RETRY)
        self.delivered.append(job)
        self._changed.set()
        return DeliveryOutcome(DeliveryResult.DELIVERED, DeliveryVia.INTERACTION)

    async def show_cancelled(self, job: Job) -> None:
        self.cancelled.append(job)

    async def show_progress(self, job: Job) -> None:
        await asyncio.sleep(self.progress_seconds)
        self.progress.append(job)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Job]:
        async with asyncio.timeout(timeout):
            while len(self.delivered) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.delivered


class AlerterDouble:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def splitting_paused(self, reason: PauseReason) -> None:
        self.events.append(f"paused:{reason}")

    async def splitting_resumed(self) -> None:
        self.events.append("resumed")

    async def budget_alert(self, alert: BudgetAlert) -> None:
        self.events.append(f"budget:{alert.budget.guild_id}:{alert.level}:{alert.budget.spent}")


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
    **overrides: Any,
) -> Services:
    """The bot's services over `store`, delivering to a `RecordingDeliverer` unless told otherwise."""
    return build_services(
        settings or make_settings(),
        store=store,
        session=session,
        deliverer=deliverer or RecordingDeliverer(),
        reminder_sender=reminder_sender or RecordingReminders(),
        alerter=alerter or AlerterDouble(),
        gateway_connected=lambda: True,
        **overrides,
    )
