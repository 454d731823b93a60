"""The composition root: `python -m bot` builds everything once and runs the bot."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import functools
import logging
import os
import signal
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import aiohttp
import discord
from dotenv import find_dotenv, load_dotenv

from bot import __version__
from bot.check import check
from bot.discord_side.alerts import DiscordAlerter
from bot.discord_side.client import StemBot, make_bot
from bot.discord_side.delivery import DiscordDeliverer
from bot.discord_side.keeper import DiscordPoster
from bot.keeping import offers_keep_button
from bot.languages import Languages
from bot.logs import configure_logging
from bot.mixing import offers_mix_button
from bot.models import CreditPolicy
from bot.operations import Operations
from bot.services import Services, build_services
from bot.settings import (
    DEFAULT_DATABASE_URL,
    PostgresURL,
    Settings,
    SettingsError,
    load_settings,
    parse_database_url,
)
from bot.store import MigrationError, Store, StoreUnavailable
from bot.store.backup import BackupFailed, BackupRefused, backup_sqlite, size_text
from bot.store.copy import CopyRefused, copy_sqlite_to_postgresql
from bot.web import WebServer

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run StemBot.")
    parser.add_argument("--version", action="version", version=f"StemBot {installed_version()}")
    parser.add_argument(
        "--sync", action="store_true", help="sync slash commands to Discord even if they look unchanged"
    )
    parser.add_argument(
        "--check", action="store_true", help="check the whole set-up, change nothing and exit (0: all good)"
    )
    parser.add_argument(
        "--migrate-from",
        metavar="SQLITE_URL",
        help="copy everything from this SQLite database (sqlite:///data/stembot.db) into the empty "
        "PostgreSQL database DATABASE_URL names, then exit; stop the bot first",
    )
    parser.add_argument(
        "--backup",
        metavar="FILE",
        help="copy the SQLite database DATABASE_URL names to the new file FILE, consistently, while "
        "the bot runs (never overwrites), then exit",
    )
    args = parser.parse_args(argv)

    # The .env of the working directory; real environment variables win over it.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    if args.backup is not None:
        raise SystemExit(backup(Path(args.backup), os.environ.get("DATABASE_URL", "")))
    if args.migrate_from is not None:
        raise SystemExit(migrate(args.migrate_from, os.environ.get("DATABASE_URL", "")))
    if args.check:
        raise SystemExit(check(os.environ, discord_api=discord.http.Route.BASE))
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"StemBot cannot start: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.secrets)
    # An SQLite store serves one process: the lock is held, by this open descriptor, until the
    # process ends however it ends. PostgreSQL serves several.
    sqlite_lock = lock_sqlite_database(settings.database_path) if settings.database_path else None
    try:
        asyncio.run(run(settings, force_sync=args.sync))
    except KeyboardInterrupt:
        pass
    except MigrationError as error:
        log.error("Cannot bring the database schema up to date: %s", error)
        raise SystemExit(2) from None
    except StoreUnavailable as error:
        log.error("Cannot open the database %s: %s", settings.database, error)
        raise SystemExit(2) from None
    except discord.LoginFailure:
        log.error("Discord refused DISCORD_TOKEN: copy the bot token again from the developer portal")
        raise SystemExit(1) from None
    except (aiohttp.ClientConnectionError, OSError) as error:
        # Only reached when Discord could not be reached at all while logging in (reconnects
        # after that are discord.py's business); jobs in the database are safe.
        log.error("Cannot reach Discord to log in (%s). Check this machine's network and try again.", error)
        raise SystemExit(1) from None
    finally:
        if sqlite_lock is not None:
            os.close(sqlite_lock)


def installed_version() -> str:
    """StemBot's version: the installed package's, else (run from a checkout that was never
    installed) the one pyproject.toml declares, which the package's is built from."""
    try:
        return metadata.version("stembot")
    except metadata.PackageNotFoundError:
        pass
    try:
        with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        return __version__


def backup(destination: Path, database_url: str) -> int:
    """`--backup FILE`: a consistent copy of the SQLite database (`bot.store.backup`), even while a bot
    runs on it (its lock is not taken), saying what it copied; the exit code (0: copied, 1: FILE
    exists, nothing written, 2: cannot, PostgreSQL included)."""
    try:
        source = parse_database_url(database_url.strip() or DEFAULT_DATABASE_URL)
    except ValueError as error:
        print(f"Cannot back up: {error}", file=sys.stderr)
        return 2
    if isinstance(source, PostgresURL):
        print(
            "Cannot back up: DATABASE_URL is PostgreSQL, and --backup copies SQLite files only. Back "
            "PostgreSQL up with its own tool, while the bot runs: pg_dump --format=custom --file=FILE "
            '"$DATABASE_URL" (restore into an empty database with pg_restore).',
            file=sys.stderr,
        )
        return 2
    try:
        copied = backup_sqlite(source, destination)
    except BackupRefused as error:
        print(f"Nothing was written: {error}. Choose a new file name.", file=sys.stderr)
        return 1
    except BackupFailed as error:
        print(f"Cannot back up: {error}", file=sys.stderr)
        return 2
    print(f"Backed up {source} to {destination}: one consistent copy, integrity check ok.")
    for table, rows in copied.tables:
        print(f"  {table}: {rows} rows")
    print(f"{len(copied.tables)} tables, {copied.rows} rows, {size_text(copied.size)} ({copied.size} bytes).")
    return 0


