"""What every feature's messages share: Discord's size limits, the colours, the `Message` type,
timestamps, amounts, packing embeds into messages, and the answers any command can give.

Every word here is in the language being spoken (`bot.i18n`): numbers and credits too. Constants
marked with `N_` are English msgids: translate them with `_` where they are shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce

import discord
from babel.dates import format_skeleton
from babel.numbers import format_percent

from bot import i18n
from bot.i18n import N_, _, ngettext, pgettext
from bot.models import DeploymentBudget, Job, Period, ServerBudget
from bot.product import Mode
from bot.render.text import plain

# Discord's limits (see shared/discord-notes.md).
EMBEDS_PER_MESSAGE = 10


EMBED_TITLE_LIMIT = 256


EMBED_DESCRIPTION_LIMIT = 4096


MESSAGE_EMBED_TOTAL_LIMIT = 6000


LINK_BUTTON_URL_LIMIT = 512


BUTTONS_PER_MESSAGE = 25


# One colour per kind of message, so a colour means the same thing everywhere.
WORKING = discord.Colour.gold()
"""A split queued or running."""

DONE = discord.Colour.green()
"""A split's stems are ready."""

FAILED = discord.Colour.red()
"""It didn't work, or can't be done as asked: a failed split, bad input, a refusal waiting won't end."""

REFUSED_WAIT = discord.Colour.orange()
"""Not now, later: a refusal that passes (credits refill, a cooldown, splits running, paused)."""

MODERATOR = discord.Colour.purple()
"""A moderator's action took effect (grants, take-aways, blocks, allowance and settings changes)."""

INFO = discord.Colour.blurple()
"""Figures someone asked for: credits, history, settings, status."""


@dataclass(slots=True)
class Message:
    """One Discord message's worth of content."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    view: discord.ui.View | None = None


def timestamp(epoch: float, style: str) -> str:
    return discord.utils.format_dt(datetime.fromtimestamp(epoch, UTC), style)  # type: ignore[arg-type]


def moment(epoch: float) -> str:
    """A moment as every message shows it: relative first, then the date and time, each in the
    reader's own locale and time zone: "in 3 days (12 March 2025 10:00)"."""
    return f"{timestamp(epoch, 'R')} ({timestamp(epoch, 'f')})"


def not_before(epoch: float) -> str:
    """`moment`, rounded up to the second: for when someone may try again, never too early."""
    return moment(math.ceil(epoch))


# -- numbers ----------------------------------------------------------------------------------


def number(amount: int) -> str:
    """An integer with the language's thousands separators: 1,590 · 1.590 · 1 590."""
    return i18n.number(amount)


def credit_amount(amount: int) -> str:
    """ "1 credit", "1,590 credits", in the language being spoken (its plural forms)."""
    return ngettext("{count} credit", "{count} credits", abs(amount), count=number(amount))


def signed(amount: int) -> str:
    """A change: "+1,500", "-10", "±0"."""
    return f"+{number(amount)}" if amount > 0 else (f"-{number(-amount)}" if amount < 0 else "±0")


def credit_change(amount: int) -> str:
    """ "+1 credit", "-1,500 credits"."""
    # TRANSLATORS: {change} is a signed number of credits: "+1,500", "-10", "±0".
    return ngettext("{change} credit", "{change} credits", abs(amount), change=signed(amount))


def mention_prefix(job: Job, mention: bool) -> str | None:
    return f"<@{job.user_id}>" if mention else None


IDS_HELP = N_(
    "`task_id` is the music-generation task's id and `audio_id` the id of one track of it, both as "
    "the music-generation API returned them to the app or bot that generated the track."
)
"""English msgid: `_(IDS_HELP)` where shown."""


def bad_input(problem: str) -> discord.Embed:
    """Private: an id that cannot be one; `problem` says what is wrong (already in the language)."""
    return discord.Embed(
        title=_("That doesn't look like a track id"),
        # TRANSLATORS: {problem} says what is wrong with the id; {ids_help} is the sentence on what
        # `task_id` and `audio_id` are.
        description=_(
            "{problem}\n\n{ids_help} Copy them again, then run `/split` again. Nothing was charged.",
            problem=problem,
            ids_help=_(IDS_HELP),
        ),
        colour=FAILED,
    )


def not_installed_here(invite: str) -> str:
    """The private answer to anything done in a server that has not added the bot (it was
    installed by a member for themselves): nothing started, nothing charged, and how to fix it."""
    return _(
        "{bot} works only in servers that added it, and this server hasn't: its credits, budgets "
        "and moderators belong to a server. Nothing was started or charged. A server manager can "
        "add {bot} here with [this invite]({invite}).",
        bot="StemBot",
        invite=invite,
    )


