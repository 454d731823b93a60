"""Which backend a database target means: an SQLite file at a path, PostgreSQL at a URL.

The one module that knows both implementations, so neither they nor the `Database` interface they
implement (`bot.store.database`) import each other, and nothing outside the store needs to import
a backend to open a database or read its schema version."""

from __future__ import annotations

import time
from pathlib import Path

from bot.settings import PostgresURL
from bot.store import migrations, postgres
from bot.store.database import Clock, Database
from bot.store.sqlite import SQLiteDatabase


async def open_database(target: Path | PostgresURL, clock: Clock = time.time) -> Database:
    """Open and migrate the database: an SQLite file at a path (folder and file created if
    needed), or the PostgreSQL database a URL names."""
    if isinstance(target, Path):
        return await SQLiteDatabase.open_file(target, clock)
    return await postgres.PostgresDatabase.connect(target, clock)


async def applied_version(target: Path | PostgresURL) -> int:
    """The schema version of the database `target` names, read without changing anything (0 for a
    database no migration has touched). Raises `sqlite3.Error` if an SQLite file cannot be read,
    `StoreUnavailable` if the PostgreSQL server cannot be reached."""
    if isinstance(target, Path):
        return migrations.applied_version(target)
    return await postgres.applied_version(target)
