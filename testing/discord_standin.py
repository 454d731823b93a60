"""A local stand-in for Discord's REST API and gateway, for end-to-end tests.

A real discord.py bot process (started through ``testing.launcher``) connects to it, logs in,
syncs its slash commands, receives ``INTERACTION_CREATE`` dispatches and answers them through the
interaction callback and webhook routes, channel messages and DMs.  Everything a member would see
is recorded so that tests can assert on it::

    standin = DiscordStandIn()
    await standin.start()
    bot = await standin.spawn("bench.baseline_bot:main")
    await standin.wait_ready(timeout=20)
    rec = await standin.invoke("split", {"task_id": "t1", "audio_id": "a1"}, user_id=42)
    msg = await rec.wait_for_edit(lambda m: "t1" in m.content)
    assert not standin.rejected
    await bot.stop()
    await standin.stop()

Times (``at`` fields) are ``time.monotonic()`` values.  All waiting is driven by futures that are
resolved when the recorded state changes; nothing polls.

Threads, files and history behave as on Discord, for keeping stems in Discord:

* ``POST /channels/{cid}/messages/{mid}/threads`` opens a public thread on a message (the thread's
  id is the message's; one thread per message, else 400 160004).  A thread is a channel: messages
  are posted to it, read back with ``GET /channels/{cid}/messages`` (newest first), and
  ``GET /channels/{thread_id}`` returns it.  DM channels and ``no_thread_channels`` answer 400
  50024.  ``thread_on(message_id)`` and ``archive_thread`` for tests.
* The bot's permissions in a channel are ``channel_permissions[cid]`` (a thread: its own entry,
  else its parent's), else ``app_permissions``.  They are what interactions in that channel carry
  as ``app_permissions``, what discord.py's cache computes (a member overwrite for the bot on the
  channel), and what REST enforces: Send Messages (in Threads, in a thread), Attach Files for any
  upload, Read Message History for history, Create Public Threads for a thread: else 403 50013.
* Uploads are streamed and hashed (sha256), kept only when small (``upload_content``, up to
  ``KEEP_UPLOAD_BYTES``, for charts and exports): at most 10 files per message (400 50035)
  and all files of one request together within ``enforced_upload_limit`` (default: the
  ``attachment_size_limit`` interactions report), else 413 40005.  ``attachments_in(cid)`` lists
  what a channel shows, with each file's size and hash.  ``enforce_nonce`` is honoured.
* ``lose_response_next`` makes a request take effect but lose its answer (500, or the
  connection closed): the unknown outcome a bot must not turn into a double post.

Installs, as on Discord: every interaction carries ``authorizing_integration_owners``
(``{"0": guild id}`` where the server added the bot, ``{"0": "0"}`` in the bot's DM).
``add_guild(bot_added=False)`` is a server that never added the bot: the bot never hears of it
and may not post there (403 50001).  ``invoke``/``autocomplete``/``click`` with
``user_install=True`` come through the member's own install (``{"1": user id}``, next to the
server's where it added the bot), the only way to reach the bot from such a server.  Real Discord
would not offer a command declared for server installs only that way; the stand-in sends it anyway,
to test that the bot refuses it (as it must while Discord catches up with a changed declaration).

Shards, as on Discord: every gateway connection that IDENTIFYs gets its own session.  One that
sends ``shard: [id, count]`` hears only of the guilds with ``(guild_id >> 22) % count == id`` (READY,
GUILD_CREATE) and receives every dispatch for them (interactions, channel, role and thread
events); DMs go to shard 0; one without ``shard`` hears of every guild.  When several sessions
serve a guild, the one that identified or resumed last receives its dispatches (a restarted bot
takes over).  ``shard_count`` is what ``/gateway/bot`` recommends; ``add_guild(shard=N)`` makes a
guild whose id lands on shard N of ``shard_count``, and ``shard_ready(N)`` says whether shard N
is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import logging
import math
import mimetypes
import os
import re
import secrets
import socket
import sys
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from aiohttp import BodyPartReader, MultipartReader, WSMsgType, hdrs, web

__all__ = [
    "DEFAULT_APPLICATION_ID",
    "DEFAULT_APP_PERMISSIONS",
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_GUILD_ID",
    "DEFAULT_MEMBER_PERMISSIONS",
    "DEFAULT_USER_ID",
    "Ack",
    "AttachmentRecord",
    "BotProcess",
    "DiscordStandIn",
    "InteractionRecord",
    "MessageRecord",
    "MessageVersion",
    "Perm",
    "Rejection",
    "RestCall",
    "RestError",
    "SyncCall",
    "ThreadRecord",
]

_log = logging.getLogger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000
REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_APPLICATION_ID = 1300000000000000001
DEFAULT_GUILD_ID = 1300000000000000100
DEFAULT_CHANNEL_ID = 1300000000000000200
DEFAULT_USER_ID = 1300000000000000300
DEFAULT_OWNER_ID = 1300000000000000400


class Perm:
    """Permission bits (https://discord.com/developers/docs/topics/permissions)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    CREATE_PUBLIC_THREADS = 1 << 35
    USE_EXTERNAL_STICKERS = 1 << 37
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40


DEFAULT_MEMBER_PERMISSIONS = (
    Perm.CREATE_INSTANT_INVITE
    | Perm.ADD_REACTIONS
    | Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.CONNECT
    | Perm.SPEAK
    | Perm.CHANGE_NICKNAME
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.USE_EXTERNAL_STICKERS
    | Perm.SEND_MESSAGES_IN_THREADS
)
DEFAULT_APP_PERMISSIONS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.ADD_REACTIONS
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.SEND_MESSAGES_IN_THREADS
    | Perm.USE_APPLICATION_COMMANDS
)
#: Every permission bit discord.py knows (for overwrites that deny the rest).
ALL_PERMISSIONS = (1 << 53) - 1

FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_HAS_THREAD = 1 << 5
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15
_SETTABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_EPHEMERAL | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2
_EDITABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2

# Interaction types and callback types.
IT_COMMAND = 2
IT_COMPONENT = 3
IT_AUTOCOMPLETE = 4
CB_MESSAGE = 4
CB_DEFERRED_MESSAGE = 5
CB_DEFERRED_UPDATE = 6
CB_UPDATE_MESSAGE = 7
CB_AUTOCOMPLETE = 8
CB_MODAL = 9
_ALLOWED_CALLBACKS: dict[int, frozenset[int]] = {
    IT_COMMAND: frozenset({CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_MODAL}),
    IT_COMPONENT: frozenset(
        {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE, CB_MODAL}
    ),
    IT_AUTOCOMPLETE: frozenset({CB_AUTOCOMPLETE}),
}

# Channel types.
CHANNEL_TEXT = 0
CHANNEL_DM = 1
CHANNEL_PUBLIC_THREAD = 11
THREAD_ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)
#: Files one message may carry.
MAX_FILES_PER_MESSAGE = 10
#: How long Discord remembers a message's nonce for ``enforce_nonce`` ("the past few minutes").
NONCE_WINDOW_SECONDS = 5 * 60.0
_UPLOAD_CHUNK = 256 * 1024
KEEP_UPLOAD_BYTES = 4 * 1024 * 1024
"""Uploads up to this size are kept whole (`upload_content`), so tests can read a chart or a CSV back."""

_MENTION_RE = re.compile(r"<@!?(\d{1,21})>")
_COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")


def _now_iso(wall: float | None = None) -> str:
    stamp = time.time() if wall is None else wall
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat()


def _json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # discord.py only parses a body as JSON when Content-Type is exactly "application/json".
    hdrs = {"Content-Type": "application/json"}
    if headers:
        hdrs.update(headers)
    return web.Response(body=json.dumps(data).encode(), status=status, headers=hdrs)


def _error_response(status: int, code: int, message: str, errors: JSON | None = None) -> web.Response:
    body: JSON = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return _json_response(body, status)


# ----------------------------------------------------------------------------------------------
# Recorded data
# ----------------------------------------------------------------------------------------------


class RestCall(NamedTuple):
    """One REST call seen by the stand-in (path without the /api/v10 prefix and query).

    ``status`` is what the client got: 0 when the connection was closed without an answer."""

    method: str
    path: str
    status: int
    at: float


@dataclass
class Ack:
    """A successful interaction callback."""

    type: int
    data: JSON | None
    at: float


@dataclass
class RestError:
    """An error answer given on an interaction's routes (webhook token, callback, ...)."""

    method: str
    path: str
    status: int
    code: int
    message: str
    at: float


@dataclass
class Rejection:
    """A request refused by validation (HTTP 400 50035/50006, 413 40005)."""

    method: str
    path: str
    status: int
    code: int
    errors: JSON
    payload: Any
    at: float


@dataclass
class SyncCall:
    """A bulk overwrite of application commands (guild_id None for global)."""

    guild_id: int | None
    commands: list[JSON]
    at: float


@dataclass
class MessageVersion:
    """The state of a message after its creation or one edit."""

    content: str
    embeds: list[JSON]
    components: list[JSON]
    flags: int
    attachments: list[JSON]
    allowed_mentions: JSON | None
    at: float
    wall: float


@dataclass(frozen=True)
class AttachmentRecord:
    """A file attached to a message the bot posted, as the stand-in kept it: its size and sha256
    (computed while the upload streamed by; the bytes themselves are not kept)."""

    id: int
    message_id: int
    channel_id: int
    filename: str
    size: int
    content_type: str
    sha256: str


@dataclass
class ThreadRecord:
    """A public thread opened on one of the bot's messages (its id is the message's)."""

    id: int
    parent_id: int
    guild_id: int
    name: str
    auto_archive_duration: int
    owner_id: int
    created_wall: float
    archive_wall: float
    archived: bool = False
    locked: bool = False
    rate_limit_per_user: int = 0


class _Waiters:
    """Futures waiting for a predicate over some state; re-evaluated on every notify()."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    async def wait(
        self, predicate: Callable[[], T | None], timeout: float | None, describe: Callable[[], str]
    ) -> T:
        value = predicate()
        if value:
            return value
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        item = (predicate, fut)
        self._items.append(item)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting: {describe()}") from None
        finally:
            with contextlib.suppress(ValueError):
                self._items.remove(item)

    def notify(self) -> None:
        for predicate, fut in list(self._items):
            if fut.done():
                continue
            try:
                value = predicate()
            except Exception as exc:
                fut.set_exception(exc)
                continue
            if value:
                fut.set_result(value)


class MessageRecord:
    """A message the bot created (interaction response, follow-up, channel message or DM)."""

    def __init__(
        self,
        *,
        message_id: int,
        channel_id: int,
        kind: str,
        first: MessageVersion,
        author_name: str,
        guild_id: int | None = None,
        interaction_id: int | None = None,
        message_type: int = 0,
    ) -> None:
        self.id: int = message_id
        self.channel_id: int = channel_id
        self.guild_id: int | None = guild_id
        #: "original", "followup", "channel" or "dm".
        self.kind: str = kind
        self.interaction_id: int | None = interaction_id
        self.type: int = message_type
        self.versions: list[MessageVersion] = [first]
        self.created_at: float = first.at
        self.deleted_at: float | None = None
        self.author_name: str = author_name
        #: The message this one replies to (``message_reference``), if any.
        self.reference_id: int | None = None
        #: The ``nonce`` it was sent with (as sent: string or integer), if any.
        self.nonce: str | int | None = None

    @property
    def current(self) -> MessageVersion:
        return self.versions[-1]

    @property
    def content(self) -> str:
        return self.current.content

    @property
    def embeds(self) -> list[JSON]:
        return self.current.embeds

    @property
    def components(self) -> list[JSON]:
        return self.current.components

    @property
    def flags(self) -> int:
        return self.current.flags

    @property
    def attachments(self) -> list[JSON]:
        return self.current.attachments

    @property
    def ephemeral(self) -> bool:
        return bool(self.current.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred response's "... is thinking" placeholder."""
        return bool(self.current.flags & FLAG_LOADING)

    @property
    def edits(self) -> list[MessageVersion]:
        return self.versions[1:]

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def mentioned_user_ids(self) -> list[int]:
        """User ids mentioned as <@id> in the content (whether or not they are pinged)."""
        return [int(m) for m in _MENTION_RE.findall(self.content)]

    @property
    def pinged_user_ids(self) -> list[int]:
        """Mentioned users that actually get a notification, given allowed_mentions."""
        allowed = self.current.allowed_mentions
        ids = self.mentioned_user_ids
        if self.current.flags & FLAG_SUPPRESS_NOTIFICATIONS:
            return []
        if allowed is None:
            return ids
        parse = allowed.get("parse") or []
        if "users" in parse:
            return ids
        listed = {int(x) for x in allowed.get("users") or []}
        return [i for i in ids if i in listed]

    def text(self) -> str:
        """What a reader sees of this message, as text (content, embeds, components)."""
        if self.deleted:
            return ""
        if self.loading:
            return f"{self.author_name} is thinking..."
        parts: list[str] = []
        version = self.current
        if version.content:
            parts.append(version.content)
        if not version.flags & FLAG_SUPPRESS_EMBEDS:
            for embed in version.embeds:
                parts.extend(_embed_texts(embed))
        for component in version.components:
            parts.extend(_component_texts(component))
        for attachment in version.attachments:
            if attachment.get("filename"):
                parts.append(str(attachment["filename"]))
        return "\n".join(p for p in parts if p)

    def __repr__(self) -> str:
        return (
            f"<MessageRecord {self.kind} id={self.id} channel={self.channel_id} "
            f"flags={self.flags} edits={len(self.edits)} deleted={self.deleted} "
            f"text={self.text()[:200]!r}>"
        )


