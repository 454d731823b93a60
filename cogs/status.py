"""/stembot: about the bot itself.

`status`: a server's managers see their server's jobs and whether splitting is paused; the bot's
owner also sees the API account, every server's jobs, API errors and the callback server.
`report`: the bot's owner alone sees every server's API credits per day as a chart.
`budget`: the bot's owner alone sees and sets each server's monthly budget of API credits, and sees
the bot's own (`MONTHLY_BUDGET`, every server together) beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import reports
from bot.budget import USE_DEFAULT
from bot.discord_side.client import answer_expected_error
from bot.errors import OWNERS_USAGE, InvalidOption, NotAServerManager, NotTheBotOwner, option_name
from bot.i18n import _
from bot.models.reports import OTHER_SERVERS
from bot.render import operators, usage
from bot.settings import MAX_SERVER_MONTHLY_BUDGET
from cogs.charts import send_report

if TYPE_CHECKING:
    from bot.discord_side.client import StemBot

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
        owner = await self._is_owner(interaction)
        if not manager and not owner:
            raise NotAServerManager
        server = await self.bot.server_status(interaction.guild_id)
        if owner:
            embed = operators.status(await self.bot.status_report(), server)
        else:
            embed = operators.server_status(server)
        await interaction.followup.send(embed=embed, ephemeral=True)

    @stembot.command(
        name="budget", description="The bot's owner: each server's monthly budget of API credits"
    )
    @app_commands.describe(
        server_id="A server's id (default: every server); right-click the server, Copy Server ID",
        amount="Set that server's monthly budget in API credits; -1: back to the default",
    )
    async def budget(
        self,
        interaction: discord.Interaction[StemBot],
        server_id: app_commands.Range[str, 1, 30] | None = None,
        amount: app_commands.Range[int, USE_DEFAULT, MAX_SERVER_MONTHLY_BUDGET] | None = None,
    ) -> None:
        """The bot's owner, in any server: this month's spend and budget of every server, most spent
        first; of one server with `server_id`; with `amount`, set that server's own budget."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if not await self._is_owner(interaction):
            log.info(
                "guild=%s member=%s: refused /stembot budget, not the bot's owner",
                interaction.guild_id,
                interaction.user.id,
            )
            raise NotTheBotOwner
        service = self.bot.services.budget
        if amount is not None:
            if server_id is None:
                raise InvalidOption(
                    "amount",
                    # TRANSLATORS: {option} is the option: "`amount` needs `server_id`: …"; {id} is
                    # this server's Discord id.
                    _(
                        "`{option}` needs `server_id`: the server whose budget to set (this one's is {id}). "
                        "Nothing was changed.",
                        option=option_name("amount"),
                        id=interaction.guild_id,
                    ),
                )
            change = await service.set_budget(server_id, amount, actor_id=interaction.user.id)
            names = self._names([change.after.guild_id])
            embed = operators.budget_change(change, names, service.default_budget, await service.bot())
        elif server_id is not None:
            one = await service.server(server_id)
            names = self._names([one.guild_id])
            embed = operators.server_budget(one, names, service.default_budget, await service.bot())
        else:
            overview = await service.overview()
            names = self._names(server.guild_id for server in overview.servers)
            embed = operators.budget_overview(overview, names)
        await interaction.followup.send(embed=embed, ephemeral=True)

    @stembot.command(name="report", description="The bot's owner: a chart of API credits per server per day")
    @app_commands.describe(days=f"How many days back, today included (default {reports.DEFAULT_DAYS})")
    async def report(
        self,
        interaction: discord.Interaction[StemBot],
        days: app_commands.Range[int, 1, reports.MAX_DAYS] = reports.DEFAULT_DAYS,
    ) -> None:
        """The bot's owner, in any server: every server's API credits per day (the top servers, the
        rest together), the account's credits and the monthly budgets."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if not await self._is_owner(interaction):
            log.info(
                "guild=%s member=%s: refused /stembot report, not the bot's owner",
                interaction.guild_id,
                interaction.user.id,
            )
            raise NotTheBotOwner(OWNERS_USAGE)
        service = self.bot.services.reports
        shown = await service.owner(days)
        # The names this process sees now are fresher than the stored ones.
        listed = [int(series.label) for series in shown.servers if series.label != OTHER_SERVERS]
        shown = replace(shown, names={**shown.names, **self._names(listed)})
        await send_report(
            interaction,
            empty=shown.empty,
            summary=lambda with_chart: usage.owner_summary(shown, with_chart=with_chart),
            chart=lambda: usage.owner_chart(shown),
            draw=service.draw,
        )

    async def _is_owner(self, interaction: discord.Interaction[StemBot]) -> bool:
        """Whether the application's owner (or a member of its team) runs the command."""
        try:
            return await self.bot.is_owner(interaction.user)
        except discord.HTTPException as error:  # the application's owner is fetched once, lazily
            log.warning("Could not ask Discord who owns the bot (%s): not treated as the owner", error.status)
            return False

    def _names(self, guild_ids: Iterable[int]) -> dict[int, str]:
        """The names of the servers the bot is in, for the owner's lists (ids alone otherwise)."""
        return {guild_id: guild.name for guild_id in guild_ids if (guild := self.bot.get_guild(guild_id))}

    # `Interaction[Any]`: discord.py declares this hook for any client type, so a narrower one here
    # would not be a valid override (the bot's own client is `self.bot`).
    async def cog_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await answer_expected_error(interaction, error, sandbox=self.bot.services.settings.sandbox)


async def setup(bot: StemBot) -> None:
    await bot.add_cog(StatusCog(bot))
