"""Taking a member's /split request: validate, reserve credits, record the job, wake the runner."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.errors import (
    BotBudgetUsedUp,
    BudgetUsedUp,
    CooldownActive,
    InsufficientCredits,
    InvalidTrackId,
    MemberBlocked,
    ShuttingDown,
    SplittingPaused,
    TooManyJobsInFlight,
)
from bot.i18n import _, number
from bot.leases import Lease
from bot.models import Job, NewJob, Refusal, Reservation
from bot.operations import Operations
from bot.product import Mode
from bot.store.reservations import Reservations

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 100
"""The longest id taken (the API's are 32 to 36 characters; Discord's option allows this many)."""

_ID = re.compile(r"[A-Za-z0-9_-]+")
"""What the API's ids are made of (hex task ids, UUID audio ids): ASCII letters, digits, `-`, `_`.
Ids are shown in public messages, so nothing else may pass: a backtick, a bracket or `<@` would
be Markdown, a link or a mention under the bot's name."""


def clean_track_id(option: str, value: str) -> str:
    """Return the id stripped, or raise `InvalidTrackId` saying what is wrong with it (never
    repeating it: the refusal shows no untrusted text)."""
    value = value.strip()
    # Raised in the member's interaction, so said in their language. Each problem is the rest of a
    # sentence that `InvalidTrackId` opens with the option's name.
    if not value:
        # TRANSLATORS: follows an option's name: "`task_id` is empty."
        raise InvalidTrackId(option, _("is empty."))
    if len(value) > MAX_ID_LENGTH:
        # TRANSLATORS: follows an option's name: "`task_id` is too long (120 characters; ids have at
        # most 100)."
        raise InvalidTrackId(
            option,
            _(
                "is too long ({length} characters; ids have at most {limit}).",
                length=number(len(value)),
                limit=number(MAX_ID_LENGTH),
            ),
        )
    if any(ch.isspace() for ch in value):
        # TRANSLATORS: follows an option's name: "`task_id` contains spaces; paste the id alone."
        raise InvalidTrackId(option, _("contains spaces; paste the id alone."))
    if not _ID.fullmatch(value):
        # TRANSLATORS: follows an option's name: "`task_id` contains characters ids never have."
        raise InvalidTrackId(option, _("contains characters ids never have."))
    return value


def _still_fits(mode: Mode, left: int | None) -> Mode | None:
    """The dearest other mode a budget with `left` API credits can still pay for, if any."""
    fitting = [other for other in Mode if other is not mode and other.api_price <= (left or 0)]
    return max(fitting, key=lambda m: m.api_price) if fitting else None


def clean_upload_limit(value: object) -> int | None:
    """The upload limit Discord reported with the interaction (`attachment_size_limit`, bytes) if
    it is one: a whole positive number SQLite can store. Anything else (missing, zero, a bool, a
    float, a string) is None, and whoever uses it assumes the default."""
    if type(value) is not int or not 0 < value < 2**63:
        return None
    return value


@dataclass(frozen=True, slots=True)
class Accepted:
    """A split that was taken: the stored job and the member's balance right after it."""

    job: Job
    balance: int


class JobQueue(Protocol):
    """Where an accepted job waits to be worked on (the job runner)."""

    def hold(self, job_id: int) -> None:
        """Keep the new job from being worked on until `release`."""
        ...

    def release(self, job_id: int) -> None: ...


