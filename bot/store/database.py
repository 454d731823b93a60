"""The unit of work: the database, its connections, its transactions, and the one SQLite or
PostgreSQL detail the repositories may ask about.

The aggregate modules beside this one run their SQL through a `Tx` handed out here and never touch a
connection themselves. They write one SQL for both backends, with `?` placeholders, and read rows by
column name or position; `Database` has one implementation per backend:

- `SQLiteDatabase` (this module): one aiosqlite connection for the whole bot. Statements from
  different coroutines would otherwise interleave inside each other's transactions on that
  connection, so every access goes through one asyncio lock (SQLite allows a single writer anyway).
- `PostgresDatabase` (`bot.store.postgres`): a pool of asyncpg connections, each transaction on a
  connection of its own, so the repositories lock the rows a decision rests on (`Tx.for_update`).

Lock order. Every transaction that locks more than one row takes its locks in one global order, so
two transactions never wait for each other (a deadlock):

1. jobs, by id ascending (a coalesced group: its leader and its followers alike);
2. member accounts, by (guild id, user id) ascending;
3. a server's month of budget (`budget_months`), by (guild id, month);
4. the deployment's month of budget (after every server's);
5. the job counts by state (`job_state_counts`): changed by a deferred trigger as the transaction
   commits, after all of the above, each change locking its counts by state name (migration 014).

A transaction that reads a row it will not lock (a candidate job to follow, say) may read it in
any order; it locks it in its place. Rows that only one job's transactions touch, and that wait for
nothing else while locked, may come anywhere: the job a reservation inserts, the record of the
split it came from (`acknowledged_splits`, taken by other processes only with SKIP LOCKED), a
job's keep. PostgreSQL may still abort a transaction for a deadlock or a
serialization failure (another lock order nobody wrote down, a future change): `Database.transact`
runs such a transaction again from the start, and `Database.write` its lone statement.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import aiosqlite

from bot.store import migrations

if TYPE_CHECKING:
    from bot.settings import PostgresURL

log = logging.getLogger(__name__)

Clock = Callable[[], float]
T = TypeVar("T")

TRANSACTION_ATTEMPTS = 5
"""Runs of a transaction the database aborted for a deadlock or a serialization failure, in all."""
TRANSACTION_RETRY_BASE = 0.02
"""Seconds before the second run; doubling, with jitter so the two sides do not collide again."""

_TICK = 1e-3  # the smallest step between two moments the store records, in seconds


class Row(Protocol):
    """A result row of either backend (`sqlite3.Row`, `asyncpg.Record`): by column name or position."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class Tx(ABC):
    """The statements of one unit of work (inside a transaction, or a lone read/write)."""

    __slots__ = ()

    dialect: ClassVar[str]
    """'sqlite' or 'postgresql', for the migrations and the rare statement that must differ."""

    for_update: ClassVar[str]
    """Appended to a SELECT whose rows a decision in this transaction rests on: ' FOR UPDATE' on
    PostgreSQL, where other connections' transactions run at the same time; nothing on SQLite,
    whose one writer already excludes them."""

    skip_locked: ClassVar[str]
    """Appended to a SELECT that picks work to claim: ' FOR UPDATE SKIP LOCKED' on PostgreSQL, so
    processes claiming at once each take other rows instead of queueing behind one another's; nothing
    on SQLite."""

    current_time: ClassVar[str]
    """An SQL expression for the database's own clock, in seconds since the epoch. Leases are
    written and compared with it, so processes on machines whose clocks disagree still agree on
    when a claim lapsed."""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abstractmethod
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    @abstractmethod
    async def execute_script(self, script: str) -> None:
        """Run a migration script: several statements, no parameters."""

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


Handler = Callable[[str], None]

RECONNECTED = ""
"""The payload every handler gets after notifications may have been missed (the listening
connection was lost and is back): act as if anything may have changed."""
"""Hears a notification's payload (see `Database.listen`)."""


