"""The owner's wallet: what each server's paid jobs cost the API account per calendar month (UTC),
and the monthly budget each server may spend (its own, set by the bot's owner, or the bot's default);
and what all servers together cost it, against the bot's own monthly budget (`MONTHLY_BUDGET`).

Counting a job against the budgets happens in `bot.store.reservations`, in the transaction that
reserves the member's credits, with conditional updates: simultaneous splits can never spend more
than either budget. A refund gives back what the job counted, in the month it was counted in, to
both.
"""

from __future__ import annotations

from typing import Any

from bot import economy
from bot.models import (
    BudgetAlert,
    BudgetChange,
    BudgetLevel,
    BudgetOverview,
    DeploymentAlert,
    DeploymentBudget,
    JobState,
    ServerBudget,
)
from bot.store.database import Database, Tx
from bot.store.server_economy import announce_change


class Budgets:
    def __init__(self, db: Database, *, default_budget: int | None, bot_budget: int | None = None) -> None:
        self._db = db
        self.default_budget = default_budget
        self.bot_budget = bot_budget  # MONTHLY_BUDGET: every server together; None: no cap
        # The month in which this process last saw the bot's budget past 80% or refusing (a hint
        # for when reading it first is worth a round trip; the count is the check either way).
        self._bot_nearly_spent: str | None = None
        # Each server's own budget (None: the default), read on every paid split but changed only
        # through `set_budget`, which tells every process to drop its copy (`budget:<server id>`).
        self._overrides: dict[int, int | None] = {}
        self._drops = 0  # as in `ServerEconomy`: a read older than a drop is not cached

    def forget(self, guild_id: int | None = None) -> None:
        """Drop the cached budget of a server (None: of every server)."""
        self._drops += 1
        if guild_id is None:
            self._overrides.clear()
        else:
            self._overrides.pop(guild_id, None)

    # -- inside a unit of work --------------------------------------------------------------

    async def read(self, tx: Tx, guild_id: int, now: float) -> ServerBudget:
        """The server's budget and spend in the month of `now`."""
        month = economy.budget_month(now)
        row = await tx.fetchone(
            "SELECT (SELECT spent FROM budget_months WHERE guild_id = ? AND month = ?), "
            "(SELECT amount FROM server_budgets WHERE guild_id = ?)",
            (guild_id, month, guild_id),
        )
        assert row is not None
        spent, own = row
        return self._budget(guild_id, month, spent or 0, own, now)

    async def for_reservation(self, tx: Tx, guild_id: int, now: float) -> ServerBudget:
        """The server's budget as a reservation needs it: exact when there is a cap; with none,
        nothing can be refused, so the month's spend is not read (`count` returns it).

        With a cap, the month's row is made if missing and locked until the transaction ends
        (`Tx.for_update`), so no other reservation counts against it between this check and
        `count`: on PostgreSQL they run side by side, and a budget checked stale would either let
        one through that does not fit or fail at `count`."""
        month = economy.budget_month(now)
        if self.default_budget is None and await self._override(tx, guild_id) is None:
            return self._budget(guild_id, month, 0, None, now)
        key = (guild_id, month)
        await tx.execute(
            "INSERT INTO budget_months (guild_id, month) VALUES (?, ?) ON CONFLICT DO NOTHING", key
        )
        spent = await tx.scalar(
            "SELECT spent FROM budget_months WHERE guild_id = ? AND month = ?" + tx.for_update, key
        )
        own = await tx.scalar("SELECT amount FROM server_budgets WHERE guild_id = ?", (guild_id,))
        return self._budget(guild_id, month, spent or 0, own, now)

    async def _override(self, tx: Tx, guild_id: int) -> int | None:
        if guild_id in self._overrides:
            return self._overrides[guild_id]
        drops = self._drops
        own = await tx.scalar("SELECT amount FROM server_budgets WHERE guild_id = ?", (guild_id,))
        amount = None if own is None else int(own)
        if drops == self._drops:
            self._overrides[guild_id] = amount
        return amount

    async def count(self, tx: Tx, budget: ServerBudget, cost: int) -> ServerBudget | None:
        """Count `cost` against the server's budget of this month, if it fits (a conditional
        update: never more than the budget). Returns the budget after, or None (nothing changed)."""
        if budget.budget is not None and cost > budget.budget:
            return None
        # One statement (it is on every paid /split's path): the month's row is made or added to,
        # the addition only while it stays within the budget.
        sql = (
            "INSERT INTO budget_months (guild_id, month, spent) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id, month) DO UPDATE SET spent = budget_months.spent + excluded.spent"
        )
        params: tuple[Any, ...] = (budget.guild_id, budget.month, cost)
        if budget.budget is not None:
            sql += " WHERE budget_months.spent + excluded.spent <= ?"
            params += (budget.budget,)
        rows = await tx.fetchall(sql + " RETURNING spent", params)
        if not rows:
            return None
        return ServerBudget(
            budget.guild_id, budget.month, rows[0]["spent"], budget.budget, budget.own, budget.renews_at
        )

    async def alert_due(self, tx: Tx, budget: ServerBudget) -> BudgetAlert | None:
        """The alert the server's audit channel should get now, if its budget reached a level not
        yet alerted this month; marked as sent here, so it is given once (a restart included).
        Used up also covers nearly used: a jump past both gives the one alert that matters."""
        level = economy.budget_level(budget.spent, budget.budget)
        if level is None:
            return None
        if level is BudgetLevel.USED_UP:
            flag, marks = "alerted_used_up", "alerted_nearly_used = 1, alerted_used_up = 1"
        else:
            flag, marks = "alerted_nearly_used", "alerted_nearly_used = 1"
        await tx.execute(
            "INSERT INTO budget_months (guild_id, month) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (budget.guild_id, budget.month),
        )
        changed = await tx.execute(
            f"UPDATE budget_months SET {marks} WHERE guild_id = ? AND month = ? AND {flag} = 0",
            (budget.guild_id, budget.month),
        )
        return BudgetAlert(level, budget) if changed else None

    # -- the bot's budget: every server together ----------------------------------------------

    async def bot_for_reservation(self, tx: Tx, now: float) -> DeploymentBudget:
        """The bot's budget in the month of `now`, for a reservation to check before it writes
        anything. Every paid reservation of the deployment counts on this one row, so it is read
        only where that can save work: with a cap, and once this process has seen the month's
        spend past 80% or a count refused (`count_bot`, which stays the exact check, locks the row
        last, right before commit). Otherwise `spent` is 0: not read, and nothing is refused here."""
        month = economy.budget_month(now)
        if self.bot_budget is None or self._bot_nearly_spent != month:
            return DeploymentBudget(month, 0, self.bot_budget, economy.budget_renews_at(now))
        return await self.bot_read(tx, now)

    async def bot_read(self, tx: Tx, now: float) -> DeploymentBudget:
        """The bot's budget and spend in the month of `now`, read without a lock."""
        month = economy.budget_month(now)
        spent = await tx.scalar("SELECT spent FROM deployment_months WHERE month = ?", (month,))
        return DeploymentBudget(month, spent or 0, self.bot_budget, economy.budget_renews_at(now))

    async def count_bot(
        self, tx: Tx, budget: DeploymentBudget, cost: int
    ) -> tuple[DeploymentBudget | None, DeploymentAlert | None]:
        """Count `cost` against the bot's budget of this month, if it fits (one conditional
        statement, which makes the month's row if missing): the budget after, and the alert due
        now (marked as sent in this transaction, so it is given once, whichever process counts).
        (None, None): it does not fit, and nothing changed.

        The row stays locked until the transaction ends; call this last, right before commit, so
        that the one row every reservation touches is held for as short a time as possible."""
        cap = budget.budget
        if cap is not None and cost > cap:
            self._bot_nearly_spent = budget.month
            return None, None
        sql = (
            "INSERT INTO deployment_months (month, spent) VALUES (?, ?) ON CONFLICT (month) "
            "DO UPDATE SET spent = deployment_months.spent + excluded.spent"
        )
        params: tuple[Any, ...] = (budget.month, cost)
        if cap is not None:
            sql += " WHERE deployment_months.spent + excluded.spent <= ?"
            params += (cap,)
        rows = await tx.fetchall(sql + " RETURNING spent, alerted_nearly_used, alerted_used_up", params)
        if not rows:
            self._bot_nearly_spent = budget.month  # from now on, check before writing anything
            return None, None
        after = DeploymentBudget(budget.month, rows[0]["spent"], cap, budget.renews_at)
        near = economy.budget_level(after.spent, cap) is not None
        self._bot_nearly_spent = budget.month if near else None
        # The flags were read under the row's lock: only this transaction can set them now.
        alert = await self._bot_alert_due(
            tx, after, rows[0]["alerted_nearly_used"], rows[0]["alerted_used_up"]
        )
        return after, alert

    async def bot_alert_due(self, tx: Tx, budget: DeploymentBudget) -> DeploymentAlert | None:
        """The alert the bot's owner should get now that a split was refused, if the bot's budget
        reached a level not yet alerted this month (a conditional update: once, in any process).
        The flags are read first without a lock, so refusals after the alert never queue for the
        row every reservation counts on."""
        if economy.budget_level(budget.spent, budget.budget) is None:
            return None
        row = await tx.fetchone(
            "SELECT alerted_nearly_used, alerted_used_up FROM deployment_months WHERE month = ?",
            (budget.month,),
        )
        flags = (row[0], row[1]) if row is not None else (0, 0)
        return await self._bot_alert_due(tx, budget, *flags)

    async def _bot_alert_due(
        self, tx: Tx, budget: DeploymentBudget, nearly_used: int, used_up: int
    ) -> DeploymentAlert | None:
        level = economy.budget_level(budget.spent, budget.budget)
        if level is None or used_up or (level is BudgetLevel.NEARLY_USED and nearly_used):
            return None  # below both lines, or told already (the flags only ever say so truly)
        # As for servers, used up also covers nearly used: a jump past both gives one alert.
        if level is BudgetLevel.USED_UP:
            flag, marks = "alerted_used_up", "alerted_nearly_used = 1, alerted_used_up = 1"
        else:
            flag, marks = "alerted_nearly_used", "alerted_nearly_used = 1"
        await tx.execute(
            "INSERT INTO deployment_months (month) VALUES (?) ON CONFLICT DO NOTHING", (budget.month,)
        )
        changed = await tx.execute(
            f"UPDATE deployment_months SET {marks} WHERE month = ? AND {flag} = 0", (budget.month,)
        )
        return DeploymentAlert(level, budget) if changed else None

    async def bot(self) -> DeploymentBudget:
        """The bot's budget and what every server together spent this month."""
        now = self._db.now()
        month = economy.budget_month(now)
        spent = await self._db.fetchone("SELECT spent FROM deployment_months WHERE month = ?", (month,))
        return DeploymentBudget(
            month, spent[0] if spent else 0, self.bot_budget, economy.budget_renews_at(now)
        )

    # -- the bot's owner --------------------------------------------------------------------

    async def server(self, guild_id: int) -> ServerBudget:
        """The server's budget and spend this month."""
        async with self._db.reading() as tx:
            return await self.read(tx, guild_id, self._db.now())

    async def overview(self) -> BudgetOverview:
        """Every server that spent anything this month or has a budget of its own, most spent first."""
        now = self._db.now()
        month = economy.budget_month(now)
        rows = await self._db.fetchall(
            "SELECT g.guild_id, COALESCE(m.spent, 0) AS spent, o.amount AS own FROM ("
            "SELECT guild_id FROM budget_months WHERE month = ? AND spent > 0 "
            "UNION SELECT guild_id FROM server_budgets"
            ") g "
            "LEFT JOIN budget_months m ON m.guild_id = g.guild_id AND m.month = ? "
            "LEFT JOIN server_budgets o ON o.guild_id = g.guild_id "
            "ORDER BY spent DESC, g.guild_id",
            (month, month),
        )
        return BudgetOverview(
            month=month,
            renews_at=economy.budget_renews_at(now),
            default_budget=self.default_budget,
            servers=tuple(self._budget(r["guild_id"], month, r["spent"], r["own"], now) for r in rows),
            bot=await self.bot(),
        )

    async def set_budget(self, guild_id: int, amount: int | None, *, actor_id: int) -> BudgetChange:
        """Give the server its own monthly budget, or (None) return it to the bot's default. Alerts
        of this month that the new budget no longer reaches may be given again."""
        self.forget(guild_id)
        try:
            async with self._db.transaction() as tx:
                change = await self._set_budget(tx, guild_id, amount, actor_id)
        finally:
            self.forget(guild_id)  # read afresh, whatever happened
        await announce_change(self._db, f"budget:{guild_id}")
        return change

    async def _set_budget(self, tx: Tx, guild_id: int, amount: int | None, actor_id: int) -> BudgetChange:
        now = self._db.now()
        before = await self.read(tx, guild_id, now)
        if amount is None:
            await tx.execute("DELETE FROM server_budgets WHERE guild_id = ?", (guild_id,))
        else:
            await tx.execute(
                "INSERT INTO server_budgets (guild_id, amount, set_by, set_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id) DO UPDATE SET amount = excluded.amount, "
                "set_by = excluded.set_by, set_at = excluded.set_at",
                (guild_id, amount, actor_id, now),
            )
        after = await self.read(tx, guild_id, now)
        level = economy.budget_level(after.spent, after.budget)
        await tx.execute(
            "UPDATE budget_months SET alerted_nearly_used = alerted_nearly_used * ?, "
            "alerted_used_up = alerted_used_up * ? WHERE guild_id = ? AND month = ?",
            (int(level is not None), int(level is BudgetLevel.USED_UP), guild_id, after.month),
        )
        return BudgetChange(before, after)

    async def mismatches(self) -> list[tuple[int, str, int, int]]:
        """Where a month's spend is not what its jobs counted (see `budget_mismatches`); the bot's
        months are listed as server 0 (see `bot_budget_mismatches`)."""
        async with self._db.reading() as tx:
            return await budget_mismatches(tx) + [
                (0, month, spent, servers) for month, spent, servers in await bot_budget_mismatches(tx)
            ]

    def _budget(self, guild_id: int, month: str, spent: int, own: int | None, now: float) -> ServerBudget:
        return ServerBudget(
            guild_id=guild_id,
            month=month,
            spent=spent,
            budget=own if own is not None else self.default_budget,
            own=own is not None,
            renews_at=economy.budget_renews_at(now),
        )


