"""Plain data shared by the store, the services and the renderer. No Discord, no SQL."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

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


class KeepStems(enum.StrEnum):
    """Whether a server's members keep their stems in Discord (a per-server setting)."""

    BUTTON = "button"  # a Keep in Discord button on every result: members choose
    ALWAYS = "always"  # every successful result is kept without a click
    OFF = "off"


class KeepState(enum.StrEnum):
    """Where keeping a result in Discord stands."""

    PENDING = "pending"  # asked for; the worker has not started
    WORKING = "working"  # stems are being posted
    KEPT = "kept"  # every stem posted, or noted in the thread as a link
    FAILED = "failed"  # gave up (why is stored); asking again starts over


class KeepPlace(enum.StrEnum):
    """Where a kept result's files are posted."""

    THREAD = "thread"  # a thread on the result message
    REPLIES = "replies"  # replies to the result message, where threads cannot be made
    DM = "dm"  # the DM the result was delivered in


class StemKeepState(enum.StrEnum):
    """Where one stem of a kept result stands."""

    PENDING = "pending"
    POSTING = "posting"  # an upload (or the note that it stays a link) went out; outcome unknown
    POSTED = "posted"
    SKIPPED = "skipped"  # stays a link (why is stored); noted in the thread once its note is sent


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
    REFILL = "refill"  # a new period: the allowance is back to full
    GRANT = "grant"  # a moderator added (or took away) bonus credits
    SET = "set"  # a moderator set the balance exactly
    RESET = "reset"  # a moderator put the member back to their allowance, bonus cleared
    BLOCK = "block"  # a moderator stopped the member from splitting (amount 0)
    UNBLOCK = "unblock"  # ... and let them again (amount 0)

    @property
    def by_moderator(self) -> bool:
        return self in _MODERATOR_KINDS


_MODERATOR_KINDS = frozenset(
    {LedgerKind.GRANT, LedgerKind.SET, LedgerKind.RESET, LedgerKind.BLOCK, LedgerKind.UNBLOCK}
)


class Period(enum.StrEnum):
    """How often a server's allowance refills. `never`: a one-off allowance when a member starts."""

    NEVER = "never"
    DAILY = "daily"
    WEEKLY = "weekly"  # weeks start on Monday
    MONTHLY = "monthly"  # on the 1st


@dataclass(frozen=True, slots=True)
class CreditPolicy:
    """The bot's defaults for every server, until its moderators (for the budget: the bot's owner)
    set their own."""

    default_credits: int = 100  # a server's allowance until a moderator sets one (period `never`)
    jobs_per_member: int = 2  # splits one member may have running at once
    server_monthly_budget: int | None = None  # API credits a server may cost per UTC month; None: no cap
    monthly_budget: int | None = None  # API credits all servers together may cost per UTC month; None: no cap


class Refusal(enum.StrEnum):
    """Why a split was not taken (nothing was charged)."""

    INSUFFICIENT_CREDITS = "insufficient_credits"
    TOO_MANY_IN_FLIGHT = "too_many_in_flight"
    BLOCKED = "blocked"
    COOLDOWN = "cooldown"
    BUDGET_USED_UP = "budget_used_up"  # the server's monthly budget cannot pay for this split
    BOT_BUDGET_USED_UP = "bot_budget_used_up"  # the bot's monthly budget (every server's) cannot either


SERVER_WIDE = 0
"""The role id under which the server's default allowance is stored (no real role has id 0)."""


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
class LedgerEntry:
    """One credit movement. `amount` is `allowance_change + bonus_change`; `actor_id` is None when
    StemBot itself made the change (starting credits, refills, splits and their refunds)."""

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
    allowance_change: int = 0
    bonus_change: int = 0

    @property
    def balance_before(self) -> int:
        return self.balance_after - self.amount


@dataclass(frozen=True, slots=True)
class Balance:
    """A member's credits, by where they came from. Spending takes the allowance part first."""

    allowance_left: int  # what is left of this period's allowance; refilled at each period start
    bonus: int  # granted by moderators (or refunds across a refill); kept until spent

    @property
    def total(self) -> int:
        return self.allowance_left + self.bonus


@dataclass(frozen=True, slots=True)
class Refund:
    """What comes back of a split's credits, and where to (see `economy.refund`)."""

    to_allowance: int
    to_bonus: int
    expired: int = 0  # allowance of a period that has ended since: not returned (a member's own cancel)

    @property
    def total(self) -> int:
        return self.to_allowance + self.to_bonus


@dataclass(frozen=True, slots=True)
class AllowanceRule:
    """One allowance decision: from `effective_from`, members with `role_id` (or everyone, for
    `SERVER_WIDE`) have `amount` credits per period. `refills`: everyone it applies to was refilled
    to it at `effective_from` (a moderator's "apply now")."""

    role_id: int
    amount: int
    effective_from: float
    refills: bool = False


