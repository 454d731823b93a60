"""`python -m bot --migrate-from sqlite:///…`: an SQLite store made by the real services (splits
charged, refunded and queued, settings, allowances, a budget, grants, a keep, delivered messages,
preferences) copied into a real PostgreSQL in one transaction, every row and id kept."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest

from bot.__main__ import lock_sqlite_database, main
from bot.models import SERVER_WIDE, CreditPolicy, JobState, NewJob
from bot.product import Mode
from bot.settings import PostgresURL
from bot.store import Store
from bot.store.copy import TABLES, CopyRefused, copy_sqlite_to_postgresql
from bot.store.mixes import NewMix
from testing.provider_api import Fault, SeparationApiSimulator
from tests.postgres import PostgresServer
from tests.wiring import RecordingDeliverer, make_services, make_settings

GUILD, CHANNEL, MODERATOR = 1000, 4000, 3000
ANA, BEN = 2001, 2002


async def populated_sqlite(path: Path) -> None:
    """A deployment's worth of history, made the way the bot makes it."""
    store = await Store.open(path)
    async with (
        SeparationApiSimulator(callbacks=False, processing_seconds=0.05) as sim,
        aiohttp.ClientSession() as session,
    ):
        settings = make_settings(api_url=sim.base_url, poll_interval=0.05)
        deliverer = RecordingDeliverer(record_in=store)
        services = make_services(store, session, settings, deliverer=deliverer)
        await store.economy.update_settings(
            GUILD, {"jobs_per_member": 3, "cooldown_seconds": 0}, actor_id=MODERATOR
        )
        await store.economy.set_allowance(
            GUILD, 200, role_id=SERVER_WIDE, period=None, apply_now=True, actor_id=MODERATOR
        )
        await store.budgets.set_budget(GUILD, 5000, actor_id=MODERATOR)
        await services.start()
        try:

            async def split(user: int, mode: Mode, track: str, *, start: bool = True):
                accepted = await services.split.reserve(
                    guild_id=GUILD, channel_id=CHANNEL, user_id=user, mode=mode, task_id=track, audio_id=track
                )
                assert accepted.job is not None
                if start:
                    services.split.start(accepted.job)
                return accepted.job

            done = await split(ANA, Mode.SEPARATE_VOCAL, "track-1")
            await deliverer.wait_for(1)
            sim.script("submit", Fault("code", 404))
            failed = await split(BEN, Mode.SPLIT_STEM, "track-2")
            async with asyncio.timeout(10):
                while (await store.jobs.get(failed.id)).state is not JobState.FAILED:
                    await asyncio.sleep(0.02)
            await split(BEN, Mode.SEPARATE_VOCAL, "track-3", start=False)  # still queued
        finally:
            await services.stop()
        await store.accounts.grant(GUILD, BEN, 25, actor_id=MODERATOR, reason="thanks", role_ids=())
        done = await store.jobs.get(done.id)
        await store.keeps.request(done, requested_by=ANA, upload_limit=10 * 2**20)
        await store.keeps.start(done.id, [(0, "Vocals.mp3"), (1, "Instrumental.mp3")])
        mix = NewMix(done, 0b1, BEN, (), price=5, upload_limit=10 * 2**20, filename="Job 1 - Vocals.mp3")
        assert (await store.mixes.request(mix)).started  # a mix, and its charge in the ledger
        await store.members.set_reminders(ANA, False)
        await store.meta.set("commands_synced:global", "abc")
    await store.close()


