"""The credit economy's rules, as pure functions: when allowances refill, what a member's allowance
is, and which part of a balance a spend, refund or correction touches.

No I/O (beyond loading time zone data, and a warning logged when a stored zone cannot be loaded)
and no clock of its own: the store applies these rules inside the transaction that reads or
changes an account, so a refill is computed exactly from timestamps on access (no background
sweep), and storing the refill moment on the account means a restart never refills twice.

Terms: a member's balance is `allowance_left + bonus`. The allowance is restored to the full
amount at each period start ("refill"); unused allowance does not roll over; bonus credits are kept
until spent. Spending takes the allowance first, then bonus.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.i18n import N_
from bot.models import SERVER_WIDE, AllowanceRule, Balance, BudgetLevel, EconomySettings, Period, Refund
from bot.product import Mode

log = logging.getLogger(__name__)

MAX_AMOUNT = 1_000_000
"""The largest amount a moderator may grant, take, set or make an allowance in one go."""

MINUTES_PER_DAY = 24 * 60
_REFILL_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


# -- periods ------------------------------------------------------------------------------------

# English msgids: `_(REFILLS[period])` where shown.
REFILLS: dict[Period, str] = {
    # TRANSLATORS: when an allowance refills: never.
    Period.NEVER: N_("never"),
    # TRANSLATORS: when an allowance refills.
    Period.DAILY: N_("every day"),
    # TRANSLATORS: when an allowance refills.
    Period.WEEKLY: N_("every Monday"),
    # TRANSLATORS: when an allowance refills.
    Period.MONTHLY: N_("on the 1st of each month"),
}

# The `period` option's choices as the member's picker shows them: the command tree's choice names
# (`cogs.quota`), and `_(PERIOD_NAMES[period])` where a sentence names one, so both come from the
# same catalog entry.
PERIOD_NAMES: dict[Period, str] = {
    Period.DAILY: N_("Daily"),
    Period.WEEKLY: N_("Weekly (refills on Mondays)"),
    Period.MONTHLY: N_("Monthly (refills on the 1st)"),
    Period.NEVER: N_("Never (a one-off allowance)"),
}


@dataclass(frozen=True, slots=True)
class RefillSchedule:
    """When allowances refill: every day, every Monday or every 1st of the month, at a local time of
    day in an IANA time zone.

    A refill time that a daylight-saving change skips (02:30 on the night clocks jump from 02:00 to
    03:00) happens as soon as the clock has passed it (03:30); one that occurs twice (the night
    clocks go back) happens the first time.
    """

    period: Period
    refill_minute: int = 0
    timezone: str = "UTC"

    @classmethod
    def of(cls, settings: EconomySettings) -> RefillSchedule:
        return cls(settings.period, settings.refill_minute, settings.timezone)

    def last_refill(self, *, after: float, now: float) -> float | None:
        """The latest refill moment `t` with `after < t <= now`, or None."""
        if self.period is Period.NEVER or now <= after:
            return None
        day = self._period_first_day(self._local_date(now))
        moment = self._moment(day)
        while moment > now:
            day = self._shift(day, -1)
            moment = self._moment(day)
        return moment if moment > after else None

    def next_refill(self, after: float) -> float | None:
        """The first refill moment strictly after `after`, or None when the allowance never refills."""
        if self.period is Period.NEVER:
            return None
        day = self._period_first_day(self._local_date(after))
        moment = self._moment(day)
        while moment <= after:
            day = self._shift(day, 1)
            moment = self._moment(day)
        return moment

    def _local_date(self, epoch: float) -> date:
        return datetime.fromtimestamp(epoch, _zone(self.timezone)).date()

    def _moment(self, day: date) -> float:
        clock = time(self.refill_minute // 60, self.refill_minute % 60)
        return datetime.combine(day, clock, tzinfo=_zone(self.timezone)).timestamp()

    def _period_first_day(self, day: date) -> date:
        if self.period is Period.WEEKLY:
            return day - timedelta(days=day.weekday())
        if self.period is Period.MONTHLY:
            return day.replace(day=1)
        return day

    def _shift(self, first_day: date, periods: int) -> date:
        if self.period is Period.WEEKLY:
            return first_day + timedelta(weeks=periods)
        if self.period is Period.MONTHLY:
            months = first_day.year * 12 + first_day.month - 1 + periods
            return date(months // 12, months % 12 + 1, 1)
        return first_day + timedelta(days=periods)


@cache
def _loaded_zone(name: str) -> tzinfo | None:
    """The time zone `name`, or None when this machine has no usable data for it."""
    if name == "UTC":
        return UTC  # needs no time zone data at all
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def timezone_loads(name: str) -> bool:
    """Whether refills can be computed in time zone `name` on this machine."""
    return _loaded_zone(name) is not None


@cache
def _zone(name: str) -> tzinfo:
    """The zone refills are computed in. A stored zone that cannot be loaded (time zone data
    missing or changed since it was chosen) falls back to UTC, with one warning, so that credits,
    refunds included, keep working in that server."""
    zone = _loaded_zone(name)
    if zone is None:
        log.warning(
            "Time zone %r cannot be loaded on this machine (is the tzdata package installed?); "
            "computing refills in UTC instead until a moderator sets another zone",
            name,
        )
        return UTC
    return zone


def parse_refill_time(text: str) -> int | None:
    """Minutes after midnight for "HH:MM" (24-hour clock, "7:30" allowed), or None if it isn't one."""
    match = _REFILL_TIME.match(text.strip())
    if match is None:
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


