"""The bot's web server on a real local port: callbacks, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot import http_limits
from bot.callbacks import MAX_CALLBACK_BYTES, Callback, CallbackVerdict, InvalidCallback, parse_callback
from bot.metrics import Metrics
from bot.models import JobState
from bot.sandbox import SandboxApi
from bot.web import HealthCheck, WebServer

TOKEN = "good-token"
TASK = "a" * 32


class SinkDouble:
    """Records what reached the job side; answers as a runner would for one known job."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Callback]] = []
        self.finished = False

    async def knows_token(self, token: str) -> bool:
        return token == TOKEN

    async def callback_received(self, token: str, callback: Callback) -> CallbackVerdict:
        if token != TOKEN:
            return CallbackVerdict.UNKNOWN
        if callback.task_id != TASK:
            return CallbackVerdict.MISMATCH
        self.received.append((token, callback))
        return CallbackVerdict.DUPLICATE if self.finished else CallbackVerdict.ACCEPTED


class Flags:
    db = gateway = runner = True


@pytest.fixture
async def server() -> AsyncIterator[tuple[WebServer, SinkDouble, Flags, aiohttp.ClientSession]]:
    sink, flags, metrics = SinkDouble(), Flags(), Metrics()

    async def db() -> bool:
        if flags.db is None:
            raise RuntimeError("database locked")
        return flags.db

    async def gateway() -> bool:
        return flags.gateway

    async def runner() -> bool:
        return flags.runner

    async def refresh() -> None:
        metrics.set_job_counts({JobState.SUBMITTED: 3, JobState.SUCCEEDED: 7})

    web = WebServer(
        host="127.0.0.1",
        port=0,
        metrics=metrics,
        health=[HealthCheck("database", db), HealthCheck("gateway", gateway), HealthCheck("runner", runner)],
        callbacks=sink,
        refresh_metrics=refresh,
    )
    await web.start()
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{web.port}") as session:
        yield web, sink, flags, session
    await web.stop()


def success_body(task_id: str = TASK, key: str = "vocal_removal_info") -> dict:
    return {
        "code": 200,
        "msg": "All generated successfully.",
        "data": {
            "task_id": task_id,
            key: {
                "origin_url": "",
                "vocal_url": "https://cdn/v.mp3",
                "instrumental_url": "https://cdn/i.mp3",
            },
        },
    }


async def test_valid_callback_wakes_the_job(server) -> None:
    _, sink, _, session = server
    async with session.post(f"/callback/{TOKEN}", json=success_body()) as response:
        assert response.status == 200
        assert (await response.json())["verdict"] == "accepted"
    [(token, callback)] = sink.received
    assert token == TOKEN and callback.claims_success
    assert callback.stem_urls == {"vocal": "https://cdn/v.mp3", "instrumental": "https://cdn/i.mp3"}


async def test_reseller_spelling_is_accepted(server) -> None:
    _, sink, _, session = server
    async with session.post(f"/callback/{TOKEN}", json=success_body(key="vocal_separation_info")) as response:
        assert response.status == 200
    assert sink.received


async def test_unknown_token_is_404_and_reaches_nothing(server) -> None:
    _, sink, _, session = server
    async with session.post("/callback/guessed-token", json=success_body()) as response:
        assert response.status == 404
    async with session.post("/callback/guessed-token", data=b"garbage") as response:
        assert response.status == 404  # turned away before the body is read
    assert sink.received == []


async def test_right_token_wrong_task_is_refused(server) -> None:
    _, sink, _, session = server
    async with session.post(f"/callback/{TOKEN}", json=success_body(task_id="b" * 32)) as response:
        assert response.status == 400
    assert sink.received == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"code": 200}',
        b'{"code": "200", "data": {"task_id": "x", "vocal_removal_info": null}}',
        b'{"code": 200, "data": {"vocal_removal_info": null}}',
        b'{"code": 200, "data": {"task_id": "x"}}',
        b'{"code": 200, "data": {"task_id": "x", "vocal_removal_info": {"vocal_url": "javascript:x"}}}',
        b'{"code": 200, "data": {"task_id": "x", "vocal_removal_info": "yes"}}',
    ],
)
async def test_malformed_bodies_are_400_and_change_nothing(server, body) -> None:
    _, sink, _, session = server
    async with session.post(f"/callback/{TOKEN}", data=body) as response:
        assert response.status == 400
    assert sink.received == []


async def test_oversized_body_is_refused(server) -> None:
    _, sink, _, session = server
    body = json.dumps(success_body()).encode() + b" " * (MAX_CALLBACK_BYTES + 1)
    async with session.post(f"/callback/{TOKEN}", data=body) as response:
        assert response.status == 413
    assert sink.received == []


async def test_duplicate_callback_is_acknowledged_harmlessly(server) -> None:
    _, sink, _, session = server
    sink.finished = True
    async with session.post(f"/callback/{TOKEN}", json=success_body()) as response:
        assert response.status == 200 and (await response.json())["verdict"] == "duplicate"


async def test_failure_callback_with_null_info_is_valid() -> None:
    callback = parse_callback(
        b'{"code": 500, "msg": "x", "data": {"task_id": "t", "vocal_removal_info": null}}'
    )
    assert callback.code == 500 and not callback.claims_success


def test_parse_callback_rejects_non_url_stems() -> None:
    with pytest.raises(InvalidCallback):
        parse_callback(b'{"code": 200, "data": {"task_id": "t", "vocal_removal_info": {"drums_url": 5}}}')


