"""Drawing the usage charts as PNG images, with matplotlib's non-interactive backend (Agg).

`draw` is pure and picklable in and out: a `ChartSpec` goes in, PNG bytes come out. The bot runs it
in a worker process (`ChartDrawer`), so matplotlib's import, its memory and the GIL it holds while
drawing stay away from the event loop; matplotlib is imported there, lazily, never by the bot's
own process unless a test draws in it.

Legible on Discord's dark and light themes alike: an opaque neutral card with dark text (never a
transparent background, whose dark text would vanish on the dark theme), large type for phones,
and the Okabe-Ito colours, which stay distinct for colour-blind readers.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
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


def draw(spec: ChartSpec) -> bytes:
    """The chart as a PNG of exactly `SIZE` pixels."""
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: before pyplot is imported
    from matplotlib.figure import Figure  # no pyplot: nothing global to leak between charts
    from matplotlib.ticker import FuncFormatter

    # Constrained layout keeps both axes' labels and the legend below inside the picture.
    figure = Figure(
        figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, facecolor=BACKGROUND, layout="constrained"
    )
    axes = figure.add_subplot(facecolor=BACKGROUND)
    style: dict[str, Any] = {"color": TEXT, "fontfamily": FONT}
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
            label=legible(stack.label),
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
                label=legible(spec.below.label),
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
            days, spec.line.values, color=LINE_COLOUR, linewidth=2.2, label=legible(spec.line.label)
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
    figure.suptitle(legible(spec.title), fontsize=16, fontweight="bold", ha="left", x=0.02, **style)
    axes.set_title(spec.subtitle, fontsize=11, loc="left", **style)
    if handles:
        # Below the chart, never over the bars.
        figure.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(2, len(handles)),
            frameon=False,
            labelcolor=TEXT,
            prop={"family": FONT, "size": 10},
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor=BACKGROUND)
    return buffer.getvalue()


def _day_ticks(axes: Any, labels: Sequence[str]) -> None:
    """At most about eight day labels, so they never overlap on a phone."""
    step = max(1, -(-len(labels) // 8))
    ticks = list(range(0, len(labels), step))
    axes.set_xticks(ticks, [labels[i] for i in ticks])
    axes.set_xlim(-0.6, len(labels) - 0.4)


def legible(label: Label) -> str:
    """The label's text where the chart's font can draw every character of it, else its fallback;
    drawn as written (`as_written`)."""
    if label.fallback is None or covers(label.text):
        return as_written(label.text)
    return as_written(label.fallback)


def as_written(text: str) -> str:
    """Text (names are untrusted) that matplotlib draws as written: a pair of dollar signs would
    make it mathtext, a formula in italics or an error that fails the whole chart. An escaped one
    is drawn as a plain dollar sign."""
    return text.replace("$", "\\$")


def covers(text: str) -> bool:
    """Whether the chart's font has a glyph for every character of `text` (spaces aside)."""
    charmap = _charmap()
    return all(ord(ch) in charmap for ch in text if not ch.isspace())


@cache
def _charmap() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont(font_manager.FontProperties(family=FONT), fallback_to_default=False)
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
