"""Songs in messages: every place a split is shown names the song (title, take and duration, the
cover as thumbnail), falls back to the ids, and keeps the API's untrusted titles harmless and
within Discord's limits."""

from __future__ import annotations

import pytest

from bot.models import JobState, LedgerEntry, LedgerKind, Song, StemLink, TaskTracks, Track
from bot.product import Mode
from bot.render import keep as keep_words
from bot.render import library, quota, results
from bot.render import songs as song_words
from bot.render.common import as_plain_text
from tests.unit_helpers import (
    HOSTILE,
    TWELVE_STEMS,
    embed_text,
    make_job,
    markdown_dangers,
    succeeded_job,
)

COVER = "https://cdn.example.test/covers/midnight.jpeg"
MIDNIGHT = Song("Midnight Drive", 194.4, COVER, 2, 2)


def text_of(messages) -> str:
    return "\n".join(
        [*(m.content or "" for m in messages), *(embed_text(e) for m in messages for e in m.embeds)]
    )


def markdown_of(messages) -> str:
    """The parts of messages Discord reads as Markdown: content, descriptions, field values."""
    parts = []
    for message in messages:
        parts.append(message.content or "")
        for embed in message.embeds:
            data = embed.to_dict()
            parts.append(data.get("description", ""))
            parts += [field["value"] for field in data.get("fields", [])]
    return "\n".join(parts)


def test_queued_and_processing_name_the_song_with_take_duration_and_cover() -> None:
    job = make_job(state=JobState.RESERVED, song=MIDNIGHT)
    for embed in (results.queued(job), results.processing(job)):
        assert embed.title == "Splitting: Midnight Drive (take 2 · 3:14)"
        assert embed.thumbnail.url == COVER
        assert "**Midnight Drive** (take 2 · 3:14)" in embed_text(embed)
        assert job.audio_id not in embed_text(embed)  # members think in songs


def test_without_a_title_the_ids_are_shown_as_today() -> None:
    job = make_job(state=JobState.RESERVED)
    embed = results.queued(job)
    assert embed.title == f"Splitting: {job.mode.label}"
    assert job.source_task_id in embed_text(embed) and job.audio_id in embed_text(embed)
    assert embed.thumbnail.url is None


def test_the_result_is_named_after_the_song_with_its_cover() -> None:
    job = succeeded_job(TWELVE_STEMS, 120, song=MIDNIGHT)
    [message] = results.stems_ready(job, keep_button=True)
    first = message.embeds[0]
    assert first.title == "Midnight Drive (take 2 · 3:14): 12 stems"
    assert first.thumbnail.url == COVER
    assert "audio id" not in text_of([message])


def test_a_late_results_pointer_names_the_song() -> None:
    job = succeeded_job(TWELVE_STEMS, 120, song=MIDNIGHT)
    assert (
        results.pointer(job, "https://discord.com/channels/1/2/3").title
        == "Done: Midnight Drive (take 2 · 3:14)"
    )


def test_a_single_take_is_not_numbered() -> None:
    job = make_job(state=JobState.RESERVED, song=Song("Alone", 61, None, 1, 1))
    assert results.queued(job).title == "Splitting: Alone (1:01)"


def test_the_keep_thread_is_named_after_the_song() -> None:
    job = succeeded_job(TWELVE_STEMS, 120, job_id=12, song=MIDNIGHT)
    assert keep_words.thread_name(job) == "Midnight Drive · 12 stems · job #12"
    assert keep_words.first_post(job).startswith("**Midnight Drive** (take 2 · 3:14) · Full split")
    assert keep_words.thread_name(succeeded_job(TWELVE_STEMS, 120, job_id=12)) == "Stems · 12 stems · job #12"


def test_stems_list_show_and_suggestions_name_the_song() -> None:
    job = succeeded_job(TWELVE_STEMS, 120, song=MIDNIGHT)
    assert "**Midnight Drive** (take 2 · 3:14)" in library.library_line(job, now=job.created_at)
    assert job.audio_id not in library.library_line(job, now=job.created_at)
    assert "Midnight Drive" in text_of(library.shown(job, now=job.created_at))
    assert library.suggestion(job, job.created_at).startswith(f"#{job.id} · Midnight Drive (take 2 · 3:14)")
    assert library.track_suggestion(job, job.audio_id, job.created_at).startswith("Midnight Drive")
    running = make_job(state=JobState.SUBMITTED, song=MIDNIGHT)
    assert "Midnight Drive" in text_of(library.shown(running, now=running.created_at))


def test_reminders_name_the_song() -> None:
    job = succeeded_job(TWELVE_STEMS, 120, song=MIDNIGHT)
    messages = results.reminder(job, [])
    assert "the links of **Midnight Drive** (take 2 · 3:14) (job #42) expire" in (messages[0].content or "")


