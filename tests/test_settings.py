"""Settings from the environment, secret hygiene in messages and logs, and the real entry point."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import bot
from bot.logs import RedactingFormatter
from bot.settings import PostgresURL, Settings, SettingsError, load_settings

TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GzXyWv.discord-token-Q1w2E3r4T5y6"
API_KEY = "sk-separation-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
BASE = {"DISCORD_TOKEN": TOKEN, "SEPARATION_API_KEY": API_KEY}
REPO = Path(bot.__file__).resolve().parent.parent


def settings_with(**overrides: str) -> Settings:
    return load_settings({**BASE, **overrides})


def settings_error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return str(caught.value)


# -- defaults and valid values -----------------------------------------------------------------


def test_defaults_apply_when_only_the_secrets_are_set():
    settings = load_settings(BASE)

    assert settings.database_path == Path("data/stembot.db")
    assert settings.default_credits == 100
    assert settings.api_url == "https://api.sunoapi.org"
    assert settings.jobs_per_member == 2
    assert settings.dev_guild_id is None
    assert settings.log_level == logging.INFO


def test_web_server_listens_on_this_machine_only_by_default():
    settings = load_settings(BASE)

    assert settings.callback_host == "127.0.0.1"
    assert load_settings({**BASE, "CALLBACK_HOST": "0.0.0.0"}).callback_host == "0.0.0.0"


def test_secrets_are_kept_for_use():
    settings = load_settings(BASE)

    assert settings.discord_token.reveal() == TOKEN
    assert settings.api_key.reveal() == API_KEY


def test_blank_values_count_as_unset():
    settings = settings_with(DEFAULT_CREDITS="  ", DATABASE_URL="", LOG_LEVEL=" ")

    assert (settings.default_credits, settings.database_path, settings.log_level) == (
        100,
        Path("data/stembot.db"),
        logging.INFO,
    )


def test_fractional_poll_interval_is_accepted():
    assert settings_with(POLL_INTERVAL_SECONDS="0.5").poll_interval == 0.5


def test_job_timeout_is_given_in_minutes():
    assert settings_with(JOB_TIMEOUT_MINUTES="2").job_timeout == 120.0


def test_whole_number_settings_are_read():
    settings = settings_with(DEFAULT_CREDITS="250", JOBS_PER_MEMBER="5", API_TIMEOUT_SECONDS="7.5")

    assert (settings.default_credits, settings.jobs_per_member, settings.api_timeout) == (250, 5, 7.5)


def test_zero_starting_credits_is_allowed():
    assert settings_with(DEFAULT_CREDITS="0").default_credits == 0


def test_api_url_loses_its_trailing_slash():
    assert settings_with(SEPARATION_API_URL="http://127.0.0.1:8080/").api_url == "http://127.0.0.1:8080"


def test_relative_sqlite_url_gives_a_relative_path():
    assert settings_with(DATABASE_URL="sqlite:///var/bot.db").database_path == Path("var/bot.db")


def test_absolute_sqlite_url_gives_an_absolute_path():
    path = settings_with(DATABASE_URL="sqlite:////abs/x.db").database_path

    assert path == Path("/abs/x.db")
    assert path.is_absolute()


def test_dev_guild_id_is_read_as_a_number():
    assert settings_with(DEV_GUILD_ID="123456789012345678").dev_guild_id == 123456789012345678


@pytest.mark.parametrize(("raw", "level"), [("debug", logging.DEBUG), ("WARNING", logging.WARNING)])
def test_log_level_is_read_by_name(raw, level):
    assert settings_with(LOG_LEVEL=raw).log_level == level


# -- invalid values ----------------------------------------------------------------------------

INVALID = [
    ("DEFAULT_CREDITS", "lots"),
    ("DEFAULT_CREDITS", "-1"),
    ("DEFAULT_CREDITS", "1000001"),
    ("DEFAULT_CREDITS", "10.5"),
    ("JOBS_PER_MEMBER", "0"),
    ("JOBS_PER_MEMBER", "101"),
    ("JOBS_PER_MEMBER", "two"),
    ("POLL_INTERVAL_SECONDS", "soon"),
    ("POLL_INTERVAL_SECONDS", "0"),
    ("POLL_INTERVAL_SECONDS", "nan"),
    ("POLL_INTERVAL_SECONDS", "inf"),
    ("POLL_INTERVAL_SECONDS", "3601"),
    ("JOB_TIMEOUT_MINUTES", "0"),
    ("JOB_TIMEOUT_MINUTES", "forever"),
    ("API_TIMEOUT_SECONDS", "-5"),
    ("SEPARATION_API_URL", "api.sunoapi.org"),
    ("SEPARATION_API_URL", "ftp://api.sunoapi.org"),
    ("SEPARATION_API_URL", "https://"),
    ("DATABASE_URL", "mysql://db.example.com/stembot"),
    ("DATABASE_URL", "postgresql://db.example.com"),
    ("DATABASE_URL", "postgresql://db.example.com:port/stembot"),
    ("DATABASE_URL", "data/stembot.db"),
    ("DATABASE_URL", "sqlite:///"),
    ("DEV_GUILD_ID", "my-server"),
    ("DEV_GUILD_ID", "123"),
    ("DEV_GUILD_ID", "-123456789012345678"),
    ("LOG_LEVEL", "LOUD"),
    ("SHARD_COUNT", "0"),
    ("SHARD_COUNT", "two"),
    ("SHARD_COUNT", "10001"),
    ("JOB_LEASE_SECONDS", "4"),
    ("JOB_LEASE_SECONDS", "3601"),
    ("JOB_LEASE_SECONDS", "nan"),
    ("JOB_LEASE_SECONDS", "soon"),
    ("DELIVERY_RETRY_SECONDS", "0"),
    ("DELIVERY_RETRY_SECONDS", "61"),
    ("KEEP_RETRY_SECONDS", "0.01"),
    ("KEEP_RETRY_SECONDS", "601"),
    ("KEEP_RETRY_SECONDS", "soon"),
]


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_value_names_its_setting(name, value):
    message = settings_error({**BASE, name: value})

    assert name in message
    assert "\n" not in message


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_value_message_holds_no_secret(name, value):
    message = settings_error({**BASE, name: value})

    assert TOKEN not in message and API_KEY not in message


@pytest.mark.parametrize("name", ["DISCORD_TOKEN", "SEPARATION_API_KEY"])
@pytest.mark.parametrize("missing", ["absent", "blank"])
def test_missing_secret_names_itself(name, missing):
    env = dict(BASE)
    if missing == "absent":
        del env[name]
    else:
        env[name] = "   "

    message = settings_error(env)

    assert name in message
    other = API_KEY if name == "DISCORD_TOKEN" else TOKEN
    assert other not in message


@pytest.mark.parametrize("name", ["DISCORD_TOKEN", "SEPARATION_API_KEY"])
def test_secret_with_a_space_is_refused_without_echoing_it(name):
    message = settings_error({**BASE, name: "first-half-of-secret second-half-of-secret"})

    assert name in message
    assert "first-half-of-secret" not in message and "second-half-of-secret" not in message


def test_a_secret_pasted_into_another_setting_is_not_echoed():
    message = settings_error({**BASE, "DEFAULT_CREDITS": API_KEY})

    assert "DEFAULT_CREDITS" in message
    assert API_KEY not in message


def test_secrets_are_hidden_from_repr_and_str():
    settings = load_settings(BASE)

    for text in (repr(settings), str(settings), f"{settings}", f"{settings.discord_token}"):
        assert TOKEN not in text and API_KEY not in text


# -- PostgreSQL ----------------------------------------------------------------------------------

DB_PASSWORD = "pg-pass-7Hq2xZ"
PG_URL = f"postgresql://stembot:{DB_PASSWORD}@db.example.com:5432/stembot"


def test_a_postgresql_url_selects_postgresql_and_keeps_downloads_under_data():
    settings = settings_with(DATABASE_URL=PG_URL)

    assert isinstance(settings.database, PostgresURL) and settings.database.reveal() == PG_URL
    assert settings.database_path is None
    assert settings.keep_folder == Path("data/keep-downloads")
    assert settings_with().keep_folder == Path("data/keep-downloads")  # beside the default SQLite file
    assert settings_with(DATABASE_URL="sqlite:///var/bot.db").keep_folder == Path("var/keep-downloads")


def test_the_database_password_never_shows_in_reprs_or_strs():
    settings = settings_with(DATABASE_URL=PG_URL)

    for text in (repr(settings), str(settings), f"{settings.database}", repr(settings.database)):
        assert DB_PASSWORD not in text
    assert str(settings.database) == "postgresql://stembot:********@db.example.com:5432/stembot"


def test_the_database_password_is_scrubbed_from_logs():
    settings = settings_with(DATABASE_URL=PG_URL)
    formatter = RedactingFormatter("%(message)s", settings.secrets)
    record = logging.LogRecord(
        "bot", logging.ERROR, __file__, 1, "cannot connect to %s", (settings.database.reveal(),), None
    )

    assert DB_PASSWORD in settings.secrets
    assert DB_PASSWORD not in formatter.format(record)


def test_an_invalid_postgresql_url_is_refused_without_echoing_its_password():
    message = settings_error({**BASE, "DATABASE_URL": f"postgresql://stembot:{DB_PASSWORD}@db:port/stembot"})

    assert "DATABASE_URL" in message and "postgresql://" in message
    assert DB_PASSWORD not in message


# -- log redaction -----------------------------------------------------------------------------

INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQ.tok_en-part"


def formatted_record() -> str:
    formatter = RedactingFormatter("%(levelname)s %(name)s: %(message)s", [TOKEN, API_KEY])
    try:
        raise RuntimeError(
            f"PATCH https://discord.com/api/v10/webhooks/987654321/{INTERACTION_TOKEN}/messages/@original "
            f"failed using key {API_KEY}"
        )
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "bot.test",
        logging.ERROR,
        __file__,
        1,
        "login with %s failed; callback POST /interactions/123456/%s/callback",
        (TOKEN, INTERACTION_TOKEN),
        exc_info,
    )
    return formatter.format(record)


def test_redacting_formatter_scrubs_secrets_from_message_and_traceback():
    text = formatted_record()

    assert "Traceback" in text and "RuntimeError" in text
    assert TOKEN not in text
    assert API_KEY not in text


def test_redacting_formatter_scrubs_tokens_in_webhook_and_interaction_paths():
    text = formatted_record()

    assert INTERACTION_TOKEN not in text
    assert "/webhooks/987654321/" in text
    assert "/interactions/123456/" in text
    assert "********" in text


def test_redacting_formatter_leaves_ordinary_lines_alone():
    formatter = RedactingFormatter("%(message)s", [TOKEN, API_KEY])
    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "job %s reserved %s credits", (7, 10), None)

    assert formatter.format(record) == "job 7 reserved 10 credits"


# -- the real entry point ----------------------------------------------------------------------


def stray_dotenv() -> Path | None:
    """A .env the entry point might read whatever the test's environment says (python-dotenv
    searches upwards from the calling module's folder)."""
    for folder in (Path(bot.__file__).resolve().parent, *Path(bot.__file__).resolve().parents):
        if (folder / ".env").is_file():
            return folder / ".env"
    return None


