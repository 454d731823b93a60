"""/stems: a member's library of splits in a server: list them, show one again (privately or to
the channel), cancel one that has not been sent, and choose expiry reminders."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Self

import discord
from discord import app_commands
from discord.ext import commands

from bot import i18n
from bot.discord_side.client import answer_expected_error, refuse_if_not_installed
from bot.discord_side.language import public_language
from bot.errors import StemBotError, UnknownJob
from bot.library import LibraryService
from bot.models import CancelOutcome, JobState
from bot.product import Mode
from bot.render import buttons, common, library, results
from bot.render import keep as keep_words
from cogs.mixing import MixPicker, show_picker
from cogs.paging import Pager
from cogs.people import actor_of
from cogs.split import split_refusal, start_split

if TYPE_CHECKING:
    from bot.discord_side.client import StemBot

JobNumber = app_commands.Range[int, 1, 2**53]
AnyMember = discord.Member | discord.User


class _JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """A button for one job that keeps working after a restart: the job's number is in its custom
    id, and discord.py hands every press whose id matches a subclass's `template` to it."""

    LABEL: str
    CUSTOM_ID: str  # with a `{job}` field

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(label=buttons.label(self.LABEL), custom_id=self.CUSTOM_ID.format(job=job_id))
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        return cls(int(match["job"]))

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Presses in a server that has not added the bot are refused before anything starts (the
        tree does the same for commands); presses in DMs, under results delivered there, work."""
        return not await refuse_if_not_installed(interaction)


class UpgradeButton(_JobButton, template=common.UPGRADE_BUTTON_PATTERN):
    """ "Split into 12 stems" under a 2-stem result: whoever presses it starts their own full split
    of the same track, under every `/split` rule. Works after restarts (the job is in the id)."""

    LABEL = common.UPGRADE_BUTTON_LABEL
    CUSTOM_ID = common.UPGRADE_BUTTON_ID

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: StemBot = interaction.client
        try:
            if interaction.guild_id is None:
                raise UnknownJob(self.job_id)
            source = await bot.services.library.track_of(interaction.guild_id, self.job_id)
            await start_split(bot, interaction, Mode.SPLIT_STEM, source.source_task_id, source.audio_id)
        except StemBotError as error:
            await answer_expected_error(
                interaction,
                error,
                refusal=split_refusal,
                public_words=results.NOT_STARTED,
                sandbox=bot.services.settings.sandbox,
            )


class CancelButton(_JobButton, template=common.CANCEL_BUTTON_PATTERN):
    """Cancel under a queued split: its member or a moderator calls it off (others are told why
    not, privately)."""

    LABEL = common.CANCEL_BUTTON_LABEL
    CUSTOM_ID = common.CANCEL_BUTTON_ID

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: StemBot = interaction.client
        try:
            if interaction.guild_id is None:
                raise UnknownJob(self.job_id)
            done = await bot.services.library.cancel(
                interaction.guild_id, actor_of(interaction), self.job_id, mark_message=False
            )
        except StemBotError as error:
            await answer_expected_error(interaction, error, sandbox=bot.services.settings.sandbox)
            return
        assert done.job is not None
        if done.outcome is CancelOutcome.CANCELLED:
            # The queued message itself now says so, and loses its button: public, so in the
            # server's language.
            with i18n.speaking(await public_language(interaction)):
                cancelled = library.cancelled(done.job, done.refund)
            await interaction.response.edit_message(embed=cancelled, view=None)
        else:
            await interaction.response.send_message(embed=library.cancel_answer(done), ephemeral=True)


class KeepButton(_JobButton, template=common.KEEP_BUTTON_PATTERN):
    """Keep in Discord under a result: its member or a moderator has the stems posted as files in a
    thread (others are told why not, privately). Works after restarts (the job is in the id)."""

    LABEL = common.KEEP_BUTTON_LABEL
    CUSTOM_ID = common.KEEP_BUTTON_ID

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await keep_stems(interaction.client, interaction, self.job_id)


class MixButton(_JobButton, template=common.MIX_BUTTON_PATTERN):
    """Mix stems under a full split's result: any member of the server gets the stem picker."""

    LABEL = common.MIX_BUTTON_LABEL
    CUSTOM_ID = common.MIX_BUTTON_ID

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await show_picker(interaction.client, interaction, self.job_id)


