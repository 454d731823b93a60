"""`python -m bot --backup FILE`: a consistent copy of the SQLite database, taken while the bot runs.

SQLite's online backup copies the database page by page inside one read transaction, so the copy is
the database as it stood at one instant, with every committed transaction and nothing half-written.
In WAL mode (the bot's) readers never block the writer, so the bot keeps taking splits meanwhile,
and the backup takes no part in the one-process lock (`<database>.lock`): that lock keeps a second
bot off the file, not a reader.

The copy is written beside FILE under a temporary name, checked (`PRAGMA integrity_check`), and only
then given its name, with a hard link that fails if FILE exists: an existing file is never
overwritten, not even one that appeared meanwhile, and an interrupted backup leaves no FILE behind.
The source is opened read-only (`mode=ro`): a backup never writes the live database.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

BUSY_TIMEOUT_MS = 5000
"""How long the backup waits for the database when a writer holds it exclusively (a checkpoint)."""


class BackupRefused(Exception):
    """FILE exists: nothing was written (exit 1)."""


class BackupFailed(Exception):
    """The backup could not be made (no database, unreadable, no room): nothing was written (exit 2)."""


@dataclass(frozen=True, slots=True)
class Backup:
    """What a backup copied: each table's rows, in name order, and the copy's size in bytes."""

    source: Path
    destination: Path
    tables: tuple[tuple[str, int], ...]
    size: int

    @property
    def rows(self) -> int:
        return sum(count for _, count in self.tables)


def backup_sqlite(source: Path, destination: Path) -> Backup:
    """Copy the SQLite database `source` to the new file `destination` (its folder made if needed).

    Raises `BackupRefused` if `destination` exists, `BackupFailed` if the copy cannot be made;
    either way `destination` is left as it was."""
    if destination.exists() or destination.is_symlink():
        raise BackupRefused(f"{destination} already exists; a backup never overwrites a file")
    if not source.is_file():
        raise BackupFailed(f"there is no SQLite database at {source}: check DATABASE_URL")
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)  # left by an earlier backup of this pid that was killed
        tables = _copy(source, partial)
        # The copy holds what the database holds: readable by whom the database is, no more.
        partial.chmod(source.stat().st_mode & 0o777)
        os.link(partial, destination)
    except FileExistsError:
        raise BackupRefused(f"{destination} already exists; a backup never overwrites a file") from None
    except (OSError, sqlite3.Error) as error:
        raise BackupFailed(f"cannot back {source} up to {destination} ({error})") from None
    finally:
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)
    return Backup(source, destination, tables, destination.stat().st_size)


def _copy(source: Path, target: Path) -> tuple[tuple[str, int], ...]:
    """The online backup of `source` into the new file `target`, checked; each table's rows in it."""
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        copy = sqlite3.connect(target)
        try:
            # All pages in one step: one read transaction, so one instant of the database (in steps,
            # a write between them would restart the copy; a busy bot could starve it).
            reader.backup(copy)
            # One self-contained file, openable even where it cannot be written (read-only media):
            # the copy leaves WAL mode, which the bot turns back on when it opens a restored copy.
            copy.execute("PRAGMA journal_mode = DELETE")
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupFailed(f"the copy fails its integrity check: {'; '.join(problems[:3])}")
            names = [
                row[0]
                for row in copy.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                    "ORDER BY name"
                )
            ]
            # The names come from the copy's own schema, quoted as identifiers.
            quoted = {name: '"' + name.replace('"', '""') + '"' for name in names}
            return tuple(
                (name, copy.execute(f"SELECT COUNT(*) FROM {quoted[name]}").fetchone()[0]) for name in names
            )
        finally:
            copy.close()
    finally:
        reader.close()


def size_text(size: int) -> str:
    """Bytes as people read them: 912 bytes, 48.2 KB, 3.1 MB, 1.4 GB."""
    if size < 1024:
        return f"{size} bytes"
    scaled, unit = size / 1024, "KB"
    for larger in ("MB", "GB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, larger
    return f"{scaled:.1f} {unit}"
