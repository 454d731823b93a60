"""Usage reports: what the store's grouped queries return, and the reports the services build from
them for `/quota report`, `/quota export` and `/stembot report`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class OffsetSpan:
    """From `start` (seconds since the epoch, UTC) until the next span, local time is UTC plus
    `offset` seconds. A period's spans let the database put each row in its local day."""

    start: float
    offset: int


@dataclass(frozen=True, slots=True)
class LedgerDay:
    """One ledger kind (and, for rows of a job, the job's mode) on one local day: the credits it took
    from members (`debited`, a positive number) and gave them (`credited`), in how many rows."""

    day: date
    kind: str
    mode: str | None
    debited: int
    credited: int
    rows: int


@dataclass(frozen=True, slots=True)
class BudgetDay:
    """API credits one server's paid jobs counted on one day (`counted`) and gave back when the job
    was refunded (`released`, on the day it finished), in budget month `month` (UTC, "2025-03": the
    month the job counted in, which a refund gives back to)."""

    day: date
    guild_id: int
    month: str
    counted: int
    released: int


@dataclass(frozen=True, slots=True)
class JobOutcomes:
    """The jobs of a period that finished: how many, and how many of them failed."""

    finished: int
    failed: int

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None


@dataclass(frozen=True, slots=True)
class Spender:
    user_id: int
    name: str | None  # as the bot last saw it; None: never seen
    credits: int


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One ledger row as `/quota export` writes it."""

    id: int
    created_at: float
    user_id: int
    name: str | None
    amount: int
    balance_after: int
    kind: str
    job_id: int | None
    reason: str | None
    actor_id: int | None


@dataclass(frozen=True, slots=True)
class Series:
    """One coloured part of a chart: its label and a value per day."""

    label: str
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A server's (or one member's) credits over its last days, by local day in `timezone`.

    `spent` stacks above the axis, one series per category: a job's mode (its value, such as
    "split_stem"), or a ledger kind the report does not know (such as a priced mix's), by its name.
    `refunded` goes below it, on the day each refund happened. `api_spent` is the server's API
    credits per day net of refunds, `api_month_spent` the same added up since each UTC month began
    (the line against `budget`, the server's monthly budget, when it has one); both are empty for
    one member's report."""

    guild_id: int
    member_id: int | None
    member_name: str | None
    server_name: str | None
    timezone: str
    days: tuple[date, ...]
    spent: tuple[Series, ...]
    refunded: tuple[int, ...]
    api_spent: tuple[int, ...]
    api_month_spent: tuple[int, ...]
    budget: int | None
    top: tuple[Spender, ...]
    outcomes: JobOutcomes

    @property
    def total_spent(self) -> int:
        return sum(sum(s.values) for s in self.spent)

    @property
    def total_refunded(self) -> int:
        return sum(self.refunded)

    @property
    def empty(self) -> bool:
        return not self.total_spent and not self.total_refunded and not self.outcomes.finished


OTHER_SERVERS = "other"
"""The label of the series that adds up every server but the top ones."""


@dataclass(frozen=True, slots=True)
class OwnerReport:
    """Every server's API credits per UTC day: the top servers, the rest together; the budgets."""

    days: tuple[date, ...]
    servers: tuple[Series, ...]  # API credits counted per day; label: the server's id, or OTHER_SERVERS
    names: dict[int, str]  # the servers' names as the bot last saw them
    released: tuple[int, ...]  # given back by refunds, per day
    account_credits: int | None  # the API account's balance now, when the API said
    monthly_budget: int | None  # MONTHLY_BUDGET
    server_monthly_budget: int | None  # SERVER_MONTHLY_BUDGET
    month_spent: tuple[int, ...]  # every server's API credits so far in each day's month (UTC)

    @property
    def total(self) -> int:
        return sum(sum(s.values) for s in self.servers) - sum(self.released)

    @property
    def empty(self) -> bool:
        return not any(any(s.values) for s in self.servers) and not any(self.released)


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A CSV written to `path` (the caller deletes it), with `rows` ledger rows in `size` bytes."""

    path: str
    filename: str
    rows: int
    size: int


@dataclass(frozen=True, slots=True)
class Gauges:
    """What `/metrics` reads from the database at each scrape (indexed reads of a few rows)."""

    keeps_unfinished: dict[str, int]  # keeps waiting or being posted, by state
    oldest_unfinished_job_at: float | None  # when the oldest unfinished job was asked for
    jobs_held: int  # unfinished jobs the asking process holds a lease on
