"""/split: start a paid separation. Parses options, calls the split service, renders the answer."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import discord
from discord import app_commands
from discord.ext import commands

from bot import i18n
from bot.discord_side.client import (
    ACKNOWLEDGED,
    answer_expected_error,
    language_in_public,
    refuse_if_not_installed,
)
from bot.discord_side.delivery import token_usable_until
from bot.errors import AckTaken, SplitRefused, SplittingUnavailable, StemBotError
from bot.jobs import MAX_ID_LENGTH, Accepted, clean_track_id
from bot.models import AcknowledgedSplit, Job, TaskTracks
from bot.product import Mode
from bot.render import buttons, common, library, results
from bot.render import songs as song_words
from cogs.people import role_ids
from cogs.tracks import Menus

if TYPE_CHECKING:
    from bot.discord_side.client import StemBot

log = logging.getLogger(__name__)

RECORD_BEFORE_ACK_SECONDS = 1.0
"""How long a /split's acknowledgement waits for its record to be stored (usually milliseconds)."""
ACK_DEADLINE_SECONDS = 2.0
"""The acknowledgement never waits for the record past this long after Discord made the
interaction (Discord allows 3 seconds, the way back included)."""

QUICK_ANSWER_SECONDS = 1.5
"""`/split` with the task id alone: how long after Discord made the interaction the lookup may run
before the bot must answer (Discord allows 3 s). Tracks known by then get their menu, or the one
track its split, at once; otherwise the member sees a private "thinking…", then the menu."""
AUTOCOMPLETE_SECONDS = 1.5
"""Autocomplete cannot be deferred: the lookup gets this long from the interaction's creation, then
the suggestions go without it (the lookup carries on, for the next keystroke)."""
MENU_SECONDS = song_words.MENU_MINUTES * 60

TrackId = app_commands.Range[str, 1, MAX_ID_LENGTH]
MODE_CHOICES = [app_commands.Choice(name=common.mode_label(mode), value=mode.value) for mode in Mode]


class SplitCog(commands.Cog):
    def __init__(self, bot: StemBot) -> None:
        self.bot = bot
        self.menus = Menus()

    async def cog_load(self) -> None:
        # Every menu of tracks, whenever it was shown.
        self.bot.add_dynamic_items(TrackMenu)

    @app_commands.command(
        name="split", description="Split a track into stems: vocals and instrumental, or up to 12"
    )
    @app_commands.describe(
        task_id="The music-generation task's id, as the generation API returned it to the app or bot "
        "that made it",
        audio_id="Which track of that task (optional: without it, choose the track by its title)",
        mode="What to split into (default: vocals + instrumental)",
    )
    @app_commands.choices(mode=MODE_CHOICES)
    @app_commands.guild_only()
    async def split(
        self,
        interaction: discord.Interaction[StemBot],
        task_id: TrackId,
        audio_id: TrackId | None = None,
        mode: app_commands.Choice[str] | None = None,
    ) -> None:
        """Split a track into stems; the links arrive in this message when they are ready."""
        # Cheap checks first, answered privately at once (see cog_app_command_error): bad input
        # costs nothing.
        task_id = clean_track_id("task_id", task_id)
        chosen = Mode(mode.value) if mode else Mode.SEPARATE_VOCAL
        if audio_id is None:
            await split_by_task(self.bot, interaction, chosen, task_id)
            return
        audio_id = clean_track_id("audio_id", audio_id)
        await start_split(self.bot, interaction, chosen, task_id, audio_id)

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
        """Once the task id is filled in, that task's tracks by title and duration (a bounded,
        cached lookup); then the audio ids of the member's own recent splits here, those of the
        chosen task first."""
        task = getattr(interaction.namespace, "task_id", None)
        task = task.strip() if isinstance(task, str) else None
        choices: list[app_commands.Choice[str]] = []
        if task:
            tracks = await self._tracks_in_time(interaction, task)
            if tracks is not None:
                choices = [
                    app_commands.Choice(name=song_words.suggestion(track, tracks), value=track.audio_id)
                    for track in song_words.matching(tracks, current)
                ]
        recent = await self._recent_ids(interaction, current, lambda job: job.audio_id, task_id=task)
        offered = {choice.value for choice in choices}
        return [*choices, *(choice for choice in recent if choice.value not in offered)][:25]

    async def _tracks_in_time(
        self, interaction: discord.Interaction[StemBot], task_id: str
    ) -> TaskTracks | None:
        try:
            task_id = clean_track_id("task_id", task_id)
        except StemBotError:
            return None
        left = interaction.created_at.timestamp() + AUTOCOMPLETE_SECONDS - time.time()
        return await self.bot.services.songs.tracks(task_id, wait=max(0.0, left))

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
        # The song's name when it is known already (never the API here: a lookup, if needed, runs
        # in the background and names the messages that follow).
        job = await services.songs.named(job)
        # Public: in the channel, for everyone, so in the server's language.
        with i18n.speaking(await language_in_public(interaction)):
            embed, view = results.queued(job), buttons.queued_view(job)
        await interaction.edit_original_response(embed=embed, view=view or discord.utils.MISSING)
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


