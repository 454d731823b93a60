"""Each server's economy: its settings (refill schedule, limits, moderator role, audit channel)
and its allowance decisions, with a cache, since every credit operation reads them.

They change only through this repository: the cached copy of a server is dropped whenever it is
changed here, and every other process on the database is told to drop its own (`CACHE_CHANNEL`,
`economy:<server id>`; `bot.store.Store` listens and calls `forget`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import fields, replace
from typing import Any

from bot import economy
from bot.economy import RefillSchedule
from bot.models import (
    SERVER_WIDE,
    AllowanceRule,
    AllowanceUpdate,
    EconomySettings,
    KeepStems,
    MixStems,
    Period,
    ReuseCharge,
)
from bot.store.database import Database, Row, Tx

log = logging.getLogger(__name__)

CACHE_CHANNEL = "stembot_cache"
"""Where a process says it changed something other processes cache: `economy:<server id>`,
`budget:<server id>`."""

_SETTINGS_COLUMNS = tuple(f.name for f in fields(EconomySettings))
ADJUSTABLE_SETTINGS = frozenset(
    {
        "refill_minute",
        "timezone",
        "jobs_per_member",
        "cooldown_seconds",
        "moderator_role_id",
        "audit_channel_id",
        "reuse_charge",
        "keep_stems",
        "mix_stems",
        "mix_price",
        "language",
    }
)


class ServerEconomy:
    def __init__(self, db: Database, *, default_credits: int) -> None:
        self._db = db
        self._default_credits = default_credits
        self._cache: dict[int, tuple[EconomySettings, tuple[AllowanceRule, ...]]] = {}
        # Counts the copies dropped: a read that began before a drop must not cache what it read
        # (it may predate the change another process just announced).
        self._drops = 0

    def forget(self, guild_id: int | None = None) -> None:
        """Drop the cached copy of a server's economy (None: of every server)."""
        self._drops += 1
        if guild_id is None:
            self._cache.clear()
        else:
            self._cache.pop(guild_id, None)

    async def get(self, guild_id: int) -> tuple[EconomySettings, list[AllowanceRule]]:
        """The server's settings and its allowance decisions, oldest first."""
        async with self._db.reading() as tx:
            return await self.read(tx, guild_id)

    async def read(self, tx: Tx, guild_id: int) -> tuple[EconomySettings, list[AllowanceRule]]:
        """The same, inside the caller's unit of work."""
        cached = self._cache.get(guild_id)
        if cached is not None:
            return cached[0], list(cached[1])
        drops = self._drops
        row = await tx.fetchone("SELECT * FROM economy_settings WHERE guild_id = ?", (guild_id,))
        settings = _settings_from_row(row) if row else EconomySettings(guild_id)
        rules = [
            AllowanceRule(r["role_id"], r["amount"], r["effective_from"], bool(r["refills"]))
            for r in await tx.fetchall(
                "SELECT role_id, amount, effective_from, refills FROM allowance_rules "
                "WHERE guild_id = ? ORDER BY effective_from, id",
                (guild_id,),
            )
        ]
        if drops == self._drops:
            self._cache[guild_id] = (settings, tuple(rules))
        return settings, rules

    async def audit_channels(self) -> list[tuple[int, int]]:
        """(guild id, audit channel id) of every server that set an audit channel."""
        rows = await self._db.fetchall(
            "SELECT guild_id, audit_channel_id FROM economy_settings WHERE audit_channel_id IS NOT NULL"
        )
        return [(r["guild_id"], r["audit_channel_id"]) for r in rows]

    async def update_settings(
        self, guild_id: int, changes: Mapping[str, Any], *, actor_id: int
    ) -> tuple[EconomySettings, EconomySettings]:
        """Change some of the server's settings (names as in `EconomySettings`; None clears one).
        Returns the settings before and after. A new refill time or time zone applies from the next
        refill under it; a refill that was already due is still given (see `economy.carry_refill`)."""
        unknown = set(changes) - ADJUSTABLE_SETTINGS
        if unknown:
            raise ValueError(f"not adjustable settings: {sorted(unknown)}")
        zone = changes.get("timezone", "UTC")
        if not isinstance(zone, str) or not economy.timezone_loads(zone):
            # A zone that cannot be loaded would be computed in UTC behind the moderator's back.
            raise ValueError(f"time zone {zone!r} cannot be loaded")
        async with self._changing(guild_id) as tx:
            now = self._db.now()
            before, _ = await self.read(tx, guild_id)
            after = replace(before, **changes)
            if RefillSchedule.of(after) != RefillSchedule.of(before):
                after = replace(after, schedule_from=now, carried_refill_at=economy.carry_refill(before, now))
            await _save_settings(tx, after, actor_id=actor_id, now=now)
            return before, after

    async def set_allowance(
        self,
        guild_id: int,
        amount: int,
        *,
        role_id: int,
        period: Period | None,
        apply_now: bool,
        actor_id: int,
    ) -> AllowanceUpdate:
        """Record an allowance decision for the server (`role_id` SERVER_WIDE) or a role, and the
        server's period if given. It applies from the next refill, or, with `apply_now`, refills
        everyone it concerns now."""
        async with self._changing(guild_id) as tx:
            now = self._db.now()
            before, rules = await self.read(tx, guild_id)
            previous = economy.current_rules(rules).get(
                role_id, self._default_credits if role_id == SERVER_WIDE else 0
            )
            after = before
            if period is not None and period is not before.period:
                after = replace(
                    before,
                    period=period,
                    schedule_from=now,
                    carried_refill_at=economy.carry_refill(before, now),
                )
                await _save_settings(tx, after, actor_id=actor_id, now=now)
            await tx.execute(
                "INSERT INTO allowance_rules (guild_id, role_id, amount, effective_from, refills, "
                "actor_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (guild_id, role_id, amount, now, int(apply_now), actor_id, now),
            )
        return AllowanceUpdate(
            role_id=role_id,
            amount=amount,
            previous_amount=previous,
            period=after.period,
            previous_period=before.period,
            applied_now=apply_now,
            next_refill_at=RefillSchedule.of(after).next_refill(now),
        )

    @asynccontextmanager
    async def _changing(self, guild_id: int) -> AsyncIterator[Tx]:
        """A transaction that changes a server's settings or rules: the cached copy is dropped
        before and after, so nobody reads it stale, even if the change fails half-way; once it
        has committed, every other process drops its copy too."""
        self.forget(guild_id)
        try:
            async with self._db.transaction() as tx:
                self.forget(guild_id)
                yield tx
        finally:
            self.forget(guild_id)
        await announce_change(self._db, f"economy:{guild_id}")


