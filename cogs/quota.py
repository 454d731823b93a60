"""/quota: members look at their credits and history; moderators run the server's credit economy.

Thin: each command defers privately, hands plain values (ids, role ids, the Manage Server flag) to
the quota service, which decides who may do what, and renders the answer. Each moderator action
also posts one line to the server's audit channel, if one is set.

Why no `default_member_permissions` here: Discord applies it to a whole top-level command, and
`/quota view` and `/quota history` must stay usable by every member for themselves. The service
checks moderator rights in code for every moderator subcommand instead (see docs/moderators/index.md,
"Who moderates").
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import economy, i18n, reports
from bot.discord_side.client import answer_expected_error
from bot.economy import MAX_AMOUNT
from bot.errors import StemBotError
from bot.models import KeepStems, LedgerKind, MixStems, Period, ReuseCharge
from bot.quota import (
    MAX_COOLDOWN_SECONDS,
    MAX_JOBS_PER_MEMBER,
    MAX_REASON_LENGTH,
    SERVER_LANGUAGE,
    Clearable,
    QuotaService,
    SettingsChange,
)
from bot.render import common, quota, usage
from cogs.charts import send_report
from cogs.paging import Pager
from cogs.people import actor_of, member_of

if TYPE_CHECKING:
    from bot.discord_side.client import StemBot

log = logging.getLogger(__name__)

"""Seconds the history page buttons keep working after the last press."""

AnyUser = discord.Member | discord.User
Reason = app_commands.Range[str, 1, MAX_REASON_LENGTH]
PERIOD_CHOICES = [
    app_commands.Choice(name=economy.PERIOD_NAMES[period], value=period.value)
    for period in (Period.DAILY, Period.WEEKLY, Period.MONTHLY, Period.NEVER)
]
CLEAR_CHOICES = [
    app_commands.Choice(name="Moderator role", value=Clearable.MODERATOR_ROLE.value),
    app_commands.Choice(name="Audit channel", value=Clearable.AUDIT_CHANNEL.value),
    app_commands.Choice(
        name="Splits at once (back to the bot's default)", value=Clearable.JOBS_PER_MEMBER.value
    ),
]
REUSE_CHARGE_CHOICES = [
    app_commands.Choice(
        name="Free: members don't pay for stems already split here", value=ReuseCharge.FREE.value
    ),
    app_commands.Choice(name="Full price, as if it were a new split", value=ReuseCharge.FULL.value),
]
KEEP_STEMS_CHOICES = [
    app_commands.Choice(
        name="Members choose: a Keep in Discord button on each result", value=KeepStems.BUTTON.value
    ),
    app_commands.Choice(
        name="Always: every successful split is kept in Discord", value=KeepStems.ALWAYS.value
    ),
    app_commands.Choice(name="Off: no button", value=KeepStems.OFF.value),
]
MIX_STEMS_CHOICES = [
    app_commands.Choice(name="On: a Mix stems button on each full split", value=MixStems.ON.value),
    app_commands.Choice(name="Off: no button, no /stems mix", value=MixStems.OFF.value),
]
LANGUAGE_CHOICES = [
    # Each language by its name in itself, as a member who speaks it looks for it.
    *(app_commands.Choice(name=language.name, value=language.code) for language in i18n.LANGUAGES),
    app_commands.Choice(name="The server's own language", value=SERVER_LANGUAGE),
]
REASON_HELP = "Why (shown in the member's history and the audit channel)"


class QuotaCog(commands.Cog):
    quota = app_commands.Group(
        name="quota",
        description="Credits in this server: yours, and for moderators everyone's",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
    )

    def __init__(self, bot: StemBot) -> None:
        self.bot = bot

    @property
    def _service(self) -> QuotaService:
        return self.bot.services.quota

    # -- anyone -----------------------------------------------------------------------------

    @quota.command(name="view", description="Credits: balance, allowance, next refill, bonus, spending")
    @app_commands.describe(member="Whose credits (default: yours; others' need a moderator)")
    async def view(self, interaction: discord.Interaction[StemBot], member: AnyUser | None = None) -> None:
        """Show a member's credits: balance, allowance and next refill, bonus, spent, splits running."""
        guild_id = await self._defer(interaction)
        actor = actor_of(interaction)
        summary = await self._service.view(guild_id, actor, member_of(member) if member else None)
        shown = member.id if member is not None and member.id != actor.user_id else None
        await interaction.followup.send(
            embed=common.mark_sandbox(
                quota.credits(summary, member_id=shown), self.bot.services.settings.sandbox
            ),
            ephemeral=True,
        )

    @quota.command(name="history", description="Every credit change, newest first, with who made it")
    @app_commands.describe(member="Whose history (default: yours; others' need a moderator)")
    async def history(self, interaction: discord.Interaction[StemBot], member: AnyUser | None = None) -> None:
        """Show every change to a member's credits, newest first, a page at a time."""
        guild_id = await self._defer(interaction)
        actor = actor_of(interaction)
        member_id = member.id if member is not None else actor.user_id
        page = await self._service.history(guild_id, actor, member_id)
        embed = common.mark_sandbox(quota.history(page, member_id), self.bot.services.settings.sandbox)
        if page.pages <= 1:
            await interaction.followup.send(embed=embed, ephemeral=True)
            return
        first = page

        async def turn(pressed: discord.Interaction[Any], number: int) -> tuple[discord.Embed, int, int]:
            # Rights as of this press, not as of the command: a moderator who lost them stops here.
            shown = await self._service.history(
                guild_id, actor_of(pressed), member_id, page=number, newest_id=first.newest_id
            )
            return (
                common.mark_sandbox(quota.history(shown, member_id), self.bot.services.settings.sandbox),
                shown.page,
                shown.pages,
            )

        pager = Pager(
            turn,
            owner_id=actor.user_id,
            page=page.page,
            pages=page.pages,
            refused=quota.pager_refused(),
        )
        pager.message = await interaction.followup.send(embed=embed, view=pager, ephemeral=True, wait=True)

    # -- moderators: usage ---------------------------------------------------------------------

    @quota.command(name="report", description="Moderators: a chart of credits spent per day, with totals")
    @app_commands.describe(
        days=f"How many days back, today included (default {reports.DEFAULT_DAYS})",
        member="Only this member's days (default: the whole server)",
    )
    async def report(
        self,
        interaction: discord.Interaction[StemBot],
        days: app_commands.Range[int, 1, reports.MAX_DAYS] = reports.DEFAULT_DAYS,
        member: AnyUser | None = None,
    ) -> None:
        """A chart of the credits spent per day by mode, refunds and the monthly budget, with the
        totals, the top members and the failure rate below it."""
        guild_id = await self._defer(interaction)
        service = self.bot.services.reports
        shown = await service.usage(guild_id, actor_of(interaction), days, member.id if member else None)
        await send_report(
            interaction,
            empty=shown.empty,
            summary=lambda with_chart: usage.usage_summary(shown, with_chart=with_chart),
            chart=lambda: usage.usage_chart(shown),
            draw=service.draw,
        )

    @quota.command(name="export", description="Moderators: the credit ledger as a spreadsheet (CSV) file")
    @app_commands.describe(days=f"How many days back, today included (default {reports.DEFAULT_DAYS})")
    async def export(
        self,
        interaction: discord.Interaction[StemBot],
        days: app_commands.Range[int, 1, reports.MAX_DAYS] = reports.DEFAULT_DAYS,
    ) -> None:
        """Every credit change of the last days as a CSV file: time (UTC), member, change, balance
        after, kind, job, reason and who made it."""
        guild_id = await self._defer(interaction)
        made = await self.bot.services.reports.export(
            guild_id, actor_of(interaction), days, upload_limit=interaction.filesize_limit
        )
        try:
            await interaction.followup.send(
                usage.export_ready(made, days),
                file=discord.File(made.path, filename=made.filename),
                ephemeral=True,
            )
        finally:
            await asyncio.to_thread(os.unlink, made.path)

    # -- moderators: one member ---------------------------------------------------------------

    @quota.command(
        name="grant", description="Moderators: give bonus credits (a negative amount takes some away)"
    )
    @app_commands.describe(
        member="Who gets them",
        amount="Credits to add; negative to take away",
        reason=REASON_HELP,
    )
    async def grant(
        self,
        interaction: discord.Interaction[StemBot],
        member: AnyUser,
        amount: app_commands.Range[int, -MAX_AMOUNT, MAX_AMOUNT],
        reason: Reason | None = None,
    ) -> None:
        """Give a member bonus credits, kept across refills until spent; a negative amount takes some away."""
        await self._correct(interaction, LedgerKind.GRANT, member, amount, reason)

    @quota.command(name="set", description="Moderators: set a member's balance exactly")
    @app_commands.describe(member="Whose balance", amount="The new balance", reason=REASON_HELP)
    async def set_balance(
        self,
        interaction: discord.Interaction[StemBot],
        member: AnyUser,
        amount: app_commands.Range[int, 0, MAX_AMOUNT],
        reason: Reason | None = None,
    ) -> None:
        """Set a member's balance exactly: allowance up to their allowance, anything above it bonus."""
        await self._correct(interaction, LedgerKind.SET, member, amount, reason)

    @quota.command(name="reset", description="Moderators: back to the member's full allowance, bonus cleared")
    @app_commands.describe(member="Whose balance", reason=REASON_HELP)
    async def reset(
        self, interaction: discord.Interaction[StemBot], member: AnyUser, reason: Reason | None = None
    ) -> None:
        """Put a member back to this period's full allowance and clear their bonus credits."""
        await self._correct(interaction, LedgerKind.RESET, member, None, reason)

    async def _correct(
        self,
        interaction: discord.Interaction[StemBot],
        kind: LedgerKind,
        member: AnyUser,
        amount: int | None,
        reason: str | None,
    ) -> None:
        guild_id = await self._defer(interaction)
        actor = actor_of(interaction)
        target = member_of(member)
        if kind is LedgerKind.GRANT:
            assert amount is not None
            done = await self._service.grant(guild_id, actor, target, amount, reason)
        elif kind is LedgerKind.SET:
            assert amount is not None
            done = await self._service.set_balance(guild_id, actor, target, amount, reason)
        else:
            done = await self._service.reset(guild_id, actor, target, reason)
        posted = await _audit(
            self.bot, interaction, lambda: quota.audit_correction(kind, actor.user_id, done)
        )
        await _reply(self.bot, interaction, [quota.correction(kind, done)], posted)

    @quota.command(name="block", description="Moderators: stop a member from starting splits")
    @app_commands.describe(
        member="Who to block", reason="Why (the member is shown this when they try to split)"
    )
    async def block(
        self, interaction: discord.Interaction[StemBot], member: AnyUser, reason: Reason | None = None
    ) -> None:
        """Stop a member from starting splits in this server; they are told so when they try."""
        guild_id = await self._defer(interaction)
        actor = actor_of(interaction)
        change = await self._service.block(guild_id, actor, member_of(member), reason)
        posted = (
            await _audit(self.bot, interaction, lambda: quota.audit_block(actor.user_id, change))
            if change.changed
            else None
        )
        await _reply(self.bot, interaction, [quota.block_change(change)], posted)

    @quota.command(name="unblock", description="Moderators: let a blocked member start splits again")
    @app_commands.describe(member="Who to unblock")
    async def unblock(self, interaction: discord.Interaction[StemBot], member: AnyUser) -> None:
        """Let a blocked member start splits again."""
        guild_id = await self._defer(interaction)
        actor = actor_of(interaction)
        change = await self._service.unblock(guild_id, actor, member_of(member))
        posted = (
            await _audit(self.bot, interaction, lambda: quota.audit_block(actor.user_id, change))
            if change.changed
            else None
        )
        await _reply(self.bot, interaction, [quota.block_change(change)], posted)

    # -- moderators: the server ---------------------------------------------------------------

    @quota.command(name="allowance", description="Moderators: credits per period for everyone, or for a role")
    @app_commands.describe(
        amount="Credits each member gets per period (0 for a role: no allowance of its own)",
        period="How often allowances refill (the whole server's schedule; default: unchanged)",
        role="Give this role its own allowance; members get the highest of server and roles",
        apply_now="Refill everyone it concerns to the new amount now (default: at the next refill)",
    )
    @app_commands.choices(period=PERIOD_CHOICES)
    async def allowance(
        self,
        interaction: discord.Interaction[StemBot],
        amount: app_commands.Range[int, 0, MAX_AMOUNT],
        period: app_commands.Choice[str] | None = None,
        role: discord.Role | None = None,
        apply_now: bool = False,
    ) -> None:
        """Set the credits members get each period, for the whole server or for members with a role."""
        guild_id = await self._defer(interaction)
        actor = actor_of(interaction)
        # @everyone is every member: that is the server's allowance.
        role_id = role.id if role is not None and not role.is_default() else None
        update = await self._service.set_allowance(
            guild_id,
            actor,
            amount,
            period=Period(period.value) if period else None,
            role_id=role_id,
            apply_now=apply_now,
        )
        posted = await _audit(self.bot, interaction, lambda: quota.audit_allowance(actor.user_id, update))
        await _reply(self.bot, interaction, [quota.allowance_update(update)], posted)

    @quota.command(
        name="settings", description="Moderators: refill time, time zone, limits, moderator role, audit"
    )
    @app_commands.describe(
        refill_time="Time of day allowances refill, HH:MM on a 24-hour clock (default 00:00)",
        timezone="Time zone of the refill time, e.g. Europe/Berlin (default UTC)",
        jobs_per_member="Splits one member may have running at once",
        cooldown_seconds="Seconds a member must wait between starting splits (0: none)",
        moderator_role="Manage Server only: a role whose members may also run the moderator commands",
        audit_channel="Manage Server only: where every moderator action is posted as one line",
        reuse_charge="What members pay for stems this server already split (default: free)",
        keep_stems="Stems posted as files in Discord, so they outlive the links (default: members choose)",
        mix_stems="Members mix a full split's stems into one file, e.g. without drums (default: on)",
        mix_price="Credits a member pays for each mix (default: 0, free)",
        language="Language of public messages: results, threads, audit channel (default: the server's)",
        clear="Unset one of the settings (moderator role, audit channel: Manage Server only)",
    )
    @app_commands.choices(
        clear=CLEAR_CHOICES,
        reuse_charge=REUSE_CHARGE_CHOICES,
        keep_stems=KEEP_STEMS_CHOICES,
        mix_stems=MIX_STEMS_CHOICES,
        language=LANGUAGE_CHOICES,
    )
    async def settings(
        self,
        interaction: discord.Interaction[StemBot],
        refill_time: app_commands.Range[str, 1, 5] | None = None,
        timezone: app_commands.Range[str, 1, 64] | None = None,
        jobs_per_member: app_commands.Range[int, 1, MAX_JOBS_PER_MEMBER] | None = None,
        cooldown_seconds: app_commands.Range[int, 0, MAX_COOLDOWN_SECONDS] | None = None,
        moderator_role: discord.Role | None = None,
        audit_channel: discord.TextChannel | None = None,
        reuse_charge: app_commands.Choice[str] | None = None,
        keep_stems: app_commands.Choice[str] | None = None,
        mix_stems: app_commands.Choice[str] | None = None,
        mix_price: app_commands.Range[int, 0, MAX_AMOUNT] | None = None,
        language: app_commands.Choice[str] | None = None,
        clear: app_commands.Choice[str] | None = None,
    ) -> None:
        """Show this server's credit settings, or change them with the options."""
        guild_id = await self._defer(interaction)
        actor = actor_of(interaction)
        change = SettingsChange(
            refill_time=refill_time,
            timezone=timezone,
            jobs_per_member=jobs_per_member,
            cooldown_seconds=cooldown_seconds,
            moderator_role_id=moderator_role.id if moderator_role is not None else None,
            audit_channel_id=audit_channel.id if audit_channel is not None else None,
            reuse_charge=ReuseCharge(reuse_charge.value) if reuse_charge else None,
            keep_stems=KeepStems(keep_stems.value) if keep_stems else None,
            mix_stems=MixStems(mix_stems.value) if mix_stems else None,
            mix_price=mix_price,
            language=language.value if language else None,
            clear=frozenset({Clearable(clear.value)}) if clear else frozenset(),
        )
        update = await self._service.update_settings(guild_id, actor, change)
        posted = (
            await _audit(self.bot, interaction, lambda: quota.audit_settings(actor.user_id, update))
            if update.changed
            else None
        )
        *first, last = quota.settings_overview(update)
        for message in first:
            await interaction.followup.send(
                embeds=[common.mark_sandbox(e, self.bot.services.settings.sandbox) for e in message.embeds],
                ephemeral=True,
            )
        await _reply(self.bot, interaction, last.embeds, posted)

    @settings.autocomplete("timezone")
    async def timezone_autocomplete(
        self, interaction: discord.Interaction[StemBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=name, value=name) for name in economy.timezone_suggestions(current)]

    # -- helpers ----------------------------------------------------------------------------

    async def _defer(self, interaction: discord.Interaction[StemBot]) -> int:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        return interaction.guild_id

    # `Interaction[Any]`: discord.py declares this hook for any client type, so a narrower one here
    # would not be a valid override (the bot's own client is `self.bot`).
    async def cog_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Refusals (not a moderator, a balance that would go negative, a bad setting) and options
        Discord could not resolve, answered privately: each command body is the happy path."""
        await answer_expected_error(
            interaction, error, refusal=_refusal, sandbox=self.bot.services.settings.sandbox
        )


async def _reply(
    bot: StemBot, interaction: discord.Interaction[StemBot], embeds: list[discord.Embed], posted: bool | None
) -> None:
    """The moderator's private answer, saying so when its audit line could not be posted."""
    if posted is False:
        embeds[-1].add_field(
            name=i18n._("Audit channel"),
            value=i18n._(
                "Couldn't post this in the audit channel: check that {bot} may view it and send "
                "messages there.",
                bot="StemBot",
            ),
            inline=False,
        )
    await interaction.followup.send(
        embeds=[common.mark_sandbox(e, bot.services.settings.sandbox) for e in embeds],
        ephemeral=True,
    )


