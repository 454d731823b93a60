"""Downloading a stem file: untrusted input, handled as such (issue 9, "Downloads are untrusted input").

A stem URL comes from a stored record, so it is treated like any address a stranger could have
written. `download_stem` streams the body to a temporary file chosen by the caller, in chunks, under
a hard size cap; it fetches only over http(s), from the API's own host or from hosts that resolve to
public addresses only (checked again on every redirect hop, followed by hand); and it keeps the file
only if it is audio by its first bytes. It fetches with a session from `download_session`, whose
connector resolves every name through that same check, so the address checked is the address
connected to: a name that answers with a public address first and a private one a moment later
(DNS rebinding) still reaches no private address. It either returns a `Downloaded` or raises a
`DownloadRefused` (the file is not acceptable: retrying would not help) or a `DownloadFailed` (the
transfer kept failing). Either way no partial file is left behind. Every `reason` is plain words,
safe to show to members: an English sentence of `bot.reasons`, stored as it is and said in the
reader's language where it is shown (`bot.reasons.shown`).

Temporary files end in `PART_SUFFIX`; `clear_leftovers` removes those a previous run left behind.

Knows nothing of Discord: the caller passes the upload limit as `max_bytes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from bot import reasons
from bot.reasons import because

# Re-exported: callers found it here (a download's cap is a size); it is words, so it lives in render.
from bot.render.text import format_size as format_size

if TYPE_CHECKING:
    from aiohttp.abc import ResolveResult  # a TypedDict, only since aiohttp 3.10

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAGIC_BYTES = 12
"""How much of the body is enough to recognise every accepted audio format."""
PART_SUFFIX = ".part"
"""How the name of every file a download is written to ends, so `clear_leftovers` can find them."""

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Maps (host, port) to the IP addresses a connection to it may reach."""


class DownloadError(Exception):
    """A stem could not be kept. `reason` (also `str()`) is plain words, safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DownloadRefused(DownloadError):
    """The file or its address is not acceptable; asking again would get the same answer.

    `size` is the file's size in bytes when the server announced it, for the member's benefit."""

    def __init__(self, reason: str, *, size: int | None = None) -> None:
        super().__init__(reason)
        self.size = size


class DownloadFailed(DownloadError):
    """The transfer kept failing (timeouts, dropped connections, server errors) on every attempt."""


class AddressNotAllowed(OSError):
    """Raised by the download session's resolver for a host that resolves to a non-public address.

    An OSError because that is what aiohttp expects a resolver to raise: the connection fails before
    any socket is opened, and `download_stem` reports it as `DownloadRefused`."""


class _Retryable(Exception):
    """One attempt failed in a way that a later attempt may not."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Downloaded:
    path: Path
    size: int
    content_type: str
    kind: str
    """The audio format by its magic bytes, also the usual file extension: mp3, wav, flac, ogg, m4a."""


