"""The Discord client: loads the cogs, syncs commands only when they changed, runs the job runner."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.credits import CreditService
from bot.delivery import DiscordDeliverer
from bot.jobs import SplitService
from bot.quota import QuotaService
from bot.runner import JobRunner
from bot.store import Store

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.split", "cogs.credits", "cogs.quota")


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the cogs use, built once by the composition root."""

    store: Store
    runner: JobRunner
    credits: CreditService
    split: SplitService
    quota: QuotaService


class StemTree(app_commands.CommandTree["StemBot"]):
    async def on_error(
        self, interaction: discord.Interaction[StemBot], error: app_commands.AppCommandError
    ) -> None:
        """Last resort: answer the member (acknowledged or not) and log the unexpected once."""
        command = interaction.command.qualified_name if interaction.command else "?"
        if isinstance(error, app_commands.NoPrivateMessage):
            text = "This command works in servers only: credits belong to a server."
        elif isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You can't use this command here."
        else:
            log.error(
                "Command /%s failed for member %s in guild %s",
                command,
                interaction.user.id,
                interaction.guild_id,
                exc_info=error,
            )
            text = render.unexpected_error()
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("Could not tell member %s about the failed /%s", interaction.user.id, command)


class StemBot(commands.Bot):
    def __init__(
        self, services: Services, *, dev_guild_id: int | None = None, force_sync: bool = False
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            tree_cls=StemTree,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.services = services
        self.dev_guild_id = dev_guild_id
        self.force_sync = force_sync

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        self.services.runner.attach(DiscordDeliverer(self))
        await self.services.runner.start()

    async def sync_commands(self) -> bool:
        """Sync slash commands if their definitions changed since the last sync (or when forced).

        Discord allows 200 command creates per day per guild, so an unchanged bot never re-syncs.
        Returns whether a sync happened.
        """
        guild = discord.Object(self.dev_guild_id) if self.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        scope = f"guild:{guild.id}" if guild else "global"
        key = f"commands_synced:{scope}"
        if not self.force_sync and await self.services.store.get_meta(key) == digest:
            log.info("Slash commands unchanged since the last sync (%s); not syncing", scope)
            return False
        synced = await self.tree.sync(guild=guild)
        await self.services.store.set_meta(key, digest)
        log.info("Synced %s slash command(s) to %s", len(synced), scope)
        return True

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("Connected as %s (id %s) to %s server(s)", self.user, self.user.id, len(self.guilds))

    async def close(self) -> None:
        await self.services.runner.stop()
        await super().close()
