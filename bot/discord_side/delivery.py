"""Getting a finished job in front of its member, whatever Discord does meanwhile.

Order of preference: edit the member's own /split response while its interaction token lives;
else a channel message that mentions them, as a reply to that response, which is then edited to
point to it; else a DM. Discord trouble that may pass (5xx, network,
rate limits) is reported as RETRY so the runner tries again later: a result is never dropped.
A result too long for one message goes out as several; a retry on the same route resumes after
the last message that went through, so the member never gets a part twice.

Sent without an interaction, every message says which language it speaks (`bot.i18n`): what is
shown in the server (the /split response, a reply in the channel, its pointer, the cancelled
mark) in the server's language, a DM in the member's; both as last seen (`Languages`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import aiohttp
import discord

from bot import i18n
from bot.i18n import Language
from bot.models import AcknowledgedSplit, DeliveredMessage, DeliveryVia, Job, JobState, Refund
from bot.render import common, library, results
from bot.runner import DeliveryOutcome, DeliveryResult

log = logging.getLogger(__name__)

INTERACTION_TOKEN_LIFETIME = 15 * 60.0
TOKEN_SAFETY_MARGIN = 60.0
"""Stop using a token a minute before Discord does, so a slow edit never races its expiry."""

PROGRESS_TIMEOUT = 10.0

# Discord error codes meaning "this route will not work for this job", not "try later".
UNKNOWN_WEBHOOK = 10015
INVALID_WEBHOOK_TOKEN = 50027
CANNOT_DM_USER = 50007

ORIGINAL_RESPONSE = cast(int, "@original")
"""Where a message id would go, Discord's webhook routes take `@original` for the interaction's
own response; discord.py types that parameter as an int, so the name is cast once, here."""


def token_usable_until(created_at: float) -> float:
    return created_at + INTERACTION_TOKEN_LIFETIME - TOKEN_SAFETY_MARGIN


class _Retry(Exception):
    """Discord trouble that may pass: stop this attempt, try again later."""


class DeliveredParts(Protocol):
    """Where the messages each result was shown in are kept, part by part (`bot.store.deliveries`)."""

    async def shown(self, job_id: int, via: DeliveryVia) -> list[DeliveredMessage]: ...

    async def record(
        self, job_id: int, via: DeliveryVia, part: int, *, channel_id: int | None, message_id: int
    ) -> None: ...


class Languages(Protocol):
    """The languages to speak without an interaction (`bot.languages.Languages`): a server's for
    what is shown in it, a member's for a DM."""

    async def public(self, guild_id: int) -> Language: ...

    async def member(self, user_id: int) -> Language: ...


class EnglishOnly:
    """`Languages` that speak English to everyone (where no language was ever seen)."""

    async def public(self, guild_id: int) -> Language:
        return i18n.ENGLISH

    async def member(self, user_id: int) -> Language:
        return i18n.ENGLISH


def _may_embed(job: Job) -> bool:
    """Whether Discord said, at /split, that the bot may use embeds in the job's channel (jobs
    from before that was recorded are assumed to)."""
    return job.app_permissions is None or discord.Permissions(job.app_permissions).embed_links


def rendered(
    job: Job,
    via: DeliveryVia,
    *,
    keep_button: bool = False,
    kept_url: str | None = None,
    mix_button: bool = False,
) -> list[common.Message]:
    """The job's result as shown through `via`: in the /split response; as a late reply in the
    channel that mentions the member (plain text where the bot may not embed); or by DM."""
    in_channel = via is DeliveryVia.CHANNEL
    messages = results.outcome(
        job,
        mention=in_channel,
        late=in_channel,
        in_server=via is not DeliveryVia.DM,
        keep_button=keep_button,
        kept_url=kept_url,
        mix_button=mix_button,
    )
    if in_channel and not _may_embed(job):
        messages = common.as_plain_text(messages)  # no Embed Links here: embeds would vanish
    return messages