class Database(ABC):
    """Owns the connections: transactions, migrations, the store's clock, notifications."""

    dialect: ClassVar[str]

    shared: ClassVar[bool]
    """Whether other processes may use this database at the same time (PostgreSQL). An SQLite file
    is used by one process at a time (`python -m bot` holds a lock on it), so whatever an earlier
    process claimed in it is free for the next one."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._last_now = 0.0

    @staticmethod
    async def open(target: Path | PostgresURL, clock: Clock = time.time) -> Database:
        """Open and migrate the database: an SQLite file at a path (folder and file created if
        needed), or the PostgreSQL database a URL names."""
        if isinstance(target, Path):
            return await SQLiteDatabase.open_file(target, clock)
        from bot.store.postgres import PostgresDatabase

        return await PostgresDatabase.connect(target, clock)

    def now(self) -> float:
        """The clock, but strictly increasing: two changes never share a moment, so "before" and
        "after" (an account opened, an allowance applied) are never ambiguous, even if the system
        clock steps back."""
        now = max(self._clock(), self._last_now + _TICK)
        self._last_now = now
        return now

    @abstractmethod
    async def close(self) -> None: ...

    async def ping(self) -> bool:
        async with self.reading() as tx:
            return bool(await tx.scalar("SELECT 1") == 1)

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """One write transaction: all of it commits, or none of it."""

    def may_run_again(self, error: BaseException) -> bool:
        """Whether the database aborted a transaction only because of others running beside it (a
        deadlock, a serialization failure), so that running it again from the start is the cure.
        Never on SQLite: its one writer cannot deadlock."""
        return False

    async def transact(self, body: Callable[[Tx], Awaitable[T]], *, what: str) -> T:
        """`body` in one transaction (see `transaction`), run again from the start (a few times,
        after short jittered pauses, logged) when the database aborts it for a deadlock or a
        serialization failure; its value.

        Only for a body whose every effect is in the database: a run that was aborted left nothing
        behind, so the next run decides afresh from what is there now. Never for one that calls
        out (the API, Discord) or changes this process's state: that would happen twice."""

        async def once() -> T:
            async with self.transaction() as tx:
                return await body(tx)

        return await self.running_again(once, what=what)

    async def running_again(self, attempt: Callable[[], Awaitable[T]], *, what: str) -> T:
        """`attempt()`, repeated as `transact` says (the one place that decides when and how)."""
        runs = 1
        while True:
            try:
                return await attempt()
            except Exception as error:
                if runs >= TRANSACTION_ATTEMPTS or not self.may_run_again(error):
                    raise
                pause = TRANSACTION_RETRY_BASE * 2 ** (runs - 1) * random.uniform(0.5, 1.5)
                log.warning(
                    "%s: the database aborted it (%s: %.200s); running it again in %.0f ms (run %s of %s)",
                    what,
                    type(error).__name__,
                    error,
                    pause * 1000,
                    runs + 1,
                    TRANSACTION_ATTEMPTS,
                )
                await asyncio.sleep(pause)
                runs += 1

    @abstractmethod
    def reading(self) -> AbstractAsyncContextManager[Tx]:
        """Statements without a transaction of their own: reads, and writes atomic by themselves."""

    @abstractmethod
    async def write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = False) -> int:
        """One statement on its own (atomic by itself); the row count.

        `durable`: the commit reaches the disk before this returns, even if the machine loses
        power next, and so do all the commits before it. Other writes may be undone by an OS
        crash or power loss (never half: the database stays consistent): fine for most writes,
        never for the record of a paid call.
        """

    @abstractmethod
    async def notify(self, channel: str, payload: str) -> None:
        """Tell every process listening on `channel` (this one included): PostgreSQL's NOTIFY. Not
        stored: a process that is not listening at that moment never hears it."""

    @abstractmethod
    async def listen(self, channel: str, handler: Handler) -> None:
        """Call `handler(payload)` for every notification on `channel` from now on."""

    @abstractmethod
    async def unlisten(self, channel: str, handler: Handler) -> None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.reading() as tx:
            return await tx.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self.reading() as tx:
            return await tx.fetchone(sql, params)


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
