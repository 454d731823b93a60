"""The stem downloader against a real local HTTP server: sizes around the cap, wrong content types,
HTML pages, slow and dropped bodies, server errors, redirects and addresses it must not fetch from.

The server listens on 127.0.0.1, which the downloader allows only as the API's own host
(`allowed_host="127.0.0.1"`); other host names are mapped by an injected resolver, so nothing here
reaches the network. Most tests fetch through a session whose connector sends every name to
127.0.0.1 (the checks `download_stem` makes before each request); the tests of `download_session`
connect only where the injected resolver says.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from bot.downloads import (
    PART_SUFFIX,
    AddressNotAllowed,
    Downloaded,
    DownloadFailed,
    DownloadRefused,
    PublicOnlyResolver,
    address_allowed,
    audio_kind,
    clear_leftovers,
    download_session,
    download_stem,
    format_size,
)

CAP = 200_000
MP3_HEAD = b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00"
MAGIC = {
    "mp3": MP3_HEAD,
    "mp3-frame": b"\xff\xfb\x90\x64\x00\x00\x00\x00\x00\x00\x00\x00",
    "wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "flac": b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00",
    "ogg": b"OggS\x00\x02\x00\x00\x00\x00\x00\x00",
    "m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00",
}
HTML = b"<!DOCTYPE html><html><body>Access denied</body></html>"


def audio(size: int, head: bytes = MP3_HEAD) -> bytes:
    """`size` bytes of a file that starts like an MP3 and is not all the same byte."""
    if size < len(head):
        return head[:size]
    filler = bytes(range(256)) * (size // 256 + 1)
    return head + filler[: size - len(head)]


class StemServer:
    """A file host with scripted misbehaviour. `hits` counts requests per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.app = web.Application()
        self.app.router.add_get("/file/{size}", self.file)
        self.app.router.add_get("/stream/{size}", self.stream)
        self.app.router.add_get("/endless", self.endless)
        self.app.router.add_get("/typed", self.typed)
        self.app.router.add_get("/magic/{kind}", self.magic)
        self.app.router.add_get("/slow-once", self.slow_once)
        self.app.router.add_get("/slow-always", self.slow_always)
        self.app.router.add_get("/drop-once", self.drop_once)
        self.app.router.add_get("/status/{codes}", self.status)
        self.app.router.add_get("/redirect", self.redirect)
        self.app.router.add_get("/hop/{n}", self.hop)
        self.app.router.add_get("/loop-a", self.loop_a)
        self.app.router.add_get("/loop-b", self.loop_b)
        self.app.router.add_get("/big", self.big)
        self.runner = web.AppRunner(self.app)
        self.port = 0

    async def __aenter__(self) -> StemServer:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def _hit(self, request: web.Request) -> int:
        self.hits[request.path] += 1
        return self.hits[request.path]

    async def file(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(body=audio(int(request.match_info["size"])), content_type="audio/mpeg")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Chunked: the size is not announced, so only counting the bytes can enforce the cap."""
        self._hit(request)
        body = audio(int(request.match_info["size"]))
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 1000):
            await response.write(body[start : start + 1000])
        await response.write_eof()
        return response

    async def endless(self, request: web.Request) -> web.StreamResponse:
        """A body that never ends."""
        self._hit(request)
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(MP3_HEAD)
        chunk = bytes(16 * 1024)
        while True:
            await response.write(chunk)

    async def typed(self, request: web.Request) -> web.Response:
        self._hit(request)
        body = {"mp3": audio(5000), "html": HTML, "text": b"not found", "empty": b"", "noise": bytes(5000)}[
            request.query["body"]
        ]
        return web.Response(body=body, headers={"Content-Type": request.query["type"]})

    async def magic(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(
            body=audio(5000, MAGIC[request.match_info["kind"]]), content_type="application/octet-stream"
        )

    async def slow_once(self, request: web.Request) -> web.StreamResponse:
        """The first time, half the body and then a stall longer than the client's timeout."""
        first = self._hit(request) == 1
        body = audio(50_000)
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[:25_000])
        if first:
            await asyncio.sleep(1)
        await response.write(body[25_000:])
        await response.write_eof()
        return response

    async def slow_always(self, request: web.Request) -> web.StreamResponse:
        self._hit(request)
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        response.content_length = 50_000
        await response.prepare(request)
        await response.write(audio(10_000))
        await asyncio.sleep(1)
        return response

    async def drop_once(self, request: web.Request) -> web.StreamResponse:
        """The first time, the connection closes after half the announced body."""
        first = self._hit(request) == 1
        body = audio(50_000)
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        response.content_length = len(body)
        await response.prepare(request)
        if first:
            await response.write(body[:25_000])
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(body)
        await response.write_eof()
        return response

    async def status(self, request: web.Request) -> web.Response:
        """`/status/503,500` answers 503, then 500, then the file."""
        hit = self._hit(request)
        codes = [int(code) for code in request.match_info["codes"].split(",")]
        if hit <= len(codes):
            return web.Response(status=codes[hit - 1], text="trouble")
        return web.Response(body=audio(5000), content_type="audio/mpeg")

    async def redirect(self, request: web.Request) -> web.Response:
        self._hit(request)
        raise web.HTTPFound(request.query["to"])

    async def hop(self, request: web.Request) -> web.Response:
        self._hit(request)
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(body=audio(5000), content_type="audio/mpeg")
        raise web.HTTPFound(f"/hop/{n - 1}")

    async def loop_a(self, request: web.Request) -> web.Response:
        self._hit(request)
        raise web.HTTPFound("/loop-b")

    async def loop_b(self, request: web.Request) -> web.Response:
        self._hit(request)
        raise web.HTTPFound("/loop-a")

    async def big(self, request: web.Request) -> web.StreamResponse:
        """20 MB streamed from one reused chunk, so the server's own memory stays small too."""
        self._hit(request)
        chunk = audio(64 * 1024)
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        response.content_length = 20 * 1024 * 1024
        await response.prepare(request)
        for _ in range(320):
            await response.write(chunk)
        await response.write_eof()
        return response