@cache
def timezone_names() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted."""
    return tuple(sorted(available_timezones() | {"UTC"}))


def canonical_timezone(text: str) -> str | None:
    """The IANA name `text` stands for (case-insensitive), or None if it names no time zone this
    machine can load."""
    wanted = text.strip().casefold()
    name = next((name for name in timezone_names() if name.casefold() == wanted), None)
    return name if name is not None and timezone_loads(name) else None


def refill_due(
    settings: EconomySettings,
    rules: Iterable[AllowanceRule],
    role_ids: Sequence[int] | None,
    *,
    since: float,
    now: float,
) -> float | None:
    """The latest moment after `since` and up to `now` at which the member's allowance was due a
    refill, or None if it was not.

    Refills are the schedule's period starts (only those after `schedule_from`, when the schedule
    last changed), the latest refill an earlier schedule was due (`carried_refill_at`), and a
    moderator's "apply now" for the server or for one of the member's roles. `role_ids=None` counts
    an "apply now" for any role: used to ask whether any refill may have happened.
    """
    due: list[float] = []
    scheduled = RefillSchedule.of(settings).last_refill(after=max(since, settings.schedule_from), now=now)
    if scheduled is not None:
        due.append(scheduled)
    carried = settings.carried_refill_at
    if carried is not None and since < carried <= now:
        due.append(carried)
    for rule in rules:
        if not rule.refills or not since < rule.effective_from <= now:
            continue
        if role_ids is None or rule.role_id == SERVER_WIDE or rule.role_id in role_ids:
            due.append(rule.effective_from)
    return max(due, default=None)


def carry_refill(settings: EconomySettings, now: float) -> float | None:
    """What `carried_refill_at` becomes when the schedule changes at `now`: the latest refill due so
    far, so that members who have not been seen since it still get it."""
    last = RefillSchedule.of(settings).last_refill(after=settings.schedule_from, now=now)
    candidates = [t for t in (settings.carried_refill_at, last) if t is not None]
    return max(candidates, default=None)


# -- allowances ---------------------------------------------------------------------------------


def allowance_at(
    rules: Iterable[AllowanceRule], role_ids: Sequence[int], default: int, at: float = math.inf
) -> int:
    """A member's allowance at moment `at`: the highest of the server's allowance (`default` until a
    moderator sets one) and the allowances of the member's roles, each as decided by then."""
    latest: dict[int, AllowanceRule] = {}
    for rule in rules:
        if rule.effective_from > at or (rule.role_id != SERVER_WIDE and rule.role_id not in role_ids):
            continue
        current = latest.get(rule.role_id)
        if current is None or rule.effective_from >= current.effective_from:
            latest[rule.role_id] = rule
    server = latest.pop(SERVER_WIDE).amount if SERVER_WIDE in latest else default
    return max([server, *(rule.amount for rule in latest.values())])


