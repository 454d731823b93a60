"""A mix's file name (`bot.mixing.names`): what it holds in words, from the title or "Job N"."""

from __future__ import annotations

import pytest

from bot.mixing.names import MAX_TITLE_CHARS, clean_title, mix_filename
from bot.models import Job, KeepPlace, Mix, MixState, Song, mask_of
from bot.render import mix as words
from bot.render.text import plain
from tests.unit_helpers import make_job

TWELVE = [
    "Vocals", "Backing Vocals", "Drums", "Bass", "Guitar", "Keyboard",
    "Percussion", "Strings", "Synth", "FX", "Brass", "Woodwinds",
]  # fmt: skip


def keeping_all_but(*names: str) -> list[int]:
    return [i for i, n in enumerate(TWELVE) if n not in names]


@pytest.mark.parametrize(
    ("kept", "name"),
    [
        (keeping_all_but("Drums"), "Job 12 - without Drums.mp3"),
        (keeping_all_but("Drums", "Bass"), "Job 12 - without Drums and Bass.mp3"),
        ([0, 3], "Job 12 - Vocals + Bass.mp3"),
        ([2], "Job 12 - Drums.mp3"),
        ([0, 1, 3], "Job 12 - Vocals + Backing Vocals + Bass.mp3"),
        (keeping_all_but("Drums", "Bass", "FX"), "Job 12 - mix of 9 stems.mp3"),
        ([0, 1, 2, 3], "Job 12 - mix of 4 stems.mp3"),
    ],
)
def test_the_name_says_what_the_mix_holds(kept: list[int], name: str) -> None:
    assert mix_filename(None, 12, TWELVE, kept) == name


def test_a_small_result_leaving_out_one_says_without() -> None:
    assert mix_filename(None, 3, ["Vocals", "Instrumental", "Drums"], [0, 1]) == "Job 3 - without Drums.mp3"


def test_the_title_names_the_file_where_it_is_known() -> None:
    assert (
        mix_filename("Blue Monday", 12, TWELVE, keeping_all_but("Drums")) == "Blue Monday - without Drums.mp3"
    )


@pytest.mark.parametrize(
    ("title", "clean"),
    [
        ("AC/DC: Back\\in*Black?", "AC DC Back in Black"),
        ("line\nbreak\ttab\x00nul\u202eright-to-left", "line break tab nul right-to-left"),
        ("  ..dots and spaces..  ", "dots and spaces"),
        ("/\\:*?", None),
        ("", None),
        (None, None),
    ],
)
def test_titles_are_made_safe_for_file_names(title: str | None, clean: str | None) -> None:
    assert clean_title(title) == clean


def test_a_long_title_is_cut() -> None:
    name = mix_filename("x" * 500, 12, TWELVE, [0])
    assert name == "x" * MAX_TITLE_CHARS + " - Vocals.mp3"


def test_a_title_of_nothing_usable_falls_back_to_the_job() -> None:
    assert mix_filename("///", 7, TWELVE, [0]) == "Job 7 - Vocals.mp3"


# -- the file's name in the member's answers ---------------------------------------------------

HOSTILE_TITLE = "Ev[i]l `tick` __under__ ~~gone~~ @everyone"


def _mix_of(job_title: str, state: MixState) -> tuple[Job, Mix]:
    job = make_job(job_id=12, song=Song(job_title, 200.0, None, 1, 1))
    filename = mix_filename(job_title, 12, TWELVE, keeping_all_but("Drums"))
    mix = Mix(
        id=3,
        job_id=12,
        guild_id=job.guild_id,
        stems=mask_of(keeping_all_but("Drums")),
        state=state,
        requested_by=job.user_id,
        price=2,
        upload_limit=25 * 1024 * 1024,
        filename=filename,
        place=KeepPlace.THREAD,
        channel_id=555,
        message_id=666 if state is MixState.POSTED else None,
    )
    return job, mix


@pytest.mark.parametrize("state", [MixState.PENDING, MixState.POSTED])
def test_a_hostile_title_in_the_file_name_is_shown_as_written(state: MixState) -> None:
    """The song's title (the API's, untrusted) names the file; where the answers show the file's
    name in Markdown it is escaped: no mass mention, no markup, no bracket breaking the link."""
    job, mix = _mix_of(HOSTILE_TITLE, state)
    assert "@everyone" in mix.filename  # the file's own name keeps the title as it is
    for text in (
        words.asked_answer(job, mix, started=True),
        words.asked_answer(job, mix, started=False),
        words.posted_answer(job, mix),
    ):
        assert plain(mix.filename) in text
        assert mix.filename not in text
        assert "@everyone" not in text
