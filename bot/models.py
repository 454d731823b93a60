"""Plain data shared by the store, the services and the renderer. No Discord, no SQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.product import Mode


class JobState(enum.StrEnum):
    """A job's life. Each transition is stored before the side effect it enables."""

    RESERVED = "reserved"  # credits held, nothing sent to the API yet
    SUBMITTING = "submitting"  # the submit request may be on the wire
    SUBMITTED = "submitted"  # the API accepted it; `api_task_id` is known
    SUCCEEDED = "succeeded"  # stems known, reservation charged
    FAILED = "failed"  # reservation refunded

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


UNFINISHED_STATES = (JobState.RESERVED, JobState.SUBMITTING, JobState.SUBMITTED)


class Delivery(enum.StrEnum):
    """Whether the member has been told the job's outcome."""

    NONE = "none"  # nothing to tell yet
    PENDING = "pending"  # outcome known, not yet shown to the member
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"  # every way of reaching the member failed for too long


class DeliveryVia(enum.StrEnum):
    INTERACTION = "interaction"  # edited the member's own /split response
    CHANNEL = "channel"  # a message in the channel mentioning the member
    DM = "dm"


class Failure(enum.StrEnum):
    """Why a job failed, in terms the renderer turns into plain words."""

    INVALID_IDS = "invalid_ids"  # the API does not know this task/audio id
    INPUT_TOO_LONG = "input_too_long"
    SEPARATION_FAILED = "separation_failed"  # the API tried and could not separate the track
    TIMED_OUT = "timed_out"
    SERVICE_ACCOUNT = "service_account"  # our API key or API account has a problem
    SERVICE_ERROR = "service_error"  # the API kept failing or answered something unexpected
    UNCONFIRMED = "unconfirmed"  # we cannot know whether the API accepted the submission


class LedgerKind(enum.StrEnum):
    ALLOWANCE = "allowance"  # a member's starting credits
    RESERVE = "reserve"  # held for a job
    CHARGE = "charge"  # the held credits are spent (amount 0: the reserve already moved them)
    REFUND = "refund"  # the held credits come back


@dataclass(frozen=True, slots=True)
class StemLink:
    key: str
    url: str


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    guild_id: int
    channel_id: int
    user_id: int
    mode: Mode
    source_task_id: str
    audio_id: str
    cost: int
    state: JobState
    api_task_id: str | None
    callback_token: str
    application_id: int | None
    interaction_token: str | None
    interaction_expires_at: float | None
    stems: tuple[StemLink, ...]
    links_expire_at: float | None
    failure: Failure | None
    failure_detail: str | None
    delivery: Delivery
    delivery_attempts: int
    delivered_via: DeliveryVia | None
    created_at: float
    submitted_at: float | None
    finished_at: float | None
    delivered_at: float | None

    def __repr__(self) -> str:  # the interaction token is a credential: keep it out of reprs
        return (
            f"Job(id={self.id}, guild={self.guild_id}, user={self.user_id}, mode={self.mode}, "
            f"state={self.state}, delivery={self.delivery})"
        )


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a member asked for, before the store gives it an id."""

    guild_id: int
    channel_id: int
    user_id: int
    mode: Mode
    source_task_id: str
    audio_id: str
    cost: int
    callback_token: str
    application_id: int | None = None
    interaction_token: str | None = None
    interaction_expires_at: float | None = None

    def __repr__(self) -> str:
        return f"NewJob(guild={self.guild_id}, user={self.user_id}, mode={self.mode})"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    guild_id: int
    user_id: int
    kind: LedgerKind
    amount: int
    balance_after: int
    job_id: int | None
    actor_id: int | None
    reason: str | None
    created_at: float
