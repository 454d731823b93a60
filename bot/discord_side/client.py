"""The Discord client: loads the cogs, syncs commands only when they changed, runs the job runner."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import i18n
from bot.discord_side.language import public_language
from bot.discord_side.names import seen_names
from bot.discord_side.translator import CommandTranslator, translated_commands
from bot.errors import StemBotError
from bot.i18n import _
from bot.invite import invite_url
from bot.models import ServerStatus, StatusReport
from bot.render import common
from bot.services import Services
from bot.tasks import log_failure

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.split", "cogs.credits", "cogs.quota", "cogs.stems", "cogs.status")


async def answer_privately(interaction: discord.Interaction[Any], public_words: str, **message: Any) -> bool:
    """Send `message` (follow-up keywords: content, embed...) to the invoker alone, after a public
    "thinking…" reply.

    The first follow-up after a defer replaces the "thinking…" message and inherits its
    visibility, whatever `ephemeral` says. So the public reply is deleted first or, where Discord
    won't, ended with `public_words`, which tell others nothing; only then does the message go,
    as a private message of its own. If the public reply could be neither deleted nor edited,
    nothing is sent (it would land in public) and False is returned.

    `public_words` is an English msgid marked with `N_` (`common.NOT_FINISHED`,
    `results.NOT_STARTED`): shown in public, it is said in the server's language.
    """
    try:
        await interaction.delete_original_response()
    except discord.HTTPException:
        with i18n.speaking(await language_in_public(interaction)):
            words = _(public_words)
        try:
            await interaction.edit_original_response(content=words, embed=None)
        except discord.HTTPException:
            log.warning(
                "Could not end the public reply for member %s; not sending them the private answer",
                interaction.user.id,
            )
            return False
    await interaction.followup.send(**message, ephemeral=True)
    return True


async def thinking_in_public(interaction: discord.Interaction[Any]) -> bool:
    """Whether the interaction's reply is still a public "thinking…" (a public defer not yet
    filled), which the next follow-up would fill in public."""
    message = await interaction.original_response()
    return message.flags.loading and not message.flags.ephemeral


async def language_in_public(interaction: discord.Interaction[Any]) -> i18n.Language:
    """The language of a public message this interaction leads to (`public_language`); should it
    not be known now (the database failed), the one being spoken, so the message still goes."""
    try:
        return await public_language(interaction)
    except Exception as error:
        log.warning(
            "interaction %s: the server's language is unknown (%s); speaking the member's",
            interaction.id,
            type(error).__name__,
        )
        return i18n.current()


ERROR_ANSWERED = "stembot.error_answered"
"""Key in `interaction.extras`: a cog's error handler has answered the member. discord.py calls the
cog's `cog_app_command_error` and then the tree's `on_error` for the same error; the tree checks
this so the member is answered once."""


ACKNOWLEDGED = "stembot.acknowledged"
"""Key in `interaction.extras`: how to remove the record of a split's acknowledgement (`bot.acks`)
that became no job (an async callable); the error handler calls it once it answered the member."""


async def forget_acknowledgement(interaction: discord.Interaction[Any], *, answered: bool = True) -> None:
    """The member has been answered: their split's acknowledgement record, if any, goes. If that
    fails, the record lapses and another look tells them once more that it did not start (true).
    Not `answered` (Discord refused the answer): the record stays, to be answered by that look."""
    forget: Callable[[], Awaitable[None]] | None = interaction.extras.pop(ACKNOWLEDGED, None)
    if forget is None or not answered:
        return
    try:
        await forget()
    except Exception as error:
        log.warning(
            "interaction %s: could not remove its acknowledgement record (%s)",
            interaction.id,
            type(error).__name__,
        )


def original_error(error: app_commands.AppCommandError | StemBotError) -> BaseException:
    """The exception a command raised; discord.py hands it over wrapped in `CommandInvokeError`."""
    return error.original if isinstance(error, app_commands.CommandInvokeError) else error


async def answer_expected_error(
    interaction: discord.Interaction[Any],
    error: app_commands.AppCommandError | StemBotError,
    *,
    refusal: Callable[[StemBotError], discord.Embed] | None = None,
    public_words: str | None = None,
    sandbox: bool = False,
) -> None:
    """The shared body of every cog's `cog_app_command_error`: answer the member privately about
    an expected failure, a `StemBotError` (rendered by `refusal`, by default "Can't do that" and
    its words) or an option Discord could not resolve, and mark the error answered. Anything else
    is left to `StemTree.on_error`.

    `public_words`: the command defers publicly, so a reply after its defer ends the public
    "thinking…" with these words (see `answer_privately`).
    """
    original = original_error(error)
    if isinstance(original, StemBotError):
        embed = refusal(original) if refusal is not None else common.refusal(str(original))
    elif isinstance(error, app_commands.TransformerError):
        embed = common.unresolved_option(error.type)
    else:
        return
    common.mark_sandbox(embed, sandbox)
    interaction.extras[ERROR_ANSWERED] = True
    answered = True
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(embed=embed, ephemeral=True)
        elif public_words is not None:
            await answer_privately(interaction, public_words, embed=embed)
        else:  # a private "thinking…": the follow-up fills it, privately
            await interaction.followup.send(embed=embed, ephemeral=True)
    except (discord.HTTPException, discord.ClientException) as exc:
        answered = False
        log.warning(
            "Could not tell member %s why their command was refused (%s)",
            interaction.user.id,
            type(exc).__name__,
        )
    await forget_acknowledgement(interaction, answered=answered)


SERVERS_ONLY = app_commands.AppInstallationType(guild=True, user=False)
"""How every command may be installed: by a server, never by a member for themselves. Unset,
Discord follows the developer portal, and a member who installs the bot for themselves could run
it in servers that never added it (each with fresh default credits and a budget of its own)."""

IN_SERVERS = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
"""Where every command may be used: server channels, never DMs (credits belong to a server)."""


def installed_here(interaction: discord.Interaction[Any]) -> bool:
    """Whether the bot may act on this interaction: in a server, only if that server added the bot
    (Discord names the server in `authorizing_integration_owners`; a member's own install does
    not count). Outside servers (a result delivered by DM, its buttons) there is no server to ask."""
    return interaction.guild_id is None or interaction.is_guild_integration()


async def refuse_if_not_installed(interaction: discord.Interaction[Any]) -> bool:
    """Refuse, before anything starts, an interaction in a server that did not add the bot: answer
    it privately (an autocomplete with no suggestions) and return True. False: carry on.

    Every entry point calls this first: the command tree for commands and autocomplete, each
    persistent button or select and each view for components. So it is also where the task
    starts speaking the member's language (`bot.i18n`): everything it says privately is in it."""
    i18n.use(i18n.language_for(interaction.locale))
    if installed_here(interaction):
        return False
    log.info(
        "Refused %s from member %s in server %s, which has not added the bot",
        interaction.type.name,
        interaction.user.id,
        interaction.guild_id,
    )
    try:
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        elif not interaction.response.is_done():
            await interaction.response.send_message(
                common.not_installed_here(invite_url(interaction.application_id)), ephemeral=True
            )
    except (discord.HTTPException, discord.ClientException):
        log.warning("Could not tell member %s that this server has not added the bot", interaction.user.id)
    return True


