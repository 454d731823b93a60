"""The store: the only package that speaks SQL.

`Store` opens the database (the unit of work, `bot.store.database`: an SQLite file through
`bot.store.sqlite`, or PostgreSQL through `bot.store.postgres`, as `bot.store.backends` chooses)
and gives each aggregate its repository: `accounts` (credits and the ledger), `economy` (each
server's settings and allowances), `jobs`, `budgets` (each server's monthly budget of API credits),
`reservations` (the transactions that span jobs, accounts and budgets), `deliveries` (the messages
results were shown in), `keeps` (results kept in Discord, stem by stem), `members` (members' own
choices), `pause` (the pause switch every process shares), `acks` (splits acknowledged whose job is
not stored yet), `songs` (the tracks of generations by title), `mixes` (mixes of a result's
stems), `reports` (usage summed per day, the ledger export, the names the bot saw), `languages` (the
Discord languages the bot saw) and `meta`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from bot.models import CreditPolicy
from bot.settings import PostgresURL
from bot.store.accounts import Accounts
from bot.store.acks import AcknowledgedSplits
from bot.store.backends import applied_version, open_database
from bot.store.budgets import Budgets
from bot.store.database import RECONNECTED, Clock, Database, StoreUnavailable
from bot.store.deliveries import Deliveries
from bot.store.jobs import Jobs
from bot.store.keeps import Keeps
from bot.store.languages import SeenLanguages
from bot.store.members import MemberPreferences
from bot.store.meta import Meta
from bot.store.migrations import MigrationError
from bot.store.mixes import Mixes
from bot.store.pause import PauseSwitch
from bot.store.reports import Reports
from bot.store.reservations import Reservations
from bot.store.server_economy import CACHE_CHANNEL, ServerEconomy
from bot.store.sharing import REUSE_MIN_LINK_LIFE
from bot.store.songs import Songs

__all__ = ["REUSE_MIN_LINK_LIFE", "MigrationError", "Store", "StoreUnavailable", "applied_version"]

log = logging.getLogger(__name__)


class Store:
    """The database and one repository per aggregate, all sharing its one unit of work."""

    def __init__(self, db: Database, policy: CreditPolicy) -> None:
        self.db = db
        self.policy = policy
        self.economy = ServerEconomy(db, default_credits=policy.default_credits)
        self.accounts = Accounts(db, self.economy, policy)
        self.jobs = Jobs(db)
        self.budgets = Budgets(
            db, default_budget=policy.server_monthly_budget, bot_budget=policy.monthly_budget
        )
        self.reservations = Reservations(db, self.accounts, self.budgets)
        self.deliveries = Deliveries(db)
        self.members = MemberPreferences(db)
        self.keeps = Keeps(db)
        self.mixes = Mixes(db, self.accounts)
        self.meta = Meta(db)
        self.pause = PauseSwitch(db)
        self.acks = AcknowledgedSplits(db)
        self.songs = Songs(db)
        self.reports = Reports(db)
        self.languages = SeenLanguages(db)

    @classmethod
    async def open(
        cls, target: Path | PostgresURL, policy: CreditPolicy | None = None, clock: Clock = time.time
    ) -> Store:
        """Open and migrate the database: the SQLite file at a path (creating folder and file if
        needed), or the PostgreSQL database a URL names. The store listens for other processes'
        changes to what it caches from then on."""
        store = cls(await open_database(target, clock), policy or CreditPolicy())
        try:
            await store.db.listen(CACHE_CHANNEL, store.changed_elsewhere)
        except BaseException:
            await store.close()
            raise
        return store

    def changed_elsewhere(self, payload: str) -> None:
        """A process (this one included) changed what `payload` names: drop the cached copy.
        After notifications may have been missed (`RECONNECTED`), or for anything unknown, drop
        every cached copy."""
        kind, _, guild = payload.partition(":")
        guild_id = int(guild) if guild.isdigit() else None
        if kind == "economy" and guild_id is not None:
            self.economy.forget(guild_id)
        elif kind == "budget" and guild_id is not None:
            self.budgets.forget(guild_id)
        else:
            if payload != RECONNECTED:
                log.warning("Unknown change notification %r: dropping every cached copy", payload)
            self.economy.forget()
            self.budgets.forget()

    async def ping(self) -> bool:
        return await self.db.ping()

    async def close(self) -> None:
        await self.db.close()