NOT_FINISHED = N_("This command didn't finish; the details were sent privately.")
"""English msgid of the words that end a public "thinking…" (`answer_privately` translates them
into the server's language)."""


# One whole sentence per kind of option: the kind's word changes the sentence around it (gender,
# articles) in most languages.
_UNRESOLVED_TITLES: dict[discord.AppCommandOptionType | None, str] = {
    discord.AppCommandOptionType.user: N_("That member didn't work"),
    discord.AppCommandOptionType.role: N_("That role didn't work"),
    discord.AppCommandOptionType.channel: N_("That channel didn't work"),
    discord.AppCommandOptionType.mentionable: N_("That member or role didn't work"),
    None: N_("That value didn't work"),
}
_UNRESOLVED_TEXTS: dict[discord.AppCommandOptionType | None, str] = {
    discord.AppCommandOptionType.user: N_(
        "Discord couldn't use the member you gave (it may have left or been deleted, or it is not "
        "the kind this option takes). Pick the member again from the list Discord shows as you "
        "type, then try again. Nothing was changed."
    ),
    discord.AppCommandOptionType.role: N_(
        "Discord couldn't use the role you gave (it may have left or been deleted, or it is not the "
        "kind this option takes). Pick the role again from the list Discord shows as you type, then "
        "try again. Nothing was changed."
    ),
    discord.AppCommandOptionType.channel: N_(
        "Discord couldn't use the channel you gave (it may have left or been deleted, or it is not "
        "the kind this option takes). Pick the channel again from the list Discord shows as you "
        "type, then try again. Nothing was changed."
    ),
    discord.AppCommandOptionType.mentionable: N_(
        "Discord couldn't use the member or role you gave (it may have left or been deleted, or it "
        "is not the kind this option takes). Pick the member or role again from the list Discord "
        "shows as you type, then try again. Nothing was changed."
    ),
    None: N_(
        "Discord couldn't use the value you gave (it may have left or been deleted, or it is not "
        "the kind this option takes). Pick the value again from the list Discord shows as you "
        "type, then try again. Nothing was changed."
    ),
}


def refusal(reason: str) -> discord.Embed:
    """A command that could not do what was asked; `reason` says why (a `StemBotError`'s words)."""
    return discord.Embed(title=_("Can't do that"), description=reason, colour=FAILED)


def unresolved_option(option_type: discord.AppCommandOptionType) -> discord.Embed:
    """An option value Discord could not turn into what the command takes (a member who left, a
    deleted role or channel, a channel of the wrong kind)."""
    kind = option_type if option_type in _UNRESOLVED_TITLES else None
    return discord.Embed(
        title=_(_UNRESOLVED_TITLES[kind]), description=_(_UNRESOLVED_TEXTS[kind]), colour=FAILED
    )


def command_cooldown(command: str, retry_at: float) -> str:
    shown = " ".join(pgettext("command name", word) for word in command.split())
    # TRANSLATORS: {command} is a command's name as the picker shows it ("split"); {when} a
    # Discord timestamp ("in 5 seconds").
    return _(
        "You're using `/{command}` too often. You can use it again {when}.",
        command=shown,
        when=timestamp(retry_at, "R"),
    )


def price_list() -> str:
    # TRANSLATORS: one line of the price list: {mode} is a separation mode, {price} its price in credits.
    return "\n".join(_("{mode}: {price}", mode=mode.label, price=credit_amount(mode.cost)) for mode in Mode)


MODE_LABEL_LIMIT = 100
"""Discord's limit for a choice's name (the `/split mode` picker)."""


def mode_label(mode: Mode) -> str:
    """The label a member sees in the `/split mode` picker (at most 100 chars, cut after
    translation)."""
    # TRANSLATORS: a choice in the /split mode picker (at most 100 characters): "Full split (up to
    # 12 stems) — 50 credits".
    label = _("{mode} — {price}", mode=mode.label, price=credit_amount(mode.cost))
    return label if len(label) <= MODE_LABEL_LIMIT else label[: MODE_LABEL_LIMIT - 1].rstrip() + "…"


def api_price_list() -> str:
    """What each mode costs a server's monthly budget (the API's price): "10 for 2 stems, …"."""
    # TRANSLATORS: the API credits one split of each mode takes from a server's monthly budget.
    return _(
        "{vocals_price} for vocals + instrumental (2 stems), {split_price} for full split (up to 12 stems)",
        vocals_price=number(Mode.SEPARATE_VOCAL.api_price),
        split_price=number(Mode.SPLIT_STEM.api_price),
    )