async def _audit(
    bot: StemBot, interaction: discord.Interaction[StemBot], render: Callable[[], str]
) -> bool | None:
    """Post one line about a moderator action to the audit channel, rendered in the server's
    language (the channel is public; the moderator's own answer speaks theirs). None when the
    server has no audit channel; False when posting failed (logged: it never undoes or blocks the
    action)."""
    assert interaction.guild_id is not None
    channel_id = await bot.services.quota.audit_channel_id(interaction.guild_id)
    if channel_id is None:
        return None
    # The server's language as `public_language` decides it, asked of this bot's own services.
    public = await bot.services.languages.public(interaction.guild_id, interaction.guild_locale)
    with i18n.speaking(public):
        line = render()
    try:
        channel = bot.get_channel(channel_id) or await bot.fetch_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise TypeError(f"channel {channel_id} is a {type(channel).__name__}")
        await channel.send(line, allowed_mentions=discord.AllowedMentions.none())
    except (discord.HTTPException, discord.InvalidData, TypeError) as error:
        log.warning(
            "guild=%s: could not post to the audit channel %s: %s",
            interaction.guild_id,
            channel_id,
            error,
        )
        return False
    return True


def _refusal(error: StemBotError) -> discord.Embed:
    return quota.quota_refused(str(error))


async def setup(bot: StemBot) -> None:
    await bot.add_cog(QuotaCog(bot))