async def test_healthz_is_200_when_everything_answers(server) -> None:
    _, _, _, session = server
    async with session.get("/healthz") as response:
        assert response.status == 200
        assert await response.json() == {
            "ok": True,
            "checks": {"database": True, "gateway": True, "runner": True},
        }


@pytest.mark.parametrize("broken", ["db", "gateway", "runner"])
async def test_healthz_is_503_when_a_part_is_down(server, broken) -> None:
    _, _, flags, session = server
    setattr(flags, broken, False)
    async with session.get("/healthz") as response:
        assert response.status == 503
        assert (await response.json())["ok"] is False


async def test_healthz_is_503_when_a_check_raises(server) -> None:
    _, _, flags, session = server
    flags.db = None
    async with session.get("/healthz") as response:
        assert response.status == 503


async def test_metrics_are_prometheus_text_with_job_states(server) -> None:
    _, _, _, session = server
    async with session.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert 'stembot_jobs{state="submitted"} 3.0' in text
    assert 'stembot_jobs{state="succeeded"} 7.0' in text
    assert 'stembot_jobs{state="failed"} 0.0' in text
    assert "stembot_delivery_lag_seconds_bucket" in text


async def test_port_zero_binds_a_free_port(server) -> None:
    web, *_ = server
    assert web.port != 0


# json.loads recurses once per nesting level: far fewer levels than 64 KiB allows exhaust
# Python's recursion limit, and RecursionError is not a ValueError.
DEEPLY_NESTED = [b"[" * 60_000, b'{"a":' * 13_000, b'{"code": 200, "data": ' + b"[" * 30_000]


@pytest.mark.parametrize("body", DEEPLY_NESTED, ids=["arrays", "objects", "inside-envelope"])
async def test_deeply_nested_json_is_400_with_one_log_line(server, body, caplog) -> None:
    _, sink, _, session = server
    assert len(body) < MAX_CALLBACK_BYTES
    with caplog.at_level(logging.INFO):
        async with session.post(f"/callback/{TOKEN}", data=body) as response:
            assert response.status == 400
    assert sink.received == []
    assert [r for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if r.name == "bot.web"] == [
        "Rejected a callback body: 'nested too deeply'"
    ]


@pytest.mark.parametrize("body", DEEPLY_NESTED, ids=["arrays", "objects", "inside-envelope"])
def test_parse_callback_rejects_deep_nesting_as_invalid(body) -> None:
    with pytest.raises(InvalidCallback):
        parse_callback(body)


# ------------------------------------------------------------------ slow clients


@pytest.fixture
async def bounded(monkeypatch) -> AsyncIterator[tuple[WebServer, float, float, float]]:
    """The real web server (callbacks and the sandbox) with its bounds shortened to keep the
    tests quick; the bounds themselves are checked below."""
    monkeypatch.setattr(http_limits, "IDLE_SECONDS", 0.5)
    monkeypatch.setattr(http_limits, "BODY_SECONDS", 0.5)
    monkeypatch.setattr(http_limits, "LINGER_SECONDS", 0.3)
    sandbox = SandboxApi(api_key="k")
    web = WebServer(
        host="127.0.0.1", port=0, metrics=Metrics(), health=[], callbacks=SinkDouble(), sandbox=sandbox
    )
    await web.start()
    yield web, 0.5, 0.5, 0.3
    await web.stop()


async def read_response_head(reader: asyncio.StreamReader) -> tuple[str, int]:
    """The status line and Content-Length of one HTTP response; its body is read too."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
    await reader.readexactly(length)
    return head.split("\r\n", 1)[0], length


async def closed_after(reader: asyncio.StreamReader, started: float, limit: float) -> float:
    """Seconds from `started` until the server closed the connection (fails after `limit`)."""
    async with asyncio.timeout(limit):
        while await reader.read(1024):
            pass
    return time.monotonic() - started


def test_the_bounds_are_seconds_not_an_hour() -> None:
    assert 1 <= http_limits.IDLE_SECONDS <= 30
    assert 1 <= http_limits.BODY_SECONDS <= 60
    assert 0 < http_limits.LINGER_SECONDS <= 10


async def test_an_idle_keep_alive_connection_is_closed_within_the_bound(bounded) -> None:
    web, idle, _, _ = bounded
    reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _ = await read_response_head(reader)
        assert status.startswith("HTTP/1.1 200")
        answered = time.monotonic()
        assert await closed_after(reader, answered, idle + 5) < idle + 3  # slack for a loaded machine
    finally:
        writer.close()


async def test_a_slowloris_sending_headers_byte_by_byte_is_cut_off(bounded) -> None:
    web, idle, _, _ = bounded
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", web.port)

    async def trickle() -> None:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(200):  # 20 s of headers, one byte at a time
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.1)

    sender = asyncio.create_task(trickle())
    try:
        assert await closed_after(reader, started, idle + 5) < idle + 3
    finally:
        sender.cancel()
        writer.close()


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/callback/good-token", ""), ("/sandbox/api/v1/vocal-removal/generate", "Authorization: Bearer k\r\n")],
)
async def test_a_body_that_never_finishes_is_answered_and_closed_within_the_bound(
    bounded, path, headers
) -> None:
    web, _, body, linger = bounded
    reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        sent = time.monotonic()
        async with asyncio.timeout(body + 5):
            status, _ = await read_response_head(reader)
        assert status.startswith("HTTP/1.1 408"), status
        assert time.monotonic() - sent < body + 3
        assert await closed_after(reader, sent, body + linger + 5) < body + linger + 3
    finally:
        writer.close()
