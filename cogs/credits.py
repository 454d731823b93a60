"""/credits: a member's quick look at their credits in this server (the figures of /quota view)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_side.client import answer_expected_error
from bot.render import common, quota
from cogs.people import role_ids

if TYPE_CHECKING:
    from bot.discord_side.client import StemBot


class CreditsCog(commands.Cog):
    def __init__(self, bot: StemBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="credits",
        description="Your credits in this server: balance, next refill, splits running, prices",
    )
    @app_commands.guild_only()
    async def credits(self, interaction: discord.Interaction[StemBot]) -> None:
        """Show your credits in this server: balance, next refill, splits running, prices."""
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        summary = await self.bot.services.credits.summary(
            interaction.guild_id, interaction.user.id, role_ids=role_ids(interaction.user)
        )
        await interaction.followup.send(
            embed=common.mark_sandbox(quota.my_credits(summary), self.bot.services.settings.sandbox),
            ephemeral=True,
        )

    # `Interaction[Any]`: discord.py declares this hook for any client type, so a narrower one here
    # would not be a valid override (the bot's own client is `self.bot`).
    async def cog_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await answer_expected_error(interaction, error, sandbox=self.bot.services.settings.sandbox)


async def setup(bot: StemBot) -> None:
    await bot.add_cog(CreditsCog(bot))