async def keep_stems(bot: StemBot, interaction: discord.Interaction[Any], job_id: int) -> None:
    """Ask to keep a result in Discord; the answer is private."""
    try:
        request = await bot.services.keeper.request(
            interaction.guild_id,
            actor_of(interaction),
            job_id,
            channel_id=interaction.channel_id,
            attach_here=interaction.app_permissions.attach_files,
            upload_limit=interaction.filesize_limit,
        )
    except StemBotError as error:
        await answer_expected_error(interaction, error, sandbox=bot.services.settings.sandbox)
        return
    answer = keep_words.keep_answer(
        request.keep, request.job, started=request.started, last_failure=request.last_failure
    )
    await interaction.response.send_message(
        embed=common.mark_sandbox(answer, bot.services.settings.sandbox), ephemeral=True
    )


class StemsCog(commands.Cog):
    stems = app_commands.Group(
        name="stems",
        description="Your splits in this server: find them, show, keep or mix one, cancel one",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
    )

    def __init__(self, bot: StemBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        # Every result's and queued message's buttons, whenever they were posted.
        self.bot.add_dynamic_items(UpgradeButton, CancelButton, KeepButton, MixButton, MixPicker)

    @property
    def _library(self) -> LibraryService:
        return self.bot.services.library

    @stems.command(
        name="list", description="Your splits here, newest first, with their state and link expiry"
    )
    @app_commands.describe(member="Whose splits (default: yours; others' need a moderator)")
    async def list_(self, interaction: discord.Interaction[StemBot], member: AnyMember | None = None) -> None:
        """List a member's splits in this server, newest first, ten to a page."""
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        actor = actor_of(interaction)
        member_id = member.id if member is not None else actor.user_id
        guild_id = interaction.guild_id
        first = await self._library.page(guild_id, actor, member_id)
        own = member_id == actor.user_id
        embed = common.mark_sandbox(
            library.library(first, member_id, own=own, now=time.time()), self.bot.services.settings.sandbox
        )
        if first.pages <= 1:
            await interaction.followup.send(embed=embed, ephemeral=True)
            return

        async def turn(pressed: discord.Interaction[Any], page: int) -> tuple[discord.Embed, int, int]:
            shown = await self._library.page(
                guild_id, actor_of(pressed), member_id, page=page, newest_id=first.newest_id
            )
            embed = common.mark_sandbox(
                library.library(shown, member_id, own=own, now=time.time()),
                self.bot.services.settings.sandbox,
            )
            return embed, shown.page, shown.pages

        pager = Pager(
            turn, owner_id=actor.user_id, page=first.page, pages=first.pages, refused=library.pager_refused()
        )
        pager.message = await interaction.followup.send(embed=embed, view=pager, ephemeral=True, wait=True)

    @stems.command(name="show", description="Show one of your splits again: its stems, or why it failed")
    @app_commands.describe(
        job="The job number (suggested as you type)",
        public="Post it in this channel for everyone (default: only you)",
    )
    async def show(
        self, interaction: discord.Interaction[StemBot], job: JobNumber, public: bool = False
    ) -> None:
        """Show a split again as its result looks: links, names, expiry, or its failure and refund."""
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=not public, thinking=True)
        found = await self._library.job(interaction.guild_id, actor_of(interaction), job)
        keep = await self._library.keep_of(found)
        refund = await self._library.refund_of(found) if found.state is JobState.CANCELLED else None
        # Shown to the channel, it speaks the server's language; to the member alone, theirs.
        languages = self.bot.services.languages
        language = (
            await languages.public(interaction.guild_id, interaction.guild_locale)
            if public
            else i18n.current()
        )
        with i18n.speaking(language):
            messages = library.shown(found, time.time(), keep, refund)
        for message in messages:
            await interaction.followup.send(
                content=message.content or discord.utils.MISSING,
                embeds=[common.mark_sandbox(e, self.bot.services.settings.sandbox) for e in message.embeds],
                view=message.view or discord.utils.MISSING,
                ephemeral=not public,
                allowed_mentions=discord.AllowedMentions.none(),
            )

    @stems.command(
        name="cancel", description="Cancel a split that has not been sent yet; its credits come back"
    )
    @app_commands.describe(job="The job number (suggested as you type)")
    async def cancel(self, interaction: discord.Interaction[StemBot], job: JobNumber) -> None:
        """Cancel a queued split (one not yet sent to the separation service) and get its credits back."""
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        done = await self._library.cancel(interaction.guild_id, actor_of(interaction), job)
        await interaction.followup.send(
            embed=common.mark_sandbox(library.cancel_answer(done), self.bot.services.settings.sandbox),
            ephemeral=True,
        )

    @stems.command(
        name="keep", description="Keep a split's stems in Discord: playable files in a thread, for good"
    )
    @app_commands.describe(job="The job number (suggested as you type)")
    async def keep(self, interaction: discord.Interaction[StemBot], job: JobNumber) -> None:
        """Post a finished split's stems as files in a thread on its result, so they outlive the links."""
        await keep_stems(self.bot, interaction, job)

    @stems.command(
        name="mix", description="Mix some stems of a full split here into one file: the song without drums"
    )
    @app_commands.describe(job="The job number (any split of this server; suggested as you type)")
    async def mix(self, interaction: discord.Interaction[StemBot], job: JobNumber) -> None:
        """Choose stems of a full split to mix into one audio file, posted in the result's thread."""
        await show_picker(self.bot, interaction, job)

    @stems.command(name="reminders", description="Turn your reminders before download links expire on or off")
    @app_commands.describe(enabled="True: remind me before my links expire; False: don't")
    async def reminders(self, interaction: discord.Interaction[StemBot], enabled: bool) -> None:
        """Choose whether you get a reminder before your stems' links expire (for every server)."""
        await self._library.set_reminders(interaction.user.id, enabled)
        hours = self.bot.services.reminders.window / 3600
        await interaction.response.send_message(
            embed=common.mark_sandbox(
                library.reminders_answer(enabled, hours), self.bot.services.settings.sandbox
            ),
            ephemeral=True,
        )

    @show.autocomplete("job")
    @cancel.autocomplete("job")
    @keep.autocomplete("job")
    async def job_autocomplete(
        self, interaction: discord.Interaction[StemBot], current: str
    ) -> list[app_commands.Choice[int]]:
        if interaction.guild_id is None:
            return []
        jobs = await self._library.suggestions(interaction.guild_id, actor_of(interaction), current)
        now = time.time()
        return [app_commands.Choice(name=library.suggestion(job, now), value=job.id) for job in jobs]

    @mix.autocomplete("job")
    async def mix_job_autocomplete(
        self, interaction: discord.Interaction[StemBot], current: str
    ) -> list[app_commands.Choice[int]]:
        """As `job_autocomplete`, but any job of the server: any member may mix any result here."""
        if interaction.guild_id is None:
            return []
        jobs = await self._library.server_suggestions(interaction.guild_id, current)
        now = time.time()
        return [app_commands.Choice(name=library.suggestion(job, now), value=job.id) for job in jobs]

    # `Interaction[Any]`: discord.py declares this hook for any client type, so a narrower one here
    # would not be a valid override (the bot's own client is `self.bot`).
    async def cog_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        public = bool(getattr(interaction.namespace, "public", False))
        await answer_expected_error(
            interaction,
            error,
            public_words=common.NOT_FINISHED if public else None,
            sandbox=self.bot.services.settings.sandbox,
        )


async def setup(bot: StemBot) -> None:
    await bot.add_cog(StemsCog(bot))
