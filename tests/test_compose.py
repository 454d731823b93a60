"""docker-compose.yml, checked offline (Docker cannot pull images here): PostgreSQL 16 with its
healthcheck and volume, two bot processes splitting the shards, each started only once the
database is healthy, each with a healthcheck that works, and the environment each bot gets loads
as valid settings for PostgreSQL and its shard."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.settings import PostgresURL, load_settings

ROOT = Path(__file__).resolve().parent.parent
BOTS = ("bot-0", "bot-1")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${NAME}` and `${NAME:?message}`, from `env` (a missing one fails, as there)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        assert env.get(name), f"{name} must be set"
        return env[name]

    return re.sub(r"\$\{(\w+)(?::\?[^}]*)?\}", substitute, value)


def test_postgresql_16_keeps_its_data_in_a_named_volume_and_reports_ready(compose) -> None:
    db = compose["services"]["db"]
    assert db["image"] == "postgres:16"
    assert "stembot-db:/var/lib/postgresql/data" in db["volumes"]
    assert "stembot-db" in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_two_bots_from_the_dockerfile_start_once_the_database_is_healthy(compose) -> None:
    services = compose["services"]
    assert {name for name, service in services.items() if "profiles" not in service} == {"db", *BOTS}
    for name in BOTS:
        bot = services[name]
        assert bot["build"] == "."
        assert bot["env_file"] == ".env"
        assert bot["depends_on"] == {"db": {"condition": "service_healthy"}}
        assert bot["working_dir"] == "/data"  # the image's volume, writable by its user
        assert "/healthz" in " ".join(bot["healthcheck"]["test"])


def test_each_bot_gets_settings_for_the_database_service_and_its_own_shard(compose) -> None:
    env_file = {"DISCORD_TOKEN": "token", "SEPARATION_API_KEY": "key", "POSTGRES_PASSWORD": "s3cret"}
    shards: list[int] = []
    for name in BOTS:
        environment = {
            k: interpolate(str(v), env_file) for k, v in compose["services"][name]["environment"].items()
        }
        settings = load_settings({**env_file, **environment})  # `environment` wins over .env
        assert settings.database == PostgresURL("postgresql://stembot:s3cret@db:5432/stembot")
        assert settings.shard_count == 2
        assert settings.shard_ids is not None
        shards.extend(settings.shard_ids)
    assert sorted(shards) == [0, 1]  # every shard run, each by one bot


def test_the_bots_publish_their_web_servers_to_this_machine_only(compose) -> None:
    published = [compose["services"][name]["ports"] for name in BOTS]
    assert published == [["127.0.0.1:8080:8080"], ["127.0.0.1:8081:8080"]]


def test_the_bots_healthcheck_is_the_images(compose) -> None:
    command = compose["services"]["bot-0"]["healthcheck"]["test"][3]
    assert command in (ROOT / "Dockerfile").read_text()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
async def test_the_bots_healthcheck_passes_only_while_healthz_says_ok(compose, status, healthy) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": status == 200}, status=status)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        test = compose["services"]["bot-1"]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"]
        process = await _run([sys.executable, *test[2:]], {**os.environ, "CALLBACK_PORT": str(port)})
        assert (process == 0) is healthy
    finally:
        await runner.cleanup()


async def _run(argv: list[str], env: dict[str, str]) -> int:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return await process.wait()