class DiscordDeliverer:
    def __init__(
        self,
        client: discord.Client,
        parts: DeliveredParts,
        clock: Callable[[], float] = time.time,
        *,
        offers_keep: Callable[[Job], Awaitable[bool]] | None = None,
        offers_mix: Callable[[Job], Awaitable[bool]] | None = None,
        languages: Languages | None = None,
    ) -> None:
        """`offers_keep`, `offers_mix`: whether a job's result carries the Keep in Discord and the
        Mix stems buttons. `languages`: which language each message speaks (English without)."""
        self._client = client
        self._parts = parts
        self._clock = clock
        self._offers_keep = offers_keep
        self._offers_mix = offers_mix
        self._languages: Languages = languages or EnglishOnly()

    async def _language(self, job: Job, via: DeliveryVia) -> Language:
        """The server's language for what is shown in the server, the member's for a DM."""
        if via is DeliveryVia.DM:
            return await self._languages.member(job.user_id)
        return await self._languages.public(job.guild_id)

    async def deliver(self, job: Job) -> DeliveryOutcome:
        outcome = DeliveryOutcome(DeliveryResult.RETRY)
        try:
            if self._token_usable(job) and await self._edit_interaction(job):
                outcome = DeliveryOutcome(DeliveryResult.DELIVERED, DeliveryVia.INTERACTION)
            elif await self._post_in_channel(job):
                outcome = DeliveryOutcome(DeliveryResult.DELIVERED, DeliveryVia.CHANNEL)
            elif await self._send_dm(job):
                outcome = DeliveryOutcome(DeliveryResult.DELIVERED, DeliveryVia.DM)
        except _Retry:
            pass
        if outcome.result is DeliveryResult.DELIVERED and outcome.via is DeliveryVia.CHANNEL:
            posted = await self._parts.shown(job.id, DeliveryVia.CHANNEL)
            if posted:
                await self._point_original_to(job, posted[0].message_id)
        return outcome

    async def show_progress(self, job: Job) -> None:
        """ "Working on your track" in the /split response, for a job the API has and that has not
        finished (a finished job's message is its result, never overwritten)."""
        if job.state is not JobState.SUBMITTED or not self._token_usable(job):
            return
        try:
            # Bounded: the job's next poll waits for this step, and progress is only a nicety.
            async with asyncio.timeout(PROGRESS_TIMEOUT):
                with i18n.speaking(await self._language(job, DeliveryVia.INTERACTION)):
                    embed = results.processing(job)
                # No view: the Cancel button goes, as the job can no longer be called off.
                await self._webhook(job).edit_message(ORIGINAL_RESPONSE, embed=embed, view=None)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            log.debug("job %s: progress update skipped (%s)", job.id, type(exc).__name__)

    async def show_cancelled(self, job: Job, refund: Refund | None = None) -> None:
        """The queued message says the job was cancelled (and what came back) and loses its Cancel
        button: through the interaction while its token lives, else as the bot's own message in
        the channel."""
        with i18n.speaking(await self._language(job, DeliveryVia.INTERACTION)):
            embed = library.cancelled(job, refund)
        try:
            async with asyncio.timeout(PROGRESS_TIMEOUT):
                if self._token_usable(job):
                    await self._webhook(job).edit_message(ORIGINAL_RESPONSE, embed=embed, view=None)
                elif job.response_message_id is not None:
                    channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
                    await channel.get_partial_message(job.response_message_id).edit(embed=embed, view=None)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            log.info("job %s: could not mark the queued message cancelled (%s)", job.id, error_code(exc))

    async def split_not_started(self, ack: AcknowledgedSplit) -> bool:
        """Fill the "thinking…" of a split acknowledged by a process that died before storing it
        (see `bot.acks`). True once answered, or when the interaction cannot be answered any more
        (it was never acknowledged, or its token expired); False if Discord may work later."""
        if self._clock() >= ack.expires_at:
            return True
        webhook = discord.Webhook.partial(ack.application_id, ack.token, client=self._client)
        # It fills the split's public "thinking…": the server's language.
        with i18n.speaking(await self._languages.public(ack.guild_id)):
            embed = results.interrupted(ack.mode)
        try:
            async with asyncio.timeout(PROGRESS_TIMEOUT):
                await webhook.edit_message(ORIGINAL_RESPONSE, embed=embed, view=None)
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("interaction %s: cannot be answered any more (%s)", ack.interaction_id, error_code(exc))
            return True
        except discord.HTTPException as exc:
            if (
                exc.status == 401
                or exc.code in (UNKNOWN_WEBHOOK, INVALID_WEBHOOK_TOKEN)
                or route_refused(exc)
            ):
                log.info(
                    "interaction %s: cannot be answered any more (%s)", ack.interaction_id, error_code(exc)
                )
                return True
            log.warning(
                "interaction %s: Discord failed (%s); will retry", ack.interaction_id, error_code(exc)
            )
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "interaction %s: Discord failed (%s); will retry", ack.interaction_id, error_code(exc)
            )
            return False
        log.info("interaction %s: told member %s their split did not start", ack.interaction_id, ack.user_id)
        return True

    def _token_usable(self, job: Job) -> bool:
        return bool(
            job.interaction_token
            and job.application_id
            and job.interaction_expires_at
            and self._clock() < job.interaction_expires_at
        )

    def _webhook(self, job: Job) -> discord.Webhook:
        assert job.application_id is not None and job.interaction_token is not None
        return discord.Webhook.partial(job.application_id, job.interaction_token, client=self._client)

    async def _keep_button(self, job: Job) -> bool:
        return self._offers_keep is not None and await self._offers_keep(job)

    async def _mix_button(self, job: Job) -> bool:
        return self._offers_mix is not None and await self._offers_mix(job)

    async def _edit_interaction(self, job: Job) -> bool:
        keep_button, mix_button = await self._keep_button(job), await self._mix_button(job)
        with i18n.speaking(await self._language(job, DeliveryVia.INTERACTION)):
            messages = rendered(job, DeliveryVia.INTERACTION, keep_button=keep_button, mix_button=mix_button)
        webhook = self._webhook(job)
        try:
            for index in range(await self._resume_at(job, DeliveryVia.INTERACTION), len(messages)):
                message = messages[index]
                if index == 0:
                    sent = await webhook.edit_message(
                        ORIGINAL_RESPONSE, content=message.content, embeds=message.embeds, view=_view(message)
                    )
                else:
                    sent = await webhook.send(
                        content=message.content or discord.utils.MISSING,
                        embeds=message.embeds,
                        view=_view(message),
                        wait=True,
                    )
                await self._parts.record(
                    job.id, DeliveryVia.INTERACTION, index, channel_id=job.channel_id, message_id=sent.id
                )
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info(
                "job %s: interaction response unavailable (%s); using the channel", job.id, error_code(exc)
            )
            return False
        except discord.HTTPException as exc:
            if exc.status == 401 or exc.code in (UNKNOWN_WEBHOOK, INVALID_WEBHOOK_TOKEN):
                log.info("job %s: interaction token no longer valid; using the channel", job.id)
                return False
            if route_refused(exc):
                log.warning(
                    "job %s: Discord refused the response edit (%s); using the channel",
                    job.id,
                    error_code(exc),
                )
                return False
            raise self._retry(job, "editing the response", exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._retry(job, "editing the response", exc) from None
        return True

    async def _post_in_channel(self, job: Job) -> bool:
        channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        return await self._send_all(
            job, channel, job.channel_id, DeliveryVia.CHANNEL, "posting in the channel"
        )

    async def _point_original_to(self, job: Job, message_id: int) -> None:
        """Best effort, once the result is out: make the /split response (which says the links
        will appear there) point to the reply that carries them. The interaction token is gone by
        now, but the response is the bot's own message in the channel, which the bot may edit."""
        if job.response_message_id is None:
            return
        channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        reply_url = f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{message_id}"
        try:
            async with asyncio.timeout(PROGRESS_TIMEOUT):
                with i18n.speaking(await self._language(job, DeliveryVia.CHANNEL)):
                    embed = results.pointer(job, reply_url)
                await channel.get_partial_message(job.response_message_id).edit(embed=embed)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            log.info(
                "job %s: could not point the /split response to the result (%s)", job.id, error_code(exc)
            )

    async def _send_dm(self, job: Job) -> bool:
        try:
            dm = await self._client.create_dm(discord.Object(job.user_id))
        except discord.HTTPException as exc:
            raise self._retry(job, "opening a DM", exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._retry(job, "opening a DM", exc) from None
        return await self._send_all(job, dm, dm.id, DeliveryVia.DM, "sending a DM")

    async def _send_all(
        self,
        job: Job,
        target: discord.abc.Messageable,
        channel_id: int,
        via: DeliveryVia,
        action: str,
    ) -> bool:
        allowed = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])
        in_channel = via is DeliveryVia.CHANNEL
        keep_button, mix_button = await self._keep_button(job), await self._mix_button(job)
        with i18n.speaking(await self._language(job, via)):
            messages = rendered(job, via, keep_button=keep_button, mix_button=mix_button)
        try:
            for index in range(await self._resume_at(job, via), len(messages)):
                message = messages[index]
                extra: dict[str, Any] = {"view": message.view} if message.view is not None else {}
                reply_to = job.response_message_id if in_channel and index == 0 else None
                sent = await self._send_one(job, target, message, allowed, extra, reply_to)
                await self._parts.record(job.id, via, index, channel_id=channel_id, message_id=sent.id)
        except discord.HTTPException as exc:
            if exc.code == CANNOT_DM_USER:
                raise self._retry(job, action, exc) from None  # the last resort: keep trying later
            if isinstance(exc, discord.Forbidden | discord.NotFound) or route_refused(exc):
                log.info("job %s: %s refused (%s)", job.id, action, error_code(exc))
                return False  # this way will not work for this job: try the next one
            raise self._retry(job, action, exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._retry(job, action, exc) from None
        return True

    async def _send_one(
        self,
        job: Job,
        target: discord.abc.Messageable,
        message: common.Message,
        allowed: discord.AllowedMentions,
        extra: dict[str, Any],
        reply_to: int | None,
    ) -> discord.Message:
        """Send one message, as a reply to `reply_to` if given. A reply Discord refuses (no Read
        Message History, say) posted nothing, so it is sent again as a plain message."""
        send = functools.partial(
            target.send, content=message.content, embeds=message.embeds, allowed_mentions=allowed, **extra
        )
        if reply_to is None:
            return await send()
        reference = discord.MessageReference(
            message_id=reply_to, channel_id=job.channel_id, guild_id=job.guild_id, fail_if_not_exists=False
        )
        try:
            return await send(reference=reference)
        except discord.HTTPException as exc:
            if exc.code == CANNOT_DM_USER or not route_refused(exc):
                raise
            log.info(
                "job %s: Discord refused the reply (%s); posting it as a plain message",
                job.id,
                error_code(exc),
            )
        return await send()

    async def remind(self, job: Job, result: list[DeliveredMessage]) -> bool:
        """The expiry reminder, by DM, or where the member's DMs are closed in the job's channel
        mentioning them. False when neither worked now (the reminders try again later)."""
        allowed = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])
        for mention in (False, True):
            try:
                target: discord.abc.Messageable = (
                    self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
                    if mention
                    else await self._client.create_dm(discord.Object(job.user_id))
                )
                # A DM in the member's language; in the channel, where everyone reads it, the server's.
                language = await self._language(job, DeliveryVia.CHANNEL if mention else DeliveryVia.DM)
                with i18n.speaking(language):
                    reminder = results.reminder(job, result, mention=mention)
                for message in reminder:
                    await target.send(
                        content=message.content,
                        embeds=message.embeds,
                        allowed_mentions=allowed,
                        view=_view(message),
                    )
                return True
            except discord.HTTPException as exc:
                log.info(
                    "job %s: reminder %s refused (%s)",
                    job.id,
                    "in the channel" if mention else "by DM",
                    error_code(exc),
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("job %s: Discord failed while sending the reminder (%s)", job.id, error_code(exc))
                return False
        return False

    async def _resume_at(self, job: Job, via: DeliveryVia) -> int:
        """How many of the job's messages an earlier attempt (even before a restart) already
        showed this way: only the rest are sent."""
        return len(await self._parts.shown(job.id, via))

    def _retry(self, job: Job, action: str, exc: BaseException) -> _Retry:
        log.warning("job %s: Discord failed while %s (%s); will retry", job.id, action, error_code(exc))
        return _Retry()


def _view(message: common.Message) -> discord.ui.View:
    return message.view if message.view is not None else discord.utils.MISSING


def route_refused(exc: discord.HTTPException) -> bool:
    """A 4xx other than a rate limit: retrying the same request will not help."""
    return 400 <= exc.status < 500 and exc.status != 429


def error_code(exc: BaseException) -> str:
    """What went wrong, for the log: Discord's status and code, or the exception's kind."""
    if isinstance(exc, discord.HTTPException):
        return f"HTTP {exc.status}, code {exc.code}"
    return type(exc).__name__
