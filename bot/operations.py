"""What the operator needs to trust the bot: recent API errors, the pause switch, callback stats.

When the API refuses our key (401) or says the account is out of credits (402/429), new splits are
paused so members are refused up front (free) instead of failing one by one. While paused, the
account is checked periodically; splitting resumes by itself once the API accepts us again.

The switch is the deployment's, kept in the database (`bot.store.pause`): a process that pauses or
resumes tells every other, which follow at once; the servers are alerted once, by the process whose
change it was. `paused` is this process's copy, read without waiting on every split.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from bot import __version__
from bot.api import ApiError
from bot.metrics import Metrics
from bot.models import (
    ApiErrorNote,
    BudgetAlert,
    BudgetLevel,
    CallbackServerState,
    DeploymentAlert,
    PauseReason,
    ServerStatus,
    StatusReport,
)
from bot.product import Mode
from bot.store import Store
from bot.store.pause import PauseSwitch
from bot.tasks import log_failure

log = logging.getLogger(__name__)

RECENT_ERRORS = 10


class ApiCalls:
    """The API client's observer: counts every call in the metrics and keeps the latest errors for
    `/stembot status`."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self._metrics = metrics
        self._clock = clock
        self.recent_errors: deque[ApiErrorNote] = deque(maxlen=RECENT_ERRORS)

    def api_call(self, endpoint: str, error: ApiError | None) -> None:
        code = 200 if error is None else (error.code if error.code is not None else error.http_status)
        self._metrics.api_call(endpoint, code)
        if error is not None:
            self.recent_errors.append(ApiErrorNote(self._clock(), endpoint, code, error.message))


class AccountApi(Protocol):
    """What the pause switch asks of the API: the account's credits (the free endpoint)."""

    async def account_credits(self) -> int: ...


class Alerter(Protocol):
    """Tells the servers' moderators (Discord side) that splitting paused or resumed, and one
    server's moderators that its monthly budget is nearly or wholly used; tells the bot's owner
    alone that the bot's monthly budget is."""

    async def splitting_paused(self, reason: PauseReason) -> None: ...

    async def splitting_resumed(self) -> None: ...

    async def budget_alert(self, alert: BudgetAlert) -> None: ...

    async def bot_budget_alert(self, alert: DeploymentAlert) -> None: ...


