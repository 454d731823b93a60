"""/split: start a paid separation. Parses options, calls the split service, renders the answer."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_side.client import ACKNOWLEDGED, answer_expected_error
from bot.discord_side.delivery import token_usable_until
from bot.errors import AckTaken, SplitRefused, SplittingUnavailable, StemBotError
from bot.jobs import MAX_ID_LENGTH, Accepted, clean_track_id
from bot.models import AcknowledgedSplit, Job
from bot.product import Mode
from bot.render import common, library, results
from cogs.people import role_ids

if TYPE_CHECKING:
    from bot.discord_side.client import StemBot

log = logging.getLogger(__name__)

RECORD_BEFORE_ACK_SECONDS = 1.0
"""How long a /split's acknowledgement waits for its record to be stored (usually milliseconds)."""
ACK_DEADLINE_SECONDS = 2.0
"""The acknowledgement never waits for the record past this long after Discord made the
interaction (Discord allows 3 seconds, the way back included)."""

TrackId = app_commands.Range[str, 1, MAX_ID_LENGTH]
MODE_CHOICES = [app_commands.Choice(name=common.mode_label(mode), value=mode.value) for mode in Mode]


class SplitCog(commands.Cog):
    def __init__(self, bot: StemBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="split", description="Split a track into stems: vocals and instrumental, or up to 12"
    )
    @app_commands.describe(
        task_id="The music-generation task's id, as the generation API returned it to the app or bot "
        "that made it",
        audio_id="The id of one track of that task (audio id), as the music-generation API returned it",
        mode="What to split into (default: vocals + instrumental)",
    )
    @app_commands.choices(mode=MODE_CHOICES)
    @app_commands.guild_only()
    async def split(
        self,
        interaction: discord.Interaction[StemBot],
        task_id: TrackId,
        audio_id: TrackId,
        mode: app_commands.Choice[str] | None = None,
    ) -> None:
        """Split a track into stems; the links arrive in this message when they are ready."""
        # Cheap checks first, answered privately at once (see cog_app_command_error): bad input
        # costs nothing.
        clean_track_id("task_id", task_id)
        clean_track_id("audio_id", audio_id)
        await start_split(
            self.bot, interaction, Mode(mode.value) if mode else Mode.SEPARATE_VOCAL, task_id, audio_id
        )

    @split.autocomplete("task_id")
    async def task_id_autocomplete(
        self, interaction: discord.Interaction[StemBot], current: str
    ) -> list[app_commands.Choice[str]]:
        """The task ids of the member's own recent splits here (what they typed narrows them)."""
        return await self._recent_ids(interaction, current, lambda job: job.source_task_id)

    @split.autocomplete("audio_id")
    async def audio_id_autocomplete(
        self, interaction: discord.Interaction[StemBot], current: str
    ) -> list[app_commands.Choice[str]]:
        """The audio ids of the member's own recent splits here, those of the chosen task first."""
        task = getattr(interaction.namespace, "task_id", None)
        return await self._recent_ids(interaction, current, lambda job: job.audio_id, task_id=task)

    async def _recent_ids(
        self,
        interaction: discord.Interaction[StemBot],
        current: str,
        value_of: Callable[[Job], str],
        *,
        task_id: str | None = None,
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        jobs = await self.bot.services.library.own_recent(interaction.guild_id, interaction.user.id)
        if task_id:
            jobs.sort(key=lambda job: job.source_task_id != task_id)  # that task's tracks first
        typed, now, seen = current.strip().lower(), time.time(), set()
        choices = []
        for job in jobs:
            value = value_of(job)
            if value in seen or (typed and typed not in value.lower()):
                continue
            seen.add(value)
            choices.append(app_commands.Choice(name=library.track_suggestion(job, value, now), value=value))
        return choices[:25]

    # `Interaction[Any]`: discord.py declares this hook for any client type, so a narrower one here
    # would not be a valid override (the bot's own client is `self.bot`).
    async def cog_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Refusals and bad input, answered to the member alone: a refusal after the public
        "thinking…" swaps it for a private explanation, as refusals are nobody else's business."""
        await answer_expected_error(
            interaction,
            error,
            refusal=split_refusal,
            public_words=results.NOT_STARTED,
            sandbox=self.bot.services.settings.sandbox,
        )


async def start_split(
    bot: StemBot, interaction: discord.Interaction[StemBot], mode: Mode, task_id: str, audio_id: str
) -> None:
    """Take a split the way `/split` does, for `/split` and for a result's "Split into 12 stems"
    button alike: a public "thinking…" (the result lands there and must outlive the member's
    client session), recorded as it is given (`bot.acks`: a process that dies before storing the
    job leaves the member an answer), the reservation under every rule, then "queued" with a Cancel
    button, and only then the runner. A refusal raises for the caller's error handler to answer
    privately (and then remove the record, see `ACKNOWLEDGED`)."""
    assert interaction.guild_id is not None and interaction.channel_id is not None
    services = bot.services
    deferred = await acknowledge(bot, interaction, mode, task_id, audio_id)
    try:
        accepted = await split_reserved(bot, interaction, mode, task_id, audio_id, deferred)
    except AckTaken:
        # This process stalled past its lease and another one told the member the split did not
        # start: nothing was stored, and the member must not hear otherwise from here.
        services.acks.taken(interaction.id)
        log.warning("interaction %s: answered by another process meanwhile; not splitting", interaction.id)
        return
    except BaseException:
        # The error handler answers the member, then the record goes (see `ACKNOWLEDGED`); if no
        # handler answers, the record's claim lapses and the next look tells the member.
        services.acks.taken(interaction.id)
        interaction.extras[ACKNOWLEDGED] = functools.partial(services.acks.answered, interaction.id)
        raise
    services.acks.taken(interaction.id)  # the record went with the job's insert
    job = accepted.job
    try:
        await interaction.edit_original_response(
            embed=results.queued(job), view=results.queued_view(job) or discord.utils.MISSING
        )
    except discord.HTTPException as exc:
        log.warning("job %s: could not show the queued message (%s)", job.id, exc.status)
    finally:
        # Only now may the runner touch this response, so its edits land after ours.
        services.split.start(job)


async def acknowledge(
    bot: StemBot, interaction: discord.Interaction[StemBot], mode: Mode, task_id: str, audio_id: str
) -> discord.InteractionCallbackResponse[StemBot] | None:
    """The public "thinking…", and before it the record that it is given (`bot.acks`), so that a
    process that dies from the moment the member sees "thinking…" leaves a record another process
    answers. Should the database be slow, the acknowledgement does not wait for the record past
    `RECORD_BEFORE_ACK_SECONDS` (Discord's 3 seconds come first); the record is still awaited."""
    assert interaction.guild_id is not None and interaction.channel_id is not None
    created = interaction.created_at.timestamp()
    ack = AcknowledgedSplit(
        interaction_id=interaction.id,
        application_id=interaction.application_id,
        token=interaction.token,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        mode=mode,
        task_id=task_id,
        audio_id=audio_id,
        acknowledged_at=created,
        expires_at=token_usable_until(created),
    )
    recording = asyncio.ensure_future(bot.services.acks.record(ack))
    # Counted from when Discord made the interaction: a lagging burst must not eat its 3 seconds.
    left = created + ACK_DEADLINE_SECONDS - time.time()
    await asyncio.wait({recording}, timeout=max(0.0, min(RECORD_BEFORE_ACK_SECONDS, left)))
    if recording.done():
        recording.result()  # a failed write raises here: the error handler answers the member
    try:
        deferred = await interaction.response.defer(thinking=True)
    except BaseException:
        await asyncio.gather(recording, return_exceptions=True)
        await bot.services.acks.answered(interaction.id)  # not acknowledged: nobody waits
        raise
    await recording  # the error handler answers (acknowledged by now) if it failed
    return deferred


async def split_reserved(
    bot: StemBot,
    interaction: discord.Interaction[StemBot],
    mode: Mode,
    task_id: str,
    audio_id: str,
    deferred: discord.InteractionCallbackResponse[StemBot] | None,
) -> Accepted:
    """The split reserved under every rule, its acknowledgement's record gone with it."""
    assert interaction.guild_id is not None and interaction.channel_id is not None
    services = bot.services
    return await services.split.reserve(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        mode=mode,
        task_id=task_id,
        audio_id=audio_id,
        application_id=interaction.application_id,
        interaction_token=interaction.token,
        interaction_expires_at=token_usable_until(interaction.created_at.timestamp()),
        # Where a late result replies (see bot.discord_side.delivery), once the token above has expired.
        response_message_id=deferred.message_id
        if isinstance(deferred, discord.InteractionCallbackResponse)
        else None,
        app_permissions=interaction.app_permissions.value,
        # The upload limit here: how many stems fit in one message when they are kept in Discord.
        filesize_limit=interaction.filesize_limit,
        role_ids=role_ids(interaction.user),
        interaction_id=interaction.id,
    )


def split_refusal(error: StemBotError) -> discord.Embed:
    """How a refused split is explained (privately), for `/split` and the upgrade button."""
    if isinstance(error, SplitRefused):
        return results.refused(error)
    if isinstance(error, SplittingUnavailable):
        return results.unavailable(str(error))
    return common.bad_input(str(error))


async def setup(bot: StemBot) -> None:
    await bot.add_cog(SplitCog(bot))