async def rows(store: Store, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    order = ", ".join(columns)
    return [tuple(r) for r in await store.db.fetchall(f"SELECT {order} FROM {table} ORDER BY {order}")]


async def target_columns(store: Store, table: str) -> list[str]:
    found = await store.db.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    return [r[0] for r in found]


@pytest.fixture
async def target(postgres_server: PostgresServer):
    url = await postgres_server.new_database(migrated=False)
    yield url
    await postgres_server.drop(url)


async def test_everything_is_copied_with_its_ids_and_the_next_job_gets_the_next_number(
    tmp_path, target
) -> None:
    source = tmp_path / "stembot.db"
    await populated_sqlite(source)
    seen: list[tuple[str, int]] = []

    copied = await copy_sqlite_to_postgresql(source, target, copied_table=lambda t, n: seen.append((t, n)))

    assert copied.rows == tuple(seen) and [t for t, _ in seen] == list(TABLES)
    before, after = await Store.open(source), await Store.open(target, CreditPolicy())
    try:
        for table in TABLES:
            columns = await target_columns(after, table)
            assert await rows(after, table, columns) == await rows(before, table, columns), table
            assert dict(copied.rows)[table] == len(await rows(before, table, columns))
        for table in ("jobs", "ledger", "accounts", "kept_stems", "delivered_messages", "allowance_rules"):
            assert dict(copied.rows)[table] > 0, table  # the history really has each kind of row
        assert await after.accounts.ledger_mismatches() == []
        for user in (ANA, BEN):
            assert await after.accounts.balance(GUILD, user) == await before.accounts.balance(GUILD, user)
        assert await after.jobs.count_by_state() == await before.jobs.count_by_state()
        assert (await after.budgets.server(GUILD)).spent == (await before.budgets.server(GUILD)).spent
        last_job = max(r[0] for r in await before.db.fetchall("SELECT id FROM jobs"))
        new = NewJob(
            GUILD, CHANNEL, ANA, Mode.SEPARATE_VOCAL, "t", "track-9", Mode.SEPARATE_VOCAL.cost, "tok-9"
        )
        reservation = await after.reservations.reserve(new)
        assert reservation.job is not None and reservation.job.id == last_job + 1
    finally:
        await before.close()
        await after.close()


async def test_a_target_holding_jobs_or_accounts_is_refused_and_left_unchanged(tmp_path, target) -> None:
    source = tmp_path / "stembot.db"
    await populated_sqlite(source)
    busy = await Store.open(target)
    new = NewJob(GUILD, CHANNEL, ANA, Mode.SEPARATE_VOCAL, "t", "other", Mode.SEPARATE_VOCAL.cost, "tok-x")
    assert (await busy.reservations.reserve(new)).job is not None
    counts = {t: len(await rows(busy, t, await target_columns(busy, t))) for t in TABLES}

    with pytest.raises(CopyRefused, match="already holds data"):
        await copy_sqlite_to_postgresql(source, target)

    assert {t: len(await rows(busy, t, await target_columns(busy, t))) for t in TABLES} == counts
    await busy.close()


async def test_schema_and_command_sync_bookkeeping_alone_do_not_count_as_data(tmp_path, target) -> None:
    source = tmp_path / "stembot.db"
    await populated_sqlite(source)
    fresh = await Store.open(target)
    await fresh.meta.set("commands_synced:global", "synced-by-postgresql")
    await fresh.close()

    await copy_sqlite_to_postgresql(source, target)

    after = await Store.open(target)
    assert await after.meta.get("commands_synced:global") == "synced-by-postgresql"  # the newer one
    assert await after.jobs.count_by_state() != {}
    await after.close()


async def test_a_failure_mid_copy_leaves_the_target_empty(tmp_path, target) -> None:
    source = tmp_path / "stembot.db"
    await populated_sqlite(source)

    def fail_after_the_ledger(table: str, _rows: int) -> None:
        if table == "ledger":
            raise OSError("the disk is full")

    with pytest.raises(OSError, match="disk is full"):
        await copy_sqlite_to_postgresql(source, target, copied_table=fail_after_the_ledger)

    after = await Store.open(target)
    for table in TABLES:
        assert await after.db.fetchall(f"SELECT 1 FROM {table}") == [], table
    await after.close()
    await copy_sqlite_to_postgresql(source, target)  # and it can simply be run again


def test_the_command_copies_says_what_and_never_shows_the_password(
    tmp_path, postgres_server, monkeypatch, capsys
) -> None:
    source = tmp_path / "data" / "stembot.db"
    asyncio.run(populated_sqlite(source))
    url = asyncio.run(postgres_server.new_database(migrated=False))
    password_url = PostgresURL(url.reveal().replace("postgres:@", "postgres:hunter2-secret@", 1))
    assert "hunter2-secret" in password_url.reveal()
    monkeypatch.setenv("DATABASE_URL", password_url.reveal())

    with pytest.raises(SystemExit) as exit_code:
        main(["--migrate-from", f"sqlite:///{source}"])

    out = capsys.readouterr()
    assert exit_code.value.code == 0, out.err
    assert "Stop every StemBot process first" in out.out
    assert "  jobs: 3 rows" in out.out and "Copied" in out.out
    assert "hunter2-secret" not in out.out + out.err
    asyncio.run(postgres_server.drop(url))


def test_the_command_stops_while_a_bot_runs_on_the_sqlite_file(tmp_path, monkeypatch, capsys) -> None:
    source = tmp_path / "stembot.db"
    asyncio.run(populated_sqlite(source))
    monkeypatch.setenv("DATABASE_URL", "postgresql://stembot@127.0.0.1:1/stembot")
    running_bot = lock_sqlite_database(source)
    try:
        with pytest.raises(SystemExit) as exit_code:
            main(["--migrate-from", f"sqlite:///{source}"])
    finally:
        os.close(running_bot)
    assert exit_code.value.code == 2
    assert "already running on the SQLite database" in capsys.readouterr().err
