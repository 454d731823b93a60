"""The owner's wallet: each server's monthly budget of API credits, as the bot's owner sees and sets
it with `/stembot budget`, and the bot's own (`MONTHLY_BUDGET`, every server together), shown beside.

Every paid split is charged to the owner's API account, so no server's moderators may decide how
much of it their server spends: the default is `SERVER_MONTHLY_BUDGET`, and only the bot's owner
(checked by the cog: only Discord knows who owns the application) gives a server its own. The
budget itself is enforced where splits are reserved (`bot.store.reservations`).
"""

from __future__ import annotations

import logging

from bot.errors import InvalidOption, option_name
from bot.i18n import _, number
from bot.models import BudgetChange, BudgetOverview, DeploymentBudget, ServerBudget
from bot.settings import MAX_SERVER_MONTHLY_BUDGET
from bot.store import Store

log = logging.getLogger(__name__)

USE_DEFAULT = -1
"""`amount:-1`: the server goes back to the bot's default budget."""

_SNOWFLAKE_DIGITS = range(15, 21)  # Discord ids have 17 to 19 digits today; leave room either side


def parse_server_id(raw: str) -> int:
    """A server id typed by the owner (digits; Discord ids are too large for an integer option)."""
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) not in _SNOWFLAKE_DIGITS or int(text) >= 2**63:
        raise InvalidOption(
            "server_id",
            # TRANSLATORS: {option} is the option: "`server_id` must be …". "Copy Server ID" and
            # "Developer Mode" are Discord's own words: use Discord's wording in your language.
            _(
                "`{option}` must be a server id: 17 to 20 digits (in Discord, right-click the server and "
                "choose Copy Server ID; it needs Developer Mode). Nothing was changed.",
                option=option_name("server_id"),
            ),
        )
    return int(text)


class BudgetService:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def default_budget(self) -> int | None:
        return self._store.budgets.default_budget

    async def overview(self) -> BudgetOverview:
        """Every server that spent anything this month or has its own budget, most spent first."""
        return await self._store.budgets.overview()

    async def bot(self) -> DeploymentBudget:
        """The bot's own budget this month (`MONTHLY_BUDGET`), every server together."""
        return await self._store.budgets.bot()

    async def server(self, server_id: str) -> ServerBudget:
        return await self._store.budgets.server(parse_server_id(server_id))

    async def set_budget(self, server_id: str, amount: int, *, actor_id: int) -> BudgetChange:
        """Give a server its own monthly budget in API credits, or (`USE_DEFAULT`) the default."""
        guild_id = parse_server_id(server_id)
        if not USE_DEFAULT <= amount <= MAX_SERVER_MONTHLY_BUDGET:
            raise InvalidOption(
                "amount",
                # TRANSLATORS: {option} is the option: "`amount` must be …".
                _(
                    "`{option}` must be a number of API credits from 0 to {high}, or -1 for the default "
                    "budget. Nothing was changed.",
                    option=option_name("amount"),
                    high=number(MAX_SERVER_MONTHLY_BUDGET),
                ),
            )
        change = await self._store.budgets.set_budget(
            guild_id, None if amount == USE_DEFAULT else amount, actor_id=actor_id
        )
        log.info(
            "guild=%s: the bot's owner %s set the monthly budget %s -> %s (%s spent this month)",
            guild_id,
            actor_id,
            change.before.budget,
            change.after.budget,
            change.after.spent,
        )
        return change


__all__ = ["USE_DEFAULT", "BudgetService", "parse_server_id"]
