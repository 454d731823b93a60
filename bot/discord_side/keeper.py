"""The Discord side of keeping stems (`bot.keeping.Poster`): threads, uploads, reading back what
was posted, and marking the result message as kept.

Discord's answers are sorted into what the keeper can act on: 413 is UploadTooLarge (pack
smaller); a permission or channel-type refusal is PlaceRefused (for threads, ThreadsUnavailable:
post as replies instead); 5xx, rate limits and network trouble are PostRetry (try later; the
outcome of that request is unknown). discord.py handles the rate-limit buckets itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import aiohttp
import discord

from bot import reasons
from bot.discord_side.delivery import ORIGINAL_RESPONSE, error_code, rendered, route_refused
from bot.keeping import PlaceRefused, PostedMessage, PostRetry, ThreadsUnavailable, Upload, UploadTooLarge
from bot.keeping.posting import comparable_filename
from bot.models import DeliveredMessage, DeliveryVia, Job, Keep, KeepPlace, KeptStem, Mix
from bot.reasons import because
from bot.render import keep as words
from bot.render import results

log = logging.getLogger(__name__)

THREAD_ALREADY_CREATED = 160004
MISSING_PERMISSIONS = 50013
MISSING_ACCESS = 50001
WRONG_CHANNEL_TYPE = 50024
REQUEST_TOO_LARGE = 40005
HISTORY_LIMIT = 500
"""How many messages of the place are read to find what an unknown outcome posted: a thread's
latest, or, for replies in a busy channel, those after the result message."""
EDIT_TIMEOUT = 15.0


class Where(Protocol):
    """Where a keep's or a mix's files go (both carry these)."""

    @property
    def guild_id(self) -> int: ...
    @property
    def place(self) -> KeepPlace | None: ...
    @property
    def channel_id(self) -> int | None: ...
    @property
    def anchor_message_id(self) -> int | None: ...


class DiscordPoster:
    """Posts kept stems (`bot.keeping.Poster`) and mixes (`bot.mixing.MixPoster`) alike: one
    thread per result for both."""

    def __init__(
        self, client: discord.Client, *, offers_mix: Callable[[Job], Awaitable[bool]] | None = None
    ) -> None:
        """`offers_mix`: whether a result carries the Mix stems button (kept on it when the result
        is edited to say it is kept)."""
        self._client = client
        self._offers_mix = offers_mix

    def _place(self, keep: Where) -> discord.PartialMessageable:
        """Where the keep's files go: its thread, channel or DM."""
        assert keep.channel_id is not None
        return self._client.get_partial_messageable(
            keep.channel_id, guild_id=None if keep.place is KeepPlace.DM else keep.guild_id
        )

    async def open_thread(self, job: Job, anchor: DeliveredMessage) -> int:
        assert anchor.channel_id is not None
        try:
            thread = await self._client.http.start_thread_with_message(
                anchor.channel_id,
                anchor.message_id,
                name=words.thread_name(job),
                auto_archive_duration=words.AUTO_ARCHIVE_MINUTES,
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_CREATED:
                # A thread started on a message has that message's id: ours, from before a restart.
                return anchor.message_id
            if not route_refused(exc):
                raise PostRetry(because(reasons.OPEN_THREAD_FAILED, code=error_code(exc))) from None
            raise ThreadsUnavailable(_refusal(_THREAD, exc)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PostRetry(because(reasons.DISCORD_UNREACHABLE, error=type(exc).__name__)) from None
        return int(thread["id"])

    async def post_files(
        self, job: Job, keep: Keep, files: Sequence[Upload], *, first: bool, key: str
    ) -> int:
        with contextlib.ExitStack() as stack:
            attachments = [
                discord.File(stack.enter_context(upload.path.open("rb")), filename=upload.filename)
                for upload in files
            ]
            content = words.first_post(job) if first else None
            return await self._send(keep, key, content=content, files=attachments)

    async def post_note(
        self, job: Job, keep: Keep, stems: Sequence[tuple[KeptStem, str]], *, key: str
    ) -> int:
        return await self._send(keep, key, content=words.skipped_note(job, stems))

    async def post_mix(self, job: Job, mix: Mix, upload: Upload, *, content: str, key: str) -> int:
        with upload.path.open("rb") as file:
            return await self._send(
                mix, key, content=content, files=[discord.File(file, filename=upload.filename)]
            )

    async def attachment_url(self, keep: Keep, message_id: int, filename: str) -> str | None:
        """The kept file's URL as the message has it now (Discord signs them for a while only)."""
        try:
            message = await self._place(keep).fetch_message(message_id)
        except discord.HTTPException as exc:
            if not route_refused(exc):
                raise PostRetry(because(reasons.READ_FILE_FAILED, code=error_code(exc))) from None
            return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PostRetry(because(reasons.DISCORD_UNREACHABLE, error=type(exc).__name__)) from None
        wanted = comparable_filename(filename)
        return next((a.url for a in message.attachments if comparable_filename(a.filename) == wanted), None)

    async def tell(self, mix: Mix, text: str) -> bool:
        """Edit the member's private answer to say `text` (once its token is gone, they see the
        file's line in the thread instead)."""
        if mix.reply_token is None or mix.reply_application_id is None:
            return False
        if mix.reply_until is None or mix.reply_until <= time.time():
            return False
        webhook = discord.Webhook.partial(mix.reply_application_id, mix.reply_token, client=self._client)
        try:
            async with asyncio.timeout(EDIT_TIMEOUT):
                await webhook.edit_message(
                    ORIGINAL_RESPONSE,
                    content=text,
                    view=None,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            log.info("job %s: mix %s: the member's answer was not edited (%s)", mix.job_id, mix.id, exc)
            return False
        return True

    async def _send(
        self, keep: Where, key: str, *, content: str | None, files: list[discord.File] | None = None
    ) -> int:
        channel = self._place(keep)
        # Only what applies is passed: discord.py's send takes None, not MISSING, for "none".
        extra: dict[str, Any] = {"files": files} if files else {}
        if keep.place is KeepPlace.REPLIES and keep.anchor_message_id is not None:
            extra["reference"] = discord.MessageReference(
                message_id=keep.anchor_message_id,
                channel_id=channel.id,
                guild_id=keep.guild_id,
                fail_if_not_exists=False,
            )
        try:
            message = await channel.send(
                content=content,
                **extra,
                allowed_mentions=discord.AllowedMentions.none(),
                suppress_embeds=True,
                # Sent again within minutes (a lost answer, a restart), Discord returns the message
                # already posted instead of a second one; past that, the keeper reads the place.
                nonce=_nonce(key),
            )
        except discord.HTTPException as exc:
            if exc.status == 413 or exc.code == REQUEST_TOO_LARGE:
                raise UploadTooLarge() from None
            if not route_refused(exc):
                raise PostRetry(because(reasons.POST_FAILED, code=error_code(exc))) from None
            raise PlaceRefused(_refusal(_POST, exc)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PostRetry(because(reasons.DISCORD_UNREACHABLE, error=type(exc).__name__)) from None
        return message.id

    async def recent(self, keep: Where) -> list[PostedMessage]:
        channel = self._place(keep)
        me = self._client.user.id if self._client.user else self._client.application_id
        found: list[PostedMessage] = []
        try:
            after = None
            if keep.place is KeepPlace.REPLIES and keep.anchor_message_id is not None:
                after = discord.Object(keep.anchor_message_id)
            async for message in channel.history(limit=HISTORY_LIMIT, after=after):
                if message.author.id == me:
                    found.append(
                        PostedMessage(
                            message.id, message.content, tuple(a.filename for a in message.attachments)
                        )
                    )
        except discord.HTTPException as exc:
            if not route_refused(exc):
                raise PostRetry(because(reasons.READ_POSTED_FAILED, code=error_code(exc))) from None
            # Without the history the bot cannot know what already went out: stop rather than
            # risk posting a stem twice.
            raise PlaceRefused(_refusal(_READ, exc)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PostRetry(because(reasons.DISCORD_UNREACHABLE, error=type(exc).__name__)) from None
        return found

    async def show_kept(self, job: Job, keep: Keep, result: list[DeliveredMessage]) -> None:
        """Edit each message of the result to its kept form. A message gone or no longer the
        bot's to edit is left as it is (the files are in the thread all the same)."""
        if not result:
            return
        url = results.kept_url(keep)
        mix_button = self._offers_mix is not None and await self._offers_mix(job)
        messages = rendered(job, result[0].via, kept_url=url, mix_button=mix_button)
        for shown, message in zip(result, messages, strict=False):
            if shown.channel_id is None:
                continue
            channel = self._client.get_partial_messageable(
                shown.channel_id, guild_id=None if shown.via is DeliveryVia.DM else job.guild_id
            )
            try:
                async with asyncio.timeout(EDIT_TIMEOUT):
                    await channel.get_partial_message(shown.message_id).edit(
                        content=message.content,
                        embeds=message.embeds,
                        view=message.view,
                        allowed_mentions=discord.AllowedMentions.none(),
                    )
            except discord.HTTPException as exc:
                if not route_refused(exc):
                    raise PostRetry(because(reasons.MARK_KEPT_FAILED, code=error_code(exc))) from None
                log.info(
                    "job %s: result message %s not marked kept (%s)",
                    job.id,
                    shown.message_id,
                    error_code(exc),
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise PostRetry(because(reasons.DISCORD_UNREACHABLE, error=type(exc).__name__)) from None


def _nonce(key: str) -> int:
    """A message's nonce from its key: the same key, the same nonce (at most 25 characters)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:7], "big")


_THREAD, _POST, _READ = "thread", "post", "read"
_REFUSALS: dict[str, tuple[str, str, str, str]] = {
    # What the bot was doing: (no permission, wrong kind of channel, gone, any other refusal).
    _THREAD: (
        reasons.NO_PERMISSION_THREAD,
        reasons.WRONG_CHANNEL_THREAD,
        reasons.GONE_THREAD,
        reasons.REFUSED_THREAD,
    ),
    _POST: (reasons.NO_PERMISSION_POST, reasons.WRONG_CHANNEL_POST, reasons.GONE_POST, reasons.REFUSED_POST),
    _READ: (reasons.NO_PERMISSION_READ, reasons.WRONG_CHANNEL_READ, reasons.GONE_READ, reasons.REFUSED_READ),
}


def _refusal(action: str, exc: discord.HTTPException) -> str:
    """Why Discord would not let the bot do `action` (`_THREAD`, `_POST`, `_READ`), in plain
    words: a stored reason (`bot.reasons`), one whole sentence per action and refusal."""
    no_permission, wrong_channel, gone, refused = _REFUSALS[action]
    if exc.code in (MISSING_PERMISSIONS, MISSING_ACCESS) or exc.status == 403:
        return because(no_permission)
    if exc.code == WRONG_CHANNEL_TYPE:
        return because(wrong_channel)
    if exc.status == 404:
        return because(gone)
    # Discord's own error code, else the HTTP status: numbers, which read the same in every language.
    return because(refused, code=str(exc.code) if exc.code else f"HTTP {exc.status}")
