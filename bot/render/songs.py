"""Songs in messages: a job or a track named by its title, told apart from its twin by take and
duration; the menu of a task's tracks; what a member is told when the tracks cannot be looked up.

Titles and cover URLs come from the API and are untrusted. In Markdown (descriptions, fields,
message text) a title goes through `plain`; where Discord shows text as written (embed titles,
footers, thread names, menu labels) it goes through `as_written`, which cuts it to the place's
limit and defuses mentions. A cover is used only if its scheme is http or https.

Our own words are in the language being spoken (`bot.i18n`); limits are kept after translation.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import discord

from bot.i18n import N_, _, ngettext
from bot.models import Job, Song, TaskTracks, Track
from bot.product import Mode
from bot.render.common import FAILED, INFO, REFUSED_WAIT, credit_amount
from bot.render.text import as_written, plain

SELECT_LABEL_LIMIT = 100
SELECT_OPTIONS_LIMIT = 25
MENU_MINUTES = 10
"""How long a menu of tracks can be used (it says so when pressed later)."""

_HTTP_URL = re.compile(r"https?://[^\s<>\"'`\\]+", re.IGNORECASE)


def duration(seconds: float | None) -> str | None:
    """ "3:14", "1:02:03"; None when unknown."""
    if seconds is None or seconds <= 0:
        return None
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def cover_url(song: Song | None) -> str | None:
    """The cover to show as a thumbnail: only an http(s) URL of sane length."""
    url = song.cover_url if song is not None else None
    return url if url is not None and len(url) <= 2048 and _HTTP_URL.fullmatch(url) else None


def _details(take: int | None, takes: int | None, seconds: float | None) -> str:
    """ "take 2 · 3:14": the take only where the generation has several, the duration if known."""
    parts = []
    if take is not None and takes is not None and takes > 1:
        parts.append(_take(take))
    length = duration(seconds)
    if length:
        parts.append(length)
    return " · ".join(parts)


def _take(take: int) -> str:
    # TRANSLATORS: which of a generation's tracks ("take 2"): they share a title.
    return _("take {take}", take=take)


def song_title(job: Job, limit: int, *, details: bool = True) -> str | None:
    """The job's song as Discord shows it as written ("Midnight Drive (take 2 · 3:14)", or just
    the title without `details`), within `limit`; None when no title is known (show the ids)."""
    song = job.song
    if song is None or not song.title:
        return None
    details_text = _details(song.take, song.takes, song.duration) if details else ""
    tail = f" ({details_text})" if details_text else ""
    return as_written(song.title, max(limit - len(tail), 1)) + tail


def song_markdown(job: Job, limit: int = 300) -> str | None:
    """The job's song for Markdown: the title in bold, escaped, then take and duration."""
    song = job.song
    if song is None or not song.title:
        return None
    details = _details(song.take, song.takes, song.duration)
    return f"**{plain(song.title, limit=limit)}**" + (f" ({details})" if details else "")


def job_name(job: Job, limit: int = 100) -> str:
    """What a job is called where a short name is wanted: its song's title, else "job #N"; within
    `limit` once translated."""
    # TRANSLATORS: a short name for a split (menus, thread names): {song} is the song's title,
    # {job} the job's number.
    template = _("{song} · job #{job}", job=job.id, song="{song}")
    title = song_title(job, limit - (len(template) - len("{song}")))
    if title:
        return _("{song} · job #{job}", job=job.id, song=title)
    # TRANSLATORS: a short name for a split whose song is not known: {job} is the job's number.
    return _("job #{job}", job=job.id)


def add_song(embed: discord.Embed, job: Job) -> discord.Embed:
    """Put the job's song into an embed: the cover as thumbnail (http(s) only)."""
    cover = cover_url(job.song)
    if cover:
        embed.set_thumbnail(url=cover)
    return embed


# -- the menu of a task's tracks -----------------------------------------------------------------


def track_label(track: Track, tracks: TaskTracks) -> str:
    """A menu label or suggestion name (at most 100 characters): the title, and what tells it from
    its twin ("take 2 · 3:14")."""
    details = _details(track.take, len(tracks.tracks), track.duration)
    if not details and len(tracks.tracks) > 1:
        details = _take(track.take)
    tail = f" — {details}" if details else ""
    # TRANSLATORS: a track without a title, named by its id.
    title = track.title or _("Untitled ({audio_id})", audio_id=track.audio_id)
    return as_written(title, SELECT_LABEL_LIMIT - len(tail)) + tail


def menu_options(tracks: TaskTracks, mode: Mode) -> list[discord.SelectOption]:
    return [
        discord.SelectOption(
            label=track_label(track, tracks),
            value=track.audio_id,
            description=as_written(
                # TRANSLATORS: a menu option's description (cut at 100 characters): the mode, its
                # price, the track's id.
                _(
                    "{mode} · {price} · audio id {audio_id}",
                    mode=mode.label,
                    price=credit_amount(mode.cost),
                    audio_id=track.audio_id,
                ),
                100,
            ),
        )
        for track in tracks.tracks[:SELECT_OPTIONS_LIMIT]
    ]


