"""The unit of work on PostgreSQL: a pool of asyncpg connections behind the same `Database` and `Tx`
as SQLite (see `bot.store.database`), so the repositories run unchanged.

- Placeholders: the repositories write `?`; each statement is rewritten once to `$1, $2…` (outside
  string literals, quoted names and comments) and the rewrite is cached. What the rewrite cannot
  read safely (E'…' strings, dollar quoting, nested comments, the jsonb `?|` / `?&` operators) is
  refused with an error naming it, never sent mangled.
- Transactions run at READ COMMITTED, each on its own pooled connection, so several run at once
  (also from other processes). Where a decision reads rows and then writes (a member's limits and
  balance, a server's budget), the repository locks those rows first (`Tx.for_update`).
- Durability: connections commit with `synchronous_commit = off`, PostgreSQL's counterpart of the
  SQLite store's `synchronous = NORMAL` (a crash of the database server may undo the last fraction
  of a second of commits, never half of one); a `durable` write switches it on for its own
  transaction, which also flushes every commit before it.
- Migrations run in one transaction under an advisory lock, so processes starting together apply
  them once.
- Notifications: NOTIFY through the pool; LISTEN on one connection of its own outside the pool
  (a pooled connection would be handed to others), connected again with growing pauses if it drops.
  What is notified while it is down is not heard: listeners keep a slower safety net (polls,
  lease scans).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

from bot.store import migrations
from bot.store.database import RECONNECTED, Clock, Database, Handler, Row, StoreUnavailable, Tx
from bot.tasks import log_failure

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from bot.settings import PostgresURL

    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x5374656D426F74  # "StemBot": the advisory lock held while migrating
POOL_SIZE = 10
RUN_AGAIN_SQLSTATES = frozenset({"40P01", "40001"})
"""deadlock_detected, serialization_failure: the transaction was aborted whole and may run again."""


class PostgresTx(Tx):
    __slots__ = ("_conn",)

    dialect = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    current_time = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"

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
    shared = True

    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], url: PostgresURL, clock: Clock = time.time
    ) -> None:
        super().__init__(clock)
        self._pool = pool
        self._listener = Listener(url)

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
        await self._listener.close()
        await self._pool.close()

    async def notify(self, channel: str, payload: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def listen(self, channel: str, handler: Handler) -> None:
        await self._listener.add(channel, handler)

    async def unlisten(self, channel: str, handler: Handler) -> None:
        await self._listener.remove(channel, handler)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresTx(conn)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn:
            yield PostgresTx(conn)

    def may_run_again(self, error: BaseException) -> bool:
        return isinstance(error, asyncpg.PostgresError) and error.sqlstate in RUN_AGAIN_SQLSTATES

    async def write(self, sql: str, params: Sequence[Any] = (), *, durable: bool = False) -> int:
        """A lone statement aborted for a deadlock changed nothing: it runs again (see `transact`).
        Its triggers make it more than one row's change (the job counts)."""

        async def once() -> int:
            async with self._pool.acquire() as conn:
                if not durable:
                    return await PostgresTx(conn).execute(sql, params)
                async with conn.transaction():
                    await conn.execute("SET LOCAL synchronous_commit = on")
                    return await PostgresTx(conn).execute(sql, params)

        return await self.running_again(once, what=f"the statement {sql[:60]!r}…")


RECONNECT_FIRST = 0.5
RECONNECT_MAX = 30.0