def run_bot(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    if (found := stray_dotenv()) is not None:
        pytest.skip(f"{found} would leak into the entry point's environment")
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_entry_point_without_token_exits_2_naming_it(tmp_path):
    result = run_bot(tmp_path, SEPARATION_API_KEY=API_KEY)

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "DISCORD_TOKEN" in lines[0]
    assert API_KEY not in result.stderr + result.stdout


def test_entry_point_with_bad_default_credits_names_it_without_the_token(tmp_path):
    result = run_bot(tmp_path, DISCORD_TOKEN=TOKEN, SEPARATION_API_KEY=API_KEY, DEFAULT_CREDITS="plenty")

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "DEFAULT_CREDITS" in lines[0]
    assert TOKEN not in result.stderr + result.stdout
    assert API_KEY not in result.stderr + result.stdout


def test_entry_point_reads_dotenv_from_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text(
        f"DISCORD_TOKEN={TOKEN}\nSEPARATION_API_KEY={API_KEY}\nDEFAULT_CREDITS=plenty\n", encoding="utf-8"
    )

    result = run_bot(tmp_path)

    assert result.returncode == 2
    assert "DEFAULT_CREDITS" in result.stderr


def test_expiry_reminders_default_to_a_day_before_the_links_expire() -> None:
    assert load_settings(BASE).expiry_reminder == 24 * 3600


@pytest.mark.parametrize(("raw", "seconds"), [("0", 0.0), ("1.5", 5400.0), ("335.9", 335.9 * 3600)])
def test_expiry_reminder_hours_take_fractions_and_zero_turns_them_off(raw: str, seconds: float) -> None:
    assert load_settings({**BASE, "EXPIRY_REMINDER_HOURS": raw}).expiry_reminder == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["336", "400", "-1", "nan", "a day"])