def current_rules(rules: Iterable[AllowanceRule]) -> dict[int, int]:
    """The allowance decided last for the server (`SERVER_WIDE`) and for each role."""
    latest: dict[int, AllowanceRule] = {}
    for rule in rules:
        current = latest.get(rule.role_id)
        if current is None or rule.effective_from >= current.effective_from:
            latest[rule.role_id] = rule
    return {role_id: rule.amount for role_id, rule in latest.items()}


# -- which part of a balance moves ---------------------------------------------------------------


def spend(cost: int, balance: Balance) -> tuple[int, int]:
    """(from allowance, from bonus) for a spend of `cost`: the allowance first, then bonus. The
    bonus part may exceed the bonus: the caller's conditional update refuses that."""
    from_allowance = min(cost, balance.allowance_left)
    return from_allowance, cost - from_allowance


def take_away(amount: int, balance: Balance) -> tuple[int, int]:
    """(from allowance, from bonus) for a moderator taking `amount` away: bonus first, since grants
    are bonus credits, then the allowance."""
    from_bonus = min(amount, balance.bonus)
    return amount - from_bonus, from_bonus


def refund(
    from_allowance: int,
    from_bonus: int,
    balance: Balance,
    allowance: int,
    *,
    refilled: bool,
    own_cancel: bool = False,
) -> Refund:
    """What comes back, and where to, when a split's credits come back.

    Each part goes back where it came from, except: if the allowance was refilled since the split
    started, the allowance part comes back as bonus (a refill must not swallow a refund for our
    failure); and the allowance is never filled beyond this period's allowance (after a
    moderator's reset), the rest coming back as bonus. The member gets every credit back.

    `own_cancel`: the member called the split off themselves. After a refill its allowance part is
    not returned: it expired with its period, as it would have unspent. Returning it as bonus, which
    never expires, would let a member keep a period's allowance for good by holding a job across
    the refill (queued during the API's maintenance, say) and cancelling it. Bonus still comes back
    as bonus; before a refill, everything comes back as for a failure.
    """
    if refilled and own_cancel:
        return Refund(0, from_bonus, expired=from_allowance)
    if refilled:
        return Refund(0, from_allowance + from_bonus)
    to_allowance = max(0, min(from_allowance, allowance - balance.allowance_left))
    return Refund(to_allowance, from_allowance - to_allowance + from_bonus)


def set_to(amount: int, allowance: int) -> Balance:
    """The parts of a balance a moderator sets to `amount`: the allowance part up to the member's
    allowance for this period, anything above it bonus (kept across refills)."""
    allowance_left = min(amount, allowance)
    return Balance(allowance_left, amount - allowance_left)


# -- the servers' monthly budgets (API credits, per calendar month in UTC) -------------------------

CHEAPEST_SPLIT = min(mode.api_price for mode in Mode)
"""A budget with less than this left cannot pay for any split: it is used up."""


def budget_month(epoch: float) -> str:
    """The calendar month, in UTC, that `epoch` falls in ("2025-03"): what a budget counts in."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def budget_renews_at(epoch: float) -> float:
    """When the month of `epoch` ends and a fresh budget starts: the 1st of next month, 00:00 UTC."""
    moment = datetime.fromtimestamp(epoch, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def budget_level(spent: int, budget: int | None) -> BudgetLevel | None:
    """How far a server is into its budget: used up once no split fits, nearly at 80%."""
    if budget is None:
        return None
    if budget - spent < CHEAPEST_SPLIT:
        return BudgetLevel.USED_UP
    if spent * 5 >= budget * 4:
        return BudgetLevel.NEARLY_USED
    return None


def timezone_suggestions(text: str, limit: int = 25) -> list[str]:
    """Time zone names for an autocomplete: those starting with `text` first, then those containing
    it (case-insensitive; spaces match underscores)."""
    wanted = text.strip().casefold().replace(" ", "_")
    if not wanted:
        popular = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles")
        return list(popular)[:limit]
    names = timezone_names()
    starts = [
        n for n in names if n.casefold().startswith(wanted) or n.casefold().split("/")[-1].startswith(wanted)
    ]
    contains = [n for n in names if wanted in n.casefold() and n not in starts]
    return (starts + contains)[:limit]