class Listener:
    """LISTEN on a connection of its own: opened with the first channel, closed with the database,
    and opened again (every channel listened to again) whenever it drops."""

    def __init__(self, url: PostgresURL) -> None:
        self._url = url
        self._handlers: dict[str, list[Handler]] = {}
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def add(self, channel: str, handler: Handler) -> None:
        async with self._lock:
            first = channel not in self._handlers
            self._handlers.setdefault(channel, []).append(handler)
            if self._conn is None and self._reconnecting is None:
                self._conn = await self._connect()
            elif first and self._conn is not None:
                await self._conn.add_listener(channel, self._heard)

    async def remove(self, channel: str, handler: Handler) -> None:
        async with self._lock:
            handlers = self._handlers.get(channel, [])
            if handler in handlers:
                handlers.remove(handler)
            if not handlers:
                self._handlers.pop(channel, None)
                if self._conn is not None and not self._conn.is_closed():
                    await self._conn.remove_listener(channel, self._heard)

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _connect(self) -> asyncpg.Connection[asyncpg.Record]:
        try:
            conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
                self._url.reveal(), timeout=10, server_settings={"application_name": "stembot-listen"}
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            raise StoreUnavailable(describe_error(error)) from None
        try:
            for channel in self._handlers:
                await conn.add_listener(channel, self._heard)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._lost)
        return conn

    def _heard(self, conn: object, pid: int, channel: str, payload: object) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                handler(str(payload))
            except Exception:
                log.exception("A handler of notifications on %s failed", channel)

    def _lost(self, conn: object) -> None:
        if self._closed or conn is not self._conn:
            return
        log.warning("The connection listening for notifications dropped; connecting again")
        self._conn = None
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(), name="pg-listen")
        self._reconnecting.add_done_callback(log_failure)

    async def _reconnect(self) -> None:
        pause = RECONNECT_FIRST
        while not self._closed:
            try:
                async with self._lock:
                    self._conn = await self._connect()
            except (StoreUnavailable, OSError, asyncpg.PostgresError) as error:
                log.warning("Listening for notifications: %s; trying again in %.1fs", error, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_MAX)
                continue
            log.info("Listening for notifications again")
            self._reconnecting = None
            for channel in list(self._handlers):  # what was said meanwhile was not heard
                self._heard(None, 0, channel, RECONNECTED)
            return


def rowcount(status: str) -> int:
    """The rows a statement changed, from its command tag ('UPDATE 3', 'INSERT 0 1')."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class UnsafePlaceholders(ValueError):
    """A statement holds a construct the `?` → `$n` rewriter cannot read safely (it names it):
    rather than number a `?` that is not a placeholder, or miss one that is, it refuses."""


_NAME_CHAR = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_QUOTED = {"'": "string", '"': "quoted name"}


@functools.lru_cache(maxsize=1024)
def numbered_placeholders(sql: str) -> str:
    """`?` → `$1, $2…`, except inside 'strings', "names", -- comments and /* comments */.

    Raises UnsafePlaceholders for what this simple reading would get wrong, so that no statement
    is ever sent mangled: escape strings (E'…', where a backslash escapes a quote), dollar-quoted
    strings ($$…$$, $tag$…$tag$), nested /* comments */, the jsonb operators ?| and ?& (write
    jsonb_exists_any / jsonb_exists_all; a bare jsonb ? cannot be told from a placeholder: write
    jsonb_exists), `$n` written by hand, and an unterminated string, name or comment."""
    out: list[str] = []
    number = 0
    i, n = 0, len(sql)

    def refuse(construct: str) -> UnsafePlaceholders:
        return UnsafePlaceholders(
            f"the ? → $n rewriter cannot read a {construct} (at character {i}): {sql[:200]!r}"
        )

    while i < n:
        char = sql[i]
        starts_token = i == 0 or sql[i - 1] not in _NAME_CHAR
        if char == "?":
            after = sql[i + 1 : i + 3]
            if after[:1] in "|&" and after[:1] and after[1:2] != after[:1]:  # ?| ?& but not ?|| ?&&
                raise refuse(f"jsonb ?{after[:1]} operator")
            number += 1
            out.append(f"${number}")
            i += 1
            continue
        if char in "eE" and starts_token and sql[i + 1 : i + 2] == "'":
            raise refuse("escape string (E'…')")
        if char == "$" and starts_token:
            following = sql[i + 1 : i + 2]
            if following.isdigit():
                raise refuse("numbered placeholder ($n, written by hand: write ?)")
            if following == "$" or following.isalpha() or following == "_":
                raise refuse("dollar-quoted string ($$…$$ or $tag$…$tag$)")
        if char in _QUOTED:
            end = sql.find(char, i + 1)
            while end != -1 and sql[end + 1 : end + 2] == char:  # a doubled quote inside
                end = sql.find(char, end + 2)
            if end == -1:
                raise refuse(f"unterminated {_QUOTED[char]}")
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n - 1 if end == -1 else end  # a comment may end the statement
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            if close == -1:
                raise refuse("unterminated comment")
            if "/*" in sql[i + 2 : close]:
                raise refuse("nested comment (/* … /* … */ … */)")
            end = close + 1
        else:
            out.append(char)
            i += 1
            continue
        out.append(sql[i : end + 1])
        i = end + 1
    return "".join(out)


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
