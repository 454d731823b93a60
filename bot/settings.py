"""Settings from the environment (and `.env`, loaded by the composition root).

Every setting is one row of `SETTINGS` (name, default, allowed values, description, parser): both
`load_settings` and the docs' settings reference read that table. `load_settings` reads a mapping,
never `os.environ` directly, so tests pass their own. Missing or invalid settings raise one
`SettingsError` naming every one of them on one line with what each expects; secret values are
never part of any message or repr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.sandbox import SANDBOX_API_URL, derive_api_key
from bot.setting_values import (
    LIFETIME_HOURS,
    DatabaseTarget,
    PostgresURL,
    Secret,
    api_url,
    bounded_float,
    bounded_int,
    http_url,
    listen_host,
    log_level_name,
    megabytes,
    minutes,
    parse_database_url,
    reminder_hours,
    secret,
    shard_ids_below,
    snowflake,
)

__all__ = [
    "SETTINGS",
    "DatabaseTarget",
    "PostgresURL",
    "Secret",
    "Setting",
    "Settings",
    "SettingsError",
    "load_settings",
    "parse_database_url",
]

DEFAULT_API_URL = "https://api.sunoapi.org"
DEFAULT_DATABASE_URL = "sqlite:///data/stembot.db"
MAX_SERVER_MONTHLY_BUDGET = 1_000_000
"""The largest monthly budget, in API credits, for one server (the setting or the owner's command)."""
MAX_MONTHLY_BUDGET = 1_000_000_000
"""The largest monthly budget, in API credits, for the whole bot (`MONTHLY_BUDGET`)."""
MAX_SHARD_COUNT = 10_000
"""More shards than any bot needs (Discord asks for one per 1,000 to 2,500 servers)."""


class SettingsError(Exception):
    """Settings are missing or invalid: `problems` names each, and `str()` is them all on one line
    safe to print."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


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


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting as `.env` spells it: how it is read, and what the docs say of it.

    `SETTINGS` is the one table both `load_settings` and the docs' settings reference read, so a
    setting is described once, beside the code that parses it.
    """

    name: str
    """The environment variable."""
    field: str
    """The `Settings` attribute it fills."""
    parse: Callable[[str], Any]
    """Turns the (stripped, non-empty) text into the value; raises ValueError when it is invalid."""
    default: str | None
    """The default as one would write it in `.env`; None: unset means none (or, if `required`, an error)."""
    expected: str
    """The allowed values, in words: the error message and the docs both show it."""
    description: str
    """What it does, for the operator reading the settings reference."""
    required: bool = False
    secret: bool = False
    """Never echoed, and refused when it holds a space (a paste gone wrong)."""

    @property
    def default_value(self) -> Any:
        """The value an unset setting takes."""
        return None if self.default is None else self.parse(self.default)


def _seconds(low: float, high: float) -> str:
    return f"a number of seconds from {low:g} to {high:g}"


SHARD_IDS_EXPECTED = "shard numbers from 0 to {last} separated by commas, each once"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DISCORD_TOKEN", "discord_token", secret, None,
        "the bot token from the Discord developer portal",
        "The bot's token (Discord developer portal → your application → Bot → Reset Token).",
        required=True, secret=True,
    ),
    Setting(
        "SEPARATION_API_KEY", "api_key", secret, None,
        f"the API key of the separation service, or SEPARATION_API_URL={SANDBOX_API_URL} to try free",
        "The separation API's key (the provider's dashboard → API keys). Not needed, and "
        "ignored, in the sandbox.",
        required=True, secret=True,
    ),
    Setting(
        "SEPARATION_API_URL", "api_url", api_url, DEFAULT_API_URL,
        f"an http(s) URL, or {SANDBOX_API_URL} to try for free",
        f"The separation API's base URL. `{SANDBOX_API_URL}`: the free built-in simulator, where the "
        "bot simulates splits itself. No key is needed there: `SEPARATION_API_KEY` is ignored, the "
        "bot's processes use a key made from `DISCORD_TOKEN`, and the sandbox's API answers no "
        "other. The web server must start (`CALLBACK_PORT`).",
    ),
    Setting(
        "DATABASE_URL", "database", parse_database_url, DEFAULT_DATABASE_URL,
        "an SQLite URL such as sqlite:///data/stembot.db, or postgresql://user:password@host:5432/dbname",
        "Where the database lives. A relative SQLite path is relative to the working folder (its "
        "folder is created); an absolute one has four slashes (`sqlite:////abs/path.db`). A "
        "PostgreSQL database must exist; StemBot creates its tables, and its password never appears "
        "in logs, `--check` or messages. PostgreSQL serves several processes; SQLite one. Stems "
        "being kept in Discord wait beside an SQLite file, or in `data/keep-downloads` under the "
        "working folder with PostgreSQL.",
    ),
    Setting(
        "DEFAULT_CREDITS", "default_credits", bounded_int(0, 1_000_000), "100",
        "a whole number from 0 to 1000000",
        "A server's allowance until its moderators set one with `/quota allowance`: the "
        "credits each member gets once (period `never`).",
    ),
    Setting(
        "JOBS_PER_MEMBER", "jobs_per_member", bounded_int(1, 100), "2",
        "a whole number from 1 to 100",
        "How many splits one member may have running at once (a server can set its own).",
    ),
    Setting(
        "POLL_INTERVAL_SECONDS", "poll_interval", bounded_float(0.05, 3600), "10",
        _seconds(0.05, 3600),
        "Seconds between checks on a running separation (fractions allowed); keep it at 2 or more "
        "in production.",
    ),
    Setting(
        "JOB_TIMEOUT_MINUTES", "job_timeout", minutes(0.05, 24 * 60), "30",
        "a number of minutes from 0.05 to 1440",
        "Minutes after which a separation that has not finished is given up and refunded.",
    ),
    Setting(
        "API_TIMEOUT_SECONDS", "api_timeout", bounded_float(0.1, 300), "20",
        _seconds(0.1, 300),
        "Seconds to wait for one answer from the separation API before the call counts as failed.",
    ),
    Setting(
        "TRACK_LOOKUP_SECONDS", "track_lookup_timeout", bounded_float(0.1, 60), "8",
        _seconds(0.1, 60),
        "Seconds one look-up of a task's tracks by title may take (`/split` without `audio_id`, "
        "the menu of tracks, song names in messages). Autocomplete waits at most 1.5 s and lets "
        "the look-up finish for the next keystroke.",
    ),
    Setting(
        "DEV_GUILD_ID", "dev_guild_id", snowflake, None,
        "a Discord server id (digits only)",
        "Sync the slash commands to this server only, for instant updates while developing.",
    ),
    Setting(
        "LOG_LEVEL", "log_level", log_level_name, "INFO",
        "DEBUG, INFO, WARNING or ERROR",
        "How much the bot logs.",
    ),
    Setting(
        "CALLBACK_PUBLIC_URL", "callback_public_url", http_url, None,
        "the public http(s) base URL the API can reach",
        "The public base URL at which the API reaches this bot's web server through a reverse "
        "proxy, e.g. `https://stembot.example.org`. Results then arrive within a second. Unset: no "
        "callbacks, polling only (the API is given an address under `.invalid` that can never "
        "deliver anything to anyone).",
    ),
    Setting(
        "CALLBACK_HOST", "callback_host", listen_host, "127.0.0.1",
        "an address to listen on, e.g. 127.0.0.1 or 0.0.0.0",
        "The address the web server (callbacks, `/healthz`, `/metrics`) listens on: this machine "
        "only, unless you set another (`0.0.0.0` for every interface, which the Docker image sets, "
        "also shows `/metrics` and `/healthz` to anyone who can reach the port). Only `/callback/` "
        "(and in the sandbox `/sandbox/files/`) belongs behind the public proxy.",
    ),
    Setting(
        "CALLBACK_PORT", "callback_port", bounded_int(0, 65535), "8080",
        "a port number from 0 to 65535",
        "The web server's port (`0`: any free port, for tests). If it is taken, start-up stops "
        "when callbacks are on or in the sandbox; otherwise the bot runs on without the web "
        "server (no `/healthz`, no `/metrics`) and says so in the log and in `/stembot status`.",
    ),
    Setting(
        "CALLBACK_POLL_INTERVAL_SECONDS", "callback_poll_interval", bounded_float(0.05, 3600), "60",
        _seconds(0.05, 3600),
        "With callbacks on, polling is only the safety net and runs this often.",
    ),
    Setting(
        "ACCOUNT_CHECK_SECONDS", "account_check_interval", bounded_float(0.05, 86400), "300",
        _seconds(0.05, 86400),
        "While splitting is paused (the API refused the key, or the account is out of "
        "credits), how often to check whether the account works again. While Prometheus scrapes "
        "`/metrics`, the longest `stembot_api_account_credits` goes without asking the API.",
    ),
    Setting(
        "MONTHLY_BUDGET", "monthly_budget", bounded_int(1, MAX_MONTHLY_BUDGET), None,
        f"a whole number of API credits from 1 to {MAX_MONTHLY_BUDGET}, or empty for no cap",
        "API credits all servers together may cost the API account per calendar month (UTC). "
        "Once spent, new paid splits are refused in every server until the 1st; the bot's owner "
        "gets a DM at 80% and when it is used up. Unset: no cap, so nothing caps what a public "
        "bot spends: a public bot should set it (or `SERVER_MONTHLY_BUDGET`).",
    ),
    Setting(
        "SERVER_MONTHLY_BUDGET", "server_monthly_budget", bounded_int(0, MAX_SERVER_MONTHLY_BUDGET),
        None,
        f"a whole number of API credits from 0 to {MAX_SERVER_MONTHLY_BUDGET}, or empty for no cap",
        "API credits each server's splits may cost the API account per calendar month (UTC), "
        "unless the bot's owner gives a server its own with `/stembot budget`. Unset: no cap. "
        "`0`: no paid splits except where the owner sets a budget.",
    ),
    Setting(
        "EXPIRY_REMINDER_HOURS", "expiry_reminder", reminder_hours, "24",
        f"a number of hours from 0 (no reminders) to less than {LIFETIME_HOURS:g} (the links' lifetime)",
        "How many hours before a result's download links expire its member gets one reminder "
        "with the links (by DM, else in the split's channel). Fractions allowed; 0: no reminders. "
        "Members can turn their own off with `/stems reminders`.",
    ),
    Setting(
        "KEEP_CONCURRENCY", "keep_concurrency", bounded_int(1, 16), "2",
        "a whole number of downloads at once, from 1 to 16",
        "Keeping stems in Discord: how many results are worked on at once for the whole bot, each "
        "one download or upload at a time. Files wait on disk, never in memory (`keep-downloads/` "
        "beside an SQLite database, `data/keep-downloads/` with PostgreSQL; a `shards-…` folder "
        "per `SHARD_IDS`), emptied at every start; at most `KEEP_CONCURRENCY` times (the upload "
        "limit + one file) at a time.",
    ),
    Setting(
        "MIX_CONCURRENCY", "mix_concurrency", bounded_int(1, 8), "1",
        "a whole number of mixes at once, from 1 to 8",
        "Mixing stems: how many mixes are made at once for the whole process, each decoding, "
        "summing and encoding in a mixing process of its own, started when first needed, at a "
        "lower CPU priority than the bot. Files wait in `mix-work/` beside an SQLite "
        "database (`data/mix-work/` with PostgreSQL; a `shards-…` folder per `SHARD_IDS`), emptied "
        "at every start.",
    ),
    Setting(
        "MIX_MAX_STEM_MB", "mix_max_stem_bytes", megabytes(1, 1024), "100",
        "a whole number of megabytes from 1 to 1024",
        "The most one stem downloaded for a mix may be, in MB, whatever the upload limit.",
    ),
    Setting(
        "DELIVERY_RETRY_SECONDS", "delivery_retry", bounded_float(0.05, 60), "2",
        _seconds(0.05, 60),
        "The first pause before a result Discord did not take is shown again; it doubles each "
        "time, up to 10 minutes. After 30 attempts the result stays in the database, undeliverable.",
    ),
    Setting(
        "KEEP_RETRY_SECONDS", "keep_retry", bounded_float(0.05, 600), "5",
        _seconds(0.05, 600),
        "The first pause before a round of keeping stems that failed in a way that may pass "
        "(Discord or the download) is tried again; it doubles each time, up to 15 minutes. A keep "
        "gives up after 8 such rounds.",
    ),
    Setting(
        "SANDBOX_SECONDS", "sandbox_seconds", bounded_float(0.05, 3600), "5",
        _seconds(0.05, 3600),
        "In the sandbox, how long a simulated separation takes.",
    ),
    Setting(
        "SHARD_COUNT", "shard_count", bounded_int(1, MAX_SHARD_COUNT), None,
        f"a whole number of shards from 1 to {MAX_SHARD_COUNT}, or empty for one unsharded process",
        "The number of Discord shards across every process. Unset: one unsharded process. "
        "Several processes need PostgreSQL.",
    ),
    Setting(
        "SHARD_IDS", "shard_ids", str, None,  # parsed against SHARD_COUNT in `load_settings`
        SHARD_IDS_EXPECTED.format(last="SHARD_COUNT - 1"),
        "The shards this process runs, e.g. `0,1`; needs `SHARD_COUNT`. Unset: all of them. The "
        "process that runs shard 0 syncs the slash commands; the others never do.",
    ),
    Setting(
        "JOB_LEASE_SECONDS", "job_lease", bounded_float(5, 3600), "30",
        _seconds(5, 3600),
        "Seconds a job claimed by a process that stopped renewing its claim stays with it "
        "before another process takes it over (renewed every third of it). For several processes "
        "on PostgreSQL; keep it well above any pause a process may make.",
    ),
)
"""Every setting, in the order `.env.example` and the docs give them."""


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping, or raise `SettingsError` naming every invalid
    or missing setting at once (an operator fixes them all in one go)."""

    def get(name: str) -> str | None:
        value = env.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    # Values never echoed in a message, even when pasted into the wrong line.
    secret_values = {get(spec.name) or "" for spec in SETTINGS if spec.secret}
    if "@" in (get("DATABASE_URL") or ""):  # a URL with credentials in it
        secret_values.add(get("DATABASE_URL") or "")
    values: dict[str, Any] = {}
    problems: list[str] = []
    for spec in SETTINGS:
        raw = get(spec.name)
        if raw is None:
            if spec.required and not _optional_here(spec, env, get):
                problems.append(f"{spec.name} is required: {spec.expected}")
            values[spec.field] = Secret("") if spec.secret else spec.default_value
            continue
        try:
            values[spec.field] = spec.parse(raw)
        except ValueError as error:
            if spec.secret:
                problems.append(f"{spec.name} {error}")
            else:
                # Echo the value to help spot typos, unless it is a secret pasted into the wrong line.
                shown = "" if raw in secret_values else f" (got {raw!r})"
                problems.append(f"{spec.name} must be {spec.expected}{shown}")
    _read_shard_ids(get("SHARD_IDS"), values, problems, secret_values)
    if problems:
        raise SettingsError(problems)
    return Settings(**values)


def _optional_here(spec: Setting, env: Mapping[str, str], get: Callable[[str], str | None]) -> bool:
    """The sandbox needs no API key: the bot uses `sandbox_api_key` with it."""
    return spec.name == "SEPARATION_API_KEY" and (get("SEPARATION_API_URL") or "").lower() == SANDBOX_API_URL


def _read_shard_ids(raw: str | None, values: dict[str, Any], problems: list[str], secrets: set[str]) -> None:
    """SHARD_IDS is read against SHARD_COUNT, the one setting that depends on another."""
    values["shard_ids"] = None
    if raw is None:
        return
    shard_count = values.get("shard_count")
    if shard_count is None:
        if not any(problem.startswith("SHARD_COUNT ") for problem in problems):
            problems.append("SHARD_IDS needs SHARD_COUNT, the number of shards across every process")
        return
    try:
        values["shard_ids"] = shard_ids_below(shard_count)(raw)
    except ValueError:
        shown = "" if raw in secrets else f" (got {raw!r})"
        problems.append(f"SHARD_IDS must be {SHARD_IDS_EXPECTED.format(last=shard_count - 1)}{shown}")