class StemTree(app_commands.CommandTree["StemBot"]):
    async def interaction_check(self, interaction: discord.Interaction[StemBot], /) -> bool:
        """Commands and autocomplete run only where a server added the bot. The names a command
        shows are remembered on the side (for the usage reports), and so are the member's and the
        server's languages (for what is sent later without an interaction), never delaying its
        answer."""
        if await refuse_if_not_installed(interaction):
            return False
        interaction.client.remember_names(interaction)
        interaction.client.remember_languages(interaction)
        return True

    async def on_error(
        self, interaction: discord.Interaction[StemBot], error: app_commands.AppCommandError
    ) -> None:
        """Last resort: answer the member (acknowledged or not) and log the unexpected once. Errors
        a cog's handler already answered are left alone."""
        if interaction.extras.get(ERROR_ANSWERED):
            return
        command = interaction.command.qualified_name if interaction.command else "?"
        if isinstance(error, app_commands.NoPrivateMessage):
            text = _("This command works in servers only: credits belong to a server.")
        elif isinstance(error, app_commands.CommandOnCooldown):
            text = common.command_cooldown(command, time.time() + error.retry_after)
        elif isinstance(error, app_commands.CheckFailure):
            # Our own words: a check's message is discord.py's English, never in the catalogs.
            text = _("You can't use this command here.")
        else:
            log.error(
                "Command /%s failed for member %s in guild %s",
                command,
                interaction.user.id,
                interaction.guild_id,
                exc_info=error,
            )
            text = common.unexpected_error()
        answered = True
        try:
            if not interaction.response.is_done():
                await interaction.response.send_message(text, ephemeral=True)
            elif await thinking_in_public(interaction):
                await answer_privately(interaction, common.NOT_FINISHED, content=text)
            else:  # a private "thinking…", or a reply already there: a follow-up is a private message
                await interaction.followup.send(text, ephemeral=True)
        except (discord.HTTPException, discord.ClientException):
            answered = False
            log.warning("Could not tell member %s about the failed /%s", interaction.user.id, command)
        await forget_acknowledgement(interaction, answered=answered)


