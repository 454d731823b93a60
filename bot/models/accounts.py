"""Credits: members' balances and the ledger, the servers' economy (allowances, settings), reserving
a split, and what moderators' actions did."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.models.budgets import BudgetAlert, DeploymentAlert, DeploymentBudget, ServerBudget
from bot.models.jobs import Job, ReuseCharge
from bot.models.keeps import KeepStems
from bot.models.mixes import MixStems


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
    MIX_CHARGE = "mix_charge"  # a priced mix of a result's stems (`mix_id`; one per mix)
    MIX_REFUND = "mix_refund"  # ... given back because the mix failed (one per mix)

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
    job_song: str | None = None  # the title of the song its job split, where known (history pages)

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
    mix_stems: MixStems = MixStems.ON
    mix_price: int = 0  # credits a member pays for a mix of a result's stems
    language: str | None = None  # public messages' language (`bot.i18n`); None: the server's own

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
    spent_this_period: int  # on splits and priced mixes asked for this period, refunds deducted
    jobs_in_flight: int
    jobs_per_member: int
    blocked: bool = False
    blocked_reason: str | None = None
    next_split_at: float | None = None  # when a cooldown is running: when it ends

    @property
    def balance(self) -> int:
        return self.allowance_left + self.bonus


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