class Operations:
    def __init__(
        self,
        metrics: Metrics,
        calls: ApiCalls,
        api: AccountApi,
        alerter: Alerter,
        switch: PauseSwitch,
        *,
        check_interval: float = 300.0,
        clock: Callable[[], float] = time.time,
        sandbox: bool = False,
    ) -> None:
        self.metrics = metrics
        self.sandbox = sandbox  # SEPARATION_API_URL=sandbox: every status says so
        self.calls = calls
        self.check_interval = check_interval
        self._clock = clock
        self._api = api
        self._alerter = alerter
        self._switch = switch
        # The switch's changes, in the order this process made or learned them.
        self._switching = asyncio.Lock()
        self._recording: set[asyncio.Task[None]] = set()
        self.paused: PauseReason | None = None
        self.paused_since: float | None = None
        self.callbacks_received = 0
        self.last_callback_at: float | None = None
        self.web_server_error: str | None = None
        self._alerts: set[asyncio.Task[None]] = set()
        self._watch: asyncio.Task[None] | None = None
        self._account_asked_at: float | None = None  # when the account's credits were last asked for
        self._account_check: asyncio.Task[None] | None = None

    def callback_received(self, verdict: str) -> None:
        self.metrics.callbacks.labels(verdict=verdict).inc()
        self.callbacks_received += 1
        self.last_callback_at = self._clock()

    def web_server_unavailable(self, reason: str) -> None:
        """The web server could not start and the bot runs on without it (callbacks off)."""
        self.web_server_error = reason

    # -- pause ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the deployment's pause switch: take it as it is (a pause from before a restart,
        or another process's, is checked at once) and listen for every process's changes."""
        await self._switch.listen(self._changed_elsewhere)
        current = await self._switch.state()
        if current is not None:
            self._paused_here(current.reason, current.since, check_now=True)

    def pause(self, reason: PauseReason) -> None:
        """Stop new splits until the account works again, in every process. Idempotent; alerts
        once per pause, whichever processes meet the error.

        Never waits on the database or Discord: this process stops at once; recording the pause
        for the others and the alert run in a task of their own, so a job that met the error is
        settled whatever Discord does.
        """
        since = self._clock() if self.paused is None else self.paused_since or self._clock()
        self._paused_here(reason, since)
        self._track(self._recording, self._record_pause(reason, since))

    def _paused_here(self, reason: PauseReason, since: float, *, check_now: bool = False) -> None:
        if self.paused is not None:
            self.paused = reason  # the latest reason is the one to show
            return
        self.paused, self.paused_since = reason, since
        self.metrics.submissions_paused.set(1)
        log.error(
            "Splitting paused: %s. New /split requests are refused (free) until the API accepts "
            "the account again; checking every %.0fs.",
            _REASON_LOG[reason],
            self.check_interval,
        )
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watch_account(check_now), name="account-watch")
            self._watch.add_done_callback(log_failure)

    def _resumed_here(self) -> None:
        if self.paused is None:
            return
        self.paused = self.paused_since = None
        self.metrics.submissions_paused.set(0)
        log.warning("Splitting resumed: the separation API accepts the account again")

    async def _record_pause(self, reason: PauseReason, since: float) -> None:
        async with self._switching:
            try:
                first = await self._switch.pause(reason, since)
            except Exception:
                # The other processes meet the error themselves; the servers must hear of it.
                log.exception("Could not record the pause for the other processes")
                first = True
        if first:
            self._background(self._alerter.splitting_paused(reason))

    async def resume(self) -> None:
        """Resume splitting in every process (the account works again); alerts once."""
        await self._settle_records()
        async with self._switching:
            first = await self._switch.resume()
            self._resumed_here()
        if first:
            self._background(self._alerter.splitting_resumed())

    def _changed_elsewhere(self) -> None:
        self._track(self._recording, self._follow_switch())

    async def _follow_switch(self) -> None:
        """Take the deployment's switch as it now is (another process paused or resumed)."""
        async with self._switching:
            current = await self._switch.state()
            if current is None:
                self._resumed_here()
            else:
                self._paused_here(current.reason, current.since)
                self.paused_since = current.since

    async def _settle_records(self) -> None:
        while self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)

    # -- budgets ----------------------------------------------------------------------------

    def budget_reached(self, alert: BudgetAlert) -> None:
        """A server's monthly budget reached 80% or was used up (the store gives each once a
        month): tell its audit channel, without waiting on Discord."""
        budget = alert.budget
        log.log(
            logging.WARNING if alert.level is BudgetLevel.USED_UP else logging.INFO,
            "guild=%s: monthly budget %s: %s of %s API credits spent in %s",
            budget.guild_id,
            "used up" if alert.level is BudgetLevel.USED_UP else "80% used",
            budget.spent,
            budget.budget,
            budget.month,
        )
        self._background(self._alerter.budget_alert(alert))

    def bot_budget_reached(self, alert: DeploymentAlert) -> None:
        """The bot's monthly budget (every server together) reached 80% or was used up (the store
        gives each once a month, whichever process counts it): a warning in the log, and a DM to
        the bot's owner, never a server's channel (the whole bot's figures are not a server's)."""
        budget = alert.budget
        log.warning(
            "The bot's monthly budget (MONTHLY_BUDGET) is %s: %s of %s API credits spent in %s by "
            "all servers together",
            "used up, new splits are refused" if alert.level is BudgetLevel.USED_UP else "80% used",
            budget.spent,
            budget.budget,
            budget.month,
        )
        self._background(self._alerter.bot_budget_alert(alert))

    def _background(self, alert: Coroutine[Any, Any, None]) -> None:
        self._track(self._alerts, alert)

    @staticmethod
    def _track(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="operator-alert")
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(log_failure)

    async def wait_alerts(self) -> None:
        """Wait for the switch's changes being recorded and alerts being sent (tests, shutdown)."""
        await self._settle_records()
        while self._alerts:
            await asyncio.gather(*self._alerts, return_exceptions=True)

    async def check_account(self) -> int | None:
        """Ask the API for the account's credits; resume if it works and can pay for a split.

        Returns the credits, or None when the API would not say.
        """
        self._account_asked_at = self._clock()
        try:
            credits = await self._api.account_credits()
        except ApiError as error:
            reason = error.pause_reason
            if reason is not None and self.paused is not None:
                self.pause(reason)
            return None
        self.metrics.set_account_credits(credits, sandbox=self.sandbox)
        if self.paused is not None:
            # Resume only when any split can be paid for, or the next 12-stem job pauses us again.
            if credits >= max(mode.api_price for mode in Mode):
                await self.resume()
            else:
                self.pause(PauseReason.OUT_OF_CREDITS)
        return credits

    def refresh_account_credits(self) -> None:
        """Ask for the account's credits on the side (for `/metrics`) when nobody asked for longer
        than the account check interval; one question at a time."""
        stale = (
            self._account_asked_at is None or self._clock() - self._account_asked_at >= self.check_interval
        )
        if stale and (self._account_check is None or self._account_check.done()):
            self._account_check = asyncio.create_task(self._ask_account(), name="account-credits")
            self._account_check.add_done_callback(log_failure)

    async def _ask_account(self) -> None:
        await self.check_account()

    async def report(
        self,
        store: Store,
        *,
        callback_public_url: str | None,
        listening: str | None,
        poll_interval: float,
    ) -> StatusReport:
        """The operator's view. Asking for the account's credits also re-checks a pause."""
        credits = await self.check_account()
        orphans, orphaned_total = await store.jobs.orphans()
        return StatusReport(
            version=__version__,
            account_credits=credits,
            jobs_by_state=await store.jobs.count_by_state(),
            recent_errors=tuple(reversed(self.calls.recent_errors)),
            paused=self.paused,
            paused_since=self.paused_since,
            callbacks=CallbackServerState(
                callback_public_url,
                listening,
                self.callbacks_received,
                self.last_callback_at,
                self.web_server_error,
            ),
            poll_interval=poll_interval,
            sandbox=self.sandbox,
            bot_budget=await store.budgets.bot(),
            server_budget_default=store.budgets.default_budget,
            orphaned_tasks=tuple(orphans),
            orphaned_total=orphaned_total,
        )

    async def server_status(self, store: Store, guild_id: int) -> ServerStatus:
        """One server's view. Asks the API nothing: any server's managers may run it."""
        return ServerStatus(
            version=__version__,
            guild_id=guild_id,
            jobs_by_state=await store.jobs.count_guild_by_state(guild_id),
            paused=self.paused,
            paused_since=self.paused_since,
            sandbox=self.sandbox,
        )

    async def _watch_account(self, check_now: bool) -> None:
        """Every paused process checks the account (any of them may be the one left running);
        the first to find it working resumes them all."""
        if check_now:
            await self.check_account()
        while self.paused is not None:
            await asyncio.sleep(self.check_interval)
            await self.check_account()

    async def stop(self) -> None:
        if self._account_check is not None:
            self._account_check.cancel()
            await asyncio.gather(self._account_check, return_exceptions=True)
        await self._settle_records()
        if self._watch:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        await self.wait_alerts()


_REASON_LOG = {
    PauseReason.KEY_REFUSED: "the separation API refused SEPARATION_API_KEY (401)",
    PauseReason.OUT_OF_CREDITS: "the separation API account is out of credits",
}