def budget_month_name(month: str) -> str:
    """ "2025-03" as "March 2025" (the language's month name and order: "2025年3月")."""
    year, number = month.split("-")
    first = datetime(int(year), int(number), 1, tzinfo=UTC)
    return format_skeleton("yMMMM", first, locale=i18n.current().babel)


def budget_figures(budget: ServerBudget | DeploymentBudget) -> str:
    """ "40 of 100 API credits (40%)", or "40 API credits (no cap)"."""
    if budget.budget is None:
        return ngettext(
            "{count} API credit (no cap)", "{count} API credits (no cap)", budget.spent
        )
    if not budget.budget:
        return ngettext(
            "{spent} of {count} API credit",
            "{spent} of {count} API credits",
            budget.budget,
            spent=number(budget.spent),
        )
    share = format_percent(budget.spent * 100 // budget.budget / 100, locale=i18n.current().babel)
    # TRANSLATORS: {share} is a percentage, written the language's way ("40%").
    return ngettext(
        "{spent} of {count} API credit ({share})",
        "{spent} of {count} API credits ({share})",
        budget.budget,
        spent=number(budget.spent),
        share=share,
    )


# English msgids: `_(PER_PERIOD[period])` where shown.
PER_PERIOD: dict[Period, str] = {
    # TRANSLATORS: follows an amount of credits: "100 credits once (a one-off allowance)".
    Period.NEVER: N_("once (a one-off allowance)"),
    # TRANSLATORS: follows an amount of credits: "100 credits per day".
    Period.DAILY: N_("per day"),
    # TRANSLATORS: follows an amount of credits: "100 credits per week".
    Period.WEEKLY: N_("per week"),
    # TRANSLATORS: follows an amount of credits: "100 credits per month".
    Period.MONTHLY: N_("per month"),
}


def duration(seconds: int) -> str:
    """ "90 seconds", "5 minutes", "1 hour 30 minutes"; "none" for 0."""
    if seconds <= 0:
        # TRANSLATORS: a length of time that is zero (no cooldown).
        return _("none")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(ngettext("{count} hour", "{count} hours", hours))
    if minutes:
        parts.append(ngettext("{count} minute", "{count} minutes", minutes))
    if secs:
        parts.append(ngettext("{count} second", "{count} seconds", secs))
    # Each language joins the parts its own way (Japanese without a space: "1時間30分").
    return reduce(
        # TRANSLATORS: joins two parts of a length of time: "1 hour" and "30 minutes" make
        # "1 hour 30 minutes" (then that and "5 seconds").
        lambda before, after: pgettext("parts of a duration", "{before} {after}", before=before, after=after),
        parts,
    )


def listing(title: str, lines: list[str], footer: str) -> list[discord.Embed]:
    """`lines` in as many embeds as needed, each small enough to share a message with another."""
    embeds: list[discord.Embed] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) + 1 > _LISTING_CHUNK:
            embeds.append(discord.Embed(title=title, description="\n".join(chunk), colour=INFO))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    embeds.append(discord.Embed(title=title, description="\n".join(chunk), colour=INFO))
    embeds[-1].set_footer(text=footer)
    return embeds


_LISTING_CHUNK = 2500


_MESSAGE_BUDGET = MESSAGE_EMBED_TOTAL_LIMIT - 400  # room for a note the cog may add


def pack(embeds: list[discord.Embed]) -> list[Message]:
    """Embeds into as few messages as Discord's per-message limits (count, total size) allow."""
    messages: list[Message] = [Message()]
    for embed in embeds:
        current = messages[-1].embeds
        if current and (
            len(current) >= EMBEDS_PER_MESSAGE or sum(map(len, current)) + len(embed) > _MESSAGE_BUDGET
        ):
            messages.append(Message())
        messages[-1].embeds.append(embed)
    return messages


def unexpected_error() -> str:
    return _(
        "Something went wrong on the bot's side while handling that command. It has been logged. "
        "If you started a split, its credits are returned automatically if it cannot finish. "
        "Please try again in a few minutes."
    )


MESSAGE_CONTENT_LIMIT = 2000