class MapResolver:
    """The injected name resolver: host names to the addresses a test says they have."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return self.names[host]


class RebindingResolver:
    """A name whose answer changes between lookups: `answers[0]` the first time, then the next."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


class LoopbackConnector(AbstractResolver):
    """aiohttp's own resolver for the session: every name connects to 127.0.0.1, so a 'public'
    host in a test reaches the local server without any DNS."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> Any:
        return [
            {"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET,
             "proto": 0, "flags": socket.AI_NUMERICHOST}
        ]  # fmt: skip

    async def close(self) -> None:
        return None


@pytest.fixture
async def server() -> AsyncIterator[StemServer]:
    async with StemServer() as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(resolver=LoopbackConnector())
    async with aiohttp.ClientSession(connector=connector) as opened:
        yield opened


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "keep" / "stem.part"


@pytest.fixture(autouse=True)
def _keep_dir(dest: Path) -> None:
    dest.parent.mkdir()


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    max_bytes: int = CAP,
    allowed_host: str | None = "127.0.0.1",
    # Generous unless a test is about stalls (those pass their own): on a loaded machine a connect
    # can take longer than half a second, and an attempt lost to that is not the failure under test.
    timeout: float = 5.0,
    attempts: int = 3,
    resolver: MapResolver | None = None,
) -> Downloaded:
    return await download_stem(
        session, url, dest,
        max_bytes=max_bytes, allowed_host=allowed_host, timeout=timeout, attempts=attempts,
        backoff=0.01, resolver=resolver or MapResolver({}),
    )  # fmt: skip


# --- sizes around the cap ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/file", "/stream"], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [CAP - 1, CAP])
async def test_a_file_up_to_the_cap_is_kept_byte_for_byte(server, session, dest, path, size) -> None:
    got = await fetch(session, server.url(f"{path}/{size}"), dest)
    assert got == Downloaded(path=dest, size=size, content_type="audio/mpeg", kind="mp3")
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(audio(size)).digest()


async def test_an_announced_size_over_the_cap_is_refused_before_the_body(server, session, dest) -> None:
    with pytest.raises(DownloadRefused) as refused:
        await fetch(session, server.url(f"/file/{CAP + 1}"), dest)
    assert refused.value.reason == f"larger than the upload limit ({format_size(CAP)})"
    assert refused.value.size == CAP + 1  # known from Content-Length: refused up front
    assert not dest.exists()
    assert server.hits[f"/file/{CAP + 1}"] == 1  # a refusal is not retried


async def test_an_unannounced_body_one_byte_over_the_cap_is_refused_and_removed(
    server, session, dest
) -> None:
    with pytest.raises(DownloadRefused) as refused:
        await fetch(session, server.url(f"/stream/{CAP + 1}"), dest)
    assert refused.value.reason.startswith("larger than the upload limit")
    assert refused.value.size is None
    assert not dest.exists()
    assert server.hits[f"/stream/{CAP + 1}"] == 1


async def test_an_endless_body_is_cut_off_at_the_cap(server, session, dest) -> None:
    with pytest.raises(DownloadRefused, match="larger than the upload limit"):
        await asyncio.wait_for(fetch(session, server.url("/endless"), dest), timeout=10)
    assert not dest.exists()


def test_sizes_read_as_discord_writes_upload_limits() -> None:
    assert format_size(10 * 1024 * 1024) == "10 MB"
    assert format_size(int(12.3 * 1024 * 1024)) == "12.3 MB"


# --- only audio ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("text/html; charset=utf-8", "html", "an HTML page"),
        ("audio/mpeg", "html", "an HTML page"),
        ("application/octet-stream", "html", "an HTML page"),
        ("text/plain", "mp3", "not an audio file"),
        ("application/json", "mp3", "not an audio file"),
        ("image/png", "mp3", "not an audio file"),
        ("audio/mpeg", "noise", "not an audio file"),
        ("audio/mpeg", "text", "not an audio file"),
        ("audio/mpeg", "empty", "empty"),
    ],
)
async def test_what_is_not_audio_is_refused_without_retry(
    server, session, dest, content_type, body, reason
) -> None:
    with pytest.raises(DownloadRefused) as refused:
        await fetch(session, server.url(f"/typed?type={content_type}&body={body}"), dest)
    assert refused.value.reason == reason
    assert not dest.exists()
    assert server.hits["/typed"] == 1


@pytest.mark.parametrize("content_type", ["audio/mpeg", "audio/x-wav", "application/octet-stream"])
async def test_audio_bytes_under_an_audio_or_generic_type_are_kept(
    server, session, dest, content_type
) -> None:
    got = await fetch(session, server.url(f"/typed?type={content_type}&body=mp3"), dest)
    assert (got.kind, got.content_type, got.size) == ("mp3", content_type, 5000)


@pytest.mark.parametrize(
    ("magic", "kind"),
    [("mp3", "mp3"), ("mp3-frame", "mp3"), ("wav", "wav"), ("flac", "flac"), ("ogg", "ogg"), ("m4a", "m4a")],
)
async def test_each_audio_format_is_recognised_by_its_first_bytes(server, session, dest, magic, kind) -> None:
    got = await fetch(session, server.url(f"/magic/{magic}"), dest)
    assert got.kind == kind
    assert dest.read_bytes()[: len(MAGIC[magic])] == MAGIC[magic]


def test_magic_bytes_of_other_files_are_no_audio_kind() -> None:
    assert audio_kind(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d") is None
    assert audio_kind(b"RIFF\x00\x00\x00\x00AVI LIST") is None
    assert audio_kind(b"\xff\x00\x00\x00") is None
    assert audio_kind(b"") is None


async def test_a_body_shorter_than_the_magic_is_judged_at_its_end(server, session, dest) -> None:
    got = await fetch(session, server.url("/stream/3"), dest)
    assert (got.kind, got.size) == ("mp3", 3)


# --- retries -----------------------------------------------------------------------------------


async def test_a_stalled_body_times_out_and_the_retry_succeeds(server, session, dest) -> None:
    got = await fetch(session, server.url("/slow-once"), dest, timeout=0.3)
    assert got.size == 50_000
    assert dest.read_bytes() == audio(50_000)
    assert server.hits["/slow-once"] == 2


async def test_a_body_that_always_stalls_fails_after_every_attempt(server, session, dest) -> None:
    with pytest.raises(DownloadFailed) as failed:
        await fetch(session, server.url("/slow-always"), dest, timeout=0.2, attempts=2)
    assert failed.value.reason == "the file's server did not answer in time"
    assert server.hits["/slow-always"] == 2
    assert not dest.exists()


async def test_a_dropped_connection_mid_body_is_retried(server, session, dest) -> None:
    got = await fetch(session, server.url("/drop-once"), dest)
    assert dest.read_bytes() == audio(50_000)
    assert got.size == 50_000
    assert server.hits["/drop-once"] == 2


@pytest.mark.parametrize("codes", ["503", "500,502", "429"])
async def test_server_errors_and_rate_limits_are_retried_until_the_file_comes(
    server, session, dest, codes
) -> None:
    got = await fetch(session, server.url(f"/status/{codes}"), dest)
    assert got.size == 5000
    assert server.hits[f"/status/{codes}"] == len(codes.split(",")) + 1


async def test_a_server_that_keeps_failing_is_reported_after_the_last_attempt(server, session, dest) -> None:
    with pytest.raises(DownloadFailed) as failed:
        await fetch(session, server.url("/status/503,503,503"), dest)
    assert failed.value.reason == "the file's server kept failing (HTTP 503)"
    assert server.hits["/status/503,503,503"] == 3
    assert not dest.exists()


@pytest.mark.parametrize("code", [404, 403, 410, 400])
async def test_a_client_error_is_refused_at_once(server, session, dest, code) -> None:
    with pytest.raises(DownloadRefused) as refused:
        await fetch(session, server.url(f"/status/{code}"), dest)
    assert f"HTTP {code}" in refused.value.reason
    assert server.hits[f"/status/{code}"] == 1


async def test_a_server_that_cannot_be_reached_fails_after_retries(session, dest) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(DownloadFailed, match="could not be reached"):
        await fetch(session, f"http://127.0.0.1:{port}/file/10", dest, attempts=2)
    assert not dest.exists()


# --- where the bot may download from -------------------------------------------------------------


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.1"], ["169.254.169.254"], ["::1"], ["127.0.0.1"], ["192.168.1.20"], ["0.0.0.0"],
     ["224.0.0.1"], ["100.64.0.1"], ["::ffff:10.0.0.1"], ["fe80::1"], ["93.184.216.34", "10.0.0.1"]],
)  # fmt: skip
async def test_another_host_resolving_to_a_non_public_address_is_refused(
    server, session, dest, addresses
) -> None:
    resolver = MapResolver({"stems.example": addresses})
    with pytest.raises(DownloadRefused) as refused:
        await fetch(session, server.url("/file/5000", host="stems.example"), dest, resolver=resolver)
    assert refused.value.reason == "address not allowed"
    assert resolver.asked == ["stems.example"]
    assert server.hits["/file/5000"] == 0  # never connected
    assert not dest.exists()


async def test_another_host_resolving_to_public_addresses_is_fetched(server, session, dest) -> None:
    resolver = MapResolver({"cdn.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    got = await fetch(session, server.url("/file/5000", host="cdn.example"), dest, resolver=resolver)
    assert got.size == 5000
    assert resolver.asked == ["cdn.example"]


async def test_the_apis_own_host_is_fetched_whatever_it_resolves_to(server, session, dest) -> None:
    resolver = MapResolver({"api.internal": ["10.0.0.5"]})
    got = await fetch(
        session,
        server.url("/file/5000", host="api.internal"),
        dest,
        allowed_host="API.internal",
        resolver=resolver,
    )
    assert got.size == 5000
    assert resolver.asked == []


async def test_a_loopback_address_is_refused_when_it_is_not_the_apis_host(server, session, dest) -> None:
    with pytest.raises(DownloadRefused, match="address not allowed"):
        await fetch(session, server.url("/file/5000"), dest, allowed_host="api.example")
    assert server.hits["/file/5000"] == 0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/stem.mp3", "file:///etc/passwd", "/relative/stem.mp3"])
async def test_only_web_addresses_are_fetched(session, dest, url) -> None:
    with pytest.raises(DownloadRefused, match="not a web address"):
        await fetch(session, url, dest)


async def test_a_redirect_to_a_private_address_on_another_host_is_refused(server, session, dest) -> None:
    resolver = MapResolver({"internal.example": ["10.0.0.1"]})
    target = server.url("/file/5000", host="internal.example")
    with pytest.raises(DownloadRefused, match="address not allowed"):
        await fetch(session, server.url(f"/redirect?to={target}"), dest, resolver=resolver)
    assert resolver.asked == ["internal.example"]
    assert server.hits["/redirect"] == 1
    assert server.hits["/file/5000"] == 0
    assert not dest.exists()


async def test_a_redirect_to_a_public_host_is_followed(server, session, dest) -> None:
    resolver = MapResolver({"cdn.example": ["93.184.216.34"]})
    target = server.url("/file/5000", host="cdn.example")
    got = await fetch(session, server.url(f"/redirect?to={target}"), dest, resolver=resolver)
    assert got.size == 5000
    assert server.hits["/file/5000"] == 1


async def test_three_redirects_are_followed(server, session, dest) -> None:
    got = await fetch(session, server.url("/hop/3"), dest)
    assert got.size == 5000
    assert server.hits["/hop/0"] == 1


async def test_a_fourth_redirect_is_refused(server, session, dest) -> None:
    with pytest.raises(DownloadRefused) as refused:
        await fetch(session, server.url("/hop/4"), dest)
    assert refused.value.reason == "too many redirects"
    assert server.hits["/hop/0"] == 0
    assert server.hits["/hop/4"] == 1  # refused, not retried


async def test_a_redirect_loop_is_refused(server, session, dest) -> None:
    with pytest.raises(DownloadRefused) as refused:
        await fetch(session, server.url("/loop-a"), dest)
    assert refused.value.reason == "a redirect loop"
    assert (server.hits["/loop-a"], server.hits["/loop-b"]) == (1, 1)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True), ("8.8.8.8", True),
     ("10.1.2.3", False), ("172.16.0.1", False), ("127.0.0.53", False), ("::", False),
     ("240.0.0.1", False), ("ff02::1", False), ("fc00::1", False), ("::ffff:127.0.0.1", False)],
)  # fmt: skip
def test_only_public_addresses_are_allowed(address, allowed) -> None:
    assert address_allowed(address) is allowed


# IPv6 forms that carry an IPv4 address: judged by the IPv4 address inside (mapped, 6to4, NAT64's
# well-known prefix), or refused whatever they carry (IPv4-compatible, Teredo, local-use NAT64).
EMBEDDED_PRIVATE = [
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::10.0.0.1",  # IPv4-compatible (deprecated)
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254 (cloud metadata)
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "64:ff9b::10.0.0.1",  # NAT64, well-known prefix
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::a00:1",  # NAT64, local-use prefix
]
EMBEDDED_PUBLIC = [
    ("::ffff:93.184.216.34", True),
    ("::93.184.216.34", False),  # IPv4-compatible: deprecated, refused whatever it carries
    ("2002:5db8:d822::1", True),  # 6to4 of 93.184.216.34
    ("2001:0:5db8:d822:0:0:a247:27cb", False),  # Teredo: refused whatever it carries
    ("64:ff9b::93.184.216.34", True),  # NAT64 (DNS64 answers on an IPv6-only network)
    ("64:ff9b:1::5db8:d822", False),  # local-use NAT64: where the IPv4 sits is the operator's choice
]


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
def test_an_ipv6_address_carrying_a_private_ipv4_address_is_refused(address) -> None:
    assert address_allowed(address) is False


@pytest.mark.parametrize(("address", "allowed"), EMBEDDED_PUBLIC)
def test_an_ipv6_address_carrying_a_public_ipv4_address_is_judged_by_its_form(address, allowed) -> None:
    assert address_allowed(address) is allowed


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
async def test_a_name_resolving_to_an_ipv6_form_of_a_private_address_is_refused(
    server, session, dest, address
) -> None:
    resolver = MapResolver({"stems.example": [address]})
    with pytest.raises(DownloadRefused, match="address not allowed"):
        await fetch(session, server.url("/file/5000", host="stems.example"), dest, resolver=resolver)
    with pytest.raises(DownloadRefused, match="address not allowed"):  # the same as a literal
        await fetch(session, server.url("/file/5000", host=f"[{address}]"), dest)
    assert server.hits["/file/5000"] == 0


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
async def test_the_session_resolver_refuses_an_ipv6_form_of_a_private_address(address) -> None:
    resolver = PublicOnlyResolver(MapResolver({"x.example": [address]}), allowed_host="api.example")
    with pytest.raises(AddressNotAllowed):
        await resolver.resolve("x.example", 80, family=socket.AF_UNSPEC)


@pytest.mark.parametrize(("address", "allowed"), EMBEDDED_PUBLIC)
async def test_the_session_resolver_judges_an_ipv6_form_of_a_public_address_by_its_form(
    address, allowed
) -> None:
    resolver = PublicOnlyResolver(MapResolver({"x.example": [address]}), allowed_host="api.example")
    if allowed:
        got = await resolver.resolve("x.example", 80, family=socket.AF_UNSPEC)
        assert [r["host"] for r in got] == [address]
    else:
        with pytest.raises(AddressNotAllowed):
            await resolver.resolve("x.example", 80, family=socket.AF_UNSPEC)


async def test_a_name_that_rebinds_to_a_6to4_form_of_loopback_is_never_connected_to(server, dest) -> None:
    resolver = RebindingResolver(["93.184.216.34"], ["2002:7f00:1::1"])
    async with download_session(allowed_host="api.example", resolver=resolver) as session:
        with pytest.raises(DownloadRefused, match="address not allowed"):
            await fetch(
                session, server.url("/file/5000", host="rebind.example"), dest,
                allowed_host="api.example", resolver=resolver,
            )  # fmt: skip
    assert resolver.asked == ["rebind.example", "rebind.example"]  # checked, then the connector refused
    assert sum(server.hits.values()) == 0


# --- leftovers and memory ------------------------------------------------------------------------


async def test_a_cancelled_download_leaves_no_partial_file(server, session, dest) -> None:
    task = asyncio.create_task(fetch(session, server.url("/slow-always"), dest, timeout=5))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if dest.exists() and dest.stat().st_size > 0:
            break
    assert dest.exists()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not dest.exists()


async def test_a_20_mb_download_streams_in_bounded_memory(server, session, dest) -> None:
    tracemalloc.start()
    try:
        got = await fetch(session, server.url("/big"), dest, max_bytes=25 * 1024 * 1024, timeout=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.size == 20 * 1024 * 1024
    assert dest.stat().st_size == 20 * 1024 * 1024
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"


# --- the address checked is the address connected to ---------------------------------------------


@pytest.mark.parametrize("proxy_in_env", [False, True], ids=["no-proxy", "proxy-in-env"])
async def test_a_name_that_rebinds_to_loopback_after_the_check_is_never_connected_to(
    server, dest, monkeypatch, proxy_in_env
) -> None:
    if proxy_in_env:  # a proxy would connect for the bot, unchecked: the session must ignore it
        monkeypatch.setenv("HTTP_PROXY", server.url("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
    resolver = RebindingResolver(["93.184.216.34"], ["127.0.0.1"])
    async with download_session(allowed_host="api.example", resolver=resolver) as session:
        with pytest.raises(DownloadRefused) as refused:
            await fetch(
                session, server.url("/file/5000", host="rebind.example"), dest,
                allowed_host="api.example", resolver=resolver,
            )  # fmt: skip
    assert refused.value.reason == "address not allowed"
    assert resolver.asked == ["rebind.example", "rebind.example"]  # checked, then refused: no retry
    assert sum(server.hits.values()) == 0  # the local server never saw a request
    assert not dest.exists()


async def test_a_redirect_to_a_name_that_rebinds_to_loopback_is_never_connected_to(server, dest) -> None:
    resolver = RebindingResolver(["93.184.216.34"], ["127.0.0.1"])
    target = server.url("/file/5000", host="rebind.example")
    async with download_session(allowed_host="127.0.0.1", resolver=resolver) as session:
        with pytest.raises(DownloadRefused, match="address not allowed"):
            await fetch(session, server.url(f"/redirect?to={target}"), dest, resolver=resolver)
    assert server.hits["/redirect"] == 1
    assert server.hits["/file/5000"] == 0


async def test_the_download_session_fetches_the_apis_own_host_from_loopback(server, dest) -> None:
    resolver = MapResolver({"api.internal": ["127.0.0.1"]})
    async with download_session(allowed_host="API.internal", resolver=resolver) as session:
        got = await fetch(
            session, server.url("/file/5000", host="api.internal"), dest,
            allowed_host="API.internal", resolver=resolver,
        )  # fmt: skip
    assert got.size == 5000
    assert resolver.asked == ["api.internal"]  # by the session's connector: the pre-check trusts it
    assert server.hits["/file/5000"] == 1


@pytest.mark.parametrize(("allowed_host", "hits"), [("127.0.0.1", 1), ("api.example", 0)])
async def test_the_download_session_judges_an_ip_literal_by_the_apis_host(
    server, dest, allowed_host, hits
) -> None:
    resolver = MapResolver({})
    async with download_session(allowed_host=allowed_host, resolver=resolver) as session:
        if hits:
            got = await fetch(session, server.url("/file/5000"), dest, allowed_host=allowed_host)
            assert got.size == 5000
        else:
            with pytest.raises(DownloadRefused, match="address not allowed"):
                await fetch(session, server.url("/file/5000"), dest, allowed_host=allowed_host)
    assert server.hits["/file/5000"] == hits
    assert resolver.asked == []  # a literal is never resolved


async def test_the_session_resolver_hands_aiohttp_exactly_the_public_addresses_it_checked() -> None:
    v6 = "2606:2800:220:1:248:1893:25c8:1946"
    resolver = PublicOnlyResolver(MapResolver({"cdn.example": ["93.184.216.34", v6]}), allowed_host=None)
    got = await resolver.resolve("cdn.example", 443, family=socket.AF_UNSPEC)
    assert [(r["host"], r["port"], r["family"], r["hostname"]) for r in got] == [
        ("93.184.216.34", 443, socket.AF_INET, "cdn.example"),
        (v6, 443, socket.AF_INET6, "cdn.example"),
    ]
    only_v6 = await resolver.resolve("cdn.example", 443, family=socket.AF_INET6)
    assert [r["host"] for r in only_v6] == [v6]


@pytest.mark.parametrize("addresses", [["10.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["::ffff:192.168.0.1"]])
async def test_the_session_resolver_refuses_a_name_with_any_non_public_address(addresses) -> None:
    resolver = PublicOnlyResolver(MapResolver({"x.example": addresses}), allowed_host="api.example")
    with pytest.raises(AddressNotAllowed):
        await resolver.resolve("x.example", 80, family=socket.AF_UNSPEC)
    allowed = PublicOnlyResolver(MapResolver({"api.example.": addresses}), allowed_host="API.example")
    assert [
        r["host"] for r in await allowed.resolve("api.example.", 80, family=socket.AF_UNSPEC)
    ] == addresses


# --- leftovers from a previous run ---------------------------------------------------------------


def test_clearing_leftovers_makes_a_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "downloads"
    assert clear_leftovers(folder) == 0
    assert folder.is_dir()


def test_clearing_leftovers_removes_only_unfinished_downloads(tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in ("a.part", f"job-7-vocals{PART_SUFFIX}", "notes.txt", "kept.mp3", "a.part.bak"):
        (folder / name).write_bytes(b"x")
    assert clear_leftovers(folder) == 2
    assert sorted(path.name for path in folder.iterdir()) == ["a.part.bak", "kept.mp3", "notes.txt"]
    assert clear_leftovers(folder) == 0


def test_clearing_leftovers_follows_no_link_and_enters_no_subfolder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.part").write_bytes(b"keep me")
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "file-link.part").symlink_to(outside / "precious.part")
    (folder / "dir-link.part").symlink_to(outside, target_is_directory=True)
    (folder / "sub.part").mkdir()
    (folder / "sub.part" / "inner.part").write_bytes(b"not ours")
    (folder / "left.part").write_bytes(b"x")
    assert clear_leftovers(folder) == 1
    assert not (folder / "left.part").exists()
    assert (outside / "precious.part").read_bytes() == b"keep me"
    assert (folder / "file-link.part").is_symlink()
    assert (folder / "dir-link.part").is_symlink()
    assert (folder / "sub.part" / "inner.part").read_bytes() == b"not ours"