def migrate(source_url: str, target_url: str) -> int:
    """`--migrate-from`: copy an SQLite store into an empty PostgreSQL one (`bot.store.copy`),
    saying what it copies; the exit code (0: copied, 1: refused, nothing changed, 2: cannot)."""
    try:
        source = parse_database_url(source_url)
        target = parse_database_url(target_url) if target_url.strip() else None
    except ValueError as error:
        print(f"Cannot migrate: {error}", file=sys.stderr)
        return 2
    if not isinstance(source, Path):
        print("Cannot migrate: --migrate-from takes the SQLite database, sqlite:///…", file=sys.stderr)
        return 2
    if not isinstance(target, PostgresURL):
        print(
            "Cannot migrate: set DATABASE_URL to the PostgreSQL database to copy into "
            "(postgresql://user:password@host:5432/dbname)",
            file=sys.stderr,
        )
        return 2
    configure_logging(logging.WARNING, (target.reveal(),))
    print(
        f"Copying {source} into {target}. Stop every StemBot process first: anything a running bot "
        "does meanwhile would not be copied."
    )
    lock = lock_sqlite_database(source)  # a bot still running on the SQLite file stops us here
    try:
        copied = asyncio.run(
            copy_sqlite_to_postgresql(source, target, copied_table=lambda t, n: print(f"  {t}: {n} rows"))
        )
    except CopyRefused as error:
        print(f"Nothing was copied: {error}.", file=sys.stderr)
        return 1
    except (StoreUnavailable, MigrationError) as error:
        print(f"Cannot migrate: {error}", file=sys.stderr)
        return 2
    finally:
        os.close(lock)
    print(
        f"Copied {copied.total} rows in one transaction; every balance matches its ledger. Set "
        f"DATABASE_URL={target} for every StemBot process and start them; keep {source} as a backup."
    )
    return 0


def lock_sqlite_database(database: Path) -> int:
    """Take the exclusive lock on `<database>.lock`, beside the SQLite file, or stop start-up with
    one line (exit 2) when another process holds it; return the lock's file descriptor.

    SQLite here is single-process: two bot processes on one file would both resume, submit and
    settle the same jobs. Several processes need PostgreSQL.
    """
    lock_path = database.with_name(database.name + ".lock")
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        log.error(
            "Cannot create %s beside the database (%s): check the folder's permissions", lock_path, error
        )
        raise SystemExit(2) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        log.error(
            "Another StemBot process is already running on the SQLite database %s: SQLite is "
            "single-process; for several processes use PostgreSQL (DATABASE_URL=postgresql://…)",
            database,
        )
        raise SystemExit(2) from None
    return descriptor


async def run(settings: Settings, *, force_sync: bool = False) -> None:
    log.info("StemBot %s starting; database %s", __version__, settings.database)
    if settings.sandbox:
        log.warning(
            "SANDBOX MODE: SEPARATION_API_URL=sandbox. No real API is called and nothing is paid: "
            "splits are simulated in this process (%gs each) and every result says Sandbox. "
            "Set SEPARATION_API_URL and SEPARATION_API_KEY for real splits.",
            settings.sandbox_seconds,
        )
    store = await Store.open(
        settings.database,
        CreditPolicy(
            default_credits=settings.default_credits,
            jobs_per_member=settings.jobs_per_member,
            server_monthly_budget=settings.server_monthly_budget,
            monthly_budget=settings.monthly_budget,
        ),
    )
    try:
        async with aiohttp.ClientSession() as session:

            def services_for(client: StemBot) -> Services:
                languages = Languages(store)
                deliverer = DiscordDeliverer(
                    client,
                    store.deliveries,
                    offers_keep=functools.partial(offers_keep_button, store),
                    offers_mix=functools.partial(offers_mix_button, store),
                    languages=languages,
                )
                poster = DiscordPoster(client, offers_mix=functools.partial(offers_mix_button, store))
                return build_services(
                    settings,
                    store=store,
                    session=session,
                    deliverer=deliverer,
                    reminder_sender=deliverer,
                    split_answerer=deliverer,
                    keep_poster=poster,
                    mix_poster=poster,
                    alerter=DiscordAlerter(client, store, languages),
                    gateway_connected=client.gateway_connected,
                    languages=languages,
                )

            bot = make_bot(
                services_for,
                shard_count=settings.shard_count,
                shard_ids=settings.shard_ids,
                dev_guild_id=settings.dev_guild_id,
                force_sync=force_sync,
            )
            services, web = bot.services, bot.services.web
            closing: list[asyncio.Task[None]] = []

            def request_stop() -> None:
                if not closing:
                    log.info("Shutting down: finishing database writes; unfinished jobs resume on restart")
                    services.split.close()  # at once: a /split arriving now is told, not half-taken
                    closing.append(asyncio.create_task(bot.close()))

            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, request_stop)
            await start_web_server(web, settings, services.operations)
            try:
                async with bot:
                    await bot.start(settings.discord_token.reveal())
            finally:
                await web.stop()
    finally:
        await store.close()
        log.info("StemBot stopped")


async def start_web_server(web: WebServer, settings: Settings, operations: Operations) -> bool:
    """Start the bot's web server; whether it listens.

    With callbacks on the API needs it, and in sandbox mode it serves the sandbox: a taken port then
    stops start-up with one line. Otherwise it serves only `/healthz` and `/metrics`, so the bot
    runs on without it and says why, in the log and in `/stembot status`.
    """
    try:
        await web.start()
    except OSError as error:
        where = f"CALLBACK_HOST {settings.callback_host}, CALLBACK_PORT {settings.callback_port}"
        reason = f"cannot listen on {where} ({error.strerror or error})"
        if settings.web_server_required:
            needs = "the sandbox runs in" if settings.sandbox else "callbacks need"
            log.error("Web server %s: choose a free port (%s the web server)", reason, needs)
            raise SystemExit(2) from None
        log.warning("Web server off, so no /healthz or /metrics: %s. Splitting works (polling).", reason)
        operations.web_server_unavailable(reason)
        return False
    return True


if __name__ == "__main__":
    main()
