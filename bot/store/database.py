"""The unit of work: the one database connection, its settings, its lock, its transactions.

One aiosqlite connection serves the whole bot. Statements from different coroutines would otherwise
interleave inside each other's transactions on that connection, so every access goes through one
asyncio lock (SQLite allows a single writer anyway). The aggregate modules beside this one run their
SQL through a `Tx` handed out here and never touch the connection themselves, so a second backend
only has to provide the same `Database` and `Tx`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.store import migrations

Clock = Callable[[], float]
Row = aiosqlite.Row

_TICK = 1e-3  # the smallest step between two moments the store records, in seconds


class Tx:
    """The statements of one unit of work (inside a transaction, or a lone read/write)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        cursor = await self._conn.execute(sql, params)
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return next(iter(await self._conn.execute_fetchall(sql, params)), None)

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class Database:
    """Owns the connection: PRAGMAs, the lock, transactions, migrations and the store's clock."""

    def __init__(self, conn: aiosqlite.Connection, clock: Clock = time.time) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._clock = clock
        self._last_now = 0.0

    @classmethod
    async def open(cls, path: Path, clock: Clock = time.time) -> Database:
        """Open (creating folder and file if needed) and migrate the database at `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA busy_timeout = 5000")
            database = cls(conn, clock)
            async with database.transaction() as tx:
                await migrations.apply(tx)
        except BaseException:
            await conn.close()
            raise
        return database

    def now(self) -> float:
        """The clock, but strictly increasing: two changes never share a moment, so "before" and
        "after" (an account opened, an allowance applied) are never ambiguous, even if the system
        clock steps back."""
        now = max(self._clock(), self._last_now + _TICK)
        self._last_now = now
        return now

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def ping(self) -> bool:
        async with self.reading() as tx:
            return bool(await tx.scalar("SELECT 1") == 1)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One write transaction (`BEGIN IMMEDIATE`): all of it commits, or none of it."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield Tx(self._conn)
                await self._conn.execute("COMMIT")
            except BaseException:
                # Whatever failed (the body, a busy COMMIT, a cancellation mid-BEGIN), never hand
                # the shared connection on with a transaction open: later writes would join it.
                # Shielded, so a cancellation cannot stop the rollback half-way either.
                await asyncio.shield(self._rollback())
                raise

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Tx]:
        """Statements without a transaction of their own: reads, and writes atomic by themselves."""
        async with self._lock:
            yield Tx(self._conn)

    async def write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = False) -> int:
        """One statement on its own (atomic by itself: no BEGIN/COMMIT round trips); the row count.

        `durable`: the commit reaches the disk before this returns, even if the machine loses
        power next (`synchronous = FULL`, which also syncs every commit before it). Otherwise the
        database runs at `NORMAL`, where WAL keeps it consistent but an OS crash or power loss may
        undo the last commits: fine for most writes, never for the record of a paid call. The
        setting is per connection and cannot change inside a transaction, so it is switched here,
        under the lock, around this one statement.
        """
        async with self._lock:
            if not durable:
                return await Tx(self._conn).execute(sql, params)
            await self._conn.execute("PRAGMA synchronous = FULL")
            try:
                return await Tx(self._conn).execute(sql, params)
            finally:
                await asyncio.shield(self._conn.execute("PRAGMA synchronous = NORMAL"))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.reading() as tx:
            return await tx.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self.reading() as tx:
            return await tx.fetchone(sql, params)

    async def _rollback(self) -> None:
        if self._conn.in_transaction:
            await self._conn.execute("ROLLBACK")
