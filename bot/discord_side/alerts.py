"""Operator alerts in Discord: one line in each server's audit channel, or the log when none;
a server's budget alerts go to that server's audit channel only; the bot's own budget alerts go to
the bot's owner alone, by DM (the application's owner, or its team's admins and developers: those
`/stembot budget` answers).

Sent without an interaction, so each says which language it speaks: an audit channel is public,
so the server's language; a DM, its reader's as last seen (`bot.languages`); the log, English."""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord

from bot import i18n
from bot.languages import Languages
from bot.models import BudgetAlert, DeploymentAlert, PauseReason
from bot.render import operators
from bot.store import Store

log = logging.getLogger(__name__)


class DiscordAlerter:
    def __init__(self, client: discord.Client, store: Store, languages: Languages | None = None) -> None:
        """`languages`: the bot's (`Services.languages`); by default one of its own on `store`."""
        self._client = client
        self._store = store
        self._languages = languages or Languages(store)

    async def splitting_paused(self, reason: PauseReason) -> None:
        await self._post(lambda: operators.splitting_paused_alert(reason))

    async def splitting_resumed(self) -> None:
        await self._post(operators.splitting_resumed_alert)

    async def budget_alert(self, alert: BudgetAlert) -> None:
        guild_id = alert.budget.guild_id
        settings, _rules = await self._store.economy.get(guild_id)
        if settings.audit_channel_id is None:
            log.warning("Guild %s has no audit channel for this alert: %s", guild_id, _english(alert))
            return
        with i18n.speaking(await self._languages.public(guild_id)):
            text = operators.budget_alert(alert)
        await self._send(guild_id, settings.audit_channel_id, text, logged=lambda: _english(alert))

    async def bot_budget_alert(self, alert: DeploymentAlert) -> None:
        """DM the bot's owner(s): the whole bot's figures are theirs, not any server's. A DM that
        fails (closed DMs: 50007) is logged and not tried again; the log has the alert anyway."""
        try:
            owners = await self._owner_ids()
        except discord.HTTPException as exc:
            log.warning(
                "Could not ask Discord who owns the bot (%s) to tell them: %s",
                exc.status,
                _english_bot(alert),
            )
            return
        for user_id in sorted(owners):
            with i18n.speaking(await self._languages.member(user_id)):
                text = operators.bot_budget_alert(alert)
            try:
                channel = await self._client.create_dm(discord.Object(user_id))
                await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
            except discord.HTTPException as exc:
                log.warning(
                    "Could not DM the bot's owner %s (%s %s): %s",
                    user_id,
                    exc.status,
                    exc.code,
                    _english_bot(alert),
                )

    async def _owner_ids(self) -> set[int]:
        """Who owns the application, as `is_owner` decides it: the owner, or a team's admins and
        developers (read-only members are not owners)."""
        app = await self._client.application_info()
        if app.team is None:
            return {app.owner.id}
        roles = (discord.TeamMemberRole.admin, discord.TeamMemberRole.developer)
        return {member.id for member in app.team.members if member.role in roles}

    async def _post(self, render: Callable[[], str]) -> None:
        """Post an alert in every audit channel, each in its server's language."""
        channels = await self._store.economy.audit_channels()

        def logged() -> str:
            with i18n.speaking(i18n.ENGLISH):
                return render()

        if not channels:
            log.warning("No server has an audit channel for this alert: %s", logged())
            return
        for guild_id, channel_id in channels:
            with i18n.speaking(await self._languages.public(guild_id)):
                text = render()
            await self._send(guild_id, channel_id, text, logged=logged)

    async def _send(self, guild_id: int, channel_id: int, text: str, *, logged: Callable[[], str]) -> None:
        """Post `text`; `logged` says the same alert in English, for the log if posting fails."""
        channel = self._client.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        except Exception as exc:  # one server's channel must not keep the alert from the others
            log.warning("Could not post an alert in guild %s (%r): %s", guild_id, exc, logged())


def _english(alert: BudgetAlert) -> str:
    """The alert as the log says it: in English, whoever reads the channel."""
    with i18n.speaking(i18n.ENGLISH):
        return operators.budget_alert(alert)


def _english_bot(alert: DeploymentAlert) -> str:
    with i18n.speaking(i18n.ENGLISH):
        return operators.bot_budget_alert(alert)
