"""The real `python -m bot` process between a local Discord stand-in and the API simulator."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.product import stem_name
from testing.discord_standin import (
    DEFAULT_USER_ID,
    BotProcess,
    DiscordStandIn,
    InteractionRecord,
    MessageRecord,
)
from testing.provider_api import SeparationApiSimulator, stem_sha256

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-api-key-0123456789"
ENTRY_POINT = "bot.__main__:main"


class Stack:
    """Both stand-ins, the bot process(es) and the bot's database, as one member would meet them."""

    def __init__(self, standin: DiscordStandIn, api: SeparationApiSimulator, tmp_path: Path) -> None:
        self.standin = standin
        self.api = api
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "data" / "stembot.db"
        self.bots: list[BotProcess] = []
        self.sessions = 0

    async def start_bot(self, **settings: Any) -> BotProcess:
        bot = await self.spawn_bot(**settings)
        self.sessions += 1
        try:
            await self.standin.wait_ready(timeout=30, sessions=self.sessions)
        except TimeoutError:
            raise AssertionError(f"bot not ready\n--- bot output ---\n{bot.output()}") from None
        return bot

    async def spawn_bot(self, **settings: Any) -> BotProcess:
        """Start `python -m bot` without waiting for it to connect."""
        env = {
            "SEPARATION_API_KEY": API_KEY,
            "SEPARATION_API_URL": self.api.base_url,
            "DATABASE_URL": "sqlite:///data/stembot.db",  # relative to the bot's working directory
            "POLL_INTERVAL_SECONDS": "0.1",
            "DEFAULT_CREDITS": "100",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO_ROOT),
            "DEV_GUILD_ID": "",
            "CALLBACK_HOST": "127.0.0.1",
            "CALLBACK_PORT": "0",  # any free port: the web server (healthz, metrics) must not collide
        }
        env.update({key: str(value) for key, value in settings.items()})
        # Working directory tmp_path: no developer's .env is read, the database lands there.
        bot = await self.standin.spawn(ENTRY_POINT, extra_env=env, python=sys.executable, cwd=self.tmp_path)
        self.bots.append(bot)
        return bot

    async def split(
        self, task_id: str = "gen-1", audio_id: str = "audio-1", mode: str | None = None, **kwargs: Any
    ) -> InteractionRecord:
        options = {"task_id": task_id, "audio_id": audio_id}
        if mode:
            options["mode"] = mode
        return await self.standin.invoke("split", options, **kwargs)

    async def credits(self, user_id: int = DEFAULT_USER_ID) -> str:
        record = await self.standin.invoke("credits", user_id=user_id)
        message = await record.wait_for_response(lambda m: "credits" in m.text().lower())
        return message.text()

    async def eventually(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """For the bot's database, which tells nobody when it changes: re-check until true."""
        async with asyncio.timeout(timeout):
            while not (result := predicate()):
                await asyncio.sleep(0.02)
        return result

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        return conn

    def ledger_mismatches(self) -> list[tuple[Any, ...]]:
        with self.db() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    "SELECT a.guild_id, a.user_id, a.balance, COALESCE(SUM(l.amount), 0) AS total "
                    "FROM accounts a LEFT JOIN ledger l USING (guild_id, user_id) "
                    "GROUP BY a.guild_id, a.user_id HAVING a.balance != total"
                )
            ]

    def ledger_kinds(self, job_id: int) -> list[str]:
        with self.db() as conn:
            return [
                r["kind"]
                for r in conn.execute("SELECT kind FROM ledger WHERE job_id = ? ORDER BY id", (job_id,))
            ]

    def jobs(self) -> list[sqlite3.Row]:
        with self.db() as conn:
            return list(conn.execute("SELECT * FROM jobs ORDER BY id"))

    def serve_stem_files(self, stem_bytes: int = 24 * 1024) -> None:
        """Make the simulator serve the stems of the splits from now on (their links point to it),
        each `stem_bytes` long unless `api.stem_sizes` says otherwise: for keeping them in Discord."""
        self.api.stem_files = True
        self.api.stem_bytes = stem_bytes

    def stem_urls(self, job_id: int) -> list[str]:
        """The job's stem links as the bot stored them, in the order of its result."""
        [job] = [j for j in self.jobs() if j["id"] == job_id]
        return [url for _, url in json.loads(job["stems"] or "[]")]

    def stem_hashes(self, job_id: int) -> dict[str, str]:
        """Each stem of the job as a kept file must be: its filename (the stem's name and the
        link's extension) -> the sha256 of the file the simulator serves."""
        [job] = [j for j in self.jobs() if j["id"] == job_id]
        files = {}
        for key, url in json.loads(job["stems"] or "[]"):
            served = urlsplit(url).path.rsplit("/", 1)[-1]
            extension = served.rsplit(".", 1)[-1]
            files[f"{stem_name(key)}.{extension}"] = stem_sha256(served, self.api.stem_size(served))
        return files


@pytest.fixture
async def standin() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as s:
        yield s


@pytest.fixture
async def api() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(api_key=API_KEY, processing_seconds=0.5, callbacks=False) as sim:
        yield sim


@pytest.fixture
async def stack(
    standin: DiscordStandIn, api: SeparationApiSimulator, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    s = Stack(standin, api, tmp_path)
    yield s
    for bot in s.bots:
        await bot.stop()
    output = "\n".join(f"--- {bot.target} pid {bot.pid} ---\n{bot.output()}" for bot in s.bots)
    for bot in s.bots:
        bot.cleanup()
    print(output)
    # What no scenario may ever produce, whatever it tests:
    assert API_KEY not in output, "the API key leaked into the logs"
    assert "test-token" not in output, "the bot token leaked into the logs"
    assert "Traceback" not in output, "the bot logged an unexpected error"
    assert standin.rejected == [], "Discord would have refused a message (limits)"
    assert standin.unhandled == []
    if s.db_path.exists():
        assert s.ledger_mismatches() == []


def button(message: MessageRecord, label: str) -> dict[str, Any]:
    """The button labelled `label` on one of the bot's messages."""
    for row in message.components:
        for component in row.get("components") or []:
            if component.get("label") == label:
                return component
    raise AssertionError(f"no {label!r} button on {message!r}")
