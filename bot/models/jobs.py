"""Jobs: a split's life (its states, how it ends, how its result reached the member), what a member
asked for, and the acknowledged /split not stored yet."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.models.songs import Song
from bot.product import Mode


class JobState(enum.StrEnum):
    """A job's life. Each transition is stored before the side effect it enables."""

    RESERVED = "reserved"  # credits held, nothing sent to the API yet
    SUBMITTING = "submitting"  # the submit request may be on the wire
    SUBMITTED = "submitted"  # the API accepted it; `api_task_id` is known
    FOLLOWING = "following"  # waits for another job in flight for the same track and mode
    SUCCEEDED = "succeeded"  # stems known, reservation charged
    FAILED = "failed"  # reservation refunded
    CANCELLED = "cancelled"  # called off by its member or a moderator before it was sent; refunded

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


UNFINISHED_STATES = (JobState.RESERVED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.FOLLOWING)
CANCELLABLE_STATES = (JobState.RESERVED, JobState.FOLLOWING)
"""Nothing of these has been sent to the API (a following job waits on another's call)."""


class Share(enum.StrEnum):
    """How a job got its result without a paid API call of its own."""

    REUSED = "reused"  # an earlier success for the same track and mode, links still fresh
    COALESCED = "coalesced"  # another member's job in flight for the same track and mode


class ReuseCharge(enum.StrEnum):
    """What a member pays for a shared result (a per-server setting)."""

    FREE = "free"
    FULL = "full"


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
    share: Share | None = None
    source_job_id: int | None = None
    response_message_id: int | None = None  # the public /split reply, where the result belongs
    budget_cost: int = 0  # API credits counted against the server's monthly budget (0: shared, or older)
    budget_month: str | None = None  # the UTC month ("2025-03") they were counted in
    app_permissions: int | None = None  # the bot's permissions in the channel, as Discord said at /split
    reminded_at: float | None = None
    sandbox: bool = False  # made by the sandbox (SEPARATION_API_URL=sandbox): never shared with real jobs
    filesize_limit: int | None = None  # the upload limit Discord reported at /split, in bytes
    claimed_by: str | None = None  # the process working on it (see `bot.leases`); None: nobody
    lease_until: float | None = None  # when that claim lapses unless renewed (the database's clock)
    next_step_at: float | None = None  # the runner looks at it again then (None: new, not handed over yet)
    api_failures: int = 0  # its submit or poll calls failed in a row (the retry state)
    song: Song | None = None  # the track's title, duration and cover, once known (`bot.songs`)

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
    response_message_id: int | None = None
    app_permissions: int | None = None
    sandbox: bool = False
    filesize_limit: int | None = None
    interaction_id: int | None = None  # its acknowledged split's record goes when the job is stored

    def __repr__(self) -> str:
        return f"NewJob(guild={self.guild_id}, user={self.user_id}, mode={self.mode})"


@dataclass(frozen=True, slots=True)
class AcknowledgedSplit:
    """A /split the bot acknowledged ("thinking…") whose job is not stored yet: what is needed to
    answer the member through the interaction if the process dies before it is (see `bot.acks`)."""

    interaction_id: int
    application_id: int
    token: str
    guild_id: int
    channel_id: int
    user_id: int
    mode: Mode
    task_id: str
    audio_id: str
    acknowledged_at: float
    expires_at: float  # the token is usable until then

    def __repr__(self) -> str:  # never the token
        return f"AcknowledgedSplit(interaction={self.interaction_id}, user={self.user_id})"


@dataclass(frozen=True, slots=True)
class DeliveredMessage:
    """One message a result was shown in (a result may take several)."""

    job_id: int
    via: DeliveryVia
    part: int  # from 0
    channel_id: int | None
    message_id: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ended, as the store settles it: stems and their expiry, or why it failed."""

    succeeded: bool
    stems: tuple[StemLink, ...] = ()
    links_expire_at: float | None = None
    failure: Failure | None = None
    failure_detail: str | None = None
    cancelled: bool = False  # called off before anything was sent: refunded like a failure

    @property
    def state(self) -> JobState:
        if self.cancelled:
            return JobState.CANCELLED
        return JobState.SUCCEEDED if self.succeeded else JobState.FAILED

    @classmethod
    def of(cls, job: Job) -> Outcome:
        """The outcome of a finished job, for the jobs that followed it."""
        return cls(
            job.state is JobState.SUCCEEDED, job.stems, job.links_expire_at, job.failure, job.failure_detail
        )