ServicesFactory = Callable[["StemBot"], Services]
"""Builds the bot's services for this client (they deliver results and alerts through it)."""


class StemBot(commands.Bot):
    """The bot of one unsharded process: one gateway connection for every server."""

    def __init__(
        self,
        services: ServicesFactory,
        *,
        dev_guild_id: int | None = None,
        force_sync: bool = False,
        syncs_commands: bool = True,
        **client_options: Any,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            tree_cls=StemTree,
            allowed_mentions=discord.AllowedMentions.none(),
            allowed_installs=SERVERS_ONLY,
            allowed_contexts=IN_SERVERS,
            **client_options,
        )
        self.services = services(self)
        self.dev_guild_id = dev_guild_id
        self.force_sync = force_sync
        self.syncs_commands = syncs_commands
        self._side_writes: set[asyncio.Task[None]] = set()

    def remember_languages(self, interaction: discord.Interaction[Any]) -> None:
        """Store the member's and the server's Discord languages when they changed, on the side:
        what is later sent without an interaction speaks them (`bot.languages`)."""
        languages = self.services.languages
        user, guild = interaction.user.id, interaction.guild_id
        member, server = interaction.locale, interaction.guild_locale
        if not self.is_closed() and languages.changed(user, member, guild, server):
            self._on_the_side(languages.saw(user, member, guild, server), "remember languages")

    def remember_names(self, interaction: discord.Interaction[Any]) -> None:
        """Store the names the interaction shows, on the side."""
        seen = seen_names(interaction)
        if seen is not None and not self.is_closed():
            reports = self.services.reports
            self._on_the_side(reports.saw(seen.guild_id, seen.server_name, seen.members), "remember names")

    def _on_the_side(self, write: Coroutine[Any, Any, None], name: str) -> None:
        """Run a write an interaction must not wait for in a task of its own: owned (so `close`
        lets it finish), and logged if it fails."""
        task = asyncio.create_task(write, name=name)
        self._side_writes.add(task)
        task.add_done_callback(self._side_writes.discard)
        task.add_done_callback(log_failure)

    async def setup_hook(self) -> None:
        await self.tree.set_translator(CommandTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.syncs_commands:
            await self.sync_commands()
        else:
            log.info(
                "Not syncing slash commands: the process that runs shard 0 syncs them for every process%s",
                " (--sync ignored here)" if self.force_sync else "",
            )
        await self.services.start()

    async def sync_commands(self) -> bool:
        """Sync slash commands if their definitions changed since the last sync (or when forced).

        Discord allows 200 command creates per day per guild, so an unchanged bot never re-syncs.
        Returns whether a sync happened.
        """
        guild = discord.Object(self.dev_guild_id) if self.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        # The payload with its translations: a changed translation is a changed command.
        payload = await translated_commands(self.tree, guild)
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        scope = f"guild:{guild.id}" if guild else "global"
        key = f"commands_synced:{scope}"
        if not self.force_sync and await self.services.store.meta.get(key) == digest:
            log.info("Slash commands unchanged since the last sync (%s); not syncing", scope)
            return False
        synced = await self.tree.sync(guild=guild)
        await self.services.store.meta.set(key, digest)
        log.info("Synced %s slash command(s) to %s", len(synced), scope)
        return True

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("Connected as %s (id %s) to %s server(s)", self.user, self.user.id, len(self.guilds))
        if not self.guilds and self.application_id is not None:
            log.warning("The bot is in no server yet. Add it with: %s", invite_url(self.application_id))

    def gateway_connected(self) -> bool:
        ws = self.ws
        return self.is_ready() and not self.is_closed() and ws is not None and ws.open

    async def server_status(self, guild_id: int) -> ServerStatus:
        return await self.services.operations.server_status(self.services.store, guild_id)

    async def status_report(self) -> StatusReport:
        web = self.services.web
        return await self.services.operations.report(
            self.services.store,
            callback_public_url=self.services.settings.callback_public_url,
            listening=f"{web.host}:{web.port}" if web.running else None,
            poll_interval=self.services.runner.poll_interval,
        )

    async def close(self) -> None:
        """Stop taking splits, let in-flight database writes finish, then disconnect. Every
        unfinished job stays in the database and resumes on the next start."""
        if self._side_writes:
            await asyncio.wait(set(self._side_writes), timeout=5)
        await self.services.stop()
        # discord.py waits a moment after READY before dispatching it; stopped within that moment,
        # its waiting task would dispatch into a closed client ('_MissingSentinel' has no
        # create_task: an ERROR on a quick restart). Nothing waits for READY once we stop.
        ready: asyncio.Task[None] | None = getattr(self._connection, "_ready_task", None)
        if ready is not None:
            ready.cancel()
        await super().close()


class ShardedStemBot(StemBot, commands.AutoShardedBot):
    """The bot of one process among several that split Discord's shards: it runs `shard_ids` (all
    `shard_count` shards if None), one gateway connection each, and sees only their servers."""

    def __init__(
        self,
        services: ServicesFactory,
        *,
        shard_count: int,
        shard_ids: Sequence[int] | None = None,
        dev_guild_id: int | None = None,
        force_sync: bool = False,
    ) -> None:
        super().__init__(
            services,
            dev_guild_id=dev_guild_id,
            force_sync=force_sync,
            # Discord holds one set of commands per application: one process syncs them.
            syncs_commands=shard_ids is None or 0 in shard_ids,
            shard_count=shard_count,
            shard_ids=list(shard_ids) if shard_ids is not None else None,
        )

    async def on_ready(self) -> None:
        shards = sorted(self.shards)
        log.info("Shards ready: %s (of %s)", ", ".join(map(str, shards)), self.shard_count)
        if self.shard_ids is None:
            await super().on_ready()
        else:  # no server on these shards says nothing of the others: no invite nagging
            assert self.user is not None
            log.info("Connected as %s (id %s) to %s server(s)", self.user, self.user.id, len(self.guilds))

    def gateway_connected(self) -> bool:
        """Every shard of this process is connected (one shard reconnecting is not healthy)."""
        assert self.shard_count is not None
        wanted = set(self.shard_ids) if self.shard_ids is not None else set(range(self.shard_count))
        shards = self.shards
        return (
            self.is_ready()
            and not self.is_closed()
            and set(shards) == wanted
            and all(not shard.is_closed() for shard in shards.values())
        )


def make_bot(
    services: ServicesFactory,
    *,
    shard_count: int | None = None,
    shard_ids: Sequence[int] | None = None,
    dev_guild_id: int | None = None,
    force_sync: bool = False,
) -> StemBot:
    """The bot for this process: unsharded without `shard_count`, else the shards `shard_ids`."""
    if shard_count is None:
        return StemBot(services, dev_guild_id=dev_guild_id, force_sync=force_sync)
    return ShardedStemBot(
        services,
        shard_count=shard_count,
        shard_ids=shard_ids,
        dev_guild_id=dev_guild_id,
        force_sync=force_sync,
    )
