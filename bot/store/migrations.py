"""Numbered schema migrations (`bot/migrations/NNN_what.sql`), applied in order at start-up inside
one transaction and recorded in the `schema_version` table."""

from __future__ import annotations

import logging
import sqlite3
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store.database import Tx

log = logging.getLogger(__name__)


class MigrationError(Exception):
    """The schema cannot be brought up to date: the migration files shipped with this StemBot are
    inconsistent, or the database is newer than they are. Start-up stops with this message."""


def load_migrations(folder: Traversable | None = None) -> list[tuple[int, str]]:
    """The migration scripts as (version, script), numbered 1, 2, 3… with none missing or twice.

    Files are named `NNN_what.sql`; any other `.sql` name, a duplicate or a gap is refused, since
    applying the rest would leave a schema no code was written for.
    """
    folder = folder or resources.files("bot") / "migrations"
    found: dict[int, list[str]] = {}
    scripts: dict[int, str] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number = entry.name.split("_", 1)[0]
        if not number.isdigit() or "_" not in entry.name:
            raise MigrationError(f"migration file {entry.name} is not named NNN_description.sql")
        found.setdefault(int(number), []).append(entry.name)
        scripts[int(number)] = entry.read_text(encoding="utf-8")
    twice = {version: sorted(names) for version, names in found.items() if len(names) > 1}
    if twice:
        version, names = min(twice.items())
        raise MigrationError(f"migration version {version} is used twice: {', '.join(names)}")
    missing = sorted(set(range(1, max(found, default=0) + 1)) - set(found))
    if missing:
        present = ", ".join(f"{version:03d}" for version in sorted(found))
        raise MigrationError(f"migration version {missing[0]:03d} is missing (found {present})")
    return sorted(scripts.items())


async def apply(tx: Tx) -> None:
    """Bring the schema up to date inside the caller's transaction."""
    migrations = load_migrations()
    await tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    current = await tx.scalar("SELECT MAX(version) FROM schema_version") or 0
    latest = migrations[-1][0] if migrations else 0
    if current > latest:
        raise MigrationError(
            f"the database is at schema version {current}, newer than this StemBot's "
            f"({latest}): run the StemBot that last used it, or a newer one"
        )
    for version, script in migrations:
        if version <= current:
            continue
        log.info("Applying database migration %03d", version)
        for statement in split_sql(script):
            await tx.execute(statement)
        await tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def split_sql(script: str) -> list[str]:
    """The statements of a migration script, each whole. A `;` ends a statement only where SQLite
    says the statement is complete, so a trigger body or a string holding `;` stays in one piece."""
    statements: list[str] = []
    start = 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            statement = _drop_leading_comments(script[start : end + 1])
            if statement != ";":
                statements.append(statement)
            start = end + 1
    if _drop_leading_comments(script[start:]):
        rest = script[start:].strip()
        raise MigrationError(f"a migration ends with an incomplete statement: {rest[:80]!r}")
    return statements


def _drop_leading_comments(sql: str) -> str:
    lines = sql.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip()


def applied_version(path: Path) -> int:
    """The schema version of the database at `path`, read without changing anything (opened
    read-only; 0 for a database no migration has touched). Raises `sqlite3.Error` if unreadable."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tracked = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] if tracked else 0
    finally:
        conn.close()
    return int(version or 0)
