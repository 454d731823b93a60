"""Draw the README's picture of a result: the real result message of a full split, as the bot
renders it (`bot.render.results.outcome`), drawn as Discord shows it.

Run from the checkout: `python docs/_tools/draw_result.py docs/images/result.png`. The words,
the colour and the buttons come from the renderer, so the picture shows what members see.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from bot.models.jobs import Delivery, Job, JobState, StemLink
from bot.models.songs import Song
from bot.product import LINK_LIFETIME, Mode
from bot.render.results import outcome

KEYS = ("vocal", "backing_vocals", "drums", "bass", "guitar", "keyboard", "piano", "percussion",
        "strings", "synth", "fx", "brass")
NOW = time.time()


def example_job() -> Job:
    return Job(
        id=12, guild_id=1, channel_id=2, user_id=3, mode=Mode.SPLIT_STEM,
        source_task_id="5c79a1b2e6f04d7a9c3b8e2f1a0d4c6b", audio_id="e231f4a8-6b0d-4c3e-9a7f-1d2b3c4e5f60",
        cost=Mode.SPLIT_STEM.cost, state=JobState.SUCCEEDED, api_task_id="t", callback_token="c",
        application_id=4, interaction_token="i", interaction_expires_at=NOW,
        stems=tuple(StemLink(key, f"https://files.example/{key}.mp3") for key in KEYS),
        links_expire_at=NOW + LINK_LIFETIME.total_seconds(), failure=None, failure_detail=None,
        delivery=Delivery.PENDING, delivery_attempts=0, delivered_via=None, created_at=NOW - 120,
        submitted_at=NOW - 110, finished_at=NOW, delivered_at=None,
        song=Song("Midnight Drive", 194, None, 2, 2),
    )


def plain(markdown: str) -> str:
    """Discord's Markdown and timestamps as the client shows them."""
    text = re.sub(r"<t:(\d+):R>", "in 14 days", markdown)
    text = re.sub(r"<t:(\d+):[fF]>", lambda m: time.strftime("%d %B %Y %H:%M", time.gmtime(int(m[1]))), text)
    return text.replace("**", "").replace("\\", "")


def draw(path: Path) -> None:
    message = outcome(example_job(), keep_button=True, mix_button=True)[0]
    embed = message.embeds[0]
    buttons = [item.label for item in (message.view.children if message.view else [])]  # type: ignore[attr-defined]
    fig = plt.figure(figsize=(8, 2.3), dpi=110)
    fig.patch.set_facecolor("#313338")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 800)
    ax.set_ylim(85, 315)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((20, 185), 760, 120, boxstyle="round,pad=0,rounding_size=6", fc="#2b2d31"))
    ax.add_patch(FancyBboxPatch((20, 185), 5, 120, boxstyle="square,pad=0", fc=str(embed.colour)))
    ax.text(40, 293, plain(embed.title or ""), color="white", fontsize=14, weight="bold", va="top")
    ax.text(40, 255, plain(embed.description or ""), color="#dbdee1", fontsize=10.5, va="top", wrap=True)
    ax.text(40, 197, plain(embed.footer.text or ""), color="#b5bac1", fontsize=8.5, va="bottom")
    x, y = 20.0, 145.0
    for label in buttons:
        width = 14 + 7.4 * len(label)
        if x + width > 780:
            x, y = 20.0, y - 38
        ax.add_patch(FancyBboxPatch((x, y), width, 28, boxstyle="round,pad=0,rounding_size=4", fc="#4e5058"))
        ax.text(x + width / 2, y + 14, label, color="white", fontsize=9, ha="center", va="center")
        x += width + 8
    fig.savefig(path, facecolor=fig.get_facecolor())


if __name__ == "__main__":
    draw(Path(sys.argv[1]))
