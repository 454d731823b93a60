"""Client for the stem-separation API (see shared/provider-api.md).

All HTTP goes through `SeparationClient._request`, which applies the timeout, reads the envelope
and raises one typed `ApiError`. Public methods return dataclasses. Whether an error is worth
retrying is decided here, once; how often and when to retry is the job runner's business.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol, TypeGuard

import aiohttp

from bot.generation import MalformedGeneration, parse_generation
from bot.models import PauseReason, StemLink, TaskTracks
from bot.product import STEM_ORDER, Mode
from bot.settings import Secret

log = logging.getLogger(__name__)

SUBMIT_PATH = "/api/v1/vocal-removal/generate"
RECORD_PATH = "/api/v1/vocal-removal/record-info"
CREDIT_PATH = "/api/v1/generate/credit"
GENERATION_PATH = "/api/v1/generate/record-info"
"""Get Music Generation Details: a generation task's tracks, by title (see `tracks`)."""

RETRYABLE_CODES = frozenset({405, 408, 430, 455, 500, 502, 503, 504})
"""Rate limits, maintenance and server trouble: the same call may succeed later."""
MAX_GENERATION_BYTES = 256 * 1024
"""A generation's details are a few kilobytes; a longer answer is refused unread."""
MAINTENANCE_CODE = 455
ACCOUNT_CODES = frozenset({401, 402, 429})
"""Our API key is refused or the API account is out of credits: the operator must act."""


class ApiError(Exception):
    """The API (or the way to it) failed. `str()` is safe to log: it never holds the key."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        retryable: bool = False,
        maybe_processed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        # True when the request may have reached the API although we got no usable answer
        # (read timeout, dropped connection, unreadable 2xx, gateway timeout, any answer without
        # the API's envelope). For a submit this means the task may exist and may have been paid
        # for: it must not be sent again.
        self.maybe_processed = maybe_processed

    @property
    def maintenance(self) -> bool:
        return self.code == MAINTENANCE_CODE

    @property
    def account_problem(self) -> bool:
        return self.code in ACCOUNT_CODES

    @property
    def pause_reason(self) -> PauseReason | None:
        """Whether this error means new splits must pause: the key is refused, or the account
        cannot pay."""
        if self.code == 401:
            return PauseReason.KEY_REFUSED
        if self.code in (402, 429):
            return PauseReason.OUT_OF_CREDITS
        return None

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.http_status is not None and self.http_status != self.code:
            parts.append(f"http={self.http_status}")
        return " ".join(parts)


class Flag:
    """Values of record-info's `successFlag`."""

    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    CALLBACK_EXCEPTION = "CALLBACK_EXCEPTION"  # callback undeliverable; the stems may exist
    FAILURES = frozenset({"CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED"})


@dataclass(frozen=True, slots=True)
class SeparationRecord:
    """What record-info says about a separation task."""

    task_id: str
    flag: str
    stems: tuple[StemLink, ...]
    completed_at: float | None  # epoch seconds
    error_code: int | None
    error_message: str | None

    @property
    def succeeded(self) -> bool:
        return self.flag in (Flag.SUCCESS, Flag.CALLBACK_EXCEPTION) and bool(self.stems)

    @property
    def failed(self) -> bool:
        """Finished without stems: the separation will not produce anything."""
        if self.flag in Flag.FAILURES:
            return True
        return self.flag in (Flag.SUCCESS, Flag.CALLBACK_EXCEPTION) and not self.stems

    @property
    def pending(self) -> bool:
        return not (self.succeeded or self.failed)


class ApiObserver(Protocol):
    """Told about every API call's outcome (metrics, the operator's list of recent errors)."""

    def api_call(self, endpoint: str, error: ApiError | None) -> None: ...


class SeparationClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str | Callable[[], str],
        api_key: Secret,
        *,
        timeout: float = 20.0,
        observer: ApiObserver | None = None,
    ) -> None:
        self._observer = observer
        self._session = session
        # A callable is asked at each request: the sandbox's address is known once the bot listens.
        self._base_url = base_url if callable(base_url) else (lambda: base_url)
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(10.0, timeout))

    def __repr__(self) -> str:
        return f"SeparationClient(base_url={self._base_url()!r})"

    async def submit(self, *, task_id: str, audio_id: str, mode: Mode, callback_url: str) -> str:
        """Start a paid separation; returns the API's id of the new separation task."""
        body = {"taskId": task_id, "audioId": audio_id, "callBackUrl": callback_url, "type": mode.value}
        data = await self._request("submit", "POST", SUBMIT_PATH, json_body=body)
        new_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(new_id, str) or not new_id:
            # The API accepted the call (code 200) but we cannot tell which task it made.
            raise ApiError("submit answered without a task id", code=200, maybe_processed=True)
        return new_id

    async def record(self, separation_task_id: str) -> SeparationRecord:
        data = await self._request("record", "GET", RECORD_PATH, params={"taskId": separation_task_id})
        if not isinstance(data, dict):
            raise ApiError("record-info answered without data", code=200, retryable=True)
        return parse_record(separation_task_id, data)

    async def tracks(self, task_id: str, *, within: float) -> TaskTracks | None:
        """A music-generation task's tracks, when the API knows them for good (`SUCCESS`); None
        while it is not finished or failed. Bounded: `within` seconds and `MAX_GENERATION_BYTES`
        of answer. An unknown task, an error or a malformed answer raises `ApiError`."""
        data = await self._request(
            "tracks",
            "GET",
            GENERATION_PATH,
            params={"taskId": task_id},
            within=within,
            max_bytes=MAX_GENERATION_BYTES,
        )
        if not isinstance(data, dict):
            raise ApiError("generation details answered without data", code=200)
        try:
            return parse_generation(task_id, data)
        except MalformedGeneration as error:
            raise ApiError(str(error), code=200) from None

    async def account_credits(self) -> int:
        data = await self._request("credit", "GET", CREDIT_PATH)
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise ApiError("credit endpoint answered without a number", code=200, retryable=True)
        return int(data)

    async def _request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        within: float | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        try:
            data = await self._send(
                method, path, json_body=json_body, params=params, within=within, max_bytes=max_bytes
            )
        except ApiError as error:
            if self._observer:
                self._observer.api_call(endpoint, error)
            raise
        if self._observer:
            self._observer.api_call(endpoint, None)
        return data

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None,
        params: dict[str, str] | None,
        within: float | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        """One request. `within`: this call's own time limit (else the client's); `max_bytes`: an answer
        longer than this is refused unread (it cannot be the API's)."""
        headers = {"Authorization": f"Bearer {self._api_key.reveal()}", "Accept": "application/json"}
        try:
            async with self._session.request(
                method,
                self._base_url().rstrip("/") + path,
                json=json_body,
                params=params,
                headers=headers,
                timeout=self._timeout
                if within is None
                else aiohttp.ClientTimeout(total=within, sock_connect=min(10.0, within)),
            ) as response:
                status = response.status
                raw = await response.read() if max_bytes is None else await _read_capped(response, max_bytes)
        except aiohttp.ConnectionTimeoutError as exc:
            raise ApiError(f"could not connect in time ({type(exc).__name__})", retryable=True) from None
        except aiohttp.ClientConnectorError as exc:
            raise ApiError(f"could not connect ({type(exc).__name__})", retryable=True) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise ApiError("no answer in time", retryable=True, maybe_processed=True) from None
        except aiohttp.ClientError as exc:
            raise ApiError(
                f"connection failed mid-request ({type(exc).__name__})",
                retryable=True,
                maybe_processed=True,
            ) from None
        return _unwrap(status, raw)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise ApiError(f"answer larger than {limit} bytes", http_status=response.status)
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise ApiError(f"answer larger than {limit} bytes", http_status=response.status)
    return bytes(body)


