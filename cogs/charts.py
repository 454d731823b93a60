"""A usage report's private answer (`/quota report`, `/stembot report`): the summary alone where
the period is empty, else the summary with its chart, drawn off the event loop, attached."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from bot.charts import ChartSpec
from bot.render import usage

if TYPE_CHECKING:
    from bot.discord_side.client import StemBot


async def send_report(
    interaction: discord.Interaction[StemBot],
    *,
    empty: bool,
    summary: Callable[[bool], discord.Embed],
    chart: Callable[[], ChartSpec],
    draw: Callable[[ChartSpec], Awaitable[bytes]],
) -> None:
    """`summary(with_chart)` is the embed; `chart()` what `draw` makes a PNG of when there is
    something to draw."""
    if empty:
        await interaction.followup.send(embed=summary(False), ephemeral=True)
        return
    png = await draw(chart())
    embed = summary(True).set_image(url=f"attachment://{usage.CHART_FILENAME}")
    await interaction.followup.send(
        embed=embed, file=discord.File(io.BytesIO(png), filename=usage.CHART_FILENAME), ephemeral=True
    )
