"""Moving a deployment from SQLite to PostgreSQL: every row of the SQLite store copied into an empty
PostgreSQL store in one transaction, ids kept (job numbers members know, callback tokens), the
identity sequences moved past them, and the books checked before anything commits.

`python -m bot --migrate-from sqlite:///…` runs `copy_sqlite_to_postgresql`; the bot must be
stopped (the SQLite file's one-process lock is taken for the copy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bot.models import CreditPolicy
from bot.settings import PostgresURL
from bot.store import Store
from bot.store.accounts import ledger_mismatches
from bot.store.budgets import bot_budget_mismatches, budget_mismatches
from bot.store.database import Row, StoreUnavailable
from bot.store.postgres import PostgresTx, describe_error

TABLES = (
    "accounts",
    "jobs",  # before everything that names a job; a job names only older ones
    "mixes",  # before the ledger, whose mix rows name them
    "ledger",
    "economy_settings",
    "allowance_rules",
    "budget_months",
    "deployment_months",
    "server_budgets",
    "delivered_messages",
    "member_preferences",
    "keeps",
    "kept_stems",
    "meta",
    "orphaned_tasks",
    "song_tasks",
    "song_tracks",  # after its task
    "member_names",
    "server_names",
    "member_languages",
    "server_languages",
)
"""Every table that holds the deployment's data, in an order the foreign keys accept. The schema's
own (`schema_version`), the job counts the triggers keep (`job_state_counts`) and the splits
acknowledged minutes ago whose answer belongs to the running bot (`acknowledged_splits`) are not
copied."""

NOT_COPIED = frozenset({"schema_version", "job_state_counts", "acknowledged_splits"})
COMMAND_SYNC_PREFIX = "commands_synced:"
_INTEGER_TYPES = frozenset({"bigint", "integer", "smallint"})


class CopyRefused(Exception):
    """The copy did not happen (nothing changed in the target); `str()` says why."""


@dataclass(frozen=True, slots=True)
class Copied:
    """What was copied: rows per table, in copy order."""

    rows: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.rows)


async def copy_sqlite_to_postgresql(
    source: Path, target: PostgresURL, *, copied_table: Callable[[str, int], None] = lambda _t, _n: None
) -> Copied:
    """Copy the SQLite store at `source` (first brought to the latest schema) into the PostgreSQL
    store at `target` (its schema made if needed), which must hold no data: one transaction, every
    id kept. Before committing, each table's rows are counted against the source's, every balance
    is checked against its ledger and every server's budget spend against its jobs. Raises
    `CopyRefused` when the target is not empty or a check fails: the target is then unchanged.
    `copied_table(name, rows)` is called after each table is copied (to show progress)."""
    if not await asyncio.to_thread(source.is_file):  # else opening it would make an empty one
        raise CopyRefused(f"there is no SQLite database at {source}")
    sqlite = await Store.open(source, CreditPolicy())
    try:
        await (await Store.open(target, CreditPolicy())).close()  # the target's schema, up to date
        try:
            conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(target.reveal(), timeout=10)
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            raise StoreUnavailable(describe_error(error)) from None
        try:
            async with conn.transaction():
                return await _copy(sqlite, conn, copied_table)
        finally:
            await conn.close()
    finally:
        await sqlite.close()


async def _copy(
    sqlite: Store, conn: asyncpg.Connection[asyncpg.Record], copied_table: Callable[[str, int], None]
) -> Copied:
    tx = PostgresTx(conn)
    # No bot may write into the target while it is filled (a process started too early waits).
    await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
    source_tables = {
        row[0]
        for row in await sqlite.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    unknown = source_tables - set(TABLES) - NOT_COPIED
    if unknown:
        raise CopyRefused(f"this version cannot copy the tables {', '.join(sorted(unknown))}")
    for table in TABLES:
        where = f" WHERE key NOT LIKE '{COMMAND_SYNC_PREFIX}%'" if table == "meta" else ""
        if await conn.fetchval(f"SELECT COUNT(*) FROM {table}{where}"):
            raise CopyRefused(
                f"the PostgreSQL database already holds data (table {table}); copy only into a new, "
                "empty database"
            )
    target_keys = {row[0] for row in await conn.fetch("SELECT key FROM meta")}
    copied: list[tuple[str, int]] = []
    for table in TABLES:
        columns = await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position",
            table,
        )
        names = [c["column_name"] for c in columns]
        info = await sqlite.db.fetchall(f"PRAGMA table_xinfo({table})")
        missing = set(names) - {column["name"] for column in info}
        if missing:
            raise CopyRefused(f"the SQLite table {table} has no column {', '.join(sorted(missing))}")
        keys = [column["name"] for column in sorted(info, key=lambda c: c["pk"]) if column["pk"]]
        rows = await sqlite.db.fetchall(
            f"SELECT {', '.join(names)} FROM {table} ORDER BY {', '.join(keys) or 'rowid'}"
        )
        if table == "meta":  # the target's own command-sync bookkeeping is the newer
            rows = [row for row in rows if row["key"] not in target_keys]
        types = [c["data_type"] for c in columns]
        records = [tuple(_value(row[i], types[i]) for i in range(len(names))) for row in rows]
        if records:
            await conn.copy_records_to_table(table, records=records, columns=names)
        copied.append((table, len(records)))
        copied_table(table, len(records))
    for column in await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ):
        table, name = column["table_name"], column["column_name"]
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{name}'), "
            f"COALESCE((SELECT MAX({name}) FROM {table}), 0) + 1, false)"
        )
    await _check(sqlite, tx, copied, target_keys)
    return Copied(tuple(copied))


async def _check(sqlite: Store, tx: PostgresTx, copied: list[tuple[str, int]], target_keys: set[str]) -> None:
    """The books of the copy, before it commits: every row arrived, every balance is the sum of its
    ledger and equal to the source's, the job counts and budgets agree with the jobs."""
    for table, rows in copied:
        skipped = target_keys if table == "meta" else set()  # the target's own, not copied
        where = f" WHERE key NOT IN ({', '.join('?' * len(skipped))})" if skipped else ""
        held = await _count(sqlite, f"SELECT COUNT(*) FROM {table}{where}", tuple(skipped))
        arrived = int(await tx.scalar(f"SELECT COUNT(*) FROM {table}")) - len(skipped)
        if not held == rows == arrived:
            raise CopyRefused(f"table {table}: the source holds {held} rows, {arrived} arrived")
    mismatches = await ledger_mismatches(tx)
    if mismatches:
        raise CopyRefused(
            f"{len(mismatches)} balance(s) differ from their ledger after the copy: {mismatches[:5]}"
        )
    balances = "SELECT guild_id, user_id, allowance_left, bonus FROM accounts ORDER BY guild_id, user_id"
    if [tuple(r) for r in await tx.fetchall(balances)] != [
        tuple(r) for r in await sqlite.db.fetchall(balances)
    ]:
        raise CopyRefused("the balances copied differ from the source's")
    async with sqlite.db.reading() as source:
        expected = sorted(await budget_mismatches(source))
    if sorted(await budget_mismatches(tx)) != expected:
        raise CopyRefused("the servers' budget spend copied differs from the source's")
    async with sqlite.db.reading() as source:
        expected_bot = sorted(await bot_budget_mismatches(source))
    if sorted(await bot_budget_mismatches(tx)) != expected_bot:
        raise CopyRefused("the bot's monthly spend copied differs from the source's")
    # The counts change as a transaction commits (a deferred trigger, migration 014): now, here.
    await tx.execute("SET CONSTRAINTS ALL IMMEDIATE")
    counts = "SELECT state, COUNT(*) FROM jobs GROUP BY state"
    kept = "SELECT state, total FROM job_state_counts WHERE total > 0"
    if sorted(map(tuple, await tx.fetchall(counts))) != sorted(map(tuple, await tx.fetchall(kept))):
        raise CopyRefused("the job counts kept by the database differ from the jobs copied")


async def _count(sqlite: Store, sql: str, params: tuple[Any, ...]) -> int:
    row: Row | None = await sqlite.db.fetchone(sql, params)
    return int(row[0]) if row is not None else 0


def _value(value: Any, data_type: str) -> Any:
    """SQLite's value as the PostgreSQL column takes it (SQLite stores what it is given)."""
    if value is None:
        return None
    if data_type in _INTEGER_TYPES:
        return int(value)
    if data_type == "double precision":
        return float(value)
    if data_type == "text" and not isinstance(value, str):
        return str(value)
    return value
