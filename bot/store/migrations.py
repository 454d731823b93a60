"""Numbered schema migrations (`bot/migrations/NNN_what.sql`), applied in order at start-up inside
one transaction and recorded in the `schema_version` table.

One history serves both backends. Where PostgreSQL needs other SQL than SQLite (types, triggers,
generated columns), the version has a second file beside the first, `NNN_what.postgresql.sql`;
a version without one runs the same script on both."""

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

DIALECTS = ("sqlite", "postgresql")
"""The backends; every one but SQLite (the default script) may have its own file for a version."""


class MigrationError(Exception):
    """The schema cannot be brought up to date: the migration files shipped with this StemBot are
    inconsistent, or the database is newer than they are. Start-up stops with this message."""


def load_migrations(folder: Traversable | None = None, dialect: str = "sqlite") -> list[tuple[int, str]]:
    """The migration scripts for `dialect` as (version, script), numbered 1, 2, 3… with none
    missing or twice.

    Files are named `NNN_what.sql` (every backend) and `NNN_what.<dialect>.sql` (that backend's own
    script for the version, which must also have the common file); any other `.sql` name, a
    duplicate or a gap is refused, since applying the rest would leave a schema no code was
    written for.
    """
    folder = folder or resources.files("bot") / "migrations"
    found: dict[tuple[int, str], list[str]] = {}
    scripts: dict[tuple[int, str], str] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number = entry.name.split("_", 1)[0]
        if not number.isdigit() or "_" not in entry.name:
            raise MigrationError(f"migration file {entry.name} is not named NNN_description.sql")
        stem = entry.name.removesuffix(".sql")
        variant = stem.rsplit(".", 1)[1] if "." in stem else "sqlite"
        if variant not in DIALECTS or (variant == "sqlite" and "." in stem):
            raise MigrationError(
                f"migration file {entry.name} names no known database ({', '.join(DIALECTS[1:])})"
            )
        key = (int(number), variant)
        found.setdefault(key, []).append(entry.name)
        scripts[key] = entry.read_text(encoding="utf-8")
    twice = {key: sorted(names) for key, names in found.items() if len(names) > 1}
    if twice:
        (version, _), names = min(twice.items())
        raise MigrationError(f"migration version {version} is used twice: {', '.join(names)}")
    common = {version for version, variant in found if variant == "sqlite"}
    alone = sorted(names[0] for (version, _), names in found.items() if version not in common)
    if alone:
        raise MigrationError(f"migration {alone[0]} has no common NNN_description.sql beside it")
    missing = sorted(set(range(1, max(common, default=0) + 1)) - common)
    if missing:
        present = ", ".join(f"{version:03d}" for version in sorted(common))
        raise MigrationError(f"migration version {missing[0]:03d} is missing (found {present})")
    return [
        (version, scripts.get((version, dialect), scripts[version, "sqlite"])) for version in sorted(common)
    ]


async def apply(tx: Tx) -> None:
    """Bring the schema up to date inside the caller's transaction."""
    migrations = load_migrations(dialect=tx.dialect)
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
        await tx.execute_script(script)
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