class TrackMenu(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=r"stembot:pick:(?P<user>[0-9]{1,20}):(?P<mode>[a-z_]{1,20}):(?P<until>[0-9]{1,12}):(?P<menu>[0-9]{1,20})",
):
    """The private menu of a task's tracks. Its custom id says who may choose, the mode and until
    when, so it works after a restart; the chosen value is an audio id, whose task the database
    knows (only a finished task's tracks are offered, and those are kept, see `bot.songs`)."""

    def __init__(
        self,
        user_id: int,
        mode: str,
        until: int,
        menu_id: int,
        options: list[discord.SelectOption] | None = None,
        placeholder: str | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"stembot:pick:{user_id}:{mode}:{until}:{menu_id}",
                options=options or [discord.SelectOption(label="-", value="-")],
                placeholder=placeholder,
            )
        )
        self.user_id = user_id
        self.mode = mode
        self.until = until
        self.menu_id = menu_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        return cls(int(match["user"]), match["mode"], int(match["until"]), int(match["menu"]))

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        return not await refuse_if_not_installed(interaction)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Only the asker may choose, within the menu's ten minutes; the choice starts the split
        through `/split`'s own path (the same checks, the same one charge, a public reply)."""
        bot: StemBot = interaction.client
        sandbox = bot.services.settings.sandbox
        if interaction.user.id != self.user_id:
            await _private(interaction, song_words.menu_not_yours(), sandbox)
            return
        if time.time() > self.until or self.mode not in {mode.value for mode in Mode}:
            await _private(interaction, song_words.menu_expired(), sandbox)
            return
        menus = _menus(bot)
        values = interaction.data.get("values") if isinstance(interaction.data, dict) else None
        chosen = values[0] if isinstance(values, list) and len(values) == 1 else None
        try:
            audio_id = clean_track_id("audio_id", chosen if isinstance(chosen, str) else "")
            task_id = await bot.services.songs.task_of(audio_id)
            if task_id is None:
                await _private(interaction, song_words.track_gone(), sandbox)
                return
            if await self._chosen_before(bot, interaction, task_id) or not menus.take(self.menu_id):
                await _private(interaction, song_words.menu_used(), sandbox)
                return
            try:
                await start_split(bot, interaction, Mode(self.mode), task_id, audio_id)
            except BaseException:
                menus.give_back(self.menu_id)
                raise
        except StemBotError as error:
            await answer_expected_error(
                interaction, error, refusal=split_refusal, public_words=results.NOT_STARTED, sandbox=sandbox
            )
            return
        tracks = await bot.services.songs.known(task_id)
        track = tracks.track(audio_id) if tracks is not None else None
        if tracks is not None and track is not None:
            await menus.chosen(self.menu_id, song_words.chosen_words(track, tracks))

    async def _chosen_before(self, bot: StemBot, interaction: discord.Interaction[Any], task_id: str) -> bool:
        """Whether this menu already started a split: the member has a split of this task in this
        menu's mode made since the menu was shown (one of another mode came from another menu). The
        database's word, so it holds after a restart (when the menu could not be changed) and
        across processes; a second split needs `/split` again."""
        if interaction.guild_id is None:
            return False
        shown_at = self.until - MENU_SECONDS
        recent = await bot.services.library.own_recent(interaction.guild_id, interaction.user.id)
        return any(
            job.source_task_id == task_id and job.mode.value == self.mode and job.created_at >= shown_at
            for job in recent
        )


def _menus(bot: StemBot) -> Menus:
    cog = bot.get_cog(SplitCog.__cog_name__)
    return cog.menus if isinstance(cog, SplitCog) else Menus()


async def _private(interaction: discord.Interaction[Any], embed: discord.Embed, sandbox: bool) -> None:
    await interaction.response.send_message(embed=common.mark_sandbox(embed, sandbox), ephemeral=True)


async def split_by_task(
    bot: StemBot, interaction: discord.Interaction[StemBot], mode: Mode, task_id: str
) -> None:
    """`/split` with the task id alone. Its one track goes straight through `/split`'s path; with
    several, the member chooses from a private menu (nothing is reserved before the choice). When
    the tracks cannot be looked up, the member is told privately to give the audio id too, and
    where ids come from; nothing is charged or sent."""
    songs = bot.services.songs
    quick = interaction.created_at.timestamp() + QUICK_ANSWER_SECONDS - time.time()
    tracks = await songs.tracks(task_id, wait=max(0.0, quick))
    deferred = False
    if tracks is None and songs.asking(task_id):
        # Slower than Discord's 3 seconds allow: a private "thinking…", then the answer. A single
        # track is then offered as a menu of one (its split's reply must be public, this one is not).
        await interaction.response.defer(ephemeral=True, thinking=True)
        deferred = True
        tracks = await songs.tracks(task_id)
    if tracks is None or not tracks.tracks:
        await _menu_answer(
            bot, interaction, deferred, song_words.lookup_failed(no_tracks=tracks is not None), None
        )
        return
    if len(tracks.tracks) == 1 and not deferred:
        await start_split(bot, interaction, mode, task_id, tracks.tracks[0].audio_id)
        return
    view = discord.ui.View(timeout=None)
    view.add_item(
        TrackMenu(
            interaction.user.id,
            mode.value,
            int(time.time() + MENU_SECONDS),
            interaction.id,
            options=song_words.menu_options(tracks, mode),
            placeholder=song_words.menu_placeholder(mode),
        )
    )
    _menus(bot).showing(interaction.id, interaction)
    await _menu_answer(bot, interaction, deferred, song_words.menu(tracks, mode), view)


async def _menu_answer(
    bot: StemBot,
    interaction: discord.Interaction[StemBot],
    deferred: bool,
    embed: discord.Embed,
    view: discord.ui.View | None,
) -> None:
    common.mark_sandbox(embed, bot.services.settings.sandbox)
    if deferred:
        await interaction.edit_original_response(embed=embed, view=view)
    else:
        await interaction.response.send_message(
            embed=embed, view=view or discord.utils.MISSING, ephemeral=True
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