@dataclass(frozen=True, slots=True)
class EconomySettings:
    """A server's economy settings. Unset values fall back to the bot's defaults."""

    guild_id: int
    period: Period = Period.NEVER
    refill_minute: int = 0  # minutes after local midnight
    timezone: str = "UTC"
    schedule_from: float = 0.0  # refills of the current schedule count from this moment on
    carried_refill_at: float | None = None  # the latest refill due under an earlier schedule
    jobs_per_member: int | None = None
    cooldown_seconds: int = 0
    moderator_role_id: int | None = None
    audit_channel_id: int | None = None
    reuse_charge: ReuseCharge = ReuseCharge.FREE
    keep_stems: KeepStems = KeepStems.BUTTON

    @property
    def refill_time(self) -> str:
        return f"{self.refill_minute // 60:02d}:{self.refill_minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class CreditSummary:
    """Everything a member (or a moderator looking at them) is shown about their credits."""

    allowance_left: int
    bonus: int
    allowance: int  # this period's full allowance
    next_allowance: int  # what the next refill restores (changes wait for it)
    period: Period
    next_refill_at: float | None  # None when the allowance never refills
    period_started_at: float
    spent_this_period: int  # on splits started this period, refunds deducted
    jobs_in_flight: int
    jobs_per_member: int
    blocked: bool = False
    blocked_reason: str | None = None
    next_split_at: float | None = None  # when a cooldown is running: when it ends

    @property
    def balance(self) -> int:
        return self.allowance_left + self.bonus


@dataclass(frozen=True, slots=True)
class DeliveredMessage:
    """One message a result was shown in (a result may take several)."""

    job_id: int
    via: DeliveryVia
    part: int  # from 0
    channel_id: int | None
    message_id: int


@dataclass(frozen=True, slots=True)
class Keep:
    """Keeping one result's stems in Discord (see `bot.keeping`)."""

    job_id: int
    guild_id: int
    state: KeepState
    requested_by: int | None  # None: kept automatically
    upload_limit: int  # bytes per message
    place: KeepPlace | None = None  # None until the worker has chosen where
    channel_id: int | None = None  # the thread, or the channel or DM the files go to
    anchor_message_id: int | None = None  # the result message the thread is on (or replies answer)
    linked_to: int | None = None  # the job whose keep already holds the same stems
    failure: str | None = None
    attempts: int = 0
    retry_at: float | None = None
    marked: bool = False  # the result message says it is kept
    created_at: float = 0.0
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class KeptStem:
    """One stem of a kept result."""

    job_id: int
    position: int  # its place in the job's stems
    filename: str  # the attachment's name: the stem's name and its file's extension
    state: StemKeepState
    size: int | None = None
    skipped_why: str | None = None
    message_id: int | None = None  # the message with the file, or the note that it stays a link


@dataclass(frozen=True, slots=True)
class LibraryPage:
    """One page of a member's splits in a server, newest first, from a fixed snapshot."""

    jobs: tuple[Job, ...]
    page: int  # from 0
    pages: int  # at least 1
    total: int
    newest_id: int  # jobs made while paging are not shown, so pages stay stable
    keeps: Mapping[int, Keep] = field(default_factory=dict)  # by job id: those being kept or kept


class CancelOutcome(enum.StrEnum):
    """What asking to cancel a job did."""

    CANCELLED = "cancelled"  # called off and refunded; it will never be sent
    ALREADY_SENT = "already_sent"  # the submit is on the wire or accepted: the API has no cancel
    OTHERS_WAITING = "others_waiting"  # other members' splits follow this one
    FINISHED = "finished"  # it already ended (ready, failed or cancelled)


@dataclass(frozen=True, slots=True)
class Cancellation:
    """What asking to cancel a job did, the job as it is now, and (when it was cancelled and had
    cost something) what came back."""

    outcome: CancelOutcome
    job: Job | None
    refund: Refund | None = None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a member's credit history, newest first, from a fixed snapshot of the ledger."""

    entries: tuple[LedgerEntry, ...]
    page: int  # from 0
    pages: int  # at least 1
    total: int
    newest_id: int  # rows after this one (made while paging) are not shown, so pages stay stable


@dataclass(frozen=True, slots=True)
class Adjustment:
    """The outcome of a moderator's grant, set or reset of one member's balance."""

    before: Balance
    after: Balance | None  # None: refused, nothing changed
    jobs_in_flight: int  # their credits are held; they come back if a split fails

    @property
    def applied(self) -> bool:
        return self.after is not None


