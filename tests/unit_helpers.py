"""Builders shared by the unit tests of the renderer, the cogs and the client.

Plain data and spec'd doubles only: the store and services used with them are the real ones.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from unittest.mock import DEFAULT, AsyncMock, MagicMock, create_autospec

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_side.client import StemTree
from bot.models import Delivery, Failure, Job, JobState, Keep, KeepChange, StemLink
from bot.product import Mode
from bot.sandbox import STEMS_2, STEMS_12
from bot.store import Store

GUILD_ID = 111_111_111_111_111_111
CHANNEL_ID = 222_222_222_222_222_222
USER_ID = 333_333_333_333_333_333
APPLICATION_ID = 444_444_444_444_444_444
UPLOAD_LIMIT = 10 * 1024 * 1024  # an unboosted server's, at the time of writing

# The stems the API returns for each mode (keys as in its callbacks), with the words members read.
TWO_STEMS, TWELVE_STEMS = STEMS_2, STEMS_12  # as the sandbox (the documented contract) returns them
STEM_WORDS = {
    "vocal": "Vocals",
    "instrumental": "Instrumental",
    "backing_vocals": "Backing vocals",
    "drums": "Drums",
    "bass": "Bass",
    "guitar": "Guitar",
    "keyboard": "Keyboard",
    "percussion": "Percussion",
    "strings": "Strings",
    "synth": "Synth",
    "fx": "FX",
    "brass": "Brass",
    "woodwinds": "Woodwinds",
}

FINISHED_AT = 1_760_000_000.0
# The provider counts 14 days from its own finish, a little before ours.
LINKS_EXPIRE_AT = FINISHED_AT - 95 + 14 * 24 * 3600


def stem_url(key: str, length: int) -> str:
    """A signed-CDN-looking URL of exactly `length` chars, unique to `key` and no substring of another."""
    head = f"https://cdn.example.com/stems/{key}.mp3?Expires=1761209600&Signature="
    tail = f"&Key-Pair-Id=K{key.upper()}END"
    if length < len(head) + len(tail):
        raise ValueError(f"a URL for {key} needs at least {len(head) + len(tail)} chars")
    filler = ""
    seed = key.encode()
    while len(filler) < length - len(head) - len(tail):
        seed = hashlib.sha256(seed).digest()
        filler += seed.hex()
    return head + filler[: length - len(head) - len(tail)] + tail


def make_job(
    *,
    job_id: int = 42,
    mode: Mode = Mode.SPLIT_STEM,
    state: JobState = JobState.SUCCEEDED,
    stems: tuple[StemLink, ...] = (),
    links_expire_at: float | None = LINKS_EXPIRE_AT,
    failure: Failure | None = None,
    failure_detail: str | None = None,
    user_id: int = USER_ID,
    **overrides: Any,
) -> Job:
    job = Job(
        id=job_id,
        guild_id=GUILD_ID,
        channel_id=CHANNEL_ID,
        user_id=user_id,
        mode=mode,
        source_task_id="5c79a1b2e6f04d7a9c3b8e2f1a0d4c6b",
        audio_id="e231f4a8-6b0d-4c3e-9a7f-1d2b3c4e5f60",
        cost=mode.cost,
        state=state,
        api_task_id="api-task-123",
        callback_token="callback-token",
        application_id=APPLICATION_ID,
        interaction_token="interaction-token",
        interaction_expires_at=FINISHED_AT,
        stems=stems,
        links_expire_at=links_expire_at if state is JobState.SUCCEEDED else None,
        failure=failure,
        failure_detail=failure_detail,
        delivery=Delivery.PENDING,
        delivery_attempts=0,
        delivered_via=None,
        created_at=FINISHED_AT - 120,
        submitted_at=FINISHED_AT - 110,
        finished_at=FINISHED_AT,
        delivered_at=None,
    )
    return replace(job, **overrides) if overrides else job


def succeeded_job(keys: tuple[str, ...], url_length: int, **overrides: Any) -> Job:
    mode = Mode.SEPARATE_VOCAL if len(keys) <= 2 else Mode.SPLIT_STEM
    stems = tuple(StemLink(key, stem_url(key, url_length)) for key in keys)
    return make_job(mode=mode, stems=stems, **overrides)


class RecordingScheduler:
    """Stands in for the JobRunner's intake (`hold`, then `release` to schedule); records calls.

    `calls` lists the jobs released to be worked on; "schedule" events mark the release."""

    def __init__(self, events: list[tuple[str, Any]] | None = None) -> None:
        self.calls: list[tuple[int, float]] = []
        self.held: set[int] = set()
        self.events = events if events is not None else []

    def hold(self, job_id: int) -> None:
        self.held.add(job_id)

    def release(self, job_id: int) -> None:
        self.held.discard(job_id)
        self.calls.append((job_id, 0.0))
        self.events.append(("schedule", job_id))


_INTERACTION_IDS = itertools.count(900_000_000_000_000_001)


def make_interaction(
    events: list[tuple[str, Any]] | None = None,
    *,
    guild_id: int = GUILD_ID,
    channel_id: int = CHANNEL_ID,
    user_id: int = USER_ID,
    token: str = "interaction-token-abc",
    created_at: datetime | None = None,
    role_ids: tuple[int, ...] = (),
    permissions: discord.Permissions | None = None,
    app_permissions: discord.Permissions | None = None,
    filesize_limit: Any = UPLOAD_LIMIT,
) -> MagicMock:
    """A `discord.Interaction` double, spec'd so a misspelt or invented method fails the test.

    Every response/followup call is also appended to `events` (name first), so tests can check
    the order of interaction calls against store and scheduler activity. The member running the
    command has the roles `role_ids` and, in the channel, `permissions` (none by default).
    """
    interaction = create_autospec(discord.Interaction, instance=True)
    interaction.response = AsyncMock(spec=discord.InteractionResponse)
    interaction.response.is_done.return_value = False
    # As Discord's: done once answered or deferred (else `return_value`, which a test may set).
    interaction.response.is_done.side_effect = lambda: (
        True
        if interaction.response.defer.await_count or interaction.response.send_message.await_count
        else DEFAULT
    )
    interaction.extras = {}
    interaction.followup = AsyncMock(spec=discord.Webhook)
    interaction.guild_id = guild_id
    interaction.channel_id = channel_id
    interaction.user = MagicMock(spec=discord.Member)
    interaction.user.id = user_id
    interaction.user.roles = [discord.Object(role_id) for role_id in role_ids]
    interaction.permissions = permissions if permissions is not None else discord.Permissions.none()
    # What the bot may do in the channel (Discord sends it with every interaction).
    interaction.app_permissions = app_permissions or discord.Permissions(
        view_channel=True, send_messages=True, embed_links=True
    )
    # The upload limit Discord sends with every interaction (`attachment_size_limit`).
    interaction.filesize_limit = filesize_limit
    interaction.id = next(_INTERACTION_IDS)
    interaction.application_id = APPLICATION_ID
    interaction.token = token
    interaction.created_at = created_at or datetime.now(UTC)
    if events is not None:
        for name, method in (
            ("defer", interaction.response.defer),
            ("send_message", interaction.response.send_message),
            ("edit_original_response", interaction.edit_original_response),
            ("delete_original_response", interaction.delete_original_response),
            ("followup.send", interaction.followup.send),
        ):
            method.side_effect = _recorder(events, name)
    return interaction


async def run_command(
    cog: commands.Cog,
    command: app_commands.Command[Any, ..., Any],
    interaction: MagicMock,
    *args: Any,
    **kwargs: Any,
) -> None:
    """Run a cog's command as discord.py's command tree does: the callback; if it raises, the
    error wrapped as discord.py wraps it, handed to the cog's `cog_app_command_error` and then to
    `StemTree.on_error`, both, in that order."""
    interaction.command = command
    try:
        await command.callback(cog, interaction, *args, **kwargs)
    except app_commands.AppCommandError as error:
        await fail_command(cog, command, interaction, error)
    except Exception as exc:
        await fail_command(cog, command, interaction, app_commands.CommandInvokeError(command, exc))


async def fail_command(
    cog: commands.Cog,
    command: app_commands.Command[Any, ..., Any],
    interaction: MagicMock,
    error: app_commands.AppCommandError,
) -> None:
    """What discord.py's tree does with a command's error (see `CommandTree._call`)."""
    bound = next(c for c in cog.walk_app_commands() if c.qualified_name == command.qualified_name)
    assert isinstance(bound, app_commands.Command)
    interaction.command = bound
    interaction.command_failed = True
    await bound._invoke_error_handlers(interaction, error)
    await _tree().on_error(interaction, error)


_trees: list[StemTree] = []


def _tree() -> StemTree:
    if not _trees:
        _trees.append(StemTree(discord.Client(intents=discord.Intents(guilds=True))))
    return _trees[0]


def _recorder(events: list[tuple[str, Any]], name: str) -> Any:
    def record(*args: Any, **kwargs: Any) -> Any:
        events.append((name, kwargs))
        return DEFAULT

    return record


def http_error(status: int, text: str) -> discord.HTTPException:
    return discord.NotFound(MagicMock(status=status, reason=text), text)


class Replies:
    """Discord's side of one interaction's replies: the original response and the follow-ups, each
    public or visible to the invoker alone."""

    def __init__(
        self,
        interaction: MagicMock,
        *,
        public: bool,
        thinking: bool = True,
        content: str | None = None,
        fail: tuple[str, ...] = (),
    ) -> None:
        self.original: dict[str, Any] | None = {"public": public, "thinking": thinking, "text": content}
        self.followups: list[dict[str, Any]] = []
        self.fail = fail
        interaction.response.is_done.return_value = True
        interaction.command = SimpleNamespace(qualified_name="split")
        interaction.original_response.side_effect = self.get_original
        interaction.delete_original_response.side_effect = self.delete_original
        interaction.edit_original_response.side_effect = self.edit_original
        interaction.followup.send.side_effect = self.send_followup

    def _check(self, action: str) -> None:
        if action in self.fail:
            raise http_error(404 if action != "edit" else 403, f"{action} refused")

    async def get_original(self) -> Any:
        self._check("get")
        assert self.original is not None
        flags = discord.MessageFlags(ephemeral=not self.original["public"], loading=self.original["thinking"])
        return SimpleNamespace(flags=flags)

    async def delete_original(self) -> None:
        self._check("delete")
        self.original = None

    async def edit_original(self, *, content: str | None = None, embed: discord.Embed | None = None) -> None:
        self._check("edit")
        assert self.original is not None
        self.original.update(thinking=False, text=content or (embed_text(embed) if embed else None))

    async def send_followup(
        self, content: str | None = None, *, embed: discord.Embed | None = None, ephemeral: bool = False
    ) -> None:
        text = content or (embed_text(embed) if embed else "")
        if self.original is not None and self.original["thinking"]:
            self.original.update(thinking=False, text=text)  # keeps the defer's visibility
        else:
            self.followups.append({"public": not ephemeral, "text": text})

    def seen_by_others(self) -> list[str]:
        texts = [m["text"] for m in self.followups if m["public"]]
        if self.original is not None and self.original["public"] and self.original["text"]:
            texts.append(self.original["text"])
        return texts

    def seen_by_invoker_alone(self) -> list[str]:
        texts = [m["text"] for m in self.followups if not m["public"]]
        if self.original is not None and not self.original["public"] and self.original["text"]:
            texts.append(self.original["text"])
        return texts


def embed_text(embed: discord.Embed) -> str:
    """Every piece of text a member reads in an embed, as Discord receives it."""
    data = embed.to_dict()
    parts = [data.get("title", ""), data.get("description", "")]
    for item in data.get("fields", []):
        parts += [item.get("name", ""), item.get("value", "")]
    parts.append(data.get("footer", {}).get("text", ""))
    parts.append(data.get("author", {}).get("name", ""))
    return "\n".join(p for p in parts if p)


class FakeClock:
    """A settable wall clock for the store (epoch seconds); `set("2025-03-05 10:00")` is UTC."""

    def __init__(self, start: str = "2025-03-05 10:00") -> None:
        self.now = 0.0
        self.set(start)

    def __call__(self) -> float:
        return self.now

    def set(self, text: str) -> float:
        self.now = datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


HOSTILE = "x`[Verify](https://evil.example)` <@&123456789012345678> <@42> @everyone @here **bold** ||hid||"
"""Untrusted text at its worst: a link breaking out of a code span, mentions, Markdown."""

_CODE_SPAN = re.compile(r"`[^`]*`")
_DANGERS = {
    "masked link": re.compile(r"(?<!\\)\[Verify(?<!\\)\]\("),
    "bare link": re.compile(r"https?://evil\.example"),
    "role mention": re.compile(r"(?<!\\)<@&123456789012345678>"),
    "user mention": re.compile(r"(?<!\\)<@42>"),
    "markup": re.compile(r"(?<!\\)\*\*bold(?<!\\)\*\*"),
    "spoiler": re.compile(r"(?<!\\)\|\|hid(?<!\\)\|\|"),
}
_MASS_MENTION = re.compile(r"@(everyone|here)")


def markdown_dangers(text: str) -> list[str]:
    """What Discord would make of `HOSTILE`'s pieces in `text` beyond plain words: a masked link,
    a bare link, a mention, markup, outside code spans (inside one nothing is Markdown), or a mass
    mention anywhere. Empty: shown as written."""
    outside = _CODE_SPAN.sub(" ", text)
    found = [name for name, pattern in _DANGERS.items() if pattern.search(outside)]
    if _MASS_MENTION.search(text):
        found.append("mass mention")
    return found


async def keep_change(store: Store, job_id: int, transition: Callable[[Keep], KeepChange]) -> Keep:
    """Apply one of a keep's transitions to the keep as stored, as the keep worker does."""
    keep = await store.keeps.get(job_id)
    assert keep is not None
    return await store.keeps.apply(transition(keep))
