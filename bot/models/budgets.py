"""The owner's wallet: each server's monthly budget of API credits, the deployment's, and their
alerts."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BudgetLevel(enum.StrEnum):
    """How far a server is into its monthly budget, for the alerts to its audit channel."""

    NEARLY_USED = "nearly_used"  # 80% spent
    USED_UP = "used_up"  # too little left for even the cheapest split


class MonthlyCap:
    """What a month's budget leaves (a server's or the whole bot's): `spent` against `budget`,
    where None is no cap."""

    __slots__ = ()
    spent: int
    budget: int | None

    @property
    def left(self) -> int | None:
        return None if self.budget is None else max(self.budget - self.spent, 0)

    def fits(self, cost: int) -> bool:
        return self.budget is None or self.spent + cost <= self.budget


@dataclass(frozen=True, slots=True)
class ServerBudget(MonthlyCap):
    """One server's budget of API credits for one calendar month (UTC), and what it has spent."""

    guild_id: int
    month: str  # "2025-03"
    spent: int  # API credits of the paid jobs counted this month (refunded ones given back)
    budget: int | None  # in force this month; None: no cap
    own: bool  # set by the bot's owner for this server (else the bot's default)
    renews_at: float  # the first of next month, 00:00 UTC


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A server's budget reached `level` this month (at most one alert per level and month)."""

    level: BudgetLevel
    budget: ServerBudget


@dataclass(frozen=True, slots=True)
class DeploymentBudget(MonthlyCap):
    """The bot's budget of API credits for one calendar month (UTC), `MONTHLY_BUDGET`, and what all
    servers together have spent: the sum of their spends."""

    month: str  # "2025-03"
    spent: int  # API credits of the paid jobs counted this month, in every server
    budget: int | None  # MONTHLY_BUDGET; None: no cap
    renews_at: float  # the first of next month, 00:00 UTC


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
