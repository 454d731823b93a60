"""Member credit rules: what a member has and may spend. Knows members only as integer ids."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store import Store


@dataclass(frozen=True, slots=True)
class CreditSummary:
    balance: int
    jobs_in_flight: int
    jobs_per_member: int


class CreditService:
    def __init__(self, store: Store, *, default_credits: int, jobs_per_member: int) -> None:
        self._store = store
        self.default_credits = default_credits
        self.jobs_per_member = jobs_per_member

    async def summary(self, guild_id: int, user_id: int) -> CreditSummary:
        balance = await self._store.balance(guild_id, user_id, self.default_credits)
        in_flight = await self._store.jobs_in_flight(guild_id, user_id)
        return CreditSummary(balance, in_flight, self.jobs_per_member)