def menu_placeholder(mode: Mode) -> str:
    # TRANSLATORS: the menu's placeholder (cut at 150 characters): the mode and its price.
    text = _("Choose the take to split ({mode}, {price})", mode=mode.label, price=credit_amount(mode.cost))
    return as_written(text, 150)


def menu(tracks: TaskTracks, mode: Mode) -> discord.Embed:
    """The private words above the menu of tracks."""
    count = len(tracks.tracks)
    twins = count > 1 and len({track.title for track in tracks.tracks}) == 1
    if count == 1:
        what = _("This task has one track: choose it to confirm.")
    elif twins:
        what = ngettext(
            "This task has {count} track. They share a title: the take and the length tell them apart.",
            "This task has {count} tracks. They share a title: the take and the length tell them apart.",
            count,
        )
    else:
        what = ngettext("This task has {count} track.", "This task has {count} tracks.", count)
    # TRANSLATORS: {mode} is the separation mode, {price} its price ("10 credits").
    how = ngettext(
        "Choosing one starts the split ({mode}: {price}). Nothing is charged before you choose. The "
        "menu works for {count} minute.",
        "Choosing one starts the split ({mode}: {price}). Nothing is charged before you choose. The "
        "menu works for {count} minutes.",
        MENU_MINUTES,
        mode=mode.label,
        price=credit_amount(mode.cost),
    )
    return discord.Embed(title=_("Which track?"), description=f"{what}\n{how}", colour=INFO)


def menu_chosen(track_title: str | None, details: str) -> str:
    """What the menu becomes once a track was chosen."""
    song = f"**{plain(track_title, limit=200)}**" if track_title else None
    if song and details:
        # TRANSLATORS: {song} is the chosen track's title (bold), {details} its take and length
        # ("take 2 · 3:14").
        return _("You chose {song} ({details}): the split is below.", song=song, details=details)
    if song:
        return _("You chose {song}: the split is below.", song=song)
    if details:
        return _("You chose that track ({details}): the split is below.", details=details)
    return _("You chose that track: the split is below.")


def chosen_words(track: Track, tracks: TaskTracks) -> str:
    return menu_chosen(track.title, _details(track.take, len(tracks.tracks), track.duration))


def menu_expired() -> discord.Embed:
    return discord.Embed(
        title=_("This menu has stopped"),
        description=ngettext(
            "A menu of tracks works for {count} minute. Run `/split` again with the task id to get a new "
            "one. Nothing was charged.",
            "A menu of tracks works for {count} minutes. Run `/split` again with the task id to get a "
            "new one. Nothing was charged.",
            MENU_MINUTES,
        ),
        colour=REFUSED_WAIT,
    )


def menu_used() -> discord.Embed:
    return discord.Embed(
        title=_("A track was already chosen from this menu"),
        description=_("Its split is under way in the channel. For another, run `/split` again."),
        colour=INFO,
    )


def menu_not_yours() -> discord.Embed:
    return discord.Embed(
        title=_("This menu isn't yours"),
        description=_(
            "Only the member who ran `/split` can choose from it. Run `/split` with the task id to get "
            "your own."
        ),
        colour=FAILED,
    )


WHERE_IDS_COME_FROM = N_(
    "Both ids come from the music-generation API: `task_id` is the id it returned when the song "
    "was generated, and `audio_id` the `id` of one of that task's tracks (a generation usually has "
    "two). The app or bot that generated the song shows them, or its record of the generation does."
)
"""English msgid: `_(WHERE_IDS_COME_FROM)` where shown."""


def lookup_failed(*, no_tracks: bool = False) -> discord.Embed:
    """Private: the task's tracks could not be looked up, so the member must give the audio id."""
    if no_tracks:
        what = _(
            "The music-generation service says this task has no tracks (yet). Run `/split` again with "
            "both `task_id` and `audio_id`."
        )
    else:
        what = _(
            "The bot couldn't look up this task's tracks right now: the music-generation service "
            "didn't answer in time, doesn't know this task id, or hasn't finished it. Run `/split` "
            "again with both `task_id` and `audio_id`."
        )
    return discord.Embed(
        title=_("Give the audio id too"),
        description=f"{what}\n\n{_(WHERE_IDS_COME_FROM)}\n\n{_('Nothing was charged or sent.')}",
        colour=REFUSED_WAIT,
    )


def track_gone() -> discord.Embed:
    return discord.Embed(
        title=_("That track isn't known any more"),
        description=_("Run `/split` again with the task id, or with both ids. Nothing was charged."),
        colour=FAILED,
    )


def suggestion(track: Track, tracks: TaskTracks) -> str:
    """An `audio_id` autocomplete choice's name for a track of the task being typed."""
    return track_label(track, tracks)


def matching(tracks: TaskTracks, typed: str) -> Sequence[Track]:
    """The tracks whose title or audio id contains what was typed (all when nothing was)."""
    typed = typed.strip().lower()
    return [
        track
        for track in tracks.tracks
        if not typed or typed in track.audio_id.lower() or typed in (track.title or "").lower()
    ]


def local_links(job: Job) -> bool:
    """Whether the job's stem links point at the machine running the bot (the sandbox without a
    public address): a phone cannot open them."""
    hosts = {urlsplit(stem.url).hostname or "" for stem in job.stems}
    return any(_local_host(host) for host in hosts)


def _local_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified
