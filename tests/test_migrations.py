"""Migrations: how scripts are split into statements, which files are accepted, and that the
schema's partial indexes agree with the states the code asks about."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from bot.models import UNFINISHED_STATES, JobState
from bot.store import MigrationError, Store
from bot.store.jobs import NEEDING_WORK_SQL
from bot.store.migrations import load_migrations, split_sql
from bot.store.sharing import LEADER_STATES
from tests.test_settings import API_KEY, TOKEN, run_bot

# Which code set each partial index on `jobs` serves. A new partial index over states needs an
# entry here, so nobody can add one that silently drifts from the code.
INDEXED_STATE_SETS: dict[str, tuple[JobState, ...]] = {
    "jobs_unfinished": UNFINISHED_STATES,
    "jobs_to_remind": (JobState.SUCCEEDED,),
    "jobs_one_leader": LEADER_STATES,
}


# -- splitting scripts ---------------------------------------------------------------------------


def test_a_trigger_body_stays_one_statement() -> None:
    script = """
-- counts; kept by a trigger
CREATE TABLE counts (n INTEGER NOT NULL);
CREATE TRIGGER jobs_counted AFTER INSERT ON jobs BEGIN
    UPDATE counts SET n = n + 1;
    UPDATE counts SET n = n + 0;
END;
INSERT INTO counts VALUES (0);
"""
    statements = split_sql(script)

    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    assert statements[1].count(";") == 3


def test_a_semicolon_inside_a_string_or_comment_does_not_end_the_statement() -> None:
    script = "INSERT INTO meta VALUES ('a;b', 'c -- d;');  -- a; comment\nSELECT 1; SELECT 2;\n-- end\n"

    assert split_sql(script) == ["INSERT INTO meta VALUES ('a;b', 'c -- d;');", "SELECT 1;", "SELECT 2;"]


def test_split_statements_run_as_written(tmp_path: Path) -> None:
    script = """
CREATE TABLE t (s TEXT);
CREATE TABLE log (s TEXT);
CREATE TRIGGER t_logged AFTER INSERT ON t BEGIN
    INSERT INTO log VALUES ('seen; ' || NEW.s);
END;
INSERT INTO t VALUES ('x;y');
"""
    with sqlite3.connect(tmp_path / "t.db") as conn:
        for statement in split_sql(script):
            conn.execute(statement)
        assert conn.execute("SELECT s FROM log").fetchall() == [("seen; x;y",)]


def test_an_unfinished_last_statement_is_refused() -> None:
    with pytest.raises(MigrationError, match="incomplete statement"):
        split_sql("CREATE TABLE t (a INTEGER);\nCREATE TABLE u (b INTEGER)\n")


def test_every_shipped_migration_splits_into_complete_statements() -> None:
    for _, script in load_migrations():
        for statement in split_sql(script):
            assert sqlite3.complete_statement(statement)


# -- which migration files are accepted ------------------------------------------------------------


def write(folder: Path, *names: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text("SELECT 1;\n", encoding="utf-8")
    return folder


def test_migrations_are_numbered_from_one_without_gaps(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", "002_b.sql", "001_a.sql", "003_c.sql", "README.txt")

    assert [version for version, _ in load_migrations(folder)] == [1, 2, 3]


def test_a_version_used_twice_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", "001_a.sql", "002_b.sql", "002_other.sql")

    with pytest.raises(MigrationError, match=r"version 2 is used twice: 002_b\.sql, 002_other\.sql"):
        load_migrations(folder)


def test_a_missing_version_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", "001_a.sql", "003_c.sql")

    with pytest.raises(MigrationError, match="version 002 is missing"):
        load_migrations(folder)


def test_a_badly_named_migration_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", "001_a.sql", "fix.sql")

    with pytest.raises(MigrationError, match=r"fix\.sql is not named NNN_description\.sql"):
        load_migrations(folder)


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (999)")

    with pytest.raises(MigrationError, match="schema version 999, newer than this StemBot's"):
        await Store.open(path)


async def test_the_entry_point_stops_with_one_clear_line_on_a_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "data" / "stembot.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (999)")

    result = run_bot(tmp_path, DISCORD_TOKEN=TOKEN, SEPARATION_API_KEY=API_KEY)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "schema" in line]
    assert "newer than this StemBot's" in line


# -- the schema agrees with the code ---------------------------------------------------------------


def partial_state_indexes(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Every partial index on `jobs` whose condition is `state IN (...)` (or `state = ...`), with
    the states it lists."""
    found: dict[str, set[str]] = {}
    for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND sql IS NOT NULL"
    ):
        where = re.search(r"\bWHERE\b(.*)$", sql, re.IGNORECASE | re.DOTALL)
        if where is None or not re.search(r"\bstate\b", where.group(1)):
            continue
        listed = re.search(r"\bstate\s*(?:IN\s*\(([^)]*)\)|=\s*('[^']*'))", where.group(1), re.IGNORECASE)
        assert listed, f"index {name} has a state condition this test cannot read: {where.group(1)!r}"
        found[name] = set(re.findall(r"'([^']*)'", listed.group(1) or listed.group(2)))
    return found