def audio_kind(head: bytes) -> str | None:
    """The audio format the first bytes of a file announce, or None if they announce none."""
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"  # an MPEG audio frame sync, for files without an ID3 tag
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    return None


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""NAT64's well-known prefix (RFC 6052): the IPv4 address the gateway connects to is the last 32
bits (what DNS64 answers on an IPv6-only network)."""
_REFUSED_V6 = (
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated, RFC 4291), with :: and ::1
    ipaddress.IPv6Network("2001::/32"),  # Teredo: tunnelled through a relay to an obfuscated address
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215): the IPv4 sits anywhere
)
"""IPv6 ranges that carry an IPv4 address in a form not judged here: refused whatever they carry."""


def address_allowed(address: str) -> bool:
    """Whether the bot may connect to this IP address on behalf of a stored URL: public only.

    An IPv6 address that stands for an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`,
    NAT64 `64:ff9b::/96`) is judged by the IPv4 address it carries, which is where the connection
    ends up (`2002:a00:1::` is 10.0.0.1 through a 6to4 relay); the other forms that carry one
    (IPv4-compatible, Teredo, local-use NAT64) are refused."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _public(ip.ipv4_mapped)
        if ip in _NAT64:
            return _public(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
        if ip.sixtofour is not None:
            return _public(ip.sixtofour)
        if any(ip in network for network in _REFUSED_V6):
            return False
    return _public(ip)


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _is_allowed_host(host: str, allowed_host: str | None) -> bool:
    return allowed_host is not None and host.lower().rstrip(".") == allowed_host.lower().rstrip(".")


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's name resolver for stem downloads: resolves through `resolver` and, for every host
    but `allowed_host`, raises `AddressNotAllowed` when any address is not public, so aiohttp
    connects only to addresses this check saw. (aiohttp does not ask a resolver about IP literals:
    `download_stem` checks those itself.)"""

    def __init__(self, resolver: Resolver, *, allowed_host: str | None) -> None:
        self._resolver = resolver
        self._allowed_host = allowed_host

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._resolver(host, port)
        if not _is_allowed_host(host, self._allowed_host):
            for address in addresses:
                if not address_allowed(address):
                    log.warning("Refused to connect to %s: it resolves to %s", host, address)
                    raise AddressNotAllowed(f"{host} resolves to a non-public address")
        results: list[ResolveResult] = []
        for address in addresses:
            address_family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
            if family in (socket.AF_UNSPEC, address_family):
                results.append(
                    {"hostname": host, "host": address, "port": port, "family": address_family,
                     "proto": 0, "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV}
                )  # fmt: skip
        if not results:
            raise OSError(f"no address found for {host}")
        return results

    async def close(self) -> None:
        return None


def download_session(*, allowed_host: str | None, resolver: Resolver = resolve_host) -> aiohttp.ClientSession:
    """The session to give `download_stem`, with the same `allowed_host` (and `resolver`): every
    connection it opens goes to an address `PublicOnlyResolver` checked. It ignores proxy settings
    in the environment (a proxy would connect on the bot's behalf, unchecked). Open it inside the
    running event loop and close it at shutdown."""
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(resolver, allowed_host=allowed_host))
    return aiohttp.ClientSession(connector=connector, trust_env=False)


async def _check_address(url: URL, allowed_host: str | None, resolver: Resolver) -> None:
    """Refuse a URL the bot must not fetch: not http(s), or another host than the API's that
    resolves to any non-public address."""
    if url.scheme not in ("http", "https") or not url.host:
        raise DownloadRefused(because(reasons.NOT_A_WEB_ADDRESS))
    host = url.host.lower().rstrip(".")
    if _is_allowed_host(host, allowed_host):
        return
    try:
        addresses: Sequence[str] = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        try:
            addresses = await resolver(host, url.port or (443 if url.scheme == "https" else 80))
        except OSError as error:
            raise _Retryable(because(reasons.SERVER_NOT_FOUND)) from error
    if not addresses:
        raise _Retryable(because(reasons.SERVER_NOT_FOUND))
    for address in addresses:
        if not address_allowed(address):
            log.warning("Refused to download from %s: it resolves to %s", host, address)
            raise DownloadRefused(because(reasons.ADDRESS_NOT_ALLOWED))


def _open_for_writing(path: Path) -> BinaryIO:
    # Local writes of 64 KiB land in the page cache and return at once; a thread per chunk would
    # cost more than it saves.
    return path.open("wb")


def clear_leftovers(folder: Path) -> int:
    """Remove the download files (names ending in `PART_SUFFIX`) a previous run left in `folder`,
    making the folder if it is missing; returns how many were removed. Call it at start-up, before
    any download runs. Only regular files directly in `folder` are removed: symbolic links are
    left alone (never followed), and so are subfolders, which downloads never make."""
    folder.mkdir(parents=True, exist_ok=True)
    removed = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(PART_SUFFIX) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    if removed:
        log.info("Removed %d unfinished downloads left in %s", removed, folder)
    return removed


def remove_file(path: Path) -> None:
    """Remove a download file, if it is there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def download_stem(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    allowed_host: str | None,
    timeout: float,  # noqa: ASYNC109 -- an idle limit per read, not a deadline for the whole call
    attempts: int = 3,
    backoff: float = 1.0,
    resolver: Resolver = resolve_host,
) -> Downloaded:
    """Download the audio file at `url` into `dest`, at most `max_bytes` bytes.

    `allowed_host` is the API's own host (fetched whatever it resolves to); any other host must
    resolve to public addresses only. `session` should come from `download_session` with the same
    `allowed_host` and `resolver`: then the check holds for the address aiohttp connects to. With
    any other session the name is checked before the request, but aiohttp resolves it again on its
    own, so a name that changes its answer in between is not caught. `dest` should end in
    `PART_SUFFIX`, in the folder `clear_leftovers` clears.

    `timeout` bounds connecting and each wait for more of the body, so a large file on a slow but
    steady connection still arrives. Timeouts, dropped connections, 429 and 5xx are tried again up
    to `attempts` times in all, waiting `backoff`, then twice as long, and so on. On any failure
    `dest` is removed.
    """
    last_reason = because(reasons.DOWNLOAD_FAILED)
    for attempt in range(1, attempts + 1):
        try:
            return await _attempt(
                session, URL(url), dest,
                max_bytes=max_bytes, allowed_host=allowed_host, timeout=timeout, resolver=resolver,
            )  # fmt: skip
        except _Retryable as error:
            last_reason = error.reason
            remove_file(dest)
            log.info("Stem download attempt %d of %d failed: %s", attempt, attempts, error.reason)
        except BaseException:
            remove_file(dest)
            raise
        if attempt < attempts:
            await asyncio.sleep(backoff * 2 ** (attempt - 1))
    raise DownloadFailed(last_reason)


async def _attempt(
    session: aiohttp.ClientSession,
    url: URL,
    dest: Path,
    *,
    max_bytes: int,
    allowed_host: str | None,
    timeout: float,  # noqa: ASYNC109 -- as in download_stem
    resolver: Resolver,
) -> Downloaded:
    client_timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
    seen = {url}
    hops = 0
    while True:
        await _check_address(url, allowed_host, resolver)
        try:
            async with session.get(
                url,
                allow_redirects=False,
                timeout=client_timeout,
                # Compressed bodies would be inflated behind the size cap's back of Content-Length.
                headers={"Accept-Encoding": "identity"},
            ) as response:
                if response.status in REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise DownloadRefused(
                            because(reasons.REDIRECT_WITHOUT_ADDRESS, status=response.status)
                        )
                    url = url.join(URL(location))
                    if url in seen:
                        raise DownloadRefused(because(reasons.REDIRECT_LOOP))
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        raise DownloadRefused(because(reasons.TOO_MANY_REDIRECTS))
                    seen.add(url)
                    continue
                return await _receive(response, dest, max_bytes)
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise _Retryable(because(reasons.SERVER_TIMED_OUT)) from error
        except aiohttp.ClientPayloadError as error:
            raise _Retryable(because(reasons.CONNECTION_DROPPED)) from error
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, AddressNotAllowed):
                raise DownloadRefused(because(reasons.ADDRESS_NOT_ALLOWED)) from error
            raise _Retryable(because(reasons.SERVER_UNREACHABLE)) from error
        except aiohttp.ClientError as error:
            raise _Retryable(because(reasons.SERVER_UNREACHABLE)) from error


async def _receive(response: aiohttp.ClientResponse, dest: Path, max_bytes: int) -> Downloaded:
    status = response.status
    if status == 429 or status >= 500:
        raise _Retryable(because(reasons.SERVER_KEPT_FAILING, status=status))
    if status in (403, 404, 410):
        raise DownloadRefused(because(reasons.LINK_GONE, status=status))
    if status != 200:
        raise DownloadRefused(because(reasons.SERVER_REFUSED, status=status))

    content_type = response.content_type.lower()
    if content_type == "text/html":
        raise DownloadRefused(because(reasons.HTML_PAGE))
    if not (content_type.startswith("audio/") or content_type == "application/octet-stream"):
        raise DownloadRefused(because(reasons.NOT_AUDIO))
    announced = response.content_length
    if announced is not None and announced > max_bytes:
        raise DownloadRefused(because(reasons.OVER_UPLOAD_LIMIT, size=format_size(max_bytes)), size=announced)

    size = 0
    head = b""
    kind: str | None = None
    with _open_for_writing(dest) as file:
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise DownloadRefused(because(reasons.OVER_UPLOAD_LIMIT, size=format_size(max_bytes)))
            if kind is None:
                head += chunk[: MAGIC_BYTES - len(head)]
                if len(head) >= MAGIC_BYTES:
                    kind = _kind_or_refuse(head)
            file.write(chunk)
    if size == 0:
        raise DownloadRefused(because(reasons.EMPTY_FILE))
    if kind is None:
        kind = _kind_or_refuse(head)
    return Downloaded(path=dest, size=size, content_type=content_type, kind=kind)


def _kind_or_refuse(head: bytes) -> str:
    if _looks_like_html(head):
        raise DownloadRefused(because(reasons.HTML_PAGE))
    kind = audio_kind(head)
    if kind is None:
        raise DownloadRefused(because(reasons.NOT_AUDIO))
    return kind


class StemDownloader:
    """Downloads stems for the keeper: one `download_session` opened at the first download (the
    API's host is known by then, also the sandbox's), closed by `close`."""

    def __init__(
        self,
        allowed_host: Callable[[], str | None],
        *,
        timeout: float = 30.0,
        attempts: int = 3,
        backoff: float = 1.0,
        resolver: Resolver = resolve_host,
    ) -> None:
        self._allowed_host = allowed_host
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._host: str | None = None

    async def __call__(self, url: str, dest: Path, max_bytes: int) -> Downloaded:
        if self._session is None:
            self._host = self._allowed_host()
            self._session = download_session(allowed_host=self._host, resolver=self._resolver)
        return await download_stem(
            self._session,
            url,
            dest,
            max_bytes=max_bytes,
            allowed_host=self._host,
            timeout=self._timeout,
            attempts=self._attempts,
            backoff=self._backoff,
            resolver=self._resolver,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
