"""Settings from the environment (and `.env`, loaded by the composition root).

`load_settings` reads a mapping, never `os.environ` directly, so tests pass their own. A missing or
invalid setting raises `SettingsError`, whose message is one line naming the setting and what it
expects; secret values are never part of any message or repr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from bot.product import LINK_LIFETIME
from bot.sandbox import SANDBOX_API_URL, derive_api_key

T = TypeVar("T")

DEFAULT_API_URL = "https://api.sunoapi.org"
DEFAULT_DATABASE_URL = "sqlite:///data/stembot.db"
MAX_SERVER_MONTHLY_BUDGET = 1_000_000
"""The largest monthly budget, in API credits, for one server (the setting or the owner's command)."""
MAX_MONTHLY_BUDGET = 1_000_000_000
"""The largest monthly budget, in API credits, for the whole bot (`MONTHLY_BUDGET`)."""
MAX_SHARD_COUNT = 10_000
"""More shards than any bot needs (Discord asks for one per 1,000 to 2,500 servers)."""


class SettingsError(Exception):
    """A setting is missing or invalid; `str()` is one line safe to print."""


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


@dataclass(frozen=True, slots=True)
class Settings:
    discord_token: Secret
    api_key: Secret
    api_url: str = DEFAULT_API_URL
    database: DatabaseTarget = Path("data/stembot.db")
    default_credits: int = 100
    poll_interval: float = 10.0
    job_timeout: float = 30 * 60.0
    api_timeout: float = 20.0
    track_lookup_timeout: float = 8.0  # one "which tracks has this task" call (see `bot.songs`)
    jobs_per_member: int = 2
    dev_guild_id: int | None = None
    log_level: int = logging.INFO
    callback_public_url: str | None = None
    callback_host: str = "127.0.0.1"  # /metrics and /healthz stay on this machine unless asked
    callback_port: int = 8080
    callback_poll_interval: float = 60.0
    account_check_interval: float = 300.0
    server_monthly_budget: int | None = None  # API credits per server per UTC month; None: no cap
    monthly_budget: int | None = None  # API credits for all servers together per UTC month; None: no cap
    expiry_reminder: float = 24 * 3600.0  # seconds before the links expire; 0: no reminders
    sandbox_seconds: float = 5.0  # how long a sandbox separation takes
    keep_concurrency: int = 2  # stem downloads and uploads at once, for the whole bot
    shard_count: int | None = None  # Discord shards across every process; None: one unsharded process
    shard_ids: tuple[int, ...] | None = None  # the shards this process runs; None: all of them
    job_lease: float = 30.0  # seconds a claimed job stays with a process that stopped renewing it
    delivery_retry: float = 2.0  # seconds before a failed delivery is tried again, doubling each time
    keep_retry: float = 5.0  # seconds before a failed round of keeping is tried again, doubling
    mix_concurrency: int = 1  # mixes of stems made at once, for the whole process
    mix_max_stem_bytes: int = 100 * 1024 * 1024  # the most one stem downloaded for a mix may be

    @property
    def runs_shard_zero(self) -> bool:
        """Whether this process runs shard 0 (or is unsharded): the one process that syncs the
        slash commands, since Discord holds one set for the whole application."""
        return self.shard_ids is None or 0 in self.shard_ids

    @property
    def database_path(self) -> Path | None:
        """The SQLite file, or None when the store is PostgreSQL."""
        return self.database if isinstance(self.database, Path) else None

    @property
    def keep_folder(self) -> Path:
        """Where stems being kept in Discord wait between download and upload, emptied at every
        start: beside an SQLite database, else in `data/` under the working folder; one folder per
        set of shards, so processes sharing a disk never empty each other's."""
        return self._work_folder("keep-downloads")

    @property
    def mix_folder(self) -> Path:
        """Where a mix's stems and its file wait while it is made (as `keep_folder`)."""
        return self._work_folder("mix-work")

    def _work_folder(self, name: str) -> Path:
        base = self.database.parent if isinstance(self.database, Path) else Path("data")
        folder = base / name
        if self.shard_ids is not None:
            folder = folder / f"shards-{'-'.join(map(str, self.shard_ids))}"
        return folder

    @property
    def sandbox(self) -> bool:
        """`SEPARATION_API_URL=sandbox`: the built-in, free simulator of the API, no key needed."""
        return self.api_url == SANDBOX_API_URL

    @property
    def sandbox_api_key(self) -> Secret:
        """The key the sandbox's API demands and the bot's API client sends in sandbox mode: made
        from DISCORD_TOKEN, so only this deployment's processes know it (and accept each other's)."""
        return Secret(derive_api_key(self.discord_token.reveal()))

    @property
    def web_server_required(self) -> bool:
        """Whether the bot cannot work without its web server (callbacks, or the sandbox's API)."""
        return self.callbacks_enabled or self.sandbox

    @property
    def callbacks_enabled(self) -> bool:
        return self.callback_public_url is not None

    @property
    def effective_poll_interval(self) -> float:
        """With callbacks, polling is only the safety net and runs at the slower cadence."""
        return self.callback_poll_interval if self.callbacks_enabled else self.poll_interval

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so logging can scrub them from any line."""
        values = [self.discord_token.reveal(), self.api_key.reveal()]
        if isinstance(self.database, PostgresURL):
            values.append(self.database.password.reveal())
        return tuple(value for value in values if value)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping, or raise `SettingsError` on the first problem."""

    def get(name: str) -> str | None:
        value = env.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def required_secret(name: str, what: str) -> Secret:
        value = get(name)
        if value is None:
            raise SettingsError(f"{name} is required: {what}")
        if any(ch.isspace() for ch in value):
            raise SettingsError(f"{name} must not contain spaces (check the value you pasted)")
        return Secret(value)

    def parsed(name: str, parse: Callable[[str], T], default: T, expected: str) -> T:
        raw = get(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            # Echo the value to help spot typos, unless it is a secret pasted into the wrong line.
            shown = "" if raw in secret_values else f" (got {raw!r})"
            raise SettingsError(f"{name} must be {expected}{shown}") from None

    discord_token = required_secret("DISCORD_TOKEN", "the bot token from the Discord developer portal")
    secret_values = {discord_token.reveal(), get("SEPARATION_API_KEY") or ""}
    if "@" in (get("DATABASE_URL") or ""):  # a URL with credentials in it
        secret_values.add(get("DATABASE_URL") or "")
    api_url = parsed(
        "SEPARATION_API_URL",
        _parse_api_url,
        DEFAULT_API_URL,
        f"an http(s) URL, or {SANDBOX_API_URL} to try for free",
    )
    if api_url == SANDBOX_API_URL and get("SEPARATION_API_KEY") is None:
        api_key = Secret("")  # the sandbox needs none: the bot uses `sandbox_api_key` with it
    else:
        api_key = required_secret(
            "SEPARATION_API_KEY",
            f"the API key of the separation service, or SEPARATION_API_URL={SANDBOX_API_URL} to try free",
        )
    shard_count = parsed(
        "SHARD_COUNT",
        _bounded_int(1, MAX_SHARD_COUNT),
        None,
        f"a whole number of shards from 1 to {MAX_SHARD_COUNT}, or empty for one unsharded process",
    )
    if shard_count is None:
        if get("SHARD_IDS") is not None:
            raise SettingsError("SHARD_IDS needs SHARD_COUNT, the number of shards across every process")
        shard_ids = None
    else:
        shard_ids = parsed(
            "SHARD_IDS",
            _shard_ids(shard_count),
            None,
            f"shard numbers from 0 to {shard_count - 1} separated by commas, each once",
        )
    return Settings(
        discord_token=discord_token,
        api_key=api_key,
        api_url=api_url,
        database=parsed(
            "DATABASE_URL",
            parse_database_url,
            parse_database_url(DEFAULT_DATABASE_URL),
            "an SQLite URL such as sqlite:///data/stembot.db, or postgresql://user:password@host:5432/dbname",
        ),
        default_credits=parsed(
            "DEFAULT_CREDITS", _bounded_int(0, 1_000_000), 100, "a whole number from 0 to 1000000"
        ),
        poll_interval=parsed(
            "POLL_INTERVAL_SECONDS", _bounded_float(0.05, 3600), 10.0, "a number of seconds from 0.05 to 3600"
        ),
        job_timeout=parsed(
            "JOB_TIMEOUT_MINUTES",
            lambda raw: _bounded_float(0.05, 24 * 60)(raw) * 60,
            30 * 60.0,
            "a number of minutes from 0.05 to 1440",
        ),
        api_timeout=parsed(
            "API_TIMEOUT_SECONDS", _bounded_float(0.1, 300), 20.0, "a number of seconds from 0.1 to 300"
        ),
        track_lookup_timeout=parsed(
            "TRACK_LOOKUP_SECONDS", _bounded_float(0.1, 60), 8.0, "a number of seconds from 0.1 to 60"
        ),
        jobs_per_member=parsed("JOBS_PER_MEMBER", _bounded_int(1, 100), 2, "a whole number from 1 to 100"),
        dev_guild_id=parsed("DEV_GUILD_ID", _parse_snowflake, None, "a Discord server id (digits only)"),
        log_level=parsed("LOG_LEVEL", _parse_log_level, logging.INFO, "DEBUG, INFO, WARNING or ERROR"),
        callback_public_url=parsed(
            "CALLBACK_PUBLIC_URL", _parse_http_url, None, "the public http(s) base URL the API can reach"
        ),
        callback_host=parsed(
            "CALLBACK_HOST", _parse_host, "127.0.0.1", "an address to listen on, e.g. 127.0.0.1 or 0.0.0.0"
        ),
        callback_port=parsed("CALLBACK_PORT", _bounded_int(0, 65535), 8080, "a port number from 0 to 65535"),
        callback_poll_interval=parsed(
            "CALLBACK_POLL_INTERVAL_SECONDS",
            _bounded_float(0.05, 3600),
            60.0,
            "a number of seconds from 0.05 to 3600",
        ),
        account_check_interval=parsed(
            "ACCOUNT_CHECK_SECONDS",
            _bounded_float(0.05, 86400),
            300.0,
            "a number of seconds from 0.05 to 86400",
        ),
        server_monthly_budget=parsed(
            "SERVER_MONTHLY_BUDGET",
            _bounded_int(0, MAX_SERVER_MONTHLY_BUDGET),
            None,
            f"a whole number of API credits from 0 to {MAX_SERVER_MONTHLY_BUDGET}, or empty for no cap",
        ),
        monthly_budget=parsed(
            "MONTHLY_BUDGET",
            _bounded_int(1, MAX_MONTHLY_BUDGET),
            None,
            f"a whole number of API credits from 1 to {MAX_MONTHLY_BUDGET}, or empty for no cap",
        ),
        expiry_reminder=parsed(
            "EXPIRY_REMINDER_HOURS",
            _reminder_hours,
            24 * 3600.0,
            f"a number of hours from 0 (no reminders) to less than {_LIFETIME_HOURS:g} (the links' lifetime)",
        ),
        sandbox_seconds=parsed(
            "SANDBOX_SECONDS", _bounded_float(0.05, 3600), 5.0, "a number of seconds from 0.05 to 3600"
        ),
        keep_concurrency=parsed(
            "KEEP_CONCURRENCY", _bounded_int(1, 16), 2, "a whole number of downloads at once, from 1 to 16"
        ),
        shard_count=shard_count,
        shard_ids=shard_ids,
        job_lease=parsed(
            "JOB_LEASE_SECONDS", _bounded_float(5, 3600), 30.0, "a number of seconds from 5 to 3600"
        ),
        delivery_retry=parsed(
            "DELIVERY_RETRY_SECONDS", _bounded_float(0.05, 60), 2.0, "a number of seconds from 0.05 to 60"
        ),
        keep_retry=parsed(
            "KEEP_RETRY_SECONDS", _bounded_float(0.05, 600), 5.0, "a number of seconds from 0.05 to 600"
        ),
        mix_concurrency=parsed(
            "MIX_CONCURRENCY", _bounded_int(1, 8), 1, "a whole number of mixes at once, from 1 to 8"
        ),
        mix_max_stem_bytes=1024
        * 1024
        * parsed("MIX_MAX_STEM_MB", _bounded_int(1, 1024), 100, "a whole number of megabytes from 1 to 1024"),
    )


_LIFETIME_HOURS = LINK_LIFETIME.total_seconds() / 3600


def _reminder_hours(raw: str) -> float:
    hours = float(raw)
    if not 0 <= hours < _LIFETIME_HOURS:  # also refuses nan
        raise ValueError(raw)
    return hours * 3600


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def _bounded_float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not low <= value <= high:  # also rejects nan
            raise ValueError(raw)
        return value

    return parse


def _shard_ids(shard_count: int) -> Callable[[str], tuple[int, ...]]:
    def parse(raw: str) -> tuple[int, ...]:
        ids = tuple(_bounded_int(0, shard_count - 1)(part.strip()) for part in raw.split(","))
        if len(set(ids)) != len(ids):
            raise ValueError(raw)
        return tuple(sorted(ids))

    return parse


def _parse_http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(raw)
    return raw.rstrip("/")


def _parse_api_url(raw: str) -> str:
    if raw.lower() == SANDBOX_API_URL:
        return SANDBOX_API_URL
    return _parse_http_url(raw)


def _parse_host(raw: str) -> str:
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


def _parse_snowflake(raw: str) -> int:
    if not raw.isdigit() or not 15 <= len(raw) <= 21:
        raise ValueError(raw)
    return int(raw)


def _parse_log_level(raw: str) -> int:
    level = logging.getLevelName(raw.upper())
    if not isinstance(level, int):
        raise ValueError(raw)
    return level