def test_quota_history_lines_name_the_song_of_a_job() -> None:
    entry = LedgerEntry(1, 1, 1, LedgerKind.RESERVE, -10, 90, 7, None, None, 0.0, job_song="Midnight Drive")
    assert "Job #7 (Midnight Drive) started" in quota.history_line(entry)
    bare = LedgerEntry(1, 1, 1, LedgerKind.RESERVE, -10, 90, 7, None, None, 0.0)
    assert "Job #7 started" in quota.history_line(bare)


def hostile_job(**overrides):
    song = Song(HOSTILE + " " + HOSTILE, 100.0, "javascript:alert(1)", 1, 2)
    return succeeded_job(TWELVE_STEMS, 120, song=song, **overrides)


def test_hostile_titles_are_words_everywhere_and_ping_nobody() -> None:
    job = hostile_job()
    messages = [
        *results.stems_ready(job),
        *results.reminder(job, []),
        *library.shown(job, now=0),
    ]
    assert markdown_dangers(markdown_of(messages)) == []
    assert markdown_dangers(library.library_line(job, now=0)) == []
    assert markdown_dangers(keep_words.first_post(job)) == []
    for message in messages:
        for embed in message.embeds:
            title = embed.title or ""
            assert "@everyone" not in title and "<@42>" not in title and "<@&" not in title
            assert embed.thumbnail.url is None  # not http(s)
    for name in (keep_words.thread_name(job), library.suggestion(job, 0)):
        assert "@everyone" not in name and "<@42>" not in name
    # Without Embed Links, titles become message text: still words.
    assert markdown_dangers("\n".join(m.content or "" for m in as_plain_text(messages))) == []


@pytest.mark.parametrize("length", [100, 256, 300, 5000])
def test_long_titles_are_cut_to_discords_limits(length: int) -> None:
    job = succeeded_job(TWELVE_STEMS, 120, song=Song("M" * length, 200.0, None, 2, 2))
    assert len(keep_words.thread_name(job)) <= 100 and keep_words.thread_name(job).endswith(" · job #42")
    for embed in [*results.stems_ready(job)[0].embeds, results.queued(job), results.processing(job)]:
        assert len(embed.title or "") <= 256
    assert len(library.suggestion(job, 0)) <= 100
    assert len(library.track_suggestion(job, job.audio_id, 0)) <= 100
    tracks = TaskTracks(
        "t", (Track("a1", "M" * length, 200.0, None, 1), Track("a2", "M" * length, 201.0, None, 2))
    )
    for option, tail in zip(
        song_words.menu_options(tracks, Mode.SPLIT_STEM), ["take 1 · 3:20", "take 2 · 3:21"], strict=True
    ):
        assert len(option.label) <= 100 and option.label.endswith(tail)
        assert len(option.description or "") <= 100


def test_twins_are_told_apart_in_the_menu_with_the_price() -> None:
    tracks = TaskTracks(
        "t", (Track("a1", "Midnight Drive", 194.4, None, 1), Track("a2", "Midnight Drive", 201.0, None, 2))
    )
    options = song_words.menu_options(tracks, Mode.SEPARATE_VOCAL)
    assert [o.label for o in options] == ["Midnight Drive — take 1 · 3:14", "Midnight Drive — take 2 · 3:21"]
    assert [o.value for o in options] == ["a1", "a2"]
    assert "10 credits" in song_words.menu_placeholder(Mode.SEPARATE_VOCAL)
    assert "10 credits" in (song_words.menu(tracks, Mode.SEPARATE_VOCAL).description or "")


def test_sandbox_says_seconds_and_that_local_links_need_keep_in_discord() -> None:
    local = tuple(
        StemLink(key, f"http://127.0.0.1:8080/sandbox/files/t/{key}.wav") for key in ("vocal", "instrumental")
    )
    job = make_job(mode=Mode.SEPARATE_VOCAL, stems=local, sandbox=True)
    queued = results.queued(make_job(state=JobState.RESERVED, sandbox=True))
    assert "seconds" in (queued.description or "") and "three minutes" not in (queued.description or "")
    text = text_of(results.stems_ready(job, keep_button=True))
    assert "only on the machine running the bot" in text and "Keep in Discord" in text
    public = tuple(
        StemLink(s.key, s.url.replace("http://127.0.0.1:8080", "https://bot.example")) for s in local
    )
    assert "only on the machine" not in text_of(
        results.stems_ready(make_job(stems=public, sandbox=True), keep_button=True)
    )


def test_as_written_defuses_mentions_and_cuts_to_the_limit() -> None:
    from bot.render.text import as_written

    shown = as_written("a  <@42>\n<#7> <@&9> <:e:1> <t:1:R> @everyone @here " + "z" * 200, 60)
    assert "<@42>" not in shown and "<#7>" not in shown and "<@&9>" not in shown
    assert "<:e:1>" not in shown and "<t:1:R>" not in shown
    assert "@everyone" not in shown and "@here" not in shown
    assert len(shown) == 60 and shown.endswith("…") and "\n" not in shown
