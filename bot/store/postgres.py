"""The unit of work on PostgreSQL: a pool of asyncpg connections behind the same `Database` and `Tx`
as SQLite (see `bot.store.database`), so the repositories run unchanged.

- Placeholders: the repositories write `?`; each statement is rewritten once to `$1, $2…` (outside
  string literals, quoted names and comments) and the rewrite is cached.
- Transactions run at READ COMMITTED, each on its own pooled connection, so several run at once
  (also from other processes). Where a decision reads rows and then writes (a member's limits and
  balance, a server's budget), the repository locks those rows first (`Tx.for_update`).
- Durability: connections commit with `synchronous_commit = off`, PostgreSQL's counterpart of the
  SQLite store's `synchronous = NORMAL` (a crash of the database server may undo the last fraction
  of a second of commits, never half of one); a `durable` write switches it on for its own
  transaction, which also flushes every commit before it.
- Migrations run in one transaction under an advisory lock, so processes starting together apply
  them once.
- Notifications between processes are PostgreSQL's NOTIFY; this process LISTENs on one connection
  of its own, outside the pool (a pooled connection would lose its LISTENs when handed back), and
  opens it again if it is lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

from bot.store import migrations
from bot.store.database import RECONNECTED, Clock, Database, Row, Tx

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from bot.settings import PostgresURL

    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x5374656D426F74  # "StemBot": the advisory lock held while migrating
POOL_SIZE = 10
RELISTEN_SECONDS = 1.0  # between attempts to open the listening connection again


class PostgresTx(Tx):
    __slots__ = ("_conn",)

    dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return rowcount(await self._conn.execute(numbered_placeholders(sql), *params))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.fetch(numbered_placeholders(sql), *params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = await self._conn.fetchrow(numbered_placeholders(sql), *params)
        return row

    async def execute_script(self, script: str) -> None:
        await self._conn.execute(script)  # no parameters: the simple protocol runs them all


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], url: PostgresURL, clock: Clock = time.time
    ) -> None:
        super().__init__(clock)
        self._pool = pool
        self._url = url
        self._handlers: dict[str, list[Callable[[str], None]]] = {}
        self._listener: asyncpg.Connection[asyncpg.Record] | None = None
        self._listening = asyncio.Lock()
        self._relisten: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def connect(cls, url: PostgresURL, clock: Clock = time.time) -> PostgresDatabase:
        try:
            pool = await asyncpg.create_pool(
                url.reveal(),
                min_size=1,
                max_size=POOL_SIZE,
                timeout=10,
                server_settings={"synchronous_commit": "off", "application_name": "stembot"},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            raise StoreUnavailable(describe_error(error)) from None
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await migrations.apply(PostgresTx(conn))
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url, clock)

    async def close(self) -> None:
        self._closed = True
        if self._relisten is not None:
            self._relisten.cancel()
            await asyncio.gather(self._relisten, return_exceptions=True)
        if self._listener is not None:
            await self._listener.close()
        await self._pool.close()

    async def notify(self, channel: str, payload: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def listen(self, channel: str, handler: Callable[[str], None]) -> None:
        async with self._listening:
            if self._listener is None:
                self._listener = await self._open_listener()
            if channel not in self._handlers:
                await self._listener.add_listener(channel, self._dispatch)
            self._handlers.setdefault(channel, []).append(handler)

    async def _open_listener(self) -> asyncpg.Connection[asyncpg.Record]:
        conn = await asyncpg.connect(
            self._url.reveal(), timeout=10, server_settings={"application_name": "stembot-listen"}
        )
        conn.add_termination_listener(self._listener_lost)
        for channel in self._handlers:
            await conn.add_listener(channel, self._dispatch)
        return conn

    def _dispatch(self, _conn: Connection | None, _pid: int, channel: str, payload: object) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                handler(str(payload))
            except Exception:  # one listener's bug must not keep the notification from the others
                log.exception("A handler of the %s notifications failed", channel)

    def _listener_lost(self, _conn: object) -> None:
        if self._closed or (self._relisten is not None and not self._relisten.done()):
            return
        log.warning("Lost the database connection that listens for other processes' changes; reopening it")
        self._relisten = asyncio.create_task(self._listen_again(), name="database-relisten")

    async def _listen_again(self) -> None:
        async with self._listening:
            self._listener = None
            while self._listener is None:
                await asyncio.sleep(RELISTEN_SECONDS)
                try:
                    self._listener = await self._open_listener()
                except (OSError, TimeoutError, asyncpg.PostgresError) as error:
                    log.warning("Cannot reopen the listening connection yet: %s", describe_error(error))
        log.info("Listening for other processes' changes again")
        for channel in list(self._handlers):
            self._dispatch(None, 0, channel, RECONNECTED)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresTx(conn)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn:
            yield PostgresTx(conn)

    async def write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = False) -> int:
        async with self._pool.acquire() as conn:
            if not durable:
                return await PostgresTx(conn).execute(sql, params)
            async with conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit = on")
                return await PostgresTx(conn).execute(sql, params)


def rowcount(status: str) -> int:
    """The rows a statement changed, from its command tag ('UPDATE 3', 'INSERT 0 1')."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


@functools.lru_cache(maxsize=1024)
def numbered_placeholders(sql: str) -> str:
    """`?` → `$1, $2…`, except inside 'strings', "names", -- comments and /* comments */."""
    out: list[str] = []
    number = 0
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char == "?":
            number += 1
            out.append(f"${number}")
            i += 1
            continue
        if char in "'\"":
            end = sql.find(char, i + 1)
            while end != -1 and sql[end + 1 : end + 2] == char:  # a doubled quote inside
                end = sql.find(char, end + 2)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
        elif sql.startswith("/*", i):
            end = sql.find("*/", i) + 1
        else:
            out.append(char)
            i += 1
            continue
        end = n - 1 if end <= 0 else end
        out.append(sql[i : end + 1])
        i = end + 1
    return "".join(out)


class StoreUnavailable(Exception):
    """The PostgreSQL server cannot be reached or refused us; `str()` names why, never the password."""


async def applied_version(url: PostgresURL) -> int:
    """The schema version of the database at `url`, read in a read-only session (0 for a database
    no migration has touched)."""
    try:
        conn = await asyncpg.connect(
            url.reveal(), timeout=10, server_settings={"default_transaction_read_only": "on"}
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise StoreUnavailable(describe_error(error)) from None
    try:
        if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
            return 0
        return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
    finally:
        await conn.close()


def describe_error(error: BaseException) -> str:
    return str(error) or type(error).__name__
