"""Mix stems (issue 20): the button under a full split's result (`cogs.stems.MixButton`) and
`/stems mix` answer with a private stem picker; choosing stems asks for the mix, which is posted
in the result's thread. The picker is a `DynamicItem`: the job is in its custom id, so it keeps
working after a restart."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Self

import discord

from bot.discord_side.client import answer_expected_error, refuse_if_not_installed
from bot.discord_side.delivery import token_usable_until
from bot.errors import StemBotError, UnknownJob
from bot.mixing import Reply, stem_names
from bot.models import Job
from bot.render import common
from bot.render import mix as words
from cogs.people import actor_of

if TYPE_CHECKING:
    from bot.discord_side.client import StemBot


SELECT_OPTION_LIMIT = 100
"""Discord's most characters on a select option's label (a stem's name, once translated)."""


class MixPicker(discord.ui.DynamicItem[discord.ui.Select[Any]], template=common.MIX_PICKER_PATTERN):
    """The private stem picker: choosing stems asks for their mix."""

    def __init__(self, job_id: int, names: list[str] | None = None) -> None:
        names = names or []
        select: discord.ui.Select[Any] = discord.ui.Select(
            custom_id=common.MIX_PICKER_ID.format(job=job_id),
            placeholder=words.placeholder(),
            min_values=1,
            max_values=max(1, len(names) - 1),
            options=[
                discord.SelectOption(label=name[:SELECT_OPTION_LIMIT], value=str(i))
                for i, name in enumerate(names)
            ],
        )
        super().__init__(select)
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        return cls(int(match["job"]))

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        return not await refuse_if_not_installed(interaction)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: StemBot = interaction.client
        values = _chosen(interaction)
        try:
            if interaction.guild_id is None:
                raise UnknownJob(self.job_id)
            request = await bot.services.mixer.request(
                interaction.guild_id,
                actor_of(interaction),
                self.job_id,
                values,
                channel_id=interaction.channel_id,
                attach_here=interaction.app_permissions.attach_files,
                upload_limit=interaction.filesize_limit,
                reply=Reply(
                    interaction.application_id,
                    interaction.token,
                    token_usable_until(interaction.created_at.timestamp()),
                ),
                server_locale=interaction.guild_locale,
            )
        except StemBotError as error:
            await answer_expected_error(interaction, error, sandbox=bot.services.settings.sandbox)
            return
        # The picker's message becomes the answer (and, once posted, the link to the mix).
        await interaction.response.edit_message(
            content=words.asked_answer(request.job, request.mix, started=request.started), view=None
        )


def _chosen(interaction: discord.Interaction[Any]) -> list[int]:
    """The stem positions chosen, as sent (untrusted: anything not a small number is dropped; the
    service checks the rest)."""
    data: Any = interaction.data or {}
    raw = data.get("values", []) if isinstance(data, dict) else []
    chosen: list[int] = []
    for value in raw[:25] if isinstance(raw, list) else []:
        # ASCII digits only: str.isdigit also accepts "²", which int() refuses.
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 2:
            chosen.append(int(value))
    return chosen


def picker_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(MixPicker(job.id, stem_names(job)))
    return view


async def show_picker(bot: StemBot, interaction: discord.Interaction[Any], job_id: int) -> None:
    """Answer privately with the stem picker of job #`job_id` (or why it cannot be mixed)."""
    try:
        if interaction.guild_id is None:
            raise UnknownJob(job_id)
        job = await bot.services.mixer.job(interaction.guild_id, job_id)
        price = await bot.services.mixer.price(interaction.guild_id)
    except StemBotError as error:
        await answer_expected_error(interaction, error, sandbox=bot.services.settings.sandbox)
        return
    await interaction.response.send_message(
        content=words.picker(job, price), view=picker_view(job), ephemeral=True
    )