def _embed_texts(embed: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    author = embed.get("author") or {}
    if author.get("name"):
        out.append(str(author["name"]))
    for key in ("title", "description"):
        if embed.get(key):
            out.append(str(embed[key]))
    for fld in embed.get("fields") or []:
        out.append(str(fld.get("name", "")))
        out.append(str(fld.get("value", "")))
    footer = embed.get("footer") or {}
    if footer.get("text"):
        out.append(str(footer["text"]))
    return out


def _component_texts(component: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    ctype = component.get("type")
    if ctype == 2:
        if component.get("label"):
            out.append(str(component["label"]))
        if component.get("url"):
            out.append(str(component["url"]))
    elif ctype in (3, 5, 6, 7, 8):
        if component.get("placeholder"):
            out.append(str(component["placeholder"]))
        for opt in component.get("options") or []:
            out.append(str(opt.get("label", "")))
    elif ctype == 10:
        out.append(str(component.get("content", "")))
    elif ctype == 13:
        file = component.get("file") or {}
        if file.get("url"):
            out.append(str(file["url"]))
    for child in component.get("components") or []:
        out.extend(_component_texts(child))
    accessory = component.get("accessory")
    if accessory:
        out.extend(_component_texts(accessory))
    return out


class InteractionRecord:
    """One interaction dispatched to the bot, and everything the bot answered on it."""

    def __init__(
        self,
        standin: DiscordStandIn,
        *,
        interaction_id: int,
        token: str,
        interaction_type: int,
        name: str,
        options: Mapping[str, Any],
        user_id: int,
        guild_id: int | None,
        channel_id: int,
        payload: JSON,
    ) -> None:
        self._standin = standin
        self._waiters = _Waiters()
        self.id: int = interaction_id
        self.token: str = token
        self.type: int = interaction_type
        #: Command name (with subcommand path, e.g. "admin credits") or custom_id for components.
        self.name: str = name
        self.options: dict[str, Any] = dict(options)
        self.user_id: int = user_id
        self.guild_id: int | None = guild_id
        self.channel_id: int = channel_id
        #: The INTERACTION_CREATE payload sent to the bot.
        self.payload: JSON = payload
        self.created_at: float = time.monotonic()
        #: When the dispatch was written to the bot's websocket (None until then).
        self.dispatched_at: float | None = None
        self.acks: list[Ack] = []
        #: The original response: the deferred/replied message, or for a component interaction
        #: acknowledged with type 6/7 the message the component is on.
        self.original: MessageRecord | None = None
        self.followups: list[MessageRecord] = []
        #: Error answers given on this interaction's callback and webhook routes.
        self.errors: list[RestError] = []
        self.token_expired: bool = False
        #: For component interactions: the message whose component was clicked.
        self.source_message: MessageRecord | None = None

    # -- derived state ---------------------------------------------------------------------

    @property
    def acked(self) -> bool:
        return bool(self.acks)

    @property
    def ack_latency(self) -> float | None:
        """Seconds between the dispatch being written to the bot and its first ack."""
        if not self.acks:
            return None
        start = self.dispatched_at if self.dispatched_at is not None else self.created_at
        return self.acks[0].at - start

    @property
    def deferred(self) -> bool:
        return bool(self.acks) and self.acks[0].type in (CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE)

    @property
    def ephemeral(self) -> bool:
        return self.original is not None and self.original.ephemeral

    @property
    def did_not_respond(self) -> bool:
        """True if the member saw "The application did not respond" (no ack in time)."""
        deadline = self._standin.ack_deadline
        if deadline is None:
            return False
        if self.acks:
            return self.acks[0].at - self.created_at > deadline
        return time.monotonic() - self.created_at > deadline

    @property
    def content(self) -> str:
        return self.original.content if self.original else ""

    @property
    def embeds(self) -> list[JSON]:
        return self.original.embeds if self.original else []

    @property
    def components(self) -> list[JSON]:
        return self.original.components if self.original else []

    @property
    def flags(self) -> int:
        return self.original.flags if self.original else 0

    @property
    def edits(self) -> list[MessageVersion]:
        return self.original.edits if self.original else []

    @property
    def messages(self) -> list[MessageRecord]:
        """The original response and follow-ups that still exist."""
        msgs = [self.original] if self.original is not None else []
        msgs.extend(self.followups)
        return [m for m in msgs if not m.deleted]

    @property
    def choices(self) -> list[JSON]:
        """Autocomplete choices answered (type 8 callback)."""
        for ack in self.acks:
            if ack.type == CB_AUTOCOMPLETE:
                return list((ack.data or {}).get("choices") or [])
        return []

    def visible_text(self, *, include_ephemeral: bool = True) -> str:
        """All text the invoking member can see for this interaction.

        With ``include_ephemeral=False``: what any other member of the channel sees.
        """
        parts: list[str] = []
        if self.did_not_respond:
            parts.append("The application did not respond")
        for msg in self.messages:
            if msg.ephemeral and not include_ephemeral:
                continue
            parts.append(msg.text())
        return "\n".join(p for p in parts if p)

    def expire_token(self) -> None:
        """Make this interaction's token invalid from now on (like after 15 minutes)."""
        self.token_expired = True

    # -- waiting ---------------------------------------------------------------------------

    def _notify(self) -> None:
        self._waiters.notify()

    async def wait_for(
        self, predicate: Callable[[InteractionRecord], T | None], timeout: float | None = 10.0
    ) -> T:
        """Wait until ``predicate(record)`` is truthy (re-checked on every change); return it."""
        return await self._waiters.wait(lambda: predicate(self), timeout, lambda: repr(self))

    async def wait_for_ack(self, timeout: float | None = 10.0) -> Ack:
        return await self.wait_for(lambda r: r.acks[0] if r.acks else None, timeout)

    async def wait_for_response(
        self,
        predicate: Callable[[MessageRecord], Any] | None = None,
        timeout: float | None = 10.0,
    ) -> MessageRecord:
        """Wait until the original response shows something (a reply, or a deferred response
        that has been edited/filled) and ``predicate(original)`` holds."""

        def check(rec: InteractionRecord) -> MessageRecord | None:
            msg = rec.original
            if msg is None or msg.loading or msg.deleted:
                return None
            if predicate is not None and not predicate(msg):
                return None
            return msg

        return await self.wait_for(check, timeout)

    async def wait_for_edit(
        self,
        predicate: Callable[[MessageRecord], Any] | None = None,
        timeout: float | None = 10.0,
    ) -> MessageRecord:
        """Wait until the original response has been edited at least once and
        ``predicate(original)`` holds; return the original message."""

        def check(rec: InteractionRecord) -> MessageRecord | None:
            msg = rec.original
            if msg is None or not msg.edits:
                return None
            if predicate is not None and not predicate(msg):
                return None
            return msg

        return await self.wait_for(check, timeout)

    async def wait_for_followup(
        self,
        predicate: Callable[[MessageRecord], Any] | None = None,
        timeout: float | None = 10.0,
    ) -> MessageRecord:
        """Wait for a follow-up message satisfying ``predicate``; return it."""

        def check(rec: InteractionRecord) -> MessageRecord | None:
            for msg in rec.followups:
                if predicate is None or predicate(msg):
                    return msg
            return None

        return await self.wait_for(check, timeout)

    async def wait_for_error(self, timeout: float | None = 10.0) -> RestError:
        return await self.wait_for(lambda r: r.errors[0] if r.errors else None, timeout)

    def __repr__(self) -> str:
        acks = [(a.type, round(a.at - self.created_at, 3)) for a in self.acks]
        errors = [(e.method, e.status, e.code) for e in self.errors]
        return (
            f"<InteractionRecord id={self.id} type={self.type} name={self.name!r} "
            f"user={self.user_id} dispatched={self.dispatched_at is not None} acks={acks} "
            f"original={self.original!r} followups={len(self.followups)} errors={errors}>"
        )


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


class _ErrorCollector:
    def __init__(self) -> None:
        self.items: list[tuple[tuple[str, ...], str, str]] = []

    def add(self, path: Sequence[object], code: str, message: str) -> None:
        self.items.append((tuple(str(p) for p in path), code, message))

    def max_len(self, path: Sequence[object], value: Any, limit: int) -> int:
        """Check a string's length; return the length counted (0 if absent)."""
        if value is None:
            return 0
        if not isinstance(value, str):
            self.add(path, "BASE_TYPE_STRING", "Must be a string.")
            return 0
        if len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
        return len(value)

    def nested(self) -> JSON:
        root: JSON = {}
        for path, code, message in self.items:
            node = root
            for part in path:
                node = node.setdefault(part, {})
            node.setdefault("_errors", []).append({"code": code, "message": message})
        return root


def _validate_embeds(embeds: Any, errs: _ErrorCollector) -> None:
    if not isinstance(embeds, list):
        errs.add(("embeds",), "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(embeds) > 10:
        errs.add(("embeds",), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        base = ("embeds", i)
        if not isinstance(embed, dict):
            errs.add(base, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        total += errs.max_len((*base, "title"), embed.get("title"), 256)
        total += errs.max_len((*base, "description"), embed.get("description"), 4096)
        author = embed.get("author") or {}
        total += errs.max_len((*base, "author", "name"), author.get("name"), 256)
        footer = embed.get("footer") or {}
        total += errs.max_len((*base, "footer", "text"), footer.get("text"), 2048)
        for key in ("url",):
            errs.max_len((*base, key), embed.get(key), 2048)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errs.add((*base, "fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for j, fld in enumerate(fields):
            fpath = (*base, "fields", j)
            for key, limit in (("name", 256), ("value", 1024)):
                value = fld.get(key)
                if value is None or value == "":
                    errs.add((*fpath, key), "BASE_TYPE_REQUIRED", "This field is required")
                else:
                    total += errs.max_len((*fpath, key), value, limit)
    if total > 6000:
        errs.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _validate_button(comp: Mapping[str, Any], path: tuple[object, ...], errs: _ErrorCollector) -> None:
    style = comp.get("style")
    errs.max_len((*path, "label"), comp.get("label"), 80)
    if not comp.get("label") and not comp.get("emoji"):
        errs.add(path, "BUTTON_COMPONENT_INVALID", "A button needs a label or an emoji")
    if style == 5:
        url = comp.get("url")
        if not url:
            errs.add((*path, "url"), "BASE_TYPE_REQUIRED", "This field is required")
        else:
            errs.max_len((*path, "url"), url, 512)
            if not re.match(r"^(https?|discord)://", str(url)):
                errs.add((*path, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        if comp.get("custom_id") is not None:
            errs.add(
                (*path, "custom_id"),
                "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
                "A custom id is not allowed for a link button",
            )
    elif style in (1, 2, 3, 4):
        if not comp.get("custom_id"):
            errs.add((*path, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required")
        if comp.get("url") is not None:
            errs.add((*path, "url"), "BUTTON_COMPONENT_URL_NOT_ALLOWED", "URL not allowed")
    elif style != 6:
        errs.add((*path, "style"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, 4, 5, 6).")


def _validate_components(components: Any, flags: int, errs: _ErrorCollector) -> None:
    if not isinstance(components, list):
        errs.add(("components",), "BASE_TYPE_ARRAY", "Must be an array.")
        return
    v2 = bool(flags & FLAG_COMPONENTS_V2)
    custom_ids: set[str] = set()
    counter = itertools.count()
    text_total = 0

    def walk(comp: Any, path: tuple[object, ...], top: bool) -> None:
        nonlocal text_total
        next(counter)
        if not isinstance(comp, dict):
            errs.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            return
        ctype = comp.get("type")
        cid = comp.get("custom_id")
        if cid is not None:
            errs.max_len((*path, "custom_id"), cid, 100)
            if cid in custom_ids:
                errs.add(
                    (*path, "custom_id"),
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                )
            custom_ids.add(cid)
        if ctype == 1:
            children = comp.get("components") or []
            if not 1 <= len(children) <= 5:
                errs.add(
                    (*path, "components"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 5 in length.",
                )
            selects = [c for c in children if isinstance(c, dict) and c.get("type") != 2]
            if selects and len(children) > 1:
                errs.add(
                    (*path, "components"),
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            for k, child in enumerate(children):
                walk(child, (*path, "components", k), False)
        elif ctype == 2:
            if top:
                errs.add(path, "COMPONENT_TYPE_INVALID", "Buttons must be inside an action row")
            _validate_button(comp, path, errs)
        elif ctype in (3, 5, 6, 7, 8):
            if top:
                errs.add(path, "COMPONENT_TYPE_INVALID", "Selects must be inside an action row")
            errs.max_len((*path, "placeholder"), comp.get("placeholder"), 150)
            if ctype == 3:
                opts = comp.get("options") or []
                if not 1 <= len(opts) <= 25:
                    errs.add(
                        (*path, "options"),
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 25 in length.",
                    )
                for k, opt in enumerate(opts):
                    for key in ("label", "value", "description"):
                        errs.max_len((*path, "options", k, key), opt.get(key), 100)
        elif ctype == 10:
            if not v2:
                errs.add(path, "COMPONENT_TYPE_INVALID", "Requires the IS_COMPONENTS_V2 flag")
            text_total += len(str(comp.get("content", "")))
        elif ctype in (9, 11, 12, 13, 14, 17):
            if not v2:
                errs.add(path, "COMPONENT_TYPE_INVALID", "Requires the IS_COMPONENTS_V2 flag")
            for k, child in enumerate(comp.get("components") or []):
                walk(child, (*path, "components", k), False)
            if comp.get("accessory"):
                walk(comp["accessory"], (*path, "accessory"), False)
        else:
            errs.add((*path, "type"), "COMPONENT_TYPE_INVALID", f"Invalid component type {ctype}")

    if not v2 and len(components) > 5:
        errs.add(("components",), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for i, comp in enumerate(components):
        walk(comp, ("components", i), True)
    if v2:
        total = next(counter)
        if total > 40:
            errs.add(
                ("components",),
                "COMPONENT_MAX_TOTAL_COMPONENTS_EXCEEDED",
                "Total number of components exceeds the maximum of 40",
            )
        if text_total > 4000:
            errs.add(
                ("components",),
                "COMPONENT_TEXT_DISPLAY_TOTAL_LENGTH_EXCEEDED",
                "Text display content exceeds the maximum of 4000 characters",
            )


def _validate_message_payload(payload: Mapping[str, Any], flags: int) -> _ErrorCollector:
    errs = _ErrorCollector()
    if "content" in payload:
        errs.max_len(("content",), payload["content"], 2000)
    if payload.get("embeds") is not None:
        _validate_embeds(payload["embeds"], errs)
    if payload.get("components") is not None:
        _validate_components(payload["components"], flags, errs)
    if flags & FLAG_COMPONENTS_V2 and (payload.get("content") or payload.get("embeds")):
        errs.add(
            ("content",) if payload.get("content") else ("embeds",),
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used with IS_COMPONENTS_V2",
        )
    return errs


def _validate_autocomplete(data: Mapping[str, Any]) -> _ErrorCollector:
    """An autocomplete answer (callback type 8): at most 25 choices, each a name of 1 to 100
    characters and a value (a string at most 100 characters)."""
    errs = _ErrorCollector()
    choices = data.get("choices")
    if not isinstance(choices, list):
        errs.add(("data", "choices"), "BASE_TYPE_REQUIRED", "This field is required")
        return errs
    if len(choices) > 25:
        errs.add(("data", "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for c, choice in enumerate(choices):
        path = ("data", "choices", c)
        if not isinstance(choice, Mapping):
            errs.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        name = choice.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            errs.add((*path, "name"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        value = choice.get("value")
        if value is None:
            errs.add((*path, "value"), "BASE_TYPE_REQUIRED", "This field is required")
        elif isinstance(value, str):
            errs.max_len((*path, "value"), value, 100)
    return errs


_DISCORD_LOCALES = frozenset(
    "id da de en-GB en-US es-ES es-419 fr hr it lt hu nl no pl pt-BR ro fi sv-SE vi tr cs el bg ru "
    "uk hi th zh-CN ja zh-TW ko".split()
)
"""The locales Discord takes in ``name_localizations`` and ``description_localizations``."""


def _validate_commands(commands: Any) -> _ErrorCollector:
    errs = _ErrorCollector()
    if not isinstance(commands, list):
        errs.add((), "BASE_TYPE_ARRAY", "Must be an array.")
        return errs
    seen: set[tuple[int, str]] = set()

    def check_localisations(item: Any, path: tuple[object, ...], *, name_rule: bool) -> None:
        """Localised names follow the name's rules (``name_rule``: a command's or option's; a
        choice's name is 1-100 characters); localised descriptions are 1-100 characters."""
        for field_name in ("name_localizations", "description_localizations"):
            localised = item.get(field_name)
            if localised is None:
                continue
            if not isinstance(localised, dict):
                errs.add(
                    (*path, field_name), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
                )
                continue
            for locale, text in localised.items():
                where = (*path, field_name, locale)
                if locale not in _DISCORD_LOCALES:
                    errs.add(where, "ENUM_TYPE_COERCE", f'Value "{locale}" is not a valid enum value.')
                elif not isinstance(text, str):
                    errs.add(where, "BASE_TYPE_STRING", "Must be a string.")
                elif field_name == "name_localizations" and name_rule:
                    if not _COMMAND_NAME_RE.match(text) or text != text.lower():
                        errs.add(where, "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
                elif not 1 <= len(text) <= 100:
                    errs.add(where, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")

    def check_options(opts: list[Any], path: tuple[object, ...]) -> None:
        if len(opts) > 25:
            errs.add((*path, "options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        optional_seen = False
        names: set[str] = set()
        for k, opt in enumerate(opts):
            opath = (*path, "options", k)
            name = str(opt.get("name", ""))
            if not _COMMAND_NAME_RE.match(name) or name != name.lower():
                errs.add((*opath, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
            if name in names:
                errs.add(
                    (*opath, "name"),
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option names must be unique",
                )
            names.add(name)
            check_localisations(opt, opath, name_rule=True)
            desc = opt.get("description", "")
            if not 1 <= len(str(desc)) <= 100:
                errs.add(
                    (*opath, "description"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            otype = opt.get("type")
            if otype in (1, 2):
                check_options(opt.get("options") or [], opath)
                continue
            if opt.get("required"):
                if optional_seen:
                    errs.add(
                        opath,
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                optional_seen = True
            choices = opt.get("choices") or []
            if len(choices) > 25:
                errs.add((*opath, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            for c, choice in enumerate(choices):
                errs.max_len((*opath, "choices", c, "name"), choice.get("name"), 100)
                check_localisations(choice, (*opath, "choices", c), name_rule=False)
                if isinstance(choice.get("value"), str):
                    errs.max_len((*opath, "choices", c, "value"), choice.get("value"), 100)

    for i, cmd in enumerate(commands):
        if not isinstance(cmd, dict):
            errs.add((i,), "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        ctype = int(cmd.get("type", 1))
        name = str(cmd.get("name", ""))
        if ctype == 1:
            if not _COMMAND_NAME_RE.match(name) or name != name.lower():
                errs.add((i, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
            if not 1 <= len(str(cmd.get("description", ""))) <= 100:
                errs.add(
                    (i, "description"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            check_localisations(cmd, (i,), name_rule=True)
            check_options(cmd.get("options") or [], (i,))
        elif not 1 <= len(name) <= 32:
            errs.add((i, "name"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        if (ctype, name) in seen:
            errs.add(
                (i, "name"),
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique: {name}",
            )
        seen.add((ctype, name))
    return errs


# ----------------------------------------------------------------------------------------------
# Gateway plumbing
# ----------------------------------------------------------------------------------------------


class _Conn:
    """One websocket connection from a bot."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, compress: str) -> None:
        self.ws = ws
        self.request = request
        self.query: dict[str, str] = dict(request.query)
        self.session: _Session | None = None
        self.queue: asyncio.Queue[tuple[str, Callable[[], None] | None] | None] = asyncio.Queue()
        self._compressor: Any = None
        if compress == "zlib-stream":
            self._compressor = zlib.compressobj()
        # zstd-stream: discord.py decodes text frames without decompressing them, so plain
        # text frames are a valid answer to any compression request.
        self.writer: asyncio.Task[None] = asyncio.create_task(self._write_loop())

    def send(self, text: str, on_sent: Callable[[], None] | None = None) -> None:
        self.queue.put_nowait((text, on_sent))

    async def _write_loop(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None or self.ws.closed:
                return
            text, on_sent = item
            try:
                if self._compressor is not None:
                    data = self._compressor.compress(text.encode())
                    data += self._compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                _log.debug("gateway write failed: %r", exc)
                return
            if on_sent is not None:
                on_sent()

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, message: bytes = b"") -> None:
        self.queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)


class _Session:
    def __init__(self, session_id: str, identify: JSON) -> None:
        self.id = session_id
        self.identify = identify
        self.seq = 0
        self.buffer: deque[tuple[int, str, Callable[[], None] | None]] = deque(maxlen=100_000)
        self.conn: _Conn | None = None
        self.ready = False
        shard = identify.get("shard")
        #: ``(shard_id, shard_count)`` from IDENTIFY; None: an unsharded session (every guild).
        self.shard: tuple[int, int] | None = (int(shard[0]), int(shard[1])) if shard else None

    def serves(self, guild_id: int | None) -> bool:
        """Whether this session hears of the guild (``None``: a DM, which goes to shard 0)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        return ((guild_id or 0) >> 22) % count == shard_id

    def dispatch(self, event: str, data: Any, on_sent: Callable[[], None] | None = None) -> int:
        self.seq += 1
        text = json.dumps({"op": 0, "t": event, "s": self.seq, "d": data})
        self.buffer.append((self.seq, text, on_sent))
        if self.conn is not None:
            self.conn.send(text, on_sent)
        return self.seq


# ----------------------------------------------------------------------------------------------
# Bot subprocess helper
# ----------------------------------------------------------------------------------------------


class BotProcess:
    """A bot started as a subprocess through ``python -m testing.launcher TARGET``."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path, target: str) -> None:
        self.proc = proc
        self.log_path = log_path
        self.target = target

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def output(self) -> str:
        """Everything the bot wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def stop(self, timeout: float = 5.0) -> int:
        """Terminate (then kill) the process; return its exit code."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode if self.proc.returncode is not None else -1

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            self.log_path.unlink()


# ----------------------------------------------------------------------------------------------
# The stand-in
# ----------------------------------------------------------------------------------------------


@dataclass
class _Fault:
    remaining: int
    route_contains: str
    status: int
    code: int = 0
    message: str = ""
    retry_after: float = 0.0
    is_global: bool = False
    #: The request is handled (it takes effect) and only then is its answer replaced.
    takes_effect: bool = False
    #: Close the connection instead of answering.
    close: bool = False


@dataclass
class _Guild:
    id: int
    name: str
    owner_id: int
    channels: dict[int, JSON] = field(default_factory=dict)
    roles: dict[int, JSON] = field(default_factory=dict)
    #: Members recorded with ``add_member``: user id -> (role ids, permissions or None).
    members: dict[int, tuple[tuple[int, ...], int | None]] = field(default_factory=dict)
    #: Whether the server added the bot (a guild install).  A server that did not is never
    #: announced to the bot; only a member's own install (``user_install=True``) reaches it there.
    bot_added: bool = True
    #: The server's language ("Community" settings), sent with every interaction from it as
    #: ``guild_locale`` and in GUILD_CREATE as ``preferred_locale``.
    locale: str = "en-US"


class DiscordStandIn:
    """Discord REST (under /api/v10) and gateway (at /gateway) on 127.0.0.1."""

    def __init__(
        self,
        token: str = "test-token",
        application_id: int = DEFAULT_APPLICATION_ID,
        guild_id: int = DEFAULT_GUILD_ID,
        channel_id: int = DEFAULT_CHANNEL_ID,
        *,
        bot_name: str = "StemBot",
        owner_id: int = DEFAULT_OWNER_ID,
        heartbeat_interval_ms: int = 41250,
        attachment_size_limit: int = 10 * 1024 * 1024,
        app_permissions: int = DEFAULT_APP_PERMISSIONS,
        member_permissions: int = DEFAULT_MEMBER_PERMISSIONS,
        ack_deadline: float | None = 3.0,
        token_max_age: float | None = 15 * 60.0,
        host: str = "127.0.0.1",
        shard_count: int = 1,
    ) -> None:
        self.token = token
        self.application_id = application_id
        self.bot_user_id = application_id
        self.bot_name = bot_name
        self.owner_id = owner_id
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.attachment_size_limit = attachment_size_limit
        self.app_permissions = app_permissions
        self.member_permissions = member_permissions
        #: Callbacks later than this many seconds after dispatch get 404 10062 Unknown interaction.
        self.ack_deadline: float | None = ack_deadline
        #: Webhook tokens older than this many seconds get 401 50027 Invalid Webhook Token.
        self.token_max_age: float | None = token_max_age
        #: While an unset event: an interaction callback takes effect (the member sees the
        #: acknowledgement) but its HTTP answer waits until the event is set, as a slow Discord's
        #: would, holding the bot between its acknowledgement and what it does next.
        self.hold_callbacks: asyncio.Event | None = None
        #: Users whose DMs are closed: sending to their DM channel answers 403 50007.
        self.dms_closed: set[int] = set()
        #: Channels where the bot may not post: 403 50013 Missing Permissions.
        self.channel_forbidden: set[int] = set()
        #: The bot's permissions in one channel or thread, instead of ``app_permissions``: carried
        #: as ``app_permissions`` by interactions there and enforced on the REST routes (a thread
        #: without an entry takes its parent's).  ``set_channel_permissions`` also tells a
        #: connected bot (CHANNEL_UPDATE); set the dict directly before the bot starts.
        self.channel_permissions: dict[int, int] = {}
        #: Channels whose type holds no threads (a voice channel's chat, a forum post...):
        #: starting a thread there answers 400 50024, as in DM channels.
        self.no_thread_channels: set[int] = set()
        #: The size all files of one request may have together before Discord answers 413
        #: 40005; None: ``attachment_size_limit``, what interactions report.  Lower it to make
        #: Discord refuse a pack the bot believed would fit.
        self.enforced_upload_limit: int | None = None
        self.host = host
        #: The shard count ``/gateway/bot`` recommends, and the one ``add_guild(shard=...)`` and
        #: ``shard_ready`` use.
        self.shard_count = shard_count

        #: Every REST call: (method, path without /api/v10 and query, status, monotonic time).
        self.requests: list[RestCall] = []
        #: Requests refused by validation like Discord would (tests assert this stays empty).
        self.rejected: list[Rejection] = []
        #: REST calls to routes the stand-in does not implement (method, path).
        self.unhandled: list[tuple[str, str]] = []
        #: Exceptions raised inside the stand-in's handlers (should stay empty).
        self.internal_errors: list[str] = []
        self.sync_calls: list[SyncCall] = []
        self.interactions: list[InteractionRecord] = []
        self.identifies: list[JSON] = []
        self.presence_updates: list[JSON] = []
        self.resumes: int = 0
        self.heartbeats: int = 0
        self.gateway_connections: list[dict[str, str]] = []

        self._commands: dict[int | None, list[JSON]] = {}
        self._command_ids: dict[tuple[int | None, int, str], int] = {}
        self._guilds: dict[int, _Guild] = {}
        self._users: dict[int, JSON] = {}
        self._dm_channels: dict[int, int] = {}  # user id -> channel id
        self._dm_users: dict[int, int] = {}  # channel id -> user id
        self._messages: dict[int, MessageRecord] = {}
        self._channel_messages: dict[int, list[MessageRecord]] = {}
        self._by_token: dict[str, InteractionRecord] = {}
        self._by_id: dict[int, InteractionRecord] = {}
        self._faults: list[_Fault] = []
        self._threads: dict[int, ThreadRecord] = {}
        #: sha256 of every uploaded file, by attachment id.
        self._upload_sha256: dict[str, str] = {}
        #: Keep every uploaded file's bytes (by sha256) for `attachment_bytes`: for tests that
        #: look inside a large file (decode a mix, say). Off by default: files stream by unkept.
        self.keep_upload_bytes = False
        self._kept_bytes: dict[str, bytes] = {}
        #: The bytes of small uploads (at most ``KEEP_UPLOAD_BYTES``: charts, exports), by attachment id.
        self._upload_bytes: dict[str, bytes] = {}
        #: Nonces of the bot's channel messages: nonce -> (message, monotonic time).
        self._nonces: dict[str, tuple[MessageRecord, float]] = {}
        self._sessions: dict[str, _Session] = {}
        #: The session that identified or resumed last.
        self._session: _Session | None = None
        #: Every session, by when it last identified or resumed (newest last): a guild's
        #: dispatches go to the newest one that serves it.
        self._by_recency: list[_Session] = []
        self._conns: set[_Conn] = set()
        self._waiters = _Waiters()
        self._last_id = 0
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

        self.add_guild(guild_id, name="StemBot Test Guild", channel_id=channel_id)
        self._bot_role_id = self._next_id()
        self._guilds[guild_id].roles[self._bot_role_id] = self._role_json(
            self._bot_role_id, bot_name, app_permissions, managed=True, position=1
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=200 * 1024 * 1024)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    async def stop(self) -> None:
        for conn in list(self._conns):
            await conn.close(1001, b"stand-in stopping")
        for conn in list(self._conns):
            conn.writer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("stand-in not started")
        return self._port

    @property
    def rest_base(self) -> str:
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    def env(self, *, token: bool = False) -> dict[str, str]:
        """The launcher's environment variables (plus DISCORD_TOKEN if ``token``)."""
        out = {"STANDIN_REST_BASE": self.rest_base, "STANDIN_GATEWAY": self.gateway_url}
        if token:
            out["DISCORD_TOKEN"] = self.token
        return out

    async def spawn(
        self,
        target: str,
        *args: str,
        extra_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        cwd: str | os.PathLike[str] = REPO_ROOT,
    ) -> BotProcess:
        """Start ``python -m testing.launcher TARGET ARGS...`` with this stand-in's env and
        DISCORD_TOKEN; stdout/stderr go to a temp file (``BotProcess.output()``)."""
        env = dict(os.environ)
        env.update(self.env(token=True))
        env.setdefault("PYTHONUNBUFFERED", "1")
        if extra_env:
            env.update(extra_env)
        fd, name = tempfile.mkstemp(prefix="standin-bot-", suffix=".log")
        try:
            proc = await asyncio.create_subprocess_exec(
                python,
                "-m",
                "testing.launcher",
                target,
                *args,
                cwd=str(cwd),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
            )
        finally:
            os.close(fd)
        return BotProcess(proc, Path(name), target)

    # -- state helpers ---------------------------------------------------------------------

    def _next_id(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(candidate, self._last_id + 1)
        return self._last_id

    def _next_id_on_shard(self, shard: int) -> int:
        """A new snowflake whose ``>> 22 % shard_count`` is ``shard`` (a few ms later at most)."""
        if not 0 <= shard < self.shard_count:
            raise ValueError(f"shard {shard} is not one of the {self.shard_count} shards")
        candidate = self._next_id()
        candidate += ((shard - (candidate >> 22)) % self.shard_count) << 22
        self._last_id = candidate
        return candidate

    def _changed(self, record: InteractionRecord | None = None) -> None:
        if record is not None:
            record._notify()
        self._waiters.notify()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float | None = 10.0) -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every state change); return it."""
        return await self._waiters.wait(predicate, timeout, self._describe)

    def _describe(self) -> str:
        session = self._session
        shards = sorted((s.shard, bool(s.conn)) for s in self._by_recency if s.shard is not None and s.ready)
        return (
            f"sessions={self.session_count} ready={self.ready} "
            f"connected={bool(session and session.conn)} resumes={self.resumes} "
            f"shards(connected)={shards} "
            f"commands={ {k: [c['name'] for c in v] for k, v in self._commands.items()} } "
            f"interactions={len(self.interactions)} rejected={len(self.rejected)} "
            f"unhandled={self.unhandled[-5:]} internal_errors={self.internal_errors[-3:]}"
        )

    @property
    def ready(self) -> bool:
        """A bot session is identified, READY was sent and its websocket is attached."""
        session = self._session
        return session is not None and session.ready and session.conn is not None

    def shard_ready(self, shard_id: int) -> bool:
        """Shard ``shard_id`` of ``shard_count`` is served by a session that is identified, got
        READY and has its websocket attached (an unsharded session serves every shard)."""
        session = self._session_for_shard(shard_id)
        return session is not None and session.ready and session.conn is not None

    def shard_of(self, guild_id: int) -> int:
        """The shard of ``shard_count`` a guild's events go to."""
        return (guild_id >> 22) % self.shard_count

    def _session_for(self, guild_id: int | None) -> _Session | None:
        """The session that receives a guild's dispatches (``None``: DMs)."""
        return next((s for s in reversed(self._by_recency) if s.serves(guild_id)), None)

    def _session_for_shard(self, shard_id: int) -> _Session | None:
        return next(
            (s for s in reversed(self._by_recency) if s.shard in (None, (shard_id, self.shard_count))), None
        )

    def _dispatch_for_guild(self, guild_id: int, event: str, data: Callable[[], JSON]) -> None:
        """Dispatch a guild's event (``data()``) to the session of its shard, if one is ready."""
        session = self._session_for(guild_id)
        if session is not None and session.ready:
            session.dispatch(event, data())

    def _activate(self, session: _Session) -> None:
        with contextlib.suppress(ValueError):
            self._by_recency.remove(session)
        self._by_recency.append(session)
        self._session = session

    @property
    def session_count(self) -> int:
        """Sessions ever started (successful IDENTIFYs); RESUMEs do not count."""
        return len(self.identifies)

    async def wait_ready(
        self, timeout: float | None = 20.0, *, commands: bool = True, sessions: int = 1
    ) -> None:
        """Wait until at least ``sessions`` bot sessions were started (IDENTIFY → READY), the
        latest one is connected and, with ``commands``, some application commands are known
        (synced now or earlier, or seeded with ``set_commands``)."""

        def check() -> bool:
            if not self.ready or self.session_count < sessions:
                return False
            return not commands or any(self._commands.values())

        await self.wait_for(check, timeout)

    @property
    def invalid_request_count(self) -> int:
        """401/403/429 answers (Discord bans an IP after 10,000 of these in 10 minutes)."""
        return sum(1 for r in self.requests if r.status in (401, 403, 429))

    # -- guilds, users, roles, channels ----------------------------------------------------

    def add_guild(
        self,
        guild_id: int | None = None,
        *,
        name: str = "Guild",
        channel_id: int | None = None,
        shard: int | None = None,
        bot_added: bool = True,
        locale: str = "en-US",
    ) -> int:
        """Add a guild with @everyone and one text channel "general"; dispatches GUILD_CREATE
        to the session of its shard if one is connected.  ``shard``: choose a new id that lands
        on that shard of ``shard_count``.  ``bot_added=False``: a server that never added the bot
        (no GUILD_CREATE, not in READY, its channels answer 403 50001 Missing Access), where
        only interactions from a member's own install (``user_install=True``) come from.
        ``locale``: the server's language (``guild_locale``; ``set_guild_locale`` changes it)."""
        if shard is not None and guild_id is not None:
            raise ValueError("pass guild_id or shard, not both")
        gid = guild_id or (self._next_id() if shard is None else self._next_id_on_shard(shard))
        cid = channel_id or self._next_id()
        guild = _Guild(id=gid, name=name, owner_id=self.owner_id, bot_added=bot_added, locale=locale)
        guild.roles[gid] = self._role_json(gid, "@everyone", self.member_permissions)
        guild.channels[cid] = self._text_channel_json(gid, cid, "general", 0)
        self._guilds[gid] = guild
        if bot_added:
            self._dispatch_for_guild(gid, "GUILD_CREATE", lambda: self._guild_create_json(guild))
        return gid

    def set_guild_locale(self, locale: str, guild_id: int | None = None) -> None:
        """The server's language from now on (a manager changed it in the server's settings):
        sent as ``guild_locale`` with every later interaction from it."""
        self._guilds[guild_id or self.guild_id].locale = locale

    def add_text_channel(
        self, name: str, *, channel_id: int | None = None, guild_id: int | None = None
    ) -> int:
        guild = self._guilds[guild_id or self.guild_id]
        cid = channel_id or self._next_id()
        data = self._text_channel_json(guild.id, cid, name, len(guild.channels))
        guild.channels[cid] = data
        self._dispatch_for_guild(guild.id, "CHANNEL_CREATE", lambda: data)
        return cid

    def add_role(
        self,
        name: str,
        *,
        role_id: int | None = None,
        permissions: int = 0,
        guild_id: int | None = None,
    ) -> int:
        """Create a guild role (dispatches GUILD_ROLE_CREATE if a bot is connected).

        discord.py drops role ids it does not know from ``Member.roles``; ``invoke`` creates
        unknown roles automatically."""
        guild = self._guilds[guild_id or self.guild_id]
        rid = role_id or self._next_id()
        role = self._role_json(rid, name, permissions, position=len(guild.roles))
        guild.roles[rid] = role
        self._dispatch_for_guild(
            guild.id, "GUILD_ROLE_CREATE", lambda: {"guild_id": str(guild.id), "role": role}
        )
        return rid

    def add_member(
        self,
        user_id: int,
        *,
        roles: Sequence[int] = (),
        permissions: int | None = None,
        guild_id: int | None = None,
        username: str | None = None,
    ) -> int:
        """Record a guild member's roles and channel permissions (default: ``member_permissions``).

        Used wherever Discord would show that member: as the one invoking or clicking (unless
        ``roles``/``permissions`` are passed there), as the resolved member of a USER option, in
        member fetches and member chunks.  Unknown roles are created.  Returns ``user_id``."""
        guild = self._guilds[guild_id or self.guild_id]
        for rid in roles:
            if rid not in guild.roles:
                self.add_role(f"role-{rid}", role_id=rid, guild_id=guild.id)
        if username is not None or user_id not in self._users:
            self.add_user(user_id, username)
        guild.members[user_id] = (tuple(roles), permissions)
        return user_id

    def _member_roles(self, guild: _Guild, user_id: int) -> tuple[int, ...]:
        return guild.members.get(user_id, ((), None))[0]

    def _member_permissions(self, guild: _Guild, user_id: int) -> int:
        permissions = guild.members.get(user_id, ((), None))[1]
        return self.member_permissions if permissions is None else permissions

    def add_user(self, user_id: int, username: str | None = None, *, global_name: str | None = None) -> JSON:
        user = {
            "id": str(user_id),
            "username": username or f"member{user_id % 100000}",
            "global_name": global_name,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
            "bot": False,
        }
        self._users[user_id] = user
        return user

    def user_json(self, user_id: int) -> JSON:
        return self._users.get(user_id) or self.add_user(user_id)

    def dm_channel_id(self, user_id: int) -> int:
        """The DM channel id for a user (created on first use)."""
        cid = self._dm_channels.get(user_id)
        if cid is None:
            cid = self._next_id()
            self._dm_channels[user_id] = cid
            self._dm_users[cid] = user_id
        return cid

    def _bot_user_json(self) -> JSON:
        return {
            "id": str(self.bot_user_id),
            "username": self.bot_name,
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": True,
            "public_flags": 0,
        }

    def _role_json(
        self, role_id: int, name: str, permissions: int, *, managed: bool = False, position: int = 0
    ) -> JSON:
        role: JSON = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": False,
            "flags": 0,
        }
        if managed:
            role["tags"] = {"bot_id": str(self.bot_user_id)}
        return role

    @staticmethod
    def _text_channel_json(guild_id: int, channel_id: int, name: str, position: int) -> JSON:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }

    def _dm_channel_json(self, user_id: int) -> JSON:
        return {
            "id": str(self.dm_channel_id(user_id)),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self.user_json(user_id)],
        }

    def _bot_member_json(self, guild: _Guild) -> JSON:
        return {
            "user": self._bot_user_json(),
            "roles": [str(self._bot_role_id)] if self._bot_role_id in guild.roles else [],
            "joined_at": _now_iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "communication_disabled_until": None,
        }

    def _member_json(
        self, user_id: int, roles: Iterable[int], permissions: int | None, *, with_user: bool
    ) -> JSON:
        member: JSON = {
            "roles": [str(r) for r in roles],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
        }
        if permissions is not None:
            member["permissions"] = str(permissions)
        if with_user:
            member["user"] = self.user_json(user_id)
        return member

    def _guild_create_json(self, guild: _Guild) -> JSON:
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": guild.locale,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "premium_progress_bar_enabled": False,
            "application_id": None,
            "features": [],
            "roles": list(guild.roles.values()),
            "emojis": [],
            "stickers": [],
            "channels": [self._with_bot_overwrite(c) for c in guild.channels.values()],
            # Like Discord: the active threads the bot can see, with its own thread membership.
            "threads": [
                self._thread_json(t)
                for t in self._threads.values()
                if t.guild_id == guild.id and not t.archived
            ],
            "members": [self._bot_member_json(guild)],
            "member_count": 2,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "lazy": True,
            "joined_at": _now_iso(),
        }

    def _app_info_json(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self.bot_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "bot": self._bot_user_json(),
            "owner": {
                "id": str(self.owner_id),
                "username": "owner",
                "global_name": None,
                "discriminator": "0",
                "avatar": None,
                "public_flags": 0,
            },
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "hook": True,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": sum(g.bot_added for g in self._guilds.values()),
            "integration_types_config": {"0": {}},
        }

    # -- commands --------------------------------------------------------------------------

    @property
    def commands(self) -> dict[int | None, list[JSON]]:
        """Registered commands by scope: ``None`` for global, else the guild id."""
        return {k: list(v) for k, v in self._commands.items()}

    @property
    def global_commands(self) -> list[JSON]:
        return list(self._commands.get(None, []))

    def guild_commands(self, guild_id: int | None = None) -> list[JSON]:
        return list(self._commands.get(guild_id or self.guild_id, []))

    def set_commands(self, commands: list[JSON], guild_id: int | None = None) -> list[JSON]:
        """Register commands as if synced earlier (not recorded in ``sync_calls``)."""
        stored = self._store_commands(commands, guild_id)
        self._changed()
        return stored

    def _store_commands(self, commands: list[JSON], guild_id: int | None) -> list[JSON]:
        stored: list[JSON] = []
        for cmd in commands:
            ctype = int(cmd.get("type", 1))
            key = (guild_id, ctype, cmd["name"])
            cid = self._command_ids.get(key)
            if cid is None:
                cid = self._command_ids[key] = self._next_id()
            data = dict(cmd)
            data.update(
                id=str(cid),
                application_id=str(self.application_id),
                version=str(self._next_id()),
                type=ctype,
            )
            data.setdefault("description", "")
            data.setdefault("default_member_permissions", None)
            data.setdefault("nsfw", False)
            if guild_id is not None:
                data["guild_id"] = str(guild_id)
            else:
                data.setdefault("integration_types", [0])
                data.setdefault("contexts", None)
            stored.append(data)
        self._commands[guild_id] = stored
        return stored

    def find_command(self, name: str, guild_id: int | None = None, ctype: int = 1) -> JSON:
        """The registered definition a member in ``guild_id`` would invoke."""
        gid = guild_id or self.guild_id
        for scope in (gid, None):
            for cmd in self._commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == ctype:
                    return cmd
        known = sorted({c["name"] for cmds in self._commands.values() for c in cmds})
        raise LookupError(f"command /{name} is not registered (known: {known})")

    # -- faults ----------------------------------------------------------------------------

    def rate_limit_next(
        self,
        n: int = 1,
        retry_after: float = 0.2,
        route_contains: str = "",
        *,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``n`` REST calls whose "METHOD /path" contains ``route_contains``
        with 429 (Retry-After, X-RateLimit-* and Via headers, JSON body with retry_after)."""
        self._faults.append(_Fault(n, route_contains, 429, retry_after=retry_after, is_global=is_global))

    def fail_next(
        self,
        status: int,
        code: int,
        n: int = 1,
        route_contains: str = "",
        *,
        message: str | None = None,
    ) -> None:
        """Answer the next ``n`` matching REST calls with ``status`` and a Discord JSON error."""
        self._faults.append(
            _Fault(n, route_contains, status, code=code, message=message or f"Error {status}")
        )

    def lose_response_next(self, n: int = 1, route_contains: str = "", *, close: bool = False) -> None:
        """The next ``n`` matching REST calls take effect (a message is created with its
        attachments, a thread is opened...) but their answer is lost: 500, or with ``close`` the
        connection is closed without an answer (recorded in ``requests`` with status 0).

        The bot cannot know whether it worked.  discord.py retries a 500 by itself (after 1 s, up
        to 5 tries), so one lost answer on ``POST /channels/…/messages`` is a second post unless
        the bot prevents it (``enforce_nonce``, or reading the channel first); a closed
        connection raises ``aiohttp.ServerDisconnectedError`` out of discord.py."""
        self._faults.append(
            _Fault(
                n,
                route_contains,
                500,
                message="500: Internal Server Error",
                takes_effect=True,
                close=close,
            )
        )

    def _take_fault(self, route: str) -> _Fault | None:
        for fault in self._faults:
            if fault.route_contains in route:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        if fault.status != 429:
            return _error_response(fault.status, fault.code, fault.message)
        retry = fault.retry_after
        headers = {
            "Retry-After": str(max(1, math.ceil(retry))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
            "X-RateLimit-Reset-After": f"{retry:.3f}",
            "X-RateLimit-Bucket": "standin-bucket",
            "X-RateLimit-Scope": "global" if fault.is_global else "user",
            # discord.py treats a 429 without Via as a Cloudflare ban (no retry).
            "Via": "1.1 google",
        }
        if fault.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry,
            "global": fault.is_global,
            "code": 0,
        }
        return _json_response(body, 429, headers)

    def _controlled_session(self, shard: int | None) -> _Session | None:
        return self._session if shard is None else self._session_for_shard(shard)

    async def drop_gateway(self, code: int | None = None, *, shard: int | None = None) -> None:
        """Cut the bot's websocket (``shard``: that shard's; else the latest session's): abort
        the TCP connection (``code=None``) or close it with ``code`` (e.g. 4000).  discord.py
        reconnects and RESUMEs; dispatches made meanwhile are replayed."""
        session = self._controlled_session(shard)
        conn = session.conn if session is not None else None
        if conn is None:
            raise RuntimeError("no bot connected")
        self._detach(conn)
        if code is None:
            conn.queue.put_nowait(None)
            conn.abort()
        else:
            await conn.close(code)

    async def send_reconnect(self, *, shard: int | None = None) -> None:
        """Send op 7 RECONNECT (discord.py closes and RESUMEs)."""
        session = self._controlled_session(shard)
        if session is None or session.conn is None:
            raise RuntimeError("no bot connected")
        session.conn.send(json.dumps({"op": 7, "d": None}))

    async def invalidate_session(self, resumable: bool = False, *, shard: int | None = None) -> None:
        """Send op 9 INVALID_SESSION; non-resumable sessions are forgotten."""
        session = self._controlled_session(shard)
        if session is None or session.conn is None:
            raise RuntimeError("no bot connected")
        if not resumable:
            self._sessions.pop(session.id, None)
        session.conn.send(json.dumps({"op": 9, "d": resumable}))

    # -- interactions ----------------------------------------------------------------------

    def _interaction_base(
        self,
        itype: int,
        *,
        user_id: int,
        guild_id: int | None,
        channel_id: int | None,
        dm: bool,
        permissions: int | None,
        roles: Sequence[int] | None,
        app_permissions: int | None,
        locale: str,
        user_install: bool = False,
    ) -> tuple[JSON, int | None, int]:
        """The fields every interaction carries.  ``authorizing_integration_owners`` says who
        installed the app for it, as Discord does: ``{"0": guild id}`` in a server that added the
        bot, ``{"1": user id}`` for the member's own install (``user_install``), both when both
        did; ``{"0": "0"}`` in the bot's DM through the guild install."""
        iid = self._next_id()
        token = f"standin.{iid}.{secrets.token_urlsafe(24)}"
        payload: JSON = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if dm:
            cid = self.dm_channel_id(user_id)
            payload.update(
                app_permissions=str(self.app_permissions if app_permissions is None else app_permissions),
                channel_id=str(cid),
                channel=self._dm_channel_json(user_id),
                user=self.user_json(user_id),
                context=1,
                authorizing_integration_owners={"1": str(user_id)} if user_install else {"0": "0"},
            )
            return payload, None, cid
        gid = guild_id or self.guild_id
        guild = self._guilds.get(gid)
        if guild is None:
            raise LookupError(f"unknown guild {gid}")
        owners: JSON = {}
        if guild.bot_added:
            owners["0"] = str(gid)
        if user_install:
            owners["1"] = str(user_id)
        if not owners:
            raise ValueError(
                f"guild {gid} has not added the bot: only a member's own install (user_install=True) "
                "sends interactions from there"
            )
        default_cid = self.channel_id if gid == self.guild_id else next(iter(guild.channels))
        cid = channel_id or default_cid
        if roles is None:
            roles = self._member_roles(guild, user_id)
        if permissions is None:
            permissions = self._member_permissions(guild, user_id)
        for rid in roles:
            if rid not in guild.roles:
                self.add_role(f"role-{rid}", role_id=rid, guild_id=gid)
        thread = self._threads.get(cid)
        if thread is not None:
            channel = self._thread_json(thread)
            del channel["member"]
        else:
            channel = dict(guild.channels.get(cid) or self._text_channel_json(gid, cid, "channel", 0))
        channel["permissions"] = str(permissions)
        payload.update(
            app_permissions=str(self.bot_permissions(cid) if app_permissions is None else app_permissions),
            guild_id=str(gid),
            guild={"id": str(gid), "locale": guild.locale, "features": []},
            guild_locale=guild.locale,
            channel_id=str(cid),
            channel=channel,
            member=self._member_json(user_id, roles, permissions, with_user=True),
            context=0,
            authorizing_integration_owners=owners,
        )
        return payload, gid, cid

    def _dispatch_interaction(self, record: InteractionRecord) -> None:
        session = self._session_for(record.guild_id)
        if session is None:
            raise RuntimeError("no bot session: start a bot and await wait_ready() first")
        self.interactions.append(record)
        self._by_token[record.token] = record
        self._by_id[record.id] = record

        def on_sent() -> None:
            if record.dispatched_at is None:
                record.dispatched_at = time.monotonic()
                self._changed(record)

        session.dispatch("INTERACTION_CREATE", record.payload, on_sent)
        self._changed(record)

    async def invoke(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user_id: int = DEFAULT_USER_ID,
        subcommand: str | None = None,
        permissions: int | None = None,
        roles: Sequence[int] | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        app_permissions: int | None = None,
        dm: bool = False,
        locale: str = "en-US",
        check_options: bool = True,
        user_install: bool = False,
    ) -> InteractionRecord:
        """Dispatch a slash command (INTERACTION_CREATE type 2) as member ``user_id``.

        ``subcommand`` is "sub" or "group sub".  Option values are typed from the registered
        definition; with ``check_options`` the checks Discord's client enforces (required,
        choices, min/max) raise ValueError.  User options take an id (resolved as a member with
        the roles and permissions recorded by ``add_member``), role and channel options an id,
        attachment options a dict ``{"filename", "size", "content_type"?, "url"?}``.
        ``permissions`` and ``roles`` default to the member's from ``add_member`` (else
        ``member_permissions`` and no roles).  ``dm=True`` invokes from the bot's DM with the user.
        ``user_install=True``: through the member's own install of the app (see
        ``_interaction_base``); the only way to invoke in a guild added with ``bot_added=False``.
        """
        return self._command_interaction(
            IT_COMMAND,
            name,
            options,
            subcommand=subcommand,
            focused=None,
            user_id=user_id,
            permissions=permissions,
            roles=roles,
            guild_id=guild_id,
            channel_id=channel_id,
            app_permissions=app_permissions,
            dm=dm,
            locale=locale,
            check_options=check_options,
            user_install=user_install,
        )

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        user_id: int = DEFAULT_USER_ID,
        subcommand: str | None = None,
        permissions: int | None = None,
        roles: Sequence[int] | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user_install: bool = False,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Dispatch an autocomplete interaction (type 4); the answer is ``record.choices``."""
        return self._command_interaction(
            IT_AUTOCOMPLETE,
            name,
            options,
            subcommand=subcommand,
            focused=focused,
            user_id=user_id,
            permissions=permissions,
            roles=roles,
            guild_id=guild_id,
            channel_id=channel_id,
            app_permissions=None,
            dm=False,
            locale=locale,
            check_options=False,
            user_install=user_install,
        )

    def _command_interaction(
        self,
        itype: int,
        name: str,
        options: Mapping[str, Any] | None,
        *,
        subcommand: str | None,
        focused: str | None,
        user_id: int,
        permissions: int | None,
        roles: Sequence[int] | None,
        guild_id: int | None,
        channel_id: int | None,
        app_permissions: int | None,
        dm: bool,
        locale: str,
        check_options: bool,
        user_install: bool = False,
    ) -> InteractionRecord:
        cmd = self.find_command(name, None if dm else guild_id)
        payload, gid, cid = self._interaction_base(
            itype,
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            dm=dm,
            permissions=permissions,
            roles=roles,
            app_permissions=app_permissions,
            locale=locale,
            user_install=user_install,
        )
        resolved: JSON = {}
        opts = self._build_options(
            cmd, dict(options or {}), subcommand, focused, check_options, resolved, gid
        )
        invoker = payload.get("member")
        if invoker is not None:
            # Like Discord: a resolved channel carries the invoking member's permissions there.
            for channel in resolved.get("channels", {}).values():
                channel["permissions"] = invoker["permissions"]
        data: JSON = {"id": cmd["id"], "name": cmd["name"], "type": 1}
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        payload["data"] = data
        full_name = " ".join([name, *(subcommand.split() if subcommand else [])])
        record = InteractionRecord(
            self,
            interaction_id=int(payload["id"]),
            token=payload["token"],
            interaction_type=itype,
            name=full_name,
            options=options or {},
            user_id=user_id,
            guild_id=gid,
            channel_id=cid,
            payload=payload,
        )
        self._dispatch_interaction(record)
        return record

    def _build_options(
        self,
        cmd: JSON,
        options: dict[str, Any],
        subcommand: str | None,
        focused: str | None,
        check: bool,
        resolved: JSON,
        guild_id: int | None,
    ) -> list[JSON]:
        defs: list[JSON] = cmd.get("options") or []
        chain: list[tuple[str, int]] = []
        for part in subcommand.split() if subcommand else []:
            match = next((d for d in defs if d["name"] == part and d["type"] in (1, 2)), None)
            if match is None:
                raise ValueError(f"/{cmd['name']} has no subcommand {part!r}")
            chain.append((part, match["type"]))
            defs = match.get("options") or []
        if any(d.get("type") in (1, 2) for d in defs):
            raise ValueError(f"/{cmd['name']} needs a subcommand")
        by_name = {d["name"]: d for d in defs}
        leaf: list[JSON] = []
        for key, value in options.items():
            spec = by_name.get(key)
            if spec is None:
                raise ValueError(f"/{cmd['name']} has no option {key!r} (has {sorted(by_name)})")
            is_focused = key == focused
            opt: JSON = {"name": key, "type": spec["type"]}
            if is_focused:
                opt["value"] = str(value)
                opt["focused"] = True
            else:
                opt["value"] = self._option_value(spec, value, check, resolved, guild_id)
            leaf.append(opt)
        if check:
            missing = [d["name"] for d in defs if d.get("required") and d["name"] not in options]
            if missing:
                raise ValueError(f"/{cmd['name']}: missing required options {missing}")
        for part, ptype in reversed(chain):
            leaf = [{"name": part, "type": ptype, "options": leaf}]
        return leaf

    def _option_value(self, spec: JSON, value: Any, check: bool, resolved: JSON, guild_id: int | None) -> Any:
        otype = spec["type"]
        name = spec["name"]
        if otype == 3:
            out: Any = str(value)
            if check:
                lo, hi = spec.get("min_length"), spec.get("max_length")
                if (lo is not None and len(out) < lo) or (hi is not None and len(out) > hi):
                    raise ValueError(f"option {name}: length {len(out)} outside [{lo}, {hi}]")
        elif otype == 4:
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"option {name} needs an integer, got {value!r}")
            out = int(value)
        elif otype == 10:
            out = float(value) if not isinstance(value, int) else value
        elif otype == 5:
            out = bool(value)
        elif otype in (6, 9):
            uid = int(value)
            resolved.setdefault("users", {})[str(uid)] = self.user_json(uid)
            member_guild = self._guilds.get(guild_id) if guild_id is not None else None
            if member_guild is not None:
                # Like Discord: a partial member (no user, deaf, mute) with roles and permissions.
                member = self._member_json(
                    uid,
                    self._member_roles(member_guild, uid),
                    self._member_permissions(member_guild, uid),
                    with_user=False,
                )
                del member["deaf"], member["mute"]
                resolved.setdefault("members", {})[str(uid)] = member
            out = str(uid)
        elif otype == 7:
            cid = int(value)
            guild = self._guilds.get(guild_id or self.guild_id)
            chan = (guild.channels.get(cid) if guild else None) or {"id": str(cid), "type": 0}
            resolved.setdefault("channels", {})[str(cid)] = {
                "id": str(cid),
                "name": chan.get("name", "channel"),
                "type": chan.get("type", 0),
                "permissions": str(self.member_permissions),
                "parent_id": None,
            }
            out = str(cid)
        elif otype == 8:
            rid = int(value)
            guild = self._guilds[guild_id or self.guild_id]
            if rid not in guild.roles:
                self.add_role(f"role-{rid}", role_id=rid, guild_id=guild.id)
            resolved.setdefault("roles", {})[str(rid)] = guild.roles[rid]
            out = str(rid)
        elif otype == 11:
            spec_value = dict(value) if isinstance(value, Mapping) else {"filename": str(value)}
            aid = self._next_id()
            filename = spec_value.get("filename", "audio.mp3")
            url = spec_value.get("url", f"http://{self.host}:{self.port}/attachments/{aid}/{filename}")
            attachment = {
                "id": str(aid),
                "filename": filename,
                "size": int(spec_value.get("size", 1024)),
                "url": url,
                "proxy_url": url,
                "content_type": spec_value.get("content_type", "audio/mpeg"),
                "ephemeral": True,
            }
            resolved.setdefault("attachments", {})[str(aid)] = attachment
            out = str(aid)
        else:
            out = value
        if check and otype in (3, 4, 10):
            choices = spec.get("choices")
            if choices and out not in [c["value"] for c in choices]:
                raise ValueError(f"option {name}: {out!r} is not one of the choices")
            if otype in (4, 10):
                lo, hi = spec.get("min_value"), spec.get("max_value")
                if (lo is not None and out < lo) or (hi is not None and out > hi):
                    raise ValueError(f"option {name}: {out} outside [{lo}, {hi}]")
        return out

    async def click(
        self,
        message: MessageRecord | int,
        custom_id: str,
        *,
        user_id: int = DEFAULT_USER_ID,
        values: Sequence[str] | None = None,
        permissions: int | None = None,
        roles: Sequence[int] | None = None,
        user_install: bool = False,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Dispatch a component interaction (type 3): a click on the button (or a choice in the
        select) with ``custom_id`` on one of the bot's messages (``user_install``: see ``invoke``),
        by a member whose Discord language is ``locale``."""
        msg = message if isinstance(message, MessageRecord) else self._messages[message]
        comp = _find_component(msg.components, custom_id)
        if comp is None:
            raise LookupError(f"no component with custom_id {custom_id!r} on {msg!r}")
        dm = msg.channel_id in self._dm_users
        payload, gid, cid = self._interaction_base(
            IT_COMPONENT,
            user_id=user_id,
            guild_id=msg.guild_id,
            channel_id=msg.channel_id,
            dm=dm,
            permissions=permissions,
            roles=roles,
            app_permissions=None,
            locale=locale,
            user_install=user_install,
        )
        data: JSON = {"custom_id": custom_id, "component_type": comp.get("type", 2)}
        if values is not None:
            data["values"] = list(values)
        payload["data"] = data
        payload["message"] = self._message_json(msg)
        record = InteractionRecord(
            self,
            interaction_id=int(payload["id"]),
            token=payload["token"],
            interaction_type=IT_COMPONENT,
            name=custom_id,
            options={"values": list(values)} if values is not None else {},
            user_id=user_id,
            guild_id=gid,
            channel_id=cid,
            payload=payload,
        )
        record.source_message = msg
        self._dispatch_interaction(record)
        return record

    def interaction(self, interaction_id: int) -> InteractionRecord:
        return self._by_id[interaction_id]

    # -- messages --------------------------------------------------------------------------

    def channel_messages(self, channel_id: int | None = None) -> list[MessageRecord]:
        """Non-interaction messages the bot posted in a channel (default: the main channel)."""
        return [m for m in self._channel_messages.get(channel_id or self.channel_id, []) if not m.deleted]

    def dm_messages(self, user_id: int) -> list[MessageRecord]:
        cid = self._dm_channels.get(user_id)
        return self.channel_messages(cid) if cid is not None else []

    def all_messages(self) -> list[MessageRecord]:
        """Every message the bot created anywhere (responses, follow-ups, channel messages, DMs),
        deleted ones too, oldest first: for checks over a whole run."""
        return sorted(self._messages.values(), key=lambda m: m.id)

    def message(self, message_id: int) -> MessageRecord:
        return self._messages[message_id]

    def messages_in(self, channel_id: int) -> list[MessageRecord]:
        """Everything a reader of the channel, thread or DM sees, oldest first: the bot's channel
        messages and its non-ephemeral interaction responses and follow-ups (what history
        returns)."""
        return sorted(
            (
                m
                for m in self._messages.values()
                if m.channel_id == channel_id and not m.deleted and not m.ephemeral
            ),
            key=lambda m: m.id,
        )

    def upload_content(self, attachment_id: int | str) -> bytes | None:
        """The bytes of an uploaded file of at most ``KEEP_UPLOAD_BYTES`` (None: larger, or unknown).
        Larger uploads are only hashed, as before."""
        return self._upload_bytes.get(str(attachment_id))

    def attachments_in(self, channel_id: int) -> list[AttachmentRecord]:
        """The files the messages of ``messages_in(channel_id)`` carry now, oldest first."""
        out: list[AttachmentRecord] = []
        for msg in self.messages_in(channel_id):
            for attachment in msg.attachments:
                sha256 = self._upload_sha256.get(str(attachment.get("id")))
                if sha256 is None:
                    continue  # not an upload (an attachment option's file)
                out.append(
                    AttachmentRecord(
                        id=int(attachment["id"]),
                        message_id=msg.id,
                        channel_id=channel_id,
                        filename=str(attachment["filename"]),
                        size=int(attachment["size"]),
                        content_type=str(attachment.get("content_type") or ""),
                        sha256=sha256,
                    )
                )
        return out

    def attachment_bytes(self, attachment: AttachmentRecord) -> bytes:
        """The bytes of an uploaded file (only with `keep_upload_bytes` on when it was sent)."""
        return self._kept_bytes[attachment.sha256]

    def thread_on(self, message_id: int) -> ThreadRecord | None:
        """The thread opened on a message (its id is the message's), if any."""
        return self._threads.get(message_id)

    def archive_thread(self, thread_id: int, *, locked: bool = False) -> None:
        """Archive a thread (as after its auto-archive duration): it leaves the active threads of
        GUILD_CREATE; a bot message unarchives it unless ``locked`` (then 400 50083)."""
        thread = self._threads[thread_id]
        thread.archived = True
        thread.locked = locked
        thread.archive_wall = time.time()
        self._dispatch_thread("THREAD_UPDATE", thread)
        self._changed()

    async def wait_for_channel_message(
        self,
        channel_id: int | None = None,
        predicate: Callable[[MessageRecord], Any] | None = None,
        timeout: float | None = 10.0,
    ) -> MessageRecord:
        def check() -> MessageRecord | None:
            for msg in self.channel_messages(channel_id):
                if predicate is None or predicate(msg):
                    return msg
            return None

        return await self.wait_for(check, timeout)

    async def wait_for_dm(
        self,
        user_id: int,
        predicate: Callable[[MessageRecord], Any] | None = None,
        timeout: float | None = 10.0,
    ) -> MessageRecord:
        def check() -> MessageRecord | None:
            for msg in self.dm_messages(user_id):
                if predicate is None or predicate(msg):
                    return msg
            return None

        return await self.wait_for(check, timeout)

    def _new_version(
        self,
        payload: Mapping[str, Any],
        *,
        base: MessageVersion | None,
        flags: int,
        attachments: list[JSON] | None,
    ) -> MessageVersion:
        now = time.monotonic()
        wall = time.time()
        if base is None:
            return MessageVersion(
                content=payload.get("content") or "",
                embeds=list(payload.get("embeds") or []),
                components=list(payload.get("components") or []),
                flags=flags,
                attachments=attachments or [],
                allowed_mentions=payload.get("allowed_mentions"),
                at=now,
                wall=wall,
            )
        kept = base.attachments
        if "attachments" in payload:
            keep_ids = {str(a.get("id")) for a in payload.get("attachments") or []}
            kept = [a for a in base.attachments if str(a.get("id")) in keep_ids]
        return MessageVersion(
            content=(payload.get("content") or "") if "content" in payload else base.content,
            embeds=list(payload.get("embeds") or []) if "embeds" in payload else base.embeds,
            components=(
                list(payload.get("components") or []) if "components" in payload else base.components
            ),
            flags=flags,
            attachments=kept + (attachments or []),
            allowed_mentions=(
                payload.get("allowed_mentions") if "allowed_mentions" in payload else base.allowed_mentions
            ),
            at=now,
            wall=wall,
        )

    def _message_json(self, msg: MessageRecord) -> JSON:
        version = msg.current
        first = msg.versions[0]
        thread = self._threads.get(msg.id)
        data: JSON = {
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "type": msg.type,
            "content": version.content,
            "embeds": version.embeds,
            "components": version.components,
            "flags": version.flags | (FLAG_HAS_THREAD if thread is not None else 0),
            "attachments": version.attachments,
            "author": self._bot_user_json(),
            "timestamp": _now_iso(first.wall),
            "edited_timestamp": _now_iso(version.wall) if msg.edits else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.user_json(u) for u in msg.pinged_user_ids],
            "mention_roles": [],
            "pinned": False,
        }
        if thread is not None:
            data["thread"] = self._thread_json(thread)
        if msg.nonce is not None:
            data["nonce"] = msg.nonce
        if msg.reference_id is not None:
            data["message_reference"] = {
                "type": 0,
                "message_id": str(msg.reference_id),
                "channel_id": str(msg.channel_id),
                **({"guild_id": str(msg.guild_id)} if msg.guild_id is not None else {}),
            }
        if msg.interaction_id is not None:
            record = self._by_id.get(msg.interaction_id)
            data["webhook_id"] = str(self.application_id)
            data["application_id"] = str(self.application_id)
            if record is not None:
                data["interaction_metadata"] = {
                    "id": str(record.id),
                    "type": record.type,
                    "user": self.user_json(record.user_id),
                    "authorizing_integration_owners": record.payload.get(
                        "authorizing_integration_owners", {}
                    ),
                    "name": record.name,
                }
        return data

    # -- HTTP plumbing ---------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        p = API_PREFIX
        r = app.router
        r.add_get("/gateway", self._gateway_handler)
        r.add_get(p + "/gateway", self._h_gateway)
        r.add_get(p + "/gateway/bot", self._h_gateway_bot)
        r.add_get(p + "/users/@me", self._h_me)
        r.add_get(p + "/users/@me/guilds", self._h_my_guilds)
        r.add_post(p + "/users/@me/channels", self._h_create_dm)
        r.add_get(p + r"/users/{user_id:\d+}", self._h_user)
        r.add_get(p + "/oauth2/applications/@me", self._h_app_info)
        r.add_get(p + "/applications/@me", self._h_app_info)
        cmds = p + r"/applications/{app:\d+}/commands"
        gcmds = p + r"/applications/{app:\d+}/guilds/{guild:\d+}/commands"
        for base in (cmds, gcmds):
            r.add_get(base, self._h_get_commands)
            r.add_put(base, self._h_put_commands)
            r.add_post(base, self._h_post_command)
            r.add_get(base + r"/{cmd:\d+}", self._h_get_command)
            r.add_delete(base + r"/{cmd:\d+}", self._h_delete_command)
        r.add_post(p + r"/interactions/{iid:\d+}/{token}/callback", self._h_callback)
        wh = p + r"/webhooks/{app:\d+}/{token}"
        r.add_post(wh, self._h_followup)
        r.add_get(wh + "/messages/{mid}", self._h_webhook_get)
        r.add_patch(wh + "/messages/{mid}", self._h_webhook_edit)
        r.add_delete(wh + "/messages/{mid}", self._h_webhook_delete)
        ch = p + r"/channels/{cid:\d+}"
        r.add_get(ch, self._h_get_channel)
        r.add_post(ch + "/typing", self._h_typing)
        r.add_post(ch + "/messages", self._h_channel_post)
        r.add_get(ch + "/messages", self._h_channel_history)
        r.add_post(ch + r"/messages/{mid:\d+}/threads", self._h_start_thread)
        r.add_get(ch + r"/messages/{mid:\d+}", self._h_channel_get_message)
        r.add_patch(ch + r"/messages/{mid:\d+}", self._h_channel_edit)
        r.add_delete(ch + r"/messages/{mid:\d+}", self._h_channel_delete)
        r.add_get(p + r"/guilds/{gid:\d+}", self._h_get_guild)
        r.add_get(p + r"/guilds/{gid:\d+}/channels", self._h_get_guild_channels)
        r.add_get(p + r"/guilds/{gid:\d+}/members/{uid:\d+}", self._h_get_member)
        r.add_route("*", p + "/{tail:.*}", self._h_unhandled)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        path = request.path[len(API_PREFIX) :]
        route = f"{request.method} {path}"
        fault = self._take_fault(route) if self._faults else None
        response: web.StreamResponse
        status: int
        if fault is not None and not fault.takes_effect:
            response = self._fault_response(fault)
            status = response.status
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = _error_response(exc.status, 0, f"{exc.status}: {exc.reason}")
            except Exception as exc:
                _log.exception("stand-in handler failed for %s", route)
                self.internal_errors.append(f"{route}: {exc!r}")
                response = _error_response(500, 0, "500: Internal Server Error (stand-in bug)")
            status = response.status
            if fault is not None:
                # The request took effect; its answer is what gets lost.
                response = self._fault_response(fault)
                status = response.status
                if fault.close:
                    transport = request.transport
                    if transport is not None:
                        transport.abort()
                    status = 0
        self.requests.append(RestCall(request.method, path, status, time.monotonic()))
        self._changed()
        return response

    def _check_auth(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if auth != f"Bot {self.token}":
            return _error_response(401, 0, "401: Unauthorized")
        return None

    @property
    def upload_limit(self) -> int:
        """What all files of one request may weigh together (``enforced_upload_limit`` or
        ``attachment_size_limit``)."""
        if self.enforced_upload_limit is None:
            return self.attachment_size_limit
        return self.enforced_upload_limit

    async def _read_body(self, request: web.Request) -> tuple[Any, list[JSON], web.Response | None]:
        """Parse a JSON or multipart body: (payload, uploaded attachments, error response).

        Files stream through a sha256; only small ones are kept (``upload_content``).  Like
        Discord: at most 10 files (400 50035) whose sizes together fit ``upload_limit`` (413
        40005).  A refused body is still read to its end, so that the client sees the answer
        rather than a broken pipe."""
        if not request.content_type.startswith("multipart/"):
            if not request.can_read_body:
                return {}, [], None
            try:
                return await request.json(), [], None
            except ValueError:
                return None, [], _error_response(400, 50109, "The request body contains invalid JSON.")
        payload: Any = {}
        # (index in files[n], filename, size, content type, sha256) of each file part.
        uploads: list[tuple[str, str, int, str, str]] = []
        small: list[bytes | None] = []  # each upload's bytes, when at most KEEP_UPLOAD_BYTES
        total = 0
        file_parts = 0
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue  # nested multipart: Discord does not read it either
            name = part.name or ""
            if name == "payload_json":
                try:
                    payload = json.loads(await part.text() or "{}")
                except ValueError:
                    await self._drain(reader)
                    return None, [], _error_response(400, 50109, "The request body contains invalid JSON.")
                continue
            if not (name.startswith("files[") and name.endswith("]")) or part.filename is None:
                await part.release()
                continue
            file_parts += 1
            digest = hashlib.sha256()
            size = 0
            whole: list[bytes] = []
            kept: bytearray | None = bytearray()
            while chunk := await part.read_chunk(_UPLOAD_CHUNK):
                size += len(chunk)
                if total + size <= self.upload_limit and file_parts <= MAX_FILES_PER_MESSAGE:
                    digest.update(chunk)
                    if self.keep_upload_bytes:
                        whole.append(chunk)
                if kept is not None and size <= KEEP_UPLOAD_BYTES:
                    kept += chunk
                else:
                    kept = None
            if self.keep_upload_bytes:
                self._kept_bytes[digest.hexdigest()] = b"".join(whole)
            total += size
            ctype = part.headers.get(hdrs.CONTENT_TYPE, "")
            uploads.append((name[len("files[") : -1], part.filename, size, ctype, digest.hexdigest()))
            small.append(None if kept is None else bytes(kept))
        path = request.path[len(API_PREFIX) :]
        if total > self.upload_limit:
            errors = {"files": {"_errors": [{"code": "FILE_TOO_LARGE", "message": f"{total} bytes"}]}}
            rejection = Rejection(request.method, path, 413, 40005, errors, payload, time.monotonic())
            self.rejected.append(rejection)
            return payload, [], _error_response(413, 40005, "Request entity too large")
        if file_parts > MAX_FILES_PER_MESSAGE:
            errs = _ErrorCollector()
            errs.add(
                ("attachments",),
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_FILES_PER_MESSAGE} or fewer in length.",
            )
            return payload, [], self._reject(request, errs, payload)
        holder = payload.get("data") if isinstance(payload, dict) else None
        holder = holder if isinstance(holder, dict) else payload
        declared: dict[str, JSON] = {}
        if isinstance(holder, dict):
            declared = {str(a.get("id")): a for a in (holder.get("attachments") or []) if "id" in a}
        files: list[JSON] = []
        for (index, part_filename, size, ctype, sha256), content in zip(uploads, small, strict=True):
            aid = self._next_id()
            spec = declared.get(index, {})
            filename = str(spec.get("filename") or part_filename)
            url = f"http://{self.host}:{self.port}/attachments/{aid}/{filename}"
            if not ctype or ctype == "application/octet-stream":
                # Discord types a file by what it is; discord.py sends every one as octet-stream.
                ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            attachment: JSON = {
                "id": str(aid),
                "filename": filename,
                "size": size,
                "url": url,
                "proxy_url": url,
                "content_type": ctype,
            }
            if spec.get("description"):
                attachment["description"] = spec["description"]
            self._upload_sha256[str(aid)] = sha256
            if content is not None:
                self._upload_bytes[str(aid)] = content
            files.append(attachment)
        return payload, files, None

    @staticmethod
    async def _drain(reader: MultipartReader) -> None:
        while (part := await reader.next()) is not None:
            await part.release()

    def _reject(
        self,
        request: web.Request,
        errs: _ErrorCollector,
        payload: Any,
        record: InteractionRecord | None = None,
    ) -> web.Response:
        nested = errs.nested()
        self.rejected.append(
            Rejection(
                request.method,
                request.path[len(API_PREFIX) :],
                400,
                50035,
                nested,
                payload,
                time.monotonic(),
            )
        )
        self._note_error(request, record, 400, 50035, "Invalid Form Body")
        return _error_response(400, 50035, "Invalid Form Body", nested)

    def _reject_empty(
        self, request: web.Request, payload: Any, record: InteractionRecord | None = None
    ) -> web.Response:
        self.rejected.append(
            Rejection(
                request.method,
                request.path[len(API_PREFIX) :],
                400,
                50006,
                {},
                payload,
                time.monotonic(),
            )
        )
        self._note_error(request, record, 400, 50006, "Cannot send an empty message")
        return _error_response(400, 50006, "Cannot send an empty message")

    def _note_error(
        self,
        request: web.Request,
        record: InteractionRecord | None,
        status: int,
        code: int,
        message: str,
    ) -> None:
        if record is None:
            return
        record.errors.append(
            RestError(
                request.method,
                request.path[len(API_PREFIX) :],
                status,
                code,
                message,
                time.monotonic(),
            )
        )
        self._changed(record)

    def _interaction_error(
        self,
        request: web.Request,
        record: InteractionRecord | None,
        status: int,
        code: int,
        message: str,
    ) -> web.Response:
        self._note_error(request, record, status, code, message)
        return _error_response(status, code, message)

    @staticmethod
    def _is_empty(version: MessageVersion) -> bool:
        return not (version.content or version.embeds or version.components or version.attachments)

    # -- REST handlers: identity & commands ------------------------------------------------

    async def _h_gateway(self, request: web.Request) -> web.Response:
        return _json_response({"url": f"ws://{self.host}:{self.port}/gateway"})

    async def _h_gateway_bot(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        return _json_response(
            {
                "url": f"ws://{self.host}:{self.port}/gateway",
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _h_me(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        me = self._bot_user_json()
        me.update(verified=True, mfa_enabled=False, locale="en-US", flags=0, email=None)
        return _json_response(me)

    async def _h_user(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        uid = int(request.match_info["user_id"])
        if uid == self.bot_user_id:
            return _json_response(self._bot_user_json())
        return _json_response(self.user_json(uid))

    async def _h_my_guilds(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        guilds = [
            {"id": str(gid), "name": g.name, "owner": False} for gid, g in self._guilds.items() if g.bot_added
        ]
        return _json_response(guilds)

    async def _h_app_info(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        return _json_response(self._app_info_json())

    def _command_scope(self, request: web.Request) -> tuple[int | None, web.Response | None]:
        if int(request.match_info["app"]) != self.application_id:
            return None, _error_response(403, 50001, "Missing Access")
        guild = request.match_info.get("guild")
        if guild is None:
            return None, None
        gid = int(guild)
        if gid not in self._guilds:
            return gid, _error_response(403, 50001, "Missing Access")
        return gid, None

    async def _h_get_commands(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        scope, err = self._command_scope(request)
        if err is not None:
            return err
        return _json_response(self._commands.get(scope, []))

    async def _h_put_commands(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        scope, err = self._command_scope(request)
        if err is not None:
            return err
        payload, _, err = await self._read_body(request)
        if err is not None:
            return err
        errs = _validate_commands(payload)
        if errs.items:
            return self._reject(request, errs, payload)
        stored = self._store_commands(payload, scope)
        self.sync_calls.append(SyncCall(scope, stored, time.monotonic()))
        self._changed()
        return _json_response(stored)

    async def _h_post_command(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        scope, err = self._command_scope(request)
        if err is not None:
            return err
        payload, _, err = await self._read_body(request)
        if err is not None:
            return err
        errs = _validate_commands([payload])
        if errs.items:
            return self._reject(request, errs, payload)
        existing = [
            c
            for c in self._commands.get(scope, [])
            if not (c["name"] == payload["name"] and c["type"] == payload.get("type", 1))
        ]
        stored = self._store_commands([*existing, payload], scope)
        self._changed()
        return _json_response(stored[-1], 201)

    async def _h_get_command(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        scope, err = self._command_scope(request)
        if err is not None:
            return err
        for cmd in self._commands.get(scope, []):
            if cmd["id"] == request.match_info["cmd"]:
                return _json_response(cmd)
        return _error_response(404, 10063, "Unknown application command")

    async def _h_delete_command(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        scope, err = self._command_scope(request)
        if err is not None:
            return err
        cmds = self._commands.get(scope, [])
        kept = [c for c in cmds if c["id"] != request.match_info["cmd"]]
        if len(kept) == len(cmds):
            return _error_response(404, 10063, "Unknown application command")
        self._commands[scope] = kept
        self._changed()
        return web.Response(status=204)

    # -- REST handlers: interactions -------------------------------------------------------

    async def _h_callback(self, request: web.Request) -> web.StreamResponse:
        record = self._by_id.get(int(request.match_info["iid"]))
        now = time.monotonic()
        if record is None or record.token != request.match_info["token"]:
            return _error_response(404, 10062, "Unknown interaction")
        if self.ack_deadline is not None and now - record.created_at > self.ack_deadline:
            return self._interaction_error(request, record, 404, 10062, "Unknown interaction")
        if record.acks:
            return self._interaction_error(
                request, record, 400, 40060, "Interaction has already been acknowledged."
            )
        body, files, err = await self._read_body(request)
        if err is not None:
            return err
        body = body or {}
        cb_type = int(body.get("type", 0))
        data: JSON = body.get("data") or {}
        if cb_type not in _ALLOWED_CALLBACKS.get(record.type, frozenset()):
            errs = _ErrorCollector()
            errs.add(("type",), "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid response type")
            return self._reject(request, errs, body, record)

        message: MessageRecord | None = None
        if cb_type == CB_AUTOCOMPLETE:
            errs = _validate_autocomplete(data)
            if errs.items:
                return self._reject(request, errs, body, record)
        if cb_type in (CB_MESSAGE, CB_UPDATE_MESSAGE):
            flags = int(data.get("flags") or 0)
            errs = _validate_message_payload(data, flags)
            if errs.items:
                return self._reject(request, errs, body, record)
        if cb_type == CB_MESSAGE:
            flags = int(data.get("flags") or 0) & _SETTABLE_FLAGS
            version = self._new_version(data, base=None, flags=flags, attachments=files)
            if self._is_empty(version):
                return self._reject_empty(request, body, record)
            message = self._create_interaction_message(record, version, kind="original")
            record.original = message
        elif cb_type == CB_DEFERRED_MESSAGE:
            flags = (int(data.get("flags") or 0) & FLAG_EPHEMERAL) | FLAG_LOADING
            version = self._new_version({}, base=None, flags=flags, attachments=None)
            message = self._create_interaction_message(record, version, kind="original")
            record.original = message
        elif cb_type in (CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE):
            message = record.source_message
            record.original = message
            if cb_type == CB_UPDATE_MESSAGE and message is not None:
                flags = (message.flags & ~_EDITABLE_FLAGS) | (
                    int(data.get("flags") or message.flags) & _EDITABLE_FLAGS
                )
                message.versions.append(
                    self._new_version(data, base=message.current, flags=flags, attachments=files)
                )
        record.acks.append(Ack(cb_type, body.get("data"), now))
        self._changed(record)
        if self.hold_callbacks is not None:
            await self.hold_callbacks.wait()

        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        interaction: JSON = {"id": str(record.id), "type": record.type}
        resource: JSON = {"type": cb_type}
        if message is not None and cb_type != CB_DEFERRED_UPDATE:
            interaction.update(
                response_message_id=str(message.id),
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
            resource["message"] = self._message_json(message)
        return _json_response({"interaction": interaction, "resource": resource})

    def _create_interaction_message(
        self, record: InteractionRecord, version: MessageVersion, *, kind: str
    ) -> MessageRecord:
        msg = MessageRecord(
            message_id=self._next_id(),
            channel_id=record.channel_id,
            guild_id=record.guild_id,
            kind=kind,
            first=version,
            author_name=self.bot_name,
            interaction_id=record.id,
            message_type=20 if kind == "original" and record.type == IT_COMMAND else 0,
        )
        self._messages[msg.id] = msg
        return msg

    def _webhook_record(self, request: web.Request) -> tuple[InteractionRecord | None, web.Response | None]:
        token = request.match_info["token"]
        record = self._by_token.get(token)
        if int(request.match_info["app"]) != self.application_id or record is None:
            return record, _error_response(404, 10015, "Unknown Webhook")
        expired = record.token_expired or (
            self.token_max_age is not None and time.monotonic() - record.created_at > self.token_max_age
        )
        if expired:
            return record, self._interaction_error(request, record, 401, 50027, "Invalid Webhook Token")
        if not record.acks:
            return record, self._interaction_error(request, record, 404, 10015, "Unknown Webhook")
        return record, None

    def _webhook_message(
        self, request: web.Request, record: InteractionRecord
    ) -> tuple[MessageRecord | None, web.Response | None]:
        mid = request.match_info["mid"]
        msg: MessageRecord | None = None
        if mid == "@original":
            msg = record.original
        elif mid.isdigit():
            candidate = self._messages.get(int(mid))
            if candidate is not None and (
                candidate.interaction_id == record.id or candidate is record.original
            ):
                msg = candidate
        if msg is None or msg.deleted:
            return None, self._interaction_error(request, record, 404, 10008, "Unknown Message")
        return msg, None

    async def _h_followup(self, request: web.Request) -> web.Response:
        record, err = self._webhook_record(request)
        if err is not None or record is None:
            return err or _error_response(404, 10015, "Unknown Webhook")
        payload, files, err = await self._read_body(request)
        if err is not None:
            return err
        payload = payload or {}
        flags = int(payload.get("flags") or 0) & _SETTABLE_FLAGS
        errs = _validate_message_payload(payload, flags)
        if errs.items:
            return self._reject(request, errs, payload, record)
        original = record.original
        if original is not None and original.loading and not original.deleted:
            # Discord: the first follow-up after a deferred ("thinking") response fills in that
            # response; its ephemerality is the defer's.
            flags = (flags & ~FLAG_EPHEMERAL) | (original.flags & FLAG_EPHEMERAL)
            version = self._new_version(payload, base=None, flags=flags, attachments=files)
            if self._is_empty(version):
                return self._reject_empty(request, payload, record)
            original.versions.append(version)
            msg = original
        else:
            version = self._new_version(payload, base=None, flags=flags, attachments=files)
            if self._is_empty(version):
                return self._reject_empty(request, payload, record)
            msg = self._create_interaction_message(record, version, kind="followup")
            record.followups.append(msg)
        self._changed(record)
        if request.query.get("wait") in ("1", "true", "True"):
            return _json_response(self._message_json(msg))
        return web.Response(status=204)

    async def _h_webhook_get(self, request: web.Request) -> web.Response:
        record, err = self._webhook_record(request)
        if err is not None or record is None:
            return err or _error_response(404, 10015, "Unknown Webhook")
        msg, err = self._webhook_message(request, record)
        if err is not None or msg is None:
            return err or _error_response(404, 10008, "Unknown Message")
        return _json_response(self._message_json(msg))

    async def _h_webhook_edit(self, request: web.Request) -> web.Response:
        record, err = self._webhook_record(request)
        if err is not None or record is None:
            return err or _error_response(404, 10015, "Unknown Webhook")
        msg, err = self._webhook_message(request, record)
        if err is not None or msg is None:
            return err or _error_response(404, 10008, "Unknown Message")
        payload, files, err = await self._read_body(request)
        if err is not None:
            return err
        payload = payload or {}
        response = self._apply_edit(request, msg, payload, files, record)
        self._changed(record)
        return response

    def _apply_edit(
        self,
        request: web.Request,
        msg: MessageRecord,
        payload: JSON,
        files: list[JSON],
        record: InteractionRecord | None,
    ) -> web.Response:
        old = msg.flags
        requested = int(payload["flags"]) if payload.get("flags") is not None else old
        flags = (old & ~(_EDITABLE_FLAGS | FLAG_LOADING)) | (requested & _EDITABLE_FLAGS)
        errs = _validate_message_payload(payload, flags)
        if errs.items:
            return self._reject(request, errs, payload, record)
        version = self._new_version(payload, base=msg.current, flags=flags, attachments=files)
        if self._is_empty(version):
            return self._reject_empty(request, payload, record)
        msg.versions.append(version)
        self._changed(record)
        return _json_response(self._message_json(msg))

    async def _h_webhook_delete(self, request: web.Request) -> web.Response:
        record, err = self._webhook_record(request)
        if err is not None or record is None:
            return err or _error_response(404, 10015, "Unknown Webhook")
        msg, err = self._webhook_message(request, record)
        if err is not None or msg is None:
            return err or _error_response(404, 10008, "Unknown Message")
        msg.deleted_at = time.monotonic()
        self._changed(record)
        return web.Response(status=204)

    # -- REST handlers: channels, DMs, guilds ----------------------------------------------

    def _channel_json(self, cid: int) -> JSON | None:
        if cid in self._dm_users:
            return self._dm_channel_json(self._dm_users[cid])
        thread = self._threads.get(cid)
        if thread is not None:
            return self._thread_json(thread)
        for guild in self._guilds.values():
            if cid in guild.channels:
                return self._with_bot_overwrite(guild.channels[cid])
        return None

    def _guild_of(self, cid: int) -> int | None:
        thread = self._threads.get(cid)
        if thread is not None:
            return thread.guild_id
        return next((g.id for g in self._guilds.values() if cid in g.channels), None)

    def _with_bot_overwrite(self, channel: JSON) -> JSON:
        """A guild channel as the bot is told about it: with ``channel_permissions`` for it as a
        member overwrite for the bot, so that discord.py's ``permissions_for(me)`` agrees."""
        perms = self.channel_permissions.get(int(channel["id"]))
        if perms is None:
            return channel
        overwrite = {
            "id": str(self.bot_user_id),
            "type": 1,
            "allow": str(perms),
            "deny": str(ALL_PERMISSIONS & ~perms),
        }
        others = [
            o for o in channel.get("permission_overwrites") or [] if o.get("id") != str(self.bot_user_id)
        ]
        return {**channel, "permission_overwrites": [*others, overwrite]}

    def _thread_json(self, thread: ThreadRecord) -> JSON:
        posted = self._channel_messages.get(thread.id, [])
        alive = [m for m in posted if not m.deleted]
        return {
            "id": str(thread.id),
            "type": CHANNEL_PUBLIC_THREAD,
            "guild_id": str(thread.guild_id),
            "parent_id": str(thread.parent_id),
            "owner_id": str(thread.owner_id),
            "name": thread.name,
            "last_message_id": str(posted[-1].id) if posted else None,
            "rate_limit_per_user": thread.rate_limit_per_user,
            "message_count": len(alive),
            "total_message_sent": len(posted),
            "member_count": 1,
            "flags": 0,
            "thread_metadata": {
                "archived": thread.archived,
                "archive_timestamp": _now_iso(thread.archive_wall),
                "auto_archive_duration": thread.auto_archive_duration,
                "locked": thread.locked,
                "create_timestamp": _now_iso(thread.created_wall),
            },
            "member": {
                "id": str(thread.id),
                "user_id": str(self.bot_user_id),
                "join_timestamp": _now_iso(thread.created_wall),
                "flags": 1,
            },
        }

    def bot_permissions(self, channel_id: int) -> int:
        """The bot's permissions in a guild channel or thread: ``channel_permissions`` for it (a
        thread without an entry: its parent's), else ``app_permissions``; Administrator is all."""
        perms = self.channel_permissions.get(channel_id)
        thread = self._threads.get(channel_id)
        if perms is None and thread is not None:
            perms = self.channel_permissions.get(thread.parent_id)
        if perms is None:
            perms = self.app_permissions
        return ALL_PERMISSIONS if perms & Perm.ADMINISTRATOR else perms

    def set_channel_permissions(self, channel_id: int, permissions: int | None) -> None:
        """Set (None: drop) the bot's own permissions in one channel or thread, and tell a
        connected bot with CHANNEL_UPDATE (for a guild channel; threads have no overwrites)."""
        if permissions is None:
            self.channel_permissions.pop(channel_id, None)
        else:
            self.channel_permissions[channel_id] = permissions
        guild_id = self._guild_of(channel_id)
        if channel_id not in self._threads and guild_id is not None:
            self._dispatch_for_guild(guild_id, "CHANNEL_UPDATE", lambda: self._channel_json(channel_id) or {})
        self._changed()

    def _permission_error(self, cid: int, needed: int) -> web.Response | None:
        """403 when the bot lacks ``needed`` in a guild channel (DM channels need nothing):
        50001 Missing Access without View Channel, else 50013 Missing Permissions."""
        if cid in self._dm_users:
            return None
        perms = self.bot_permissions(cid)
        if not perms & Perm.VIEW_CHANNEL:
            return _error_response(403, 50001, "Missing Access")
        if perms & needed != needed:
            return _error_response(403, 50013, "Missing Permissions")
        return None

    async def _h_get_channel(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        data = self._channel_json(int(request.match_info["cid"]))
        if data is None:
            return _error_response(404, 10003, "Unknown Channel")
        return _json_response(data)

    async def _h_typing(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        return web.Response(status=204)

    async def _h_create_dm(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        payload, _, err = await self._read_body(request)
        if err is not None:
            return err
        try:
            uid = int((payload or {})["recipient_id"])
        except (KeyError, TypeError, ValueError):
            errs = _ErrorCollector()
            errs.add(("recipient_id",), "BASE_TYPE_REQUIRED", "This field is required")
            return self._reject(request, errs, payload)
        return _json_response(self._dm_channel_json(uid))

    def _channel_check(self, request: web.Request, cid: int) -> web.Response | None:
        if self._channel_json(cid) is None:
            return _error_response(404, 10003, "Unknown Channel")
        if cid in self._dm_users and self._dm_users[cid] in self.dms_closed:
            return _error_response(403, 50007, "Cannot send messages to this user")
        if cid in self.channel_forbidden:
            return _error_response(403, 50013, "Missing Permissions")
        gid = self._guild_of(cid)
        if gid is not None and not self._guilds[gid].bot_added:
            return _error_response(403, 50001, "Missing Access")
        return None

    async def _h_channel_post(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        cid = int(request.match_info["cid"])
        if (err := self._channel_check(request, cid)) is not None:
            return err
        thread = self._threads.get(cid)
        send = Perm.SEND_MESSAGES_IN_THREADS if thread is not None else Perm.SEND_MESSAGES
        if (err := self._permission_error(cid, send)) is not None:
            return err
        payload, files, err = await self._read_body(request)
        if err is not None:
            return err
        if files and (err := self._permission_error(cid, Perm.ATTACH_FILES)) is not None:
            return err
        if thread is not None and thread.archived and thread.locked:
            return _error_response(400, 50083, "Operation cannot be performed on an archived thread")
        payload = payload or {}
        flags = int(payload.get("flags") or 0) & (_SETTABLE_FLAGS & ~FLAG_EPHEMERAL)
        errs = _validate_message_payload(payload, flags)
        nonce = payload.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            errs.add(("nonce",), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if errs.items:
            return self._reject(request, errs, payload)
        if nonce is not None and payload.get("enforce_nonce"):
            # Discord: a nonce seen from the same author in the past few minutes returns that
            # message instead of creating another one.
            seen, seen_at = self._nonces.get(str(nonce), (None, 0.0))
            if seen is not None and not seen.deleted and time.monotonic() - seen_at <= NONCE_WINDOW_SECONDS:
                return _json_response(self._message_json(seen))
        reference_id, err = self._reply_target(request, payload, cid)
        if err is not None:
            return err
        version = self._new_version(payload, base=None, flags=flags, attachments=files)
        if self._is_empty(version):
            return self._reject_empty(request, payload)
        msg = MessageRecord(
            message_id=self._next_id(),
            channel_id=cid,
            guild_id=self._guild_of(cid),
            kind="dm" if cid in self._dm_users else "channel",
            first=version,
            author_name=self.bot_name,
            message_type=19 if reference_id is not None else 0,
        )
        msg.reference_id = reference_id
        if nonce is not None:
            msg.nonce = nonce
            self._nonces[str(nonce)] = (msg, time.monotonic())
        self._messages[msg.id] = msg
        self._channel_messages.setdefault(cid, []).append(msg)
        if thread is not None and thread.archived:
            # Discord: a message in an archived (not locked) thread unarchives it.
            thread.archived = False
            thread.archive_wall = time.time()
            self._dispatch_thread("THREAD_UPDATE", thread)
        self._changed()
        return _json_response(self._message_json(msg))

    def _dispatch_thread(self, event: str, thread: ThreadRecord, **extra: Any) -> None:
        self._dispatch_for_guild(thread.guild_id, event, lambda: {**self._thread_json(thread), **extra})

    async def _h_start_thread(self, request: web.Request) -> web.Response:
        """Start Thread from Message: a public thread whose id is the message's."""
        if (err := self._check_auth(request)) is not None:
            return err
        cid = int(request.match_info["cid"])
        channel = self._channel_json(cid)
        if channel is None:
            return _error_response(404, 10003, "Unknown Channel")
        if channel.get("type") != CHANNEL_TEXT or cid in self.no_thread_channels:
            return _error_response(400, 50024, "Cannot execute action on this channel type")
        if (err := self._permission_error(cid, Perm.CREATE_PUBLIC_THREADS)) is not None:
            return err
        msg = self._channel_message(request)
        if msg is None or msg.ephemeral:
            return _error_response(404, 10008, "Unknown Message")
        payload, _, err = await self._read_body(request)
        if err is not None:
            return err
        payload = payload if isinstance(payload, dict) else {}
        errs = _ErrorCollector()
        name = payload.get("name")
        if name is None:
            errs.add(("name",), "BASE_TYPE_REQUIRED", "This field is required")
        elif not isinstance(name, str) or not 1 <= len(name) <= 100:
            errs.add(("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        duration = payload.get("auto_archive_duration")
        duration = 1440 if duration is None else duration
        if duration not in THREAD_ARCHIVE_DURATIONS:
            errs.add(
                ("auto_archive_duration",),
                "BASE_TYPE_CHOICES",
                f"Value must be one of {THREAD_ARCHIVE_DURATIONS}.",
            )
        slowmode = payload.get("rate_limit_per_user")
        slowmode = 0 if slowmode is None else slowmode
        if not isinstance(slowmode, int) or not 0 <= slowmode <= 21600:
            errs.add(("rate_limit_per_user",), "NUMBER_TYPE_MAX", "int value should be <= 21600.")
        if errs.items:
            return self._reject(request, errs, payload)
        if msg.id in self._threads:
            return _error_response(400, 160004, "A thread has already been created for this message")
        guild_id = self._guild_of(cid)
        assert guild_id is not None  # a text channel is a guild's
        now = time.time()
        thread = ThreadRecord(
            id=msg.id,
            parent_id=cid,
            guild_id=guild_id,
            name=str(name),
            auto_archive_duration=int(duration),
            owner_id=self.bot_user_id,
            created_wall=now,
            archive_wall=now,
            rate_limit_per_user=int(slowmode),
        )
        self._threads[thread.id] = thread
        self._dispatch_thread("THREAD_CREATE", thread, newly_created=True)
        self._changed()
        return _json_response(self._thread_json(thread), 201)

    async def _h_channel_history(self, request: web.Request) -> web.Response:
        """Get Channel Messages: newest first, ``limit`` 1-100 (50), one of before/after/around."""
        if (err := self._check_auth(request)) is not None:
            return err
        cid = int(request.match_info["cid"])
        if self._channel_json(cid) is None:
            return _error_response(404, 10003, "Unknown Channel")
        if (err := self._permission_error(cid, Perm.READ_MESSAGE_HISTORY)) is not None:
            return err
        errs = _ErrorCollector()
        query = request.query
        limit = 50
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            errs.add(("limit",), "NUMBER_TYPE_COERCE", "Value is not int.")
        if not 1 <= limit <= 100:
            errs.add(("limit",), "NUMBER_TYPE_MAX" if limit > 100 else "NUMBER_TYPE_MIN", "Must be 1 to 100.")
        anchors: dict[str, int] = {}
        for key in ("before", "after", "around"):
            if key in query:
                try:
                    anchors[key] = int(query[key])
                except ValueError:
                    errs.add((key,), "NUMBER_TYPE_COERCE", "Value is not snowflake.")
        if errs.items:
            return self._reject(request, errs, dict(query))
        oldest_first = self.messages_in(cid)
        if "around" in anchors:
            around = anchors["around"]
            older = [m for m in oldest_first if m.id < around]
            newer = [m for m in oldest_first if m.id >= around]
            keep_newer = newer[: limit - limit // 2]
            window = older[max(0, len(older) - (limit - len(keep_newer))) :] + keep_newer
        elif "before" in anchors:
            older = [m for m in oldest_first if m.id < anchors["before"]]
            window = older[-limit:]
        elif "after" in anchors:
            window = [m for m in oldest_first if m.id > anchors["after"]][:limit]
        else:
            window = oldest_first[-limit:]
        return _json_response([self._message_json(m) for m in reversed(window)])

    def _reply_target(
        self, request: web.Request, payload: Mapping[str, Any], cid: int
    ) -> tuple[int | None, web.Response | None]:
        """The message a new channel message replies to, checked as Discord does: it must exist
        in the same channel (and not be ephemeral). With ``fail_if_not_exists: false`` a missing
        one makes a plain message instead of an error."""
        reference = payload.get("message_reference")
        if not reference:
            return None, None
        errs = _ErrorCollector()
        try:
            mid = int(reference["message_id"])
            ref_channel = int(reference.get("channel_id") or cid)
        except (KeyError, TypeError, ValueError):
            errs.add(("message_reference", "message_id"), "BASE_TYPE_REQUIRED", "This field is required")
            return None, self._reject(request, errs, payload)
        if ref_channel != cid:
            errs.add(
                ("message_reference",),
                "MESSAGE_REFERENCE_INVALID_CHANNEL",
                "Cannot reply to a message in a different channel",
            )
            return None, self._reject(request, errs, payload)
        target = self._messages.get(mid)
        if target is None or target.deleted or target.ephemeral or target.channel_id != cid:
            if reference.get("fail_if_not_exists", True) is False:
                return None, None
            errs.add(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            return None, self._reject(request, errs, payload)
        return mid, None

    def _channel_message(self, request: web.Request) -> MessageRecord | None:
        cid = int(request.match_info["cid"])
        msg = self._messages.get(int(request.match_info["mid"]))
        if msg is None or msg.channel_id != cid or msg.deleted:
            return None
        return msg

    async def _h_channel_get_message(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        msg = self._channel_message(request)
        if msg is None:
            return _error_response(404, 10008, "Unknown Message")
        return _json_response(self._message_json(msg))

    async def _h_channel_edit(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        msg = self._channel_message(request)
        if msg is None:
            return _error_response(404, 10008, "Unknown Message")
        if msg.ephemeral:
            return _error_response(404, 10008, "Unknown Message")
        payload, files, err = await self._read_body(request)
        if err is not None:
            return err
        if files and (err := self._permission_error(msg.channel_id, Perm.ATTACH_FILES)) is not None:
            return err
        record = self._by_id.get(msg.interaction_id) if msg.interaction_id else None
        return self._apply_edit(request, msg, payload or {}, files, record)

    async def _h_channel_delete(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        msg = self._channel_message(request)
        if msg is None or msg.ephemeral:
            return _error_response(404, 10008, "Unknown Message")
        msg.deleted_at = time.monotonic()
        record = self._by_id.get(msg.interaction_id) if msg.interaction_id else None
        self._changed(record)
        return web.Response(status=204)

    async def _h_get_guild(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        guild = self._guilds.get(int(request.match_info["gid"]))
        if guild is None:
            return _error_response(404, 10004, "Unknown Guild")
        data = self._guild_create_json(guild)
        for key in ("channels", "members", "threads", "presences", "voice_states"):
            data.pop(key, None)
        return _json_response(data)

    async def _h_get_guild_channels(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        guild = self._guilds.get(int(request.match_info["gid"]))
        if guild is None:
            return _error_response(404, 10004, "Unknown Guild")
        return _json_response(list(guild.channels.values()))

    async def _h_get_member(self, request: web.Request) -> web.Response:
        if (err := self._check_auth(request)) is not None:
            return err
        guild = self._guilds.get(int(request.match_info["gid"]))
        if guild is None:
            return _error_response(404, 10004, "Unknown Guild")
        uid = int(request.match_info["uid"])
        if uid == self.bot_user_id:
            return _json_response(self._bot_member_json(guild))
        return _json_response(self._member_json(uid, self._member_roles(guild, uid), None, with_user=True))

    async def _h_unhandled(self, request: web.Request) -> web.Response:
        self.unhandled.append((request.method, request.path[len(API_PREFIX) :]))
        return _error_response(404, 0, "404: Not Found")

    # -- gateway ---------------------------------------------------------------------------

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True, timeout=2.0)
        await ws.prepare(request)
        conn = _Conn(ws, request, request.query.get("compress", ""))
        self._conns.add(conn)
        self.gateway_connections.append(dict(request.query))
        conn.send(
            json.dumps(
                {
                    "op": 10,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["standin"]},
                    "s": None,
                    "t": None,
                }
            )
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    try:
                        frame = json.loads(msg.data)
                    except ValueError:
                        await conn.close(4002, b"Error while decoding payload.")
                        break
                    await self._on_gateway_frame(conn, frame)
                elif msg.type is WSMsgType.BINARY:
                    await conn.close(4002, b"Error while decoding payload.")
                    break
                elif msg.type is WSMsgType.ERROR:
                    break
        except Exception as exc:
            _log.debug("gateway connection ended: %r", exc)
        finally:
            self._detach(conn)
            self._conns.discard(conn)
            conn.queue.put_nowait(None)
            self._changed()
        return ws

    def _detach(self, conn: _Conn) -> None:
        session = conn.session
        if session is not None and session.conn is conn:
            session.conn = None
        conn.session = None

    async def _on_gateway_frame(self, conn: _Conn, frame: JSON) -> None:
        op = frame.get("op")
        data = frame.get("d")
        if op == 1:
            self.heartbeats += 1
            conn.send(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif op == 3:
            self.presence_updates.append(data or {})
        elif op == 8:
            self._request_members(conn, data or {})
        elif op == 4:
            pass
        else:
            await conn.close(4001, b"Unknown opcode.")

    def _token_ok(self, token: Any) -> bool:
        text = str(token or "")
        if text.startswith("Bot "):
            text = text[4:]
        return text == self.token

    async def _identify(self, conn: _Conn, data: JSON) -> None:
        if conn.session is not None:
            await conn.close(4005, b"Already authenticated.")
            return
        if not self._token_ok(data.get("token")):
            await conn.close(4004, b"Authentication failed.")
            return
        shard = data.get("shard")
        if shard is not None and not _valid_shard(shard):
            await conn.close(4010, b"Invalid shard.")
            return
        self.identifies.append({k: v for k, v in data.items() if k != "token"})
        session = _Session(secrets.token_hex(16), data)
        self._sessions[session.id] = session
        # The newest session of a shard receives its dispatches (a restarted bot takes over).
        self._activate(session)
        session.conn = conn
        conn.session = session
        guilds = [g for g in self._guilds.values() if g.bot_added and session.serves(g.id)]
        ready: JSON = {
            "v": 10,
            "user": {**self._bot_user_json(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": f"ws://{self.host}:{self.port}/gateway",
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["standin"],
        }
        if shard:
            ready["shard"] = list(shard)
        session.dispatch("READY", ready)
        for guild in guilds:
            session.dispatch("GUILD_CREATE", self._guild_create_json(guild))
        session.ready = True
        self._changed()

    async def _resume(self, conn: _Conn, data: JSON) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or not self._token_ok(data.get("token")):
            conn.send(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        seq = int(data.get("seq") or 0)
        if session.buffer and seq + 1 < session.buffer[0][0]:
            conn.send(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        if session.conn is not None and session.conn is not conn:
            stale = session.conn
            self._detach(stale)
            await stale.close(4009, b"Session superseded.")
        session.conn = conn
        conn.session = session
        for s, text, on_sent in list(session.buffer):
            if s > seq:
                conn.send(text, on_sent)
        session.dispatch("RESUMED", {"_trace": ["standin"]})
        self._activate(session)
        self.resumes += 1
        self._changed()

    def _request_members(self, conn: _Conn, data: JSON) -> None:
        session = conn.session
        if session is None:
            return
        guild = self._guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        members = [self._bot_member_json(guild)]
        members += [
            self._member_json(uid, self._member_roles(guild, uid), None, with_user=True)
            for uid in self._users
            if uid != self.bot_user_id
        ]
        ids = data.get("user_ids")
        if ids:
            wanted = {str(i) for i in (ids if isinstance(ids, list) else [ids])}
            members = [m for m in members if m["user"]["id"] in wanted]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)


def _valid_shard(shard: Any) -> bool:
    """IDENTIFY's ``shard``: ``[shard_id, shard_count]`` with ``0 <= shard_id < shard_count``."""
    if not isinstance(shard, list) or len(shard) != 2:
        return False
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in shard):
        return False
    return bool(0 <= shard[0] < shard[1])


def _find_component(components: Iterable[JSON], custom_id: str) -> JSON | None:
    for comp in components:
        if comp.get("custom_id") == custom_id:
            return comp
        found = _find_component(comp.get("components") or [], custom_id)
        if found is not None:
            return found
        accessory = comp.get("accessory")
        if isinstance(accessory, dict) and accessory.get("custom_id") == custom_id:
            return accessory
    return None
