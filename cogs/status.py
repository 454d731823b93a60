"""/stembot status: a server's managers see their server's jobs and whether splitting is paused; the
bot's owner also sees the API account, every server's jobs, API errors and the callback server."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import answer_expected_error
from bot.errors import NotAServerManager
from bot.render import operators

if TYPE_CHECKING:
    from bot.client import StemBot

log = logging.getLogger(__name__)


class StatusCog(commands.Cog):
    stembot = app_commands.Group(
        name="stembot",
        description="About the bot itself",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: StemBot) -> None:
        self.bot = bot

    @stembot.command(
        name="status", description="Server managers: this server's jobs; the bot's owner: the whole bot"
    )
    async def status(self, interaction: discord.Interaction[StemBot]) -> None:
        """Show this server's jobs and whether splitting is paused; the bot's owner also sees the
        API account's credits, every server's jobs, recent API errors and the callback server."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # is_owner may ask Discord
        assert interaction.guild_id is not None
        permissions = interaction.permissions
        manager = permissions.manage_guild or permissions.administrator
        # The API account, other servers' jobs and where the bot listens are the operator's business.
        try:
            owner = await self.bot.is_owner(interaction.user)
        except discord.HTTPException as error:  # the application's owner is fetched once, lazily
            log.warning("Could not ask Discord who owns the bot (%s); showing the server view", error.status)
            owner = False
        if not manager and not owner:
            raise NotAServerManager
        server = await self.bot.server_status(interaction.guild_id)
        if owner:
            embed = operators.status(await self.bot.status_report(), server)
        else:
            embed = operators.server_status(server)
        await interaction.followup.send(embed=embed, ephemeral=True)

    async def cog_app_command_error(
        self, interaction: discord.Interaction[StemBot], error: app_commands.AppCommandError
    ) -> None:
        await answer_expected_error(interaction, error)


async def setup(bot: StemBot) -> None:
    await bot.add_cog(StatusCog(bot))
