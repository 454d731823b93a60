"""How a setting's text becomes its value: the parsers the settings table (`bot.settings`) uses,
and the two values that must never show themselves (`Secret`, `PostgresURL`).

Each parser takes the stripped, non-empty text and raises ValueError when it is invalid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bot.product import LINK_LIFETIME
from bot.sandbox import SANDBOX_API_URL


class Secret:
    """A string that never shows itself in a repr, str or f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class PostgresURL:
    """`postgresql://user:password@host:5432/dbname`: where a PostgreSQL store lives. Shows itself
    with the password masked; `reveal()` is for the driver alone."""

    __slots__ = ("_url", "password", "shown")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        has_host = bool(parts.hostname) or "host=" in parts.query  # ?host=/socket/folder: a local socket
        if parts.scheme not in ("postgresql", "postgres") or not has_host or not parts.path.strip("/"):
            raise ValueError("not a postgresql://user:password@host:port/dbname URL")
        _ = parts.port  # a port that is not a number raises ValueError
        self._url = url
        self.password = Secret(unquote(parts.password or ""))
        netloc = parts.netloc.rpartition("@")[2]
        user = f"{parts.username}{':********' if parts.password else ''}@" if parts.username else ""
        query = f"?{parts.query}" if parts.query else ""
        self.shown = f"{parts.scheme}://{user}{netloc}{parts.path}{query}"

    def reveal(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"PostgresURL({self.shown!r})"

    def __str__(self) -> str:
        return self.shown

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PostgresURL) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)


DatabaseTarget = Path | PostgresURL
"""Where the store lives: an SQLite file, or a PostgreSQL database."""



def secret(raw: str) -> Secret:
    if any(ch.isspace() for ch in raw):
        raise ValueError("must not contain spaces (check the value you pasted)")
    return Secret(raw)


def minutes(low: float, high: float) -> Callable[[str], float]:
    bounded = bounded_float(low, high)
    return lambda raw: bounded(raw) * 60


def megabytes(low: int, high: int) -> Callable[[str], int]:
    bounded = bounded_int(low, high)
    return lambda raw: bounded(raw) * 1024 * 1024



LIFETIME_HOURS = LINK_LIFETIME.total_seconds() / 3600


def reminder_hours(raw: str) -> float:
    hours = float(raw)
    if not 0 <= hours < LIFETIME_HOURS:  # also refuses nan
        raise ValueError(raw)
    return hours * 3600


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def bounded_float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not low <= value <= high:  # also rejects nan
            raise ValueError(raw)
        return value

    return parse


def shard_ids_below(shard_count: int) -> Callable[[str], tuple[int, ...]]:
    def parse(raw: str) -> tuple[int, ...]:
        ids = tuple(bounded_int(0, shard_count - 1)(part.strip()) for part in raw.split(","))
        if len(set(ids)) != len(ids):
            raise ValueError(raw)
        return tuple(sorted(ids))

    return parse


def http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(raw)
    return raw.rstrip("/")


def api_url(raw: str) -> str:
    if raw.lower() == SANDBOX_API_URL:
        return SANDBOX_API_URL
    return http_url(raw)


def listen_host(raw: str) -> str:
    if any(ch.isspace() or ch in "/@" for ch in raw):
        raise ValueError(raw)
    return raw


def parse_database_url(raw: str) -> DatabaseTarget:
    """`sqlite:///path` (the file) or `postgresql://…` (a PostgreSQL database)."""
    if raw.startswith(("postgresql://", "postgres://")):
        return PostgresURL(raw)
    prefix = "sqlite:///"
    if not raw.startswith(prefix) or len(raw) == len(prefix):
        raise ValueError("not an sqlite:/// or postgresql:// URL")
    # sqlite:///relative/path and sqlite:////absolute/path, as in SQLAlchemy.
    return Path(raw[len(prefix) :])


def snowflake(raw: str) -> int:
    if not raw.isdigit() or not 15 <= len(raw) <= 21:
        raise ValueError(raw)
    return int(raw)


def log_level_name(raw: str) -> int:
    level = logging.getLevelName(raw.upper())
    if not isinstance(level, int):
        raise ValueError(raw)
    return level

