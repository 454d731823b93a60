"""The composition root: `python -m bot` builds everything once and runs the bot."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

import aiohttp
import discord
from dotenv import find_dotenv, load_dotenv

from bot import __version__
from bot.api import SeparationClient
from bot.client import Services, StemBot
from bot.credits import CreditService
from bot.jobs import SplitService
from bot.logs import configure_logging
from bot.quota import QuotaService
from bot.runner import JobRunner
from bot.settings import Settings, SettingsError, load_settings
from bot.store import Store

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run StemBot.")
    parser.add_argument(
        "--sync", action="store_true", help="sync slash commands to Discord even if they look unchanged"
    )
    args = parser.parse_args(argv)

    # The .env of the working directory; real environment variables win over it.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"StemBot cannot start: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.secrets)
    try:
        asyncio.run(run(settings, force_sync=args.sync))
    except KeyboardInterrupt:
        pass
    except discord.LoginFailure:
        log.error("Discord refused DISCORD_TOKEN: copy the bot token again from the developer portal")
        raise SystemExit(1) from None


async def run(settings: Settings, *, force_sync: bool = False) -> None:
    log.info("StemBot %s starting; database %s", __version__, settings.database_path)
    store = await Store.open(settings.database_path)
    try:
        async with aiohttp.ClientSession() as session:
            api = SeparationClient(session, settings.api_url, settings.api_key, timeout=settings.api_timeout)
            runner = JobRunner(
                store, api, poll_interval=settings.poll_interval, job_timeout=settings.job_timeout
            )
            credits = CreditService(
                store, default_credits=settings.default_credits, jobs_per_member=settings.jobs_per_member
            )
            services = Services(
                store=store,
                runner=runner,
                credits=credits,
                split=SplitService(store, credits, runner),
                quota=QuotaService(store, credits),
            )
            bot = StemBot(services, dev_guild_id=settings.dev_guild_id, force_sync=force_sync)
            closing: list[asyncio.Task[None]] = []

            def request_stop() -> None:
                if not closing:
                    log.info("Shutting down: finishing database writes; unfinished jobs resume on restart")
                    closing.append(asyncio.create_task(bot.close()))

            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, request_stop)
            async with bot:
                await bot.start(settings.discord_token.reveal())
    finally:
        await store.close()
        log.info("StemBot stopped")


if __name__ == "__main__":
    main()
