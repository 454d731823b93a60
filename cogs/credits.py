"""/credits: a member's balance in this server and what each split costs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import render

if TYPE_CHECKING:
    from bot.client import StemBot


class CreditsCog(commands.Cog):
    def __init__(self, bot: StemBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="credits", description="Your credit balance in this server and what splits cost"
    )
    @app_commands.guild_only()
    async def credits(self, interaction: discord.Interaction[StemBot]) -> None:
        """Show your credit balance in this server and the price of each split mode."""
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        summary = await self.bot.services.credits.summary(interaction.guild_id, interaction.user.id)
        await interaction.followup.send(embed=render.credits(summary), ephemeral=True)


async def setup(bot: StemBot) -> None:
    await bot.add_cog(CreditsCog(bot))