async def budget_mismatches(tx: Tx) -> list[tuple[int, str, int, int]]:
    """(server, month, spent, counted by its jobs) wherever a month's spend is not the sum of what
    its jobs that were not refunded counted: empty when the books agree."""
    rows = await tx.fetchall(
        "SELECT guild_id, month, SUM(spent) AS spent, SUM(held) AS held FROM ("
        "SELECT guild_id, month, spent, 0 AS held FROM budget_months UNION ALL "
        "SELECT guild_id, budget_month, 0, budget_cost FROM jobs WHERE budget_cost > 0 "
        "AND state NOT IN (?, ?)) AS books GROUP BY guild_id, month HAVING SUM(spent) != SUM(held)",
        (JobState.FAILED, JobState.CANCELLED),  # refunded: their budget was given back
    )
    return [(r["guild_id"], r["month"], r["spent"], r["held"]) for r in rows]


async def bot_budget_mismatches(tx: Tx) -> list[tuple[str, int, int]]:
    """(month, the bot's spend, its servers' spends together) wherever they differ: empty when the
    bot's books agree with the servers'."""
    rows = await tx.fetchall(
        "SELECT month, SUM(spent) AS spent, SUM(servers) AS servers FROM ("
        "SELECT month, spent, 0 AS servers FROM deployment_months UNION ALL "
        "SELECT month, 0, spent FROM budget_months) AS books "
        "GROUP BY month HAVING SUM(spent) != SUM(servers)"
    )
    return [(r["month"], r["spent"], r["servers"]) for r in rows]


async def release(tx: Tx, guild_id: int, month: str, cost: int) -> None:
    """Give back what a refunded job counted against its server's budget, in the month it counted.
    The bot's budget gets it back too (`release_bot`), after every server row the transaction
    releases."""
    await tx.execute(
        "UPDATE budget_months SET spent = CASE WHEN spent > ? THEN spent - ? ELSE 0 END "
        "WHERE guild_id = ? AND month = ?",
        (cost, cost, guild_id, month),
    )


async def release_bot(tx: Tx, month: str, cost: int) -> None:
    """Give back what a refunded job counted against the bot's budget, in the month it counted.
    The bot's month row comes after every server's row in the store's lock order (reservations
    take them in that order): a transaction releasing several jobs releases every server's row
    first, then the bot's, once per month."""
    await tx.execute(
        "UPDATE deployment_months SET spent = CASE WHEN spent > ? THEN spent - ? ELSE 0 END WHERE month = ?",
        (cost, cost, month),
    )
