"""The composition root's start-up decisions, with real components on real local ports."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from bot.__main__ import start_web_server
from bot.models import NewJob
from bot.operations import Operations
from bot.product import Mode
from bot.settings import Settings, load_settings
from bot.store import Store
from bot.web import WebServer
from tests.test_settings import BASE
from tests.wiring import make_services

CLOSED = "http://127.0.0.1:9"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program already listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def settings_for(port: int, *, callbacks: bool) -> Settings:
    # The API at a closed local port: asking it anything fails at once, never reaches the internet.
    env = {**BASE, "CALLBACK_HOST": "127.0.0.1", "CALLBACK_PORT": str(port), "SEPARATION_API_URL": CLOSED}
    if callbacks:
        env["CALLBACK_PUBLIC_URL"] = "https://stembot.example.org"
    return load_settings(env)


@asynccontextmanager
async def built(settings: Settings, store: Store) -> AsyncIterator[tuple[WebServer, Operations]]:
    """The web server and operations exactly as `python -m bot` builds them for `settings`."""
    async with aiohttp.ClientSession() as session:
        services = make_services(store, session, settings)
        yield services.web, services.operations


async def test_a_taken_port_without_callbacks_is_a_warning_and_the_bot_runs_on(
    taken_port, caplog, store
) -> None:
    settings = settings_for(taken_port, callbacks=False)
    async with built(settings, store) as (web, operations):
        with caplog.at_level(logging.WARNING):
            listening = await start_web_server(web, settings, operations)
        await web.stop()
        report = await operations.report(store, callback_public_url=None, listening=None, poll_interval=10)

    assert listening is False and not web.running
    assert (
        operations.web_server_error is not None
        and f"CALLBACK_PORT {taken_port}" in operations.web_server_error
    )
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "Web server off" in record.getMessage()
    assert report.callbacks.web_server_error == operations.web_server_error


async def test_a_taken_port_with_callbacks_stops_start_up_with_one_line(taken_port, caplog, store) -> None:
    settings = settings_for(taken_port, callbacks=True)
    async with built(settings, store) as (web, operations):
        with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as stopped:
            await start_web_server(web, settings, operations)
        await web.stop()

    assert stopped.value.code == 2
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert (
        f"CALLBACK_PORT {taken_port}" in record.getMessage() and "choose a free port" in record.getMessage()
    )


async def test_a_free_port_is_listened_on(caplog, store) -> None:
    async with built(settings_for(0, callbacks=False), store) as (web, operations):
        try:
            assert await start_web_server(web, settings_for(0, callbacks=False), operations)
            assert web.running and web.port != 0 and operations.web_server_error is None
        finally:
            await web.stop()


async def test_a_metrics_scrape_reads_the_job_counts_without_touching_job_rows(store) -> None:
    for n in range(3):
        job = NewJob(1, 2, 3 + n, Mode.SEPARATE_VOCAL, "t", f"a-{n}", Mode.SEPARATE_VOCAL.cost, f"cb-{n}")
        await store.reservations.reserve(job)
    async with built(settings_for(0, callbacks=False), store) as (web, _):
        await web.start()
        statements: list[str] = []
        await store.db._conn.set_trace_callback(statements.append)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{web.port}/metrics") as response:
                    text = await response.text()
        finally:
            await web.stop()

    assert 'stembot_jobs{state="reserved"} 3.0' in text
    assert statements and not [s for s in statements if re.search(r"\bFROM jobs\b", s, re.IGNORECASE)]