def test_expiry_reminder_hours_must_be_less_than_the_links_lifetime(raw: str) -> None:
    with pytest.raises(SettingsError, match="EXPIRY_REMINDER_HOURS must be a number of hours from 0"):
        load_settings({**BASE, "EXPIRY_REMINDER_HOURS": raw})


def test_entry_point_with_an_unreachable_postgresql_stops_with_one_line_without_the_password(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]  # free once closed: nothing listens there
    url = f"postgresql://stembot:{DB_PASSWORD}@127.0.0.1:{port}/stembot"

    result = run_bot(tmp_path, DISCORD_TOKEN=TOKEN, SEPARATION_API_KEY=API_KEY, DATABASE_URL=url)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "Cannot open the database" in line]
    assert f"postgresql://stembot:********@127.0.0.1:{port}/stembot" in line
    assert DB_PASSWORD not in result.stderr + result.stdout


# -- shards and job leases ---------------------------------------------------------------------


def test_unset_shards_mean_one_unsharded_process_that_syncs_commands() -> None:
    settings = load_settings(BASE)

    assert (settings.shard_count, settings.shard_ids) == (None, None)
    assert settings.runs_shard_zero


def test_shard_count_alone_runs_every_shard_in_this_process() -> None:
    settings = settings_with(SHARD_COUNT="4")

    assert (settings.shard_count, settings.shard_ids) == (4, None)
    assert settings.runs_shard_zero


