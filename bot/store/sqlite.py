"""The unit of work on SQLite: one aiosqlite connection behind `Database` and `Tx` (see
`bot.store.database`), its PRAGMAs, the lock, `BEGIN IMMEDIATE` transactions, durable writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.store import migrations
from bot.store.database import Clock, Database, Handler, Row, Tx

_open_files: dict[Path, set[SQLiteDatabase]] = {}
"""Every SQLite database open in this process, by file: where its notifications go."""


class SQLiteTx(Tx):
    __slots__ = ("_conn",)

    dialect = "sqlite"
    for_update = ""
    skip_locked = ""
    current_time = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._conn.execute(sql, params)
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return next(iter(await self._conn.execute_fetchall(sql, params)), None)

    async def execute_script(self, script: str) -> None:
        for statement in migrations.split_sql(script):
            await self.execute(statement)


class SQLiteDatabase(Database):
    """One connection, its PRAGMAs, the lock, `BEGIN IMMEDIATE` transactions, durable writes.

    Notifications stay in this process (one process uses an SQLite file): they reach every
    `SQLiteDatabase` open on the same file here."""

    dialect = "sqlite"
    shared = False

    def __init__(
        self, conn: aiosqlite.Connection, clock: Clock = time.time, path: Path | None = None
    ) -> None:
        super().__init__(clock)
        self._conn = conn
        self._lock = asyncio.Lock()
        self._path = path.resolve() if path is not None else None
        self._handlers: dict[str, list[Handler]] = {}
        # The reports' own read-only connection (see `reporting`), opened on first use.
        self._report_conn: aiosqlite.Connection | None = None
        self._report_lock = asyncio.Lock()

    @classmethod
    async def open_file(cls, path: Path, clock: Clock = time.time) -> SQLiteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA busy_timeout = 5000")
            database = cls(conn, clock, path)
            async with database.transaction() as tx:
                await migrations.apply(tx)
        except BaseException:
            await conn.close()
            raise
        if database._path is not None:
            _open_files.setdefault(database._path, set()).add(database)
        return database

    async def close(self) -> None:
        if self._path is not None:
            _open_files.get(self._path, set()).discard(self)
        async with self._report_lock:
            if self._report_conn is not None:
                await self._report_conn.close()
                self._report_conn = None
        async with self._lock:
            await self._conn.close()

    async def notify(self, channel: str, payload: str) -> None:
        loop = asyncio.get_running_loop()
        here = _open_files.get(self._path, set()) if self._path is not None else set()
        for database in here | {self}:
            for handler in database._handlers.get(channel, ()):
                loop.call_soon(handler, payload)  # as PostgreSQL does: after the notifier goes on

    async def listen(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    async def unlisten(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel, [])
        if handler in handlers:
            handlers.remove(handler)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """`BEGIN IMMEDIATE`: the write lock is taken at the start, so nothing read in the
        transaction can change before it commits."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield SQLiteTx(self._conn)
                await self._conn.execute("COMMIT")
            except BaseException:
                # Whatever failed (the body, a busy COMMIT, a cancellation mid-BEGIN), never hand
                # the shared connection on with a transaction open: later writes would join it.
                # Shielded, so a cancellation cannot stop the rollback half-way either.
                await asyncio.shield(self._rollback())
                raise

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Tx]:
        async with self._lock:
            yield SQLiteTx(self._conn)

    @asynccontextmanager
    async def reporting(self) -> AsyncIterator[Tx]:
        """A second connection, read-only (`mode=ro`), for the reports' long reads: the bot's own
        connection and its lock stay free for splits meanwhile (WAL lets both run). One report's
        statement at a time on it."""
        if self._path is None:
            async with self.reading() as tx:
                yield tx
            return
        async with self._report_lock:
            if self._report_conn is None:
                conn = await aiosqlite.connect(
                    f"{self._path.as_uri()}?mode=ro", uri=True, isolation_level=None
                )
                conn.row_factory = aiosqlite.Row
                await conn.execute("PRAGMA busy_timeout = 5000")
                self._report_conn = conn
            yield SQLiteTx(self._report_conn)

    async def write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = False) -> int:
        """The database runs at `synchronous = NORMAL`, where WAL keeps it consistent; `durable`
        switches to `FULL` (which also syncs every commit before it) around this one statement,
        under the lock, since the setting is per connection and cannot change in a transaction."""
        async with self._lock:
            if not durable:
                return await SQLiteTx(self._conn).execute(sql, params)
            await self._conn.execute("PRAGMA synchronous = FULL")
            try:
                return await SQLiteTx(self._conn).execute(sql, params)
            finally:
                await asyncio.shield(self._conn.execute("PRAGMA synchronous = NORMAL"))

    async def _rollback(self) -> None:
        if self._conn.in_transaction:
            await self._conn.execute("ROLLBACK")