async def announce_change(db: Database, payload: str) -> None:
    """Tell every process to drop its cached copy of what `payload` names. The change itself is
    committed: a failure here is logged, not raised (the moderator's change did happen)."""
    try:
        await db.notify(CACHE_CHANNEL, payload)
    except Exception:
        log.exception("Could not tell the other processes about a change (%s)", payload)


async def _save_settings(tx: Tx, settings: EconomySettings, *, actor_id: int, now: float) -> None:
    columns = [name for name in _SETTINGS_COLUMNS if name != "guild_id"]
    await tx.execute(
        f"INSERT INTO economy_settings (guild_id, {', '.join(columns)}, updated_by, updated_at) "
        f"VALUES ({', '.join('?' for _ in range(len(columns) + 3))}) ON CONFLICT (guild_id) DO UPDATE "
        f"SET {', '.join(f'{c} = excluded.{c}' for c in columns)}, "
        "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        (settings.guild_id, *(getattr(settings, c) for c in columns), actor_id, now),
    )


def _settings_from_row(row: Row) -> EconomySettings:
    values = {name: row[name] for name in _SETTINGS_COLUMNS}
    values["period"] = Period(values["period"])
    values["reuse_charge"] = ReuseCharge(values["reuse_charge"])
    values["keep_stems"] = KeepStems(values["keep_stems"])
    values["mix_stems"] = MixStems(values["mix_stems"])
    return EconomySettings(**values)
