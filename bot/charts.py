"""Drawing the usage charts as PNG images, with matplotlib's non-interactive backend (Agg).

`draw` is pure and picklable in and out: a `ChartSpec` goes in, PNG bytes come out. The bot runs it
in a worker process (`ChartDrawer`), so matplotlib's import, its memory and the GIL it holds while
drawing stay away from the event loop; matplotlib is imported there, lazily, never by the bot's
own process unless a test draws in it.

The words are the reader's language (built by `bot.render.usage`). Latin scripts are drawn in
DejaVu Sans, which matplotlib ships; Japanese needs a font of its own, and the chart names the ones
it may use (`fonts_for`): IPAexGothic, which the `matplotlib-fontja` package ships (so every host
has it), else a Japanese font the host has installed. Where none of them is there, the chart is
drawn with its English words instead (`ChartSpec.english`) rather than as empty boxes.

Legible on Discord's dark and light themes alike: an opaque neutral card with dark text (never a
transparent background, whose dark text would vanish on the dark theme), large type for phones,
and the Okabe-Ito colours, which stay distinct for colour-blind readers.
"""

from __future__ import annotations

import asyncio
import io
import logging
import multiprocessing
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any

WIDTH_INCHES, HEIGHT_INCHES, DPI = 6.4, 4.8, 200
"""1280 by 960 pixels: shown about 400 points wide on a phone, where the 13-point type stays legible."""
SIZE = (int(WIDTH_INCHES * DPI), int(HEIGHT_INCHES * DPI))

BACKGROUND = "#F2F3F5"
TEXT = "#1E1F22"
GRID = "#C4C9CE"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
REFUND_COLOUR = "#7A7F87"
LINE_COLOUR = "#B3261E"
FONT = "DejaVu Sans"  # shipped with matplotlib, so every host draws the same
JAPANESE_FONTS = ("IPAexGothic", "Noto Sans CJK JP", "IPAGothic", "TakaoGothic", "VL Gothic")
"""Fonts with Japanese glyphs, in order of preference: the first is shipped by a dependency
(`matplotlib-fontja`), the others are what a host may have installed."""
_SHIPPED_FONT = ("matplotlib_fontja", "fonts/ipaexg.ttf")
"""The package and file of the shipped Japanese font, registered without importing the package
(importing it would make the font every chart's default)."""


def fonts_for(locale: str) -> tuple[str, ...]:
    """The fonts a chart in the language `locale` (Babel's code) may draw with, first choice
    first: DejaVu Sans, which has every Latin letter, and for Japanese the fonts that have its
    glyphs (DejaVu Sans has none)."""
    return (FONT, *JAPANESE_FONTS) if locale == "ja" else (FONT,)


@dataclass(frozen=True, slots=True)
class Label:
    """Text drawn in the chart; `fallback` (an id) replaces it where the font has no glyph for one
    of its characters, so a name in a script the font lacks never turns into empty boxes."""

    text: str
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class Stack:
    label: Label
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """Everything one chart shows. `stacks` are bars above the axis, stacked per day; `below` bars
    under it (refunds, drawn as negative); `line` a cumulative figure on a second axis with its
    `limit` dashed beside it."""

    title: Label
    subtitle: str  # says the time zone
    day_labels: tuple[str, ...]
    y_label: str
    stacks: tuple[Stack, ...]
    below: Stack | None = None
    line: Stack | None = None
    line_axis_label: str = ""
    limit: tuple[str, int] | None = None
    notes: tuple[str, ...] = field(default=())
    fonts: tuple[str, ...] = (FONT,)
    """The font families to draw with, first choice first (`fonts_for`); those the host lacks are
    skipped."""
    english: ChartSpec | None = None
    """The same chart in English, drawn instead where the fonts at hand cannot draw every word of
    this one (a Japanese chart on a host without a Japanese font)."""


def words(spec: ChartSpec) -> list[str]:
    """Every text the chart must draw in its language: a label with a fallback counts by its
    fallback, since that is drawn where the text cannot be."""
    labels = [spec.title, *(stack.label for stack in spec.stacks)]
    labels += [stack.label for stack in (spec.below, spec.line) if stack is not None]
    texts = [label.text if label.fallback is None else label.fallback for label in labels]
    texts += [spec.subtitle, spec.y_label, spec.line_axis_label, *spec.day_labels, *spec.notes]
    if spec.limit is not None:
        texts.append(spec.limit[0])
    return texts


def draw(spec: ChartSpec) -> bytes:
    """The chart as a PNG of exactly `SIZE` pixels, in its English twin's words where the fonts at
    hand cannot draw its own."""
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: before pyplot is imported
    fonts = available(spec.fonts)
    if spec.english is not None and not all(covers(text, fonts) for text in words(spec)):
        return draw(spec.english)
    # A Japanese font without a bold face is drawn at its regular weight: not worth a warning per chart.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    # Every text, tick labels included, falls back glyph by glyph along the fonts.
    with matplotlib.rc_context({"font.family": list(fonts)}):
        return _draw(spec, fonts)