def test_shard_ids_are_read_with_spaces_and_in_any_order() -> None:
    settings = settings_with(SHARD_COUNT="4", SHARD_IDS=" 3, 1 ")

    assert settings.shard_ids == (1, 3)
    assert not settings.runs_shard_zero


def test_the_process_with_shard_zero_is_the_one_that_syncs_commands() -> None:
    assert settings_with(SHARD_COUNT="2", SHARD_IDS="0").runs_shard_zero
    assert not settings_with(SHARD_COUNT="2", SHARD_IDS="1").runs_shard_zero


def test_shard_ids_need_a_shard_count() -> None:
    message = settings_error({**BASE, "SHARD_IDS": "0"})

    assert message == "SHARD_IDS needs SHARD_COUNT, the number of shards across every process"


@pytest.mark.parametrize("raw", ["0,2", "2", "-1", "0,0", "1, 1", "0,", "a", "0;1", "1.0"])
def test_shard_ids_must_be_distinct_shards_below_the_count(raw: str) -> None:
    message = settings_error({**BASE, "SHARD_COUNT": "2", "SHARD_IDS": raw})

    assert message.startswith("SHARD_IDS must be shard numbers from 0 to 1 separated by commas, each once")
    assert "\n" not in message


def test_job_lease_defaults_to_thirty_seconds_and_is_read() -> None:
    assert load_settings(BASE).job_lease == 30.0
    assert settings_with(JOB_LEASE_SECONDS="5").job_lease == 5.0
    assert settings_with(JOB_LEASE_SECONDS="90.5").job_lease == 90.5


