"""Member credit rules: what a member has and may spend. Knows members only as integer ids."""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import CreditSummary
from bot.store import Store

__all__ = ["CreditService", "CreditSummary"]


class CreditService:
    """A member's credits as they stand now. `default_credits` is the server's allowance until a
    moderator sets one; `jobs_per_member` the splits at once until the server sets its own."""

    def __init__(self, store: Store, *, default_credits: int, jobs_per_member: int) -> None:
        self._store = store
        self.default_credits = default_credits
        self.jobs_per_member = jobs_per_member

    async def summary(self, guild_id: int, user_id: int, *, role_ids: Sequence[int]) -> CreditSummary:
        """Balance, allowance, next refill, bonus, spending and splits running: one set of figures
        for `/credits` and `/quota view`. `role_ids` are the member's roles (for role allowances)."""
        return await self._store.credit_summary(
            guild_id,
            user_id,
            starting=self.default_credits,
            max_in_flight=self.jobs_per_member,
            role_ids=role_ids,
        )