@dataclass(frozen=True, slots=True)
class AllowanceUpdate:
    """The outcome of a moderator's `/quota allowance`."""

    role_id: int  # SERVER_WIDE for the server's allowance
    amount: int
    previous_amount: int
    period: Period
    previous_period: Period
    applied_now: bool
    next_refill_at: float | None


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


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of reserving a split: a job, or the reason there is none, with the figures."""

    job: Job | None
    balance: int
    in_flight: int
    refusal: Refusal | None = None
    jobs_per_member: int = 0  # the limit in force in this server
    retry_at: float | None = None  # COOLDOWN: when the member may split again
    blocked_reason: str | None = None  # BLOCKED: what the moderator said, if anything
    next_refill_at: float | None = None  # INSUFFICIENT_CREDITS: when the allowance refills, if ever
    budget: ServerBudget | None = None  # BUDGET_USED_UP: the server's budget this month
    budget_alert: BudgetAlert | None = None  # the server's budget just crossed a line worth an alert
    bot_budget: DeploymentBudget | None = None  # BOT_BUDGET_USED_UP: the bot's budget this month
    bot_budget_alert: DeploymentAlert | None = None  # the bot's budget just crossed such a line


# -- the owner's wallet: each server's monthly budget of API credits -------------------------


class BudgetLevel(enum.StrEnum):
    """How far a server is into its monthly budget, for the alerts to its audit channel."""

    NEARLY_USED = "nearly_used"  # 80% spent
    USED_UP = "used_up"  # too little left for even the cheapest split


@dataclass(frozen=True, slots=True)
class ServerBudget:
    """One server's budget of API credits for one calendar month (UTC), and what it has spent."""

    guild_id: int
    month: str  # "2025-03"
    spent: int  # API credits of the paid jobs counted this month (refunded ones given back)
    budget: int | None  # in force this month; None: no cap
    own: bool  # set by the bot's owner for this server (else the bot's default)
    renews_at: float  # the first of next month, 00:00 UTC

    @property
    def left(self) -> int | None:
        return None if self.budget is None else max(self.budget - self.spent, 0)

    def fits(self, cost: int) -> bool:
        return self.budget is None or self.spent + cost <= self.budget


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A server's budget reached `level` this month (at most one alert per level and month)."""

    level: BudgetLevel
    budget: ServerBudget


@dataclass(frozen=True, slots=True)
class DeploymentBudget:
    """The bot's budget of API credits for one calendar month (UTC), `MONTHLY_BUDGET`, and what all
    servers together have spent: the sum of their spends."""

    month: str  # "2025-03"
    spent: int  # API credits of the paid jobs counted this month, in every server
    budget: int | None  # MONTHLY_BUDGET; None: no cap
    renews_at: float  # the first of next month, 00:00 UTC

    @property
    def left(self) -> int | None:
        return None if self.budget is None else max(self.budget - self.spent, 0)

    def fits(self, cost: int) -> bool:
        return self.budget is None or self.spent + cost <= self.budget


@dataclass(frozen=True, slots=True)
class DeploymentAlert:
    """The bot's budget reached `level` this month: for the bot's owner alone (at most one per level
    and month)."""

    level: BudgetLevel
    budget: DeploymentBudget


@dataclass(frozen=True, slots=True)
class BudgetOverview:
    """Every server's budget this month, for the bot's owner: those that spent anything this month
    or have a budget of their own, most spent first."""

    month: str
    renews_at: float
    default_budget: int | None
    servers: tuple[ServerBudget, ...]
    bot: DeploymentBudget | None = None  # every server together (MONTHLY_BUDGET); None: not read

    @property
    def total_spent(self) -> int:
        return sum(server.spent for server in self.servers)


@dataclass(frozen=True, slots=True)
class BudgetChange:
    """The bot's owner set (or cleared) a server's own monthly budget."""

    before: ServerBudget
    after: ServerBudget


# -- what moderators' actions did (for `/quota` answers and audit lines) ---------------------


@dataclass(frozen=True, slots=True)
class EconomyOverview:
    """A server's economy at a glance, for `/quota settings`."""

    settings: EconomySettings
    server_allowance: int
    role_allowances: tuple[tuple[int, int], ...]  # (role id, amount) for every role tier above 0
    jobs_per_member: int  # in force: the server's own, or the bot's default
    next_refill_at: float | None
    budget: ServerBudget | None = None  # shown when moderators look at the settings


@dataclass(frozen=True, slots=True)
class SettingsUpdate:
    before: EconomySettings
    after: EconomyOverview

    @property
    def changed(self) -> bool:
        return self.before != self.after.settings


@dataclass(frozen=True, slots=True)
class BlockChange:
    member_id: int
    blocked: bool
    changed: bool  # False: they already were (not) blocked
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Correction:
    """A grant, set or reset that was applied."""

    member_id: int
    adjustment: Adjustment
    reason: str | None = None
    amount: int | None = None  # what the moderator asked for (grant, set)


# -- the operator's view (`/stembot status`) -------------------------------------------------


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
    claim on the job, which another process had settled meanwhile (see `bot.runner`)."""

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