class SplitService:
    def __init__(
        self,
        reservations: Reservations,
        queue: JobQueue,
        operations: Operations,
        *,
        lease: Lease | None = None,
        sandbox: bool = False,
    ) -> None:
        """`lease`: this process's, so a job is claimed by it from the moment it is stored."""
        self._reservations = reservations
        self._lease = lease
        self._sandbox = sandbox
        self._queue = queue
        self._operations = operations
        self.closed = False

    def close(self) -> None:
        """Refuse new splits from now on (shutting down); jobs already taken carry on."""
        self.closed = True

    async def reserve(
        self,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        mode: Mode,
        task_id: str,
        audio_id: str,
        application_id: int | None = None,
        interaction_token: str | None = None,
        interaction_expires_at: float | None = None,
        response_message_id: int | None = None,
        app_permissions: int | None = None,
        filesize_limit: int | None = None,
        role_ids: Sequence[int] = (),
        interaction_id: int | None = None,
    ) -> Accepted:
        """Reserve the mode's cost and record the job, or raise a `StemBotError` saying why not
        (a bad id, or a `SplitRefused`: blocked, too many running, cooling down, not enough credits,
        or the server's monthly budget used up).

        `role_ids` are the member's roles, for role allowances. `filesize_limit` is the upload limit
        the interaction reported, untrusted: checked here (see `clean_upload_limit`).
        `interaction_id`: the split's acknowledgement was recorded (`bot.acks`); its record goes
        when the job is stored, and if another process took it to answer the member (this one
        stalled past its lease), `AckTaken` is raised and nothing is stored. The job waits
        until `start` hands it to the runner, so the caller can show its own "queued" message first.
        """
        if self.closed:
            raise ShuttingDown
        if self._operations.paused:
            raise SplittingPaused
        new = NewJob(
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            mode=mode,
            source_task_id=clean_track_id("task_id", task_id),
            audio_id=clean_track_id("audio_id", audio_id),
            cost=mode.cost,
            callback_token=secrets.token_urlsafe(24),
            application_id=application_id,
            interaction_token=interaction_token,
            interaction_expires_at=interaction_expires_at,
            response_message_id=response_message_id,
            app_permissions=app_permissions,
            sandbox=self._sandbox,
            filesize_limit=clean_upload_limit(filesize_limit),
            interaction_id=interaction_id,
        )
        reservation = await self._reservations.reserve(new, role_ids=role_ids, lease=self._lease)
        if reservation.job is not None:
            # At once, before anything else runs: nothing may reach the member before "queued".
            self._queue.hold(reservation.job.id)
        if reservation.refusal is Refusal.BUDGET_USED_UP:
            budget = reservation.budget
            assert budget is not None
            log.info(
                "guild=%s member=%s mode=%s: refused, the server's monthly budget is used (%s of %s)",
                guild_id,
                user_id,
                mode,
                budget.spent,
                budget.budget,
            )
            self._alert(reservation)
            raise BudgetUsedUp(budget.renews_at, reservation.balance, _still_fits(mode, budget.left))
        if reservation.refusal is Refusal.BOT_BUDGET_USED_UP:
            bot_budget = reservation.bot_budget
            assert bot_budget is not None
            log.info(  # the warning comes with the owner's alert, once per level and month
                "guild=%s member=%s mode=%s: refused, the bot's monthly budget is used (%s of %s)",
                guild_id,
                user_id,
                mode,
                bot_budget.spent,
                bot_budget.budget,
            )
            self._alert(reservation)
            raise BotBudgetUsedUp(
                bot_budget.renews_at, reservation.balance, _still_fits(mode, bot_budget.left)
            )
        if reservation.refusal is Refusal.INSUFFICIENT_CREDITS:
            raise InsufficientCredits(new.cost, reservation.balance, reservation.next_refill_at)
        if reservation.refusal is Refusal.TOO_MANY_IN_FLIGHT:
            raise TooManyJobsInFlight(reservation.jobs_per_member, reservation.balance)
        if reservation.refusal is Refusal.BLOCKED:
            raise MemberBlocked(reservation.blocked_reason, reservation.balance)
        if reservation.refusal is Refusal.COOLDOWN:
            assert reservation.retry_at is not None
            raise CooldownActive(reservation.retry_at, reservation.balance)
        job = reservation.job
        assert job is not None
        log.info(
            "job %s guild=%s member=%s mode=%s: reserved %s credits (balance now %s)%s",
            job.id,
            job.guild_id,
            job.user_id,
            job.mode,
            job.cost,
            reservation.balance,
            f"; {job.share} from job {job.source_job_id}" if job.share else "",
        )
        if job.cost:
            self._operations.metrics.credits.labels(kind="reserved").inc(job.cost)
        self._alert(reservation)
        return Accepted(job, reservation.balance)

    def _alert(self, reservation: Reservation) -> None:
        if reservation.budget_alert is not None:
            self._operations.budget_reached(reservation.budget_alert)
        if reservation.bot_budget_alert is not None:
            self._operations.bot_budget_reached(reservation.bot_budget_alert)

    def start(self, job: Job) -> None:
        """Hand a reserved job to the runner once the member has been shown it is queued.
        (After a restart the runner finds it by itself.)"""
        self._queue.release(job.id)
