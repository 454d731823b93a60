"""`python -m bot --check`: every line passing and failing, against the Discord stand-in and the
API simulator; nothing changed, nothing secret printed."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.check import run_checks
from bot.invite import PERMISSIONS_VALUE
from bot.store.migrations import load_migrations
from testing.discord_standin import DiscordStandIn
from testing.provider_api import SeparationApiSimulator
from tests.ports import free_port

KEY = "check-api-key-0123"


@pytest.fixture
async def standin() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as s:
        yield s


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(api_key=KEY, callbacks=False) as s:
        yield s


def env(standin: DiscordStandIn, tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": standin.token,
        "SEPARATION_API_URL": "sandbox",
        "DATABASE_URL": f"sqlite:///{tmp_path}/data/stembot.db",
        "CALLBACK_HOST": "127.0.0.1",
        "CALLBACK_PORT": str(free_port()),
        **more,
    }


async def check(standin: DiscordStandIn, values: dict[str, str]) -> list[str]:
    lines = await run_checks(values, discord_api=standin.rest_base)
    text = [str(line) for line in lines]
    for secret in (standin.token, KEY):
        assert all(secret not in line for line in text), "a secret was printed"
    return text


def line(lines: list[str], word: str) -> str:
    [found] = [x for x in lines if word in x]
    return found


async def test_a_sandbox_set_up_passes_every_check_and_shows_the_invite(standin, tmp_path) -> None:
    lines = await check(standin, env(standin, tmp_path))
    assert all(x.startswith("✓") for x in lines), lines
    invite = line(lines, "Invite URL")
    assert f"client_id={standin.application_id}" in invite and f"permissions={PERMISSIONS_VALUE}" in invite
    assert "scope=bot+applications.commands" in invite
    assert "does not exist yet" in line(lines, "Database")
    assert not (tmp_path / "data").exists(), "--check created the database"
    assert "sandbox" in line(lines, "API:")


async def test_a_bad_discord_token_fails_with_what_to_do(standin, tmp_path) -> None:
    lines = await check(standin, {**env(standin, tmp_path), "DISCORD_TOKEN": "wrong-token"})
    refused = line(lines, "Discord refused")
    assert refused.startswith("✗") and "copy the bot token again" in refused


async def test_a_bot_in_no_server_fails(standin, tmp_path) -> None:
    standin._guilds.clear()
    lines = await check(standin, env(standin, tmp_path))
    assert line(lines, "no server").startswith("✗")


async def test_invalid_settings_fail_first(standin, tmp_path) -> None:
    lines = await check(standin, {"DISCORD_TOKEN": "x"})
    assert len(lines) == 1 and lines[0].startswith("✗ Settings") and "SEPARATION_API_KEY" in lines[0]


async def test_real_api_key_accepted_refused_and_empty_account(standin, sim, tmp_path) -> None:
    real = env(standin, tmp_path, SEPARATION_API_URL=sim.base_url, SEPARATION_API_KEY=KEY)
    ok = line(await check(standin, real), "API key")
    assert ok.startswith("✓") and "10000 credits" in ok
    wrong_key = {**real, "SEPARATION_API_KEY": "wrong"}
    refused = line(await check(standin, wrong_key), "refused SEPARATION_API_KEY")
    assert refused.startswith("✗")
    sim.account_credits = 0
    empty = line(await check(standin, real), "API key")
    assert empty.startswith("✗") and "0 credits" in empty


async def test_a_taken_port_fails_only_when_the_sandbox_or_callbacks_need_it(standin, sim, tmp_path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        sandbox = line(await check(standin, env(standin, tmp_path, CALLBACK_PORT=port)), "Web server port")
        real = env(
            standin, tmp_path, SEPARATION_API_URL=sim.base_url, SEPARATION_API_KEY=KEY, CALLBACK_PORT=port
        )
        polling = line(await check(standin, real), "Web server port")
    assert sandbox.startswith("✗") and "CALLBACK_PORT" in sandbox
    assert polling.startswith("✓") and "unavailable" in polling


async def test_the_public_url_must_reach_this_machine(standin, tmp_path) -> None:
    port = free_port()
    good = env(standin, tmp_path, CALLBACK_PORT=str(port), CALLBACK_PUBLIC_URL=f"http://127.0.0.1:{port}")
    assert line(await check(standin, good), "CALLBACK_PUBLIC_URL").startswith("✓")
    bad = {**good, "CALLBACK_PUBLIC_URL": f"http://127.0.0.1:{free_port()}"}
    unreachable = line(await check(standin, bad), "CALLBACK_PUBLIC_URL")
    assert unreachable.startswith("✗") and "forwards /callback/" in unreachable


async def test_pending_migrations_are_reported_not_applied(standin, tmp_path) -> None:
    db = tmp_path / "data" / "stembot.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (8)")
    lines = await check(standin, env(standin, tmp_path))
    latest = load_migrations()[-1][0]
    assert f"{latest - 8} migration(s) pending (8 → {latest})" in line(lines, "Database")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 8


# -- PostgreSQL --------------------------------------------------------------------------------

PG_PASSWORD = "check-pg-password-51"


def with_password(url: str) -> str:
    """The test server trusts local connections: a password in the URL is ignored, but must
    never be printed."""
    return url.replace("postgresql://postgres:@", f"postgresql://postgres:{PG_PASSWORD}@", 1)


async def test_a_postgresql_database_is_checked_read_only_without_printing_its_password(
    standin, tmp_path, postgres_server
) -> None:
    empty = await postgres_server.new_database(migrated=False)
    migrated = await postgres_server.new_database()
    try:
        fresh = await check(standin, env(standin, tmp_path, DATABASE_URL=with_password(empty.reveal())))
        current = await check(standin, env(standin, tmp_path, DATABASE_URL=with_password(migrated.reveal())))
    finally:
        await postgres_server.drop(empty)
        await postgres_server.drop(migrated)

    latest = max(version for version, _ in load_migrations())
    assert line(fresh, "Database").startswith("✓") and f"pending (0 → {latest})" in line(fresh, "Database")
    assert f"schema current ({latest})" in line(current, "Database")
    assert "********" in line(current, "Database")
    assert all(PG_PASSWORD not in x for x in fresh + current)


async def test_an_unreachable_postgresql_database_fails_without_printing_its_password(
    standin, tmp_path
) -> None:
    url = f"postgresql://stembot:{PG_PASSWORD}@127.0.0.1:{free_port()}/stembot"

    lines = await check(standin, env(standin, tmp_path, DATABASE_URL=url))

    database = line(lines, "Database")
    assert database.startswith("✗") and "cannot be reached" in database and "DATABASE_URL" in database
    assert all(PG_PASSWORD not in x for x in lines)


async def test_the_check_says_plainly_when_nothing_caps_the_api_accounts_spend(standin, tmp_path) -> None:
    uncapped = line(await check(standin, env(standin, tmp_path)), "No budget")
    assert uncapped.startswith("✓") and "nothing caps what a public bot spends" in uncapped
    per_server_env = env(standin, tmp_path, SERVER_MONTHLY_BUDGET="300")
    per_server = line(await check(standin, per_server_env), "BUDGET unset")
    assert "each server spends at most 300" in per_server
    assert "nothing caps all servers together" in per_server
    capped = line(await check(standin, env(standin, tmp_path, MONTHLY_BUDGET="5000")), "MONTHLY_BUDGET:")
    assert "all servers together spend at most 5000 API credits a month" in capped


async def test_a_database_folder_that_cannot_be_created_fails(standin, tmp_path) -> None:
    # A regular file where a folder should be: no user, root included, can create the folder.
    (tmp_path / "afile").write_text("not a folder")
    for url in (f"sqlite:///{tmp_path}/afile/db.sqlite", f"sqlite:///{tmp_path}/afile/sub/db.sqlite"):
        database = line(await check(standin, env(standin, tmp_path, DATABASE_URL=url)), "Database")
        assert database.startswith("✗") and "created at the first start" not in database
        assert f"{tmp_path}/afile is not a folder" in database
    assert (tmp_path / "afile").read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder whatever its permission bits")
async def test_a_database_folder_this_user_cannot_write_fails(standin, tmp_path) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir()
    (folder / "old.db").write_bytes(b"")
    folder.chmod(0o555)
    try:
        for name, says in (
            ("stembot.db", f"this user cannot write in {folder}: fix"),
            ("old.db", f"this user cannot write in {folder}: fix"),  # its lock and -wal go beside it
            ("data/stembot.db", f"this user cannot write in {folder}, so its folder cannot be created"),
        ):
            url = f"sqlite:///{folder}/{name}"
            database = line(await check(standin, env(standin, tmp_path, DATABASE_URL=url)), "Database")
            assert database.startswith("✗") and says in database
    finally:
        folder.chmod(0o755)
