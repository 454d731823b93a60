"""A mix's file name (`bot.mixing.names`): what it holds in words, from the title or "Job N"."""

from __future__ import annotations

import pytest

from bot.mixing.names import MAX_TITLE_CHARS, clean_title, mix_filename

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