def test_retry_pauses_default_to_what_they_were_and_are_read() -> None:
    assert (load_settings(BASE).delivery_retry, load_settings(BASE).keep_retry) == (2.0, 5.0)
    assert settings_with(DELIVERY_RETRY_SECONDS="0.05").delivery_retry == 0.05
    assert settings_with(KEEP_RETRY_SECONDS="600").keep_retry == 600.0


def test_mixes_are_made_one_at_a_time_with_stems_up_to_100_mb_by_default(tmp_path: Path) -> None:
    settings = settings_with(DATABASE_URL=f"sqlite:///{tmp_path}/bot.db")

    assert (settings.mix_concurrency, settings.mix_max_stem_bytes) == (1, 100 * 1024 * 1024)
    assert settings.mix_folder == tmp_path / "mix-work"
    assert settings.mix_folder != settings.keep_folder


def test_mix_concurrency_and_the_stem_cap_are_read_and_bounded() -> None:
    settings = settings_with(MIX_CONCURRENCY="3", MIX_MAX_STEM_MB="20")

    assert (settings.mix_concurrency, settings.mix_max_stem_bytes) == (3, 20 * 1024 * 1024)
    assert "MIX_CONCURRENCY must be" in settings_error({**BASE, "MIX_CONCURRENCY": "0"})
    assert "MIX_MAX_STEM_MB must be" in settings_error({**BASE, "MIX_MAX_STEM_MB": "lots"})


# -- the settings table: every invalid setting at once ----------------------------------------


def test_every_invalid_setting_is_named_at_once_on_one_line():
    message = settings_error(
        {
            "SEPARATION_API_KEY": API_KEY,
            "DEFAULT_CREDITS": "plenty",
            "LOG_LEVEL": "LOUD",
            "CALLBACK_PORT": "-1",
        }
    )

    for name in ("DISCORD_TOKEN", "DEFAULT_CREDITS", "LOG_LEVEL", "CALLBACK_PORT"):
        assert name in message
    assert "\n" not in message and API_KEY not in message


async def test_check_reports_every_invalid_setting_not_only_the_first():
    from bot.check import run_checks

    lines = await run_checks(
        {**BASE, "POLL_INTERVAL_SECONDS": "often", "MIX_MAX_STEM_MB": "0", "SHARD_IDS": "0"},
        discord_api="http://127.0.0.1:9",
    )

    shown = "\n".join(map(str, lines))
    assert not any(line.ok for line in lines)
    for name in ("POLL_INTERVAL_SECONDS", "MIX_MAX_STEM_MB", "SHARD_IDS"):
        assert name in shown, shown
    assert TOKEN not in shown and API_KEY not in shown


def test_each_settings_default_is_the_one_the_settings_class_starts_from():
    # One table feeds parsing and the docs; the dataclass's own defaults (for code that builds
    # Settings directly) must say the same thing.
    from dataclasses import MISSING, fields

    from bot.settings import SETTINGS

    defaults = {f.name: f.default for f in fields(Settings)}
    assert sorted(spec.field for spec in SETTINGS) == sorted(defaults)
    for spec in SETTINGS:
        if not spec.required:
            assert spec.default_value == defaults[spec.field], spec.name
        else:
            assert defaults[spec.field] is MISSING, spec.name