def _unwrap(status: int, raw: bytes) -> Any:
    """Read the envelope: the body's `code` wins when present, else the HTTP status.

    Only an envelope with a numeric `code` is the API speaking. Any other answer came from
    something in front of it (a proxy's 502 page, a load balancer's 503) after our request had
    left, so whether the API acted on it is unknown: `maybe_processed`, like a gateway timeout.
    """
    envelope: Any = None
    try:
        envelope = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    code = envelope.get("code") if isinstance(envelope, dict) else None
    if isinstance(code, int) and not isinstance(code, bool):
        if code == 200:
            return envelope.get("data")
        message = envelope.get("msg")
        _raise_for(code, status, message if isinstance(message, str) else "", maybe_processed=code == 504)
    if 200 <= status < 300:
        # A 2xx whose body we cannot read: the API did something, we do not know what.
        raise ApiError("unreadable answer", http_status=status, retryable=True, maybe_processed=True)
    _raise_for(status, status, "not from the API", maybe_processed=True)


def _raise_for(code: int, status: int, message: str, *, maybe_processed: bool) -> NoReturn:
    message = _shorten(message) or f"HTTP {status}"
    raise ApiError(
        message,
        code=code,
        http_status=status,
        retryable=code in RETRYABLE_CODES,
        maybe_processed=maybe_processed,
    )


def _shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")
_URL_SAFE = re.compile(r"^https?://[^\s<>\"'`]+$")
_NOT_KEY = re.compile(r"[^a-z0-9]+")
MAX_STEM_KEY = 40


def parse_record(task_id: str, data: dict[str, Any]) -> SeparationRecord:
    """Read record-info's `data` defensively: every field may have any JSON type. A field of the
    wrong type counts as absent (an unknown flag leaves the job pending until its timeout)."""
    flag = data.get("successFlag")
    answered_id = data.get("taskId")
    error_code = data.get("errorCode")
    error_message = data.get("errorMessage")
    return SeparationRecord(
        task_id=answered_id if isinstance(answered_id, str) and answered_id else task_id,
        flag=flag if isinstance(flag, str) else Flag.PENDING,
        stems=_stems(data.get("response")),
        completed_at=parse_time(data.get("completeTime")),
        error_code=error_code if isinstance(error_code, int) and not isinstance(error_code, bool) else None,
        error_message=_shorten(error_message) if isinstance(error_message, str) else None,
    )


def _stems(response: Any) -> tuple[StemLink, ...]:
    if not isinstance(response, dict):
        return ()
    found: dict[str, str] = {}
    for field, value in response.items():
        if isinstance(field, str) and field.endswith("Url") and field != "originUrl" and _is_url(value):
            key = _stem_key(_CAMEL_BOUNDARY.sub("_", field[:-3]))
            if key:
                found[key] = value
    origin = response.get("originData")
    if not found and isinstance(origin, list):
        # Older answers carry the stems only in originData.
        for item in origin:
            if not isinstance(item, dict):
                continue
            name, url = item.get("stem_type_group_name"), item.get("audio_url")
            key = _stem_key(name) if isinstance(name, str) else ""
            if key and _is_url(url):
                found.setdefault(_STEM_ALIASES.get(key, key), url)
    ordered = sorted(found.items(), key=lambda item: (STEM_ORDER.get(item[0], len(STEM_ORDER)), item[0]))
    return tuple(StemLink(key, url) for key, url in ordered)


_STEM_ALIASES = {"vocals": "vocal", "instrumentals": "instrumental", "keyboards": "keyboard"}


def _stem_key(name: str) -> str:
    """`Backing Vocals`, `backing_Vocals` -> `backing_vocals`; empty when nothing usable is left.
    Keys end up in members' messages and button labels, so only plain characters survive."""
    return _NOT_KEY.sub("_", name.lower()).strip("_")[:MAX_STEM_KEY].rstrip("_")


def _is_url(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(_URL_SAFE.match(value))


def parse_time(value: Any) -> float | None:
    """completeTime is epoch milliseconds in current answers and a date string in older ones.
    Anything else, or a moment no float can hold, is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            seconds = value / 1000 if value > 1e11 else float(value)
        except OverflowError:
            return None
        return seconds if math.isfinite(seconds) else None
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if text.isascii() and text.isdigit():
                return parse_time(int(text))  # ValueError past Python's 4300-digit limit
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp()
        except (ValueError, OverflowError):
            return None
    return None