def as_plain_text(messages: list[Message]) -> list[Message]:
    """The same messages without embeds, for a channel where the bot may not use them (no Embed
    Links: Discord would drop the embeds and leave a bare mention). Each embed's title, text,
    fields and footer become lines, in messages of at most 2,000 characters; links keep their
    names. Buttons stay with the first message. Titles and footers are shown as written in an
    embed; as message text they would be Markdown, so they pass through `plain` (descriptions and
    fields are Markdown already, their untrusted pieces escaped where they were built)."""
    texts: list[Message] = []
    for message in messages:
        lines = [message.content] if message.content else []
        for embed in message.embeds:
            if embed.title:
                lines.append(f"**{plain(embed.title)}**")
            if embed.description:
                lines.extend(embed.description.splitlines())
            for item in embed.fields:
                lines.append(f"**{item.name}**")
                lines.extend(str(item.value).splitlines())
            if embed.footer.text:
                lines.extend(f"-# {plain(line)}" for line in embed.footer.text.splitlines() if line.strip())
        for index, chunk in enumerate(_chunks(lines, MESSAGE_CONTENT_LIMIT)):
            texts.append(Message(content=chunk, view=message.view if index == 0 else None))
    return texts


def _chunks(lines: list[str], limit: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        while len(line) > limit:  # a single line longer than a message: cut it
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            candidate = line
        current = candidate
    if current:
        chunks.append(current)
    return chunks or [""]


# Buttons that keep working after a restart: the job is in the custom id, and the Discord side
# registers a handler for each pattern (`discord.ui.DynamicItem`). Labels are English msgids:
# `_(LABEL)` where shown (at most 80 characters, translated).
# TRANSLATORS: a button (at most 80 characters): split the same track again, into every instrument.
UPGRADE_BUTTON_LABEL = N_("Split into 12 stems")
UPGRADE_BUTTON_ID = "stembot:upgrade:{job}"
UPGRADE_BUTTON_PATTERN = r"stembot:upgrade:(?P<job>[0-9]{1,19})"
# TRANSLATORS: a button (at most 80 characters): call off a queued split.
CANCEL_BUTTON_LABEL = N_("Cancel")
CANCEL_BUTTON_ID = "stembot:cancel:{job}"
CANCEL_BUTTON_PATTERN = r"stembot:cancel:(?P<job>[0-9]{1,19})"
# TRANSLATORS: a button (at most 80 characters): post the stems as files in Discord, for good.
KEEP_BUTTON_LABEL = N_("Keep in Discord")
KEEP_BUTTON_ID = "stembot:keep:{job}"
KEEP_BUTTON_PATTERN = r"stembot:keep:(?P<job>[0-9]{1,19})"
# TRANSLATORS: a link button (at most 80 characters) to where the stems were posted as files.
KEPT_BUTTON_LABEL = N_("Kept in Discord")
# TRANSLATORS: a button (at most 80 characters): mix chosen stems into one track.
MIX_BUTTON_LABEL = N_("Mix stems")
MIX_BUTTON_ID = "stembot:mix:{job}"
MIX_BUTTON_PATTERN = r"stembot:mix:(?P<job>[0-9]{1,19})"
MIX_PICKER_ID = "stembot:mixpick:{job}"
MIX_PICKER_PATTERN = r"stembot:mixpick:(?P<job>[0-9]{1,19})"


SANDBOX_TITLE = "Sandbox · "
"""How a sandbox title starts in English (tests and benchmarks look for it)."""


def _sandbox_template() -> str:
    # TRANSLATORS: the title of every message in the sandbox (a free try-out): {title} is the title.
    return _("Sandbox · {title}")


def sandbox_title(title: str) -> str:
    """A title that says first that it is about the sandbox, in the language being spoken."""
    return _fill_title(_sandbox_template(), title)


def sandbox_overhead() -> int:
    """How many characters `sandbox_title` adds to a title (for titles cut to fit)."""
    return len(_sandbox_template()) - len("{title}")


def _fill_title(template: str, title: str) -> str:
    return template.replace("{title}", title)


def is_sandbox_title(title: str) -> bool:
    """Whether `title` was made by `sandbox_title` in the language being spoken."""
    head, _placeholder, tail = _sandbox_template().partition("{title}")
    return len(title) >= len(head) + len(tail) and title.startswith(head) and title.endswith(tail)


def title_room(
    template: str, placeholder: str, limit: int = EMBED_TITLE_LIMIT, *, sandbox: bool = False
) -> int:
    """How many characters `placeholder` may take in a translated title `template` (and the sandbox
    mark around it) for the whole to stay within `limit`: titles are cut after translation."""
    used = len(template) - len(placeholder) + (sandbox_overhead() if sandbox else 0)
    return max(limit - used, 1)


def mark_sandbox(embed: discord.Embed, sandbox: bool) -> discord.Embed:
    """In sandbox mode every answer says so plainly (its title starts with "Sandbox"); once only."""
    if sandbox and not is_sandbox_title(embed.title or ""):
        title = embed.title or "StemBot"
        room = EMBED_TITLE_LIMIT - sandbox_overhead()
        embed.title = sandbox_title(title if len(title) <= room else title[: room - 1].rstrip() + "…")
    return embed
