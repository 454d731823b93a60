"""The operator's view (`/stembot status`): the pause switch's reason, API errors, orphaned tasks,
the callback server, status reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.models.budgets import DeploymentBudget
from bot.models.jobs import JobState


class PauseReason(enum.StrEnum):
    """Why new splits are paused: the API account cannot take them (see `bot.operations`)."""

    KEY_REFUSED = "key_refused"
    OUT_OF_CREDITS = "out_of_credits"


@dataclass(frozen=True, slots=True)
class ApiErrorNote:
    at: float
    endpoint: str
    code: int | None
    message: str


@dataclass(frozen=True, slots=True)
class OrphanedTask:
    """A paid API task no job holds: the API accepted a submit from a process that had lost its
    claim on the job, which another process had settled meanwhile, or whose task id could not be
    stored (see `bot.job_steps.keep_orphan`)."""

    job_id: int
    api_task_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallbackServerState:
    public_url: str | None  # None: callbacks off, polling only
    listening: str | None  # host:port of the bot's web server, None when it is not running
    received: int
    last_received_at: float | None
    web_server_error: str | None = None  # why the web server is not running, when start-up let it go


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What `/stembot status` shows a server's managers: their own server's jobs and whether
    splitting is paused. Nothing about the API account or other servers."""

    version: str
    guild_id: int
    jobs_by_state: dict[JobState, int]
    paused: PauseReason | None
    paused_since: float | None
    sandbox: bool = False  # the built-in sandbox, not the real API


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Everything `/stembot status` shows the bot's owner: account-wide figures, every server."""

    version: str
    account_credits: int | None  # None: the API would not say (see recent_errors)
    jobs_by_state: dict[JobState, int]
    recent_errors: tuple[ApiErrorNote, ...]
    paused: PauseReason | None
    paused_since: float | None
    callbacks: CallbackServerState
    poll_interval: float
    sandbox: bool = False  # the built-in sandbox, not the real API
    bot_budget: DeploymentBudget | None = None  # every server together this month (MONTHLY_BUDGET)
    server_budget_default: int | None = None  # SERVER_MONTHLY_BUDGET
    orphaned_tasks: tuple[OrphanedTask, ...] = ()  # the newest few, newest first
    orphaned_total: int = 0