def _draw(spec: ChartSpec, fonts: tuple[str, ...]) -> bytes:
    from matplotlib.figure import Figure  # no pyplot: nothing global to leak between charts
    from matplotlib.ticker import FuncFormatter

    # Constrained layout keeps both axes' labels and the legend below inside the picture.
    figure = Figure(
        figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, facecolor=BACKGROUND, layout="constrained"
    )
    axes = figure.add_subplot(facecolor=BACKGROUND)
    style: dict[str, Any] = {"color": TEXT, "fontfamily": list(fonts)}
    days = list(range(len(spec.day_labels)))
    bottom = [0] * len(days)
    handles: list[Any] = []
    for index, stack in enumerate(spec.stacks):
        bars = axes.bar(
            days,
            stack.values,
            bottom=bottom,
            width=0.8,
            color=PALETTE[index % len(PALETTE)],
            label=legible(stack.label, fonts),
        )
        handles.append(bars)
        bottom = [b + v for b, v in zip(bottom, stack.values, strict=True)]
    if spec.below is not None and any(spec.below.values):
        handles.append(
            axes.bar(
                days,
                [-v for v in spec.below.values],
                width=0.8,
                color=REFUND_COLOUR,
                hatch="//",
                edgecolor=BACKGROUND,
                label=legible(spec.below.label, fonts),
            )
        )
    axes.axhline(0, color=TEXT, linewidth=0.8)
    # Refunds are drawn below zero but are amounts: label them without a minus sign.
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):,.0f}"))
    axes.set_ylabel(spec.y_label, fontsize=12, **style)
    axes.grid(axis="y", color=GRID, linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    _day_ticks(axes, spec.day_labels)
    axes.tick_params(colors=TEXT, labelsize=11)
    if spec.line is not None:
        second = axes.twinx()
        handles += second.plot(
            days, spec.line.values, color=LINE_COLOUR, linewidth=2.2, label=legible(spec.line.label, fonts)
        )
        if spec.limit is not None:
            handles.append(
                second.axhline(
                    spec.limit[1], color=LINE_COLOUR, linestyle="--", linewidth=1.6, label=spec.limit[0]
                )
            )
        top = max([*spec.line.values, spec.limit[1] if spec.limit else 0, 1]) * 1.15
        low, high = axes.get_ylim()
        # Both zeros on one height, so the line never seems to dip below the bars' axis.
        second.set_ylim(top * low / high if high > 0 else 0, top)
        second.yaxis.set_major_formatter(
            FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 0 else "")
        )
        second.set_ylabel(spec.line_axis_label, fontsize=12, **style)
        second.tick_params(colors=TEXT, labelsize=11)
        second.spines["top"].set_visible(False)
    figure.suptitle(legible(spec.title, fonts), fontsize=16, fontweight="bold", ha="left", x=0.02, **style)
    axes.set_title(spec.subtitle, fontsize=11, loc="left", **style)
    if handles:
        # Below the chart, never over the bars.
        figure.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(2, len(handles)),
            frameon=False,
            labelcolor=TEXT,
            prop={"family": list(fonts), "size": 10},
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor=BACKGROUND)
    return buffer.getvalue()


def _day_ticks(axes: Any, labels: Sequence[str]) -> None:
    """As many day labels as fit side by side on a phone, at most about eight: fewer where the
    language writes a day wider ("11月11日" is as wide as eight Latin letters)."""
    widest = max((_width(label) for label in labels), default=1)
    most = max(2, min(8, DAY_LABELS_ROOM // max(widest, 1)))
    step = max(1, -(-len(labels) // most))
    ticks = list(range(0, len(labels), step))
    axes.set_xticks(ticks, [labels[i] for i in ticks])
    axes.set_xlim(-0.6, len(labels) - 0.4)


DAY_LABELS_ROOM = 52
"""How many Latin letters' width of day labels fit under the chart with room between them."""


def _width(text: str) -> int:
    """A text's width in Latin letters: wide (East Asian) characters count as two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def legible(label: Label, fonts: tuple[str, ...] = (FONT,)) -> str:
    """The label's text where the chart's fonts can draw every character of it, else its fallback;
    drawn as written (`as_written`)."""
    if label.fallback is None or covers(label.text, fonts):
        return as_written(label.text)
    return as_written(label.fallback)


def as_written(text: str) -> str:
    """Text (names are untrusted) that matplotlib draws as written: a pair of dollar signs would
    make it mathtext, a formula in italics or an error that fails the whole chart. An escaped one
    is drawn as a plain dollar sign."""
    return text.replace("$", "\\$")


def covers(text: str, fonts: tuple[str, ...] = (FONT,)) -> bool:
    """Whether the chart's fonts (those of `fonts` the host has) have a glyph for every character
    of `text` (spaces aside)."""
    charmaps = [_charmap(font) for font in available(fonts)]
    return all(any(ord(ch) in charmap for charmap in charmaps) for ch in text if not ch.isspace())


@cache
def available(fonts: tuple[str, ...]) -> tuple[str, ...]:
    """The fonts of `fonts` this host can draw with, in the same order (DejaVu Sans always)."""
    from matplotlib import font_manager

    _register_shipped_font()
    known = {entry.name for entry in font_manager.fontManager.ttflist}
    return tuple(font for font in fonts if font in known) or (FONT,)


@cache
def _register_shipped_font() -> None:
    """Make the Japanese font a dependency ships known to matplotlib, if it is installed."""
    from importlib.util import find_spec
    from pathlib import Path

    from matplotlib import font_manager

    package, file = _SHIPPED_FONT
    found = find_spec(package)
    folders = list(found.submodule_search_locations or []) if found is not None else []
    for folder in folders:
        path = Path(folder) / file
        if path.is_file():
            font_manager.fontManager.addfont(str(path))
            return


@cache
def _charmap(font: str) -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont(font_manager.FontProperties(family=font), fallback_to_default=False)
    return frozenset(FT2Font(path).get_charmap())


class ChartDrawer:
    """Draws charts in one worker process, started on the first chart (spawned: a fork of the bot
    would copy its event loop, sockets and threads). A chart is a second or two of CPU at most;
    one worker keeps a burst of reports from taking every core."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def draw(self, spec: ChartSpec) -> bytes:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return await asyncio.get_running_loop().run_in_executor(self._pool, draw, spec)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
