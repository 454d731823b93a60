"""/stembot status: the operator's view of the API account, jobs, errors and callbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import render

if TYPE_CHECKING:
    from bot.client import StemBot


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
        name="status", description="Server managers: API account credits, jobs, recent errors, callbacks"
    )
    async def status(self, interaction: discord.Interaction[StemBot]) -> None:
        """Show the separation API account's credits, jobs by state, recent API errors and callbacks."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # is_owner may ask Discord
        permissions = interaction.permissions
        allowed = permissions.manage_guild or permissions.administrator
        if not allowed and not await self.bot.is_owner(interaction.user):
            await interaction.followup.send(
                "Only server managers (Manage Server) and the bot's owner can see the bot's status.",
                ephemeral=True,
            )
            return
        report = await self.bot.status_report()
        await interaction.followup.send(embed=render.status(report), ephemeral=True)


async def setup(bot: StemBot) -> None:
    await bot.add_cog(StatusCog(bot))