async def test_every_partial_index_on_job_states_lists_the_code_states(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as conn:
        indexes = partial_state_indexes(conn)

    assert set(indexes) == set(INDEXED_STATE_SETS), "a partial index on job states without a code set"
    for name, states in indexes.items():
        assert states == {state.value for state in INDEXED_STATE_SETS[name]}, name


async def test_startup_query_for_unfinished_work_uses_the_partial_indexes(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as conn:
        plan = " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {NEEDING_WORK_SQL}"))

    assert "USING INDEX jobs_unfinished" in plan and "USING INDEX jobs_undelivered" in plan, plan
    assert "SCAN jobs" not in plan, plan


# -- one history, a file per dialect where the SQL differs ----------------------------------------


def test_a_dialect_file_replaces_the_common_script_for_that_database_only(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", "001_a.sql", "002_b.sql")
    (folder / "002_b.postgresql.sql").write_text("SELECT 2;\n", encoding="utf-8")

    assert load_migrations(folder, dialect="postgresql") == [(1, "SELECT 1;\n"), (2, "SELECT 2;\n")]
    assert load_migrations(folder, dialect="sqlite") == [(1, "SELECT 1;\n"), (2, "SELECT 1;\n")]


def test_a_dialect_file_without_its_common_script_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", "001_a.sql", "002_b.postgresql.sql")

    with pytest.raises(MigrationError, match=r"002_b\.postgresql\.sql has no common"):
        load_migrations(folder, dialect="postgresql")


def test_a_dialect_file_for_an_unknown_database_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", "001_a.sql", "001_a.mysql.sql")

    with pytest.raises(MigrationError, match=r"001_a\.mysql\.sql names no known database"):
        load_migrations(folder)


def test_two_dialect_files_for_one_version_are_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", "001_a.sql", "001_a.postgresql.sql", "001_b.postgresql.sql")

    with pytest.raises(MigrationError, match=r"version 1 is used twice: 001_a\.postgresql\.sql, 001_b"):
        load_migrations(folder, dialect="postgresql")


async def pg_partial_state_indexes(url) -> dict[str, set[str]]:
    conn = await asyncpg.connect(url.reveal())
    try:
        rows = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs'")
    finally:
        await conn.close()
    found: dict[str, set[str]] = {}
    for name, sql in rows:
        where = re.search(r"\bWHERE\b(.*)$", sql, re.IGNORECASE | re.DOTALL)
        if where is not None and re.search(r"\bstate\b", where.group(1)):
            found[name] = set(re.findall(r"'([^']*)'", where.group(1)))
    return found


async def test_postgresql_gets_the_whole_history_once_with_the_same_partial_indexes(postgres_server) -> None:
    url = await postgres_server.new_database(migrated=False)
    try:
        await (await Store.open(url)).close()
        await (await Store.open(url)).close()  # re-opening must not re-run migrations
        conn = await asyncpg.connect(url.reveal())
        try:
            versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")]
        finally:
            await conn.close()
        indexes = await pg_partial_state_indexes(url)
    finally:
        await postgres_server.drop(url)

    assert versions == [version for version, _ in load_migrations(dialect="postgresql")]
    assert set(indexes) == set(INDEXED_STATE_SETS)
    for name, states in indexes.items():
        assert states == {state.value for state in INDEXED_STATE_SETS[name]}, name


async def test_processes_starting_at_once_on_postgresql_migrate_once(postgres_server) -> None:
    url = await postgres_server.new_database(migrated=False)
    try:
        stores = await asyncio.gather(*(Store.open(url) for _ in range(4)))
        for store in stores:
            await store.close()
        conn = await asyncpg.connect(url.reveal())
        try:
            versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")]
        finally:
            await conn.close()
    finally:
        await postgres_server.drop(url)

    assert versions == [version for version, _ in load_migrations(dialect="postgresql")]


async def test_a_postgresql_database_newer_than_the_code_is_refused(postgres_server) -> None:
    url = await postgres_server.new_database()
    try:
        conn = await asyncpg.connect(url.reveal())
        try:
            await conn.execute("INSERT INTO schema_version (version) VALUES (999)")
        finally:
            await conn.close()
        with pytest.raises(MigrationError, match="schema version 999, newer than this StemBot's"):
            await Store.open(url)
    finally:
        await postgres_server.drop(url)
