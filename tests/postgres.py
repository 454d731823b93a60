"""A real PostgreSQL for the store's tests, started by the tests themselves (`pgserver`: PostgreSQL
16 in a second, no system install, also as root). One server per test session (per xdist worker),
a fresh database per test, copied from a template the migrations were applied to once."""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from bot.settings import PostgresURL
from bot.store import Store

TEMPLATE = "stembot_template"


class PostgresServer:
    def __init__(self) -> None:
        import pgserver  # only the PostgreSQL tests need it

        # A short folder of its own: the server's Unix socket lives there (paths are capped ~100 bytes).
        # Each xdist worker starts a server of its own, in its own folder (named after the worker).
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.folder = Path(tempfile.mkdtemp(prefix=f"stembot-pg-{worker}-"))
        # One start at a time on this machine: as root, pgserver first creates its system user, and
        # two workers creating it at once would fail the second.
        with open(Path(tempfile.gettempdir()) / "stembot-pgserver-start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._server: Any = pgserver.get_server(self.folder, cleanup_mode="stop")
        self.admin_url: str = self._server.get_uri()
        self._serial = itertools.count(1)
        self._template_ready = False

    def url(self, database: str) -> PostgresURL:
        return PostgresURL(self.admin_url.replace("/postgres?", f"/{database}?", 1))

    async def new_database(self, *, migrated: bool = True) -> PostgresURL:
        """A new, empty database; `migrated`: with the schema already applied (from the template)."""
        name = f"test_{next(self._serial)}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            if migrated and not self._template_ready:
                await conn.execute(f"CREATE DATABASE {TEMPLATE}")
                await (await Store.open(self.url(TEMPLATE))).close()
                self._template_ready = True
            template = f" TEMPLATE {TEMPLATE}" if migrated else ""
            await conn.execute(f"CREATE DATABASE {name}{template}")
        finally:
            await conn.close()
        return self.url(name)

    async def drop(self, url: PostgresURL) -> None:
        name = url.reveal().split("?", 1)[0].rsplit("/", 1)[1]
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()

    def stop(self) -> None:
        self._server.cleanup()
        shutil.rmtree(self.folder, ignore_errors=True)
