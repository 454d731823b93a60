"""Member credit rules: what a member has and may spend. Knows members only as integer ids."""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import CreditSummary
from bot.store.accounts import Accounts

__all__ = ["CreditService", "CreditSummary"]


class CreditService:
    """A member's credits as they stand now."""

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    async def summary(self, guild_id: int, user_id: int, *, role_ids: Sequence[int]) -> CreditSummary:
        """Balance, allowance, next refill, bonus, spending and splits running: one set of figures
        for `/credits` and `/quota view`. `role_ids` are the member's roles (for role allowances)."""
        return await self._accounts.summary(guild_id, user_id, role_ids=role_ids)
