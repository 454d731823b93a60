"""The unit of work: the database, its connections, its transactions, and the one SQLite or
PostgreSQL detail the repositories may ask about.

The aggregate modules beside this one run their SQL through a `Tx` handed out here and never touch a
connection themselves. They write one SQL for both backends, with `?` placeholders, and read rows by
column name or position; `Database` has one implementation per backend:

- `SQLiteDatabase` (`bot.store.sqlite`): one aiosqlite connection for the whole bot. Statements from
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
split it came from (`acknowledged_splits`, claimed and renewed only with SKIP LOCKED), a
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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Protocol, TypeVar

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
"""Hears a notification's payload (see `Database.listen`)."""

RECONNECTED = ""
"""The payload every handler gets after notifications may have been missed (the listening
connection was lost and is back): act as if anything may have changed."""


class StoreUnavailable(Exception):
    """The PostgreSQL server cannot be reached or refused us; `str()` names why, never the password."""


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

    def reporting(self) -> AbstractAsyncContextManager[Tx]:
        """Long reads that must not hold up the bot's own work (the usage reports, which sum a year
        of a server's ledger): statements without a transaction, never a write. On SQLite a
        read-only connection of their own, which WAL lets read while the bot's connection writes;
        on PostgreSQL a connection of the pool, as `reading`."""
        return self.reading()

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
