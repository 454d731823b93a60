"""The buttons under a split's messages: a result's link buttons (one per stem, where they fit)
and its actions (Split into 12 stems, Keep in Discord or Kept in Discord, Mix stems), and Cancel
under a queued split. One place builds each view, so another action is one more entry in `_action_buttons`."""

from __future__ import annotations

import discord

from bot.i18n import _
from bot.models import CANCELLABLE_STATES, Job
from bot.product import Mode, stem_name
from bot.render.common import (
    BUTTONS_PER_MESSAGE,
    CANCEL_BUTTON_ID,
    CANCEL_BUTTON_LABEL,
    KEEP_BUTTON_ID,
    KEEP_BUTTON_LABEL,
    KEPT_BUTTON_LABEL,
    LINK_BUTTON_URL_LIMIT,
    MIX_BUTTON_ID,
    MIX_BUTTON_LABEL,
    UPGRADE_BUTTON_ID,
    UPGRADE_BUTTON_LABEL,
)

BUTTON_LABEL_LIMIT = 80
"""Discord's most characters on a button's label."""


def label(text: str) -> str:
    """A button's label (an `N_`-marked constant) in the language being spoken, cut to Discord's
    limit after translation."""
    return _(text)[:BUTTON_LABEL_LIMIT]


def stem_buttons_fit(
    job: Job, *, in_server: bool, keep_button: bool, kept_url: str | None, mix_button: bool = False
) -> bool:
    """Whether every stem gets a link button (else they are text links): all of them fit beside
    the result's other buttons, and no URL is longer than a link button takes."""
    others = len(
        _action_buttons(
            job, in_server=in_server, keep_button=keep_button, kept_url=kept_url, mix_button=mix_button
        )
    )
    return (
        bool(job.stems)
        and len(job.stems) + others <= BUTTONS_PER_MESSAGE
        and all(len(stem.url) <= LINK_BUTTON_URL_LIMIT for stem in job.stems)
    )


def result_view(
    job: Job,
    *,
    in_server: bool,
    keep_button: bool = False,
    kept_url: str | None = None,
    stem_buttons: bool | None = None,
    mix_button: bool = False,
) -> discord.ui.View | None:
    """The result's buttons: a link button per stem (`stem_buttons`; by default where they fit),
    then the actions (`_action_buttons`). Another action is one more entry there."""
    if stem_buttons is None:
        stem_buttons = stem_buttons_fit(
            job, in_server=in_server, keep_button=keep_button, kept_url=kept_url, mix_button=mix_button
        )
    view = discord.ui.View(timeout=None)
    if stem_buttons:
        for stem in job.stems:
            view.add_item(discord.ui.Button(label=stem_name(stem.key)[:BUTTON_LABEL_LIMIT], url=stem.url))
    actions = _action_buttons(
        job, in_server=in_server, keep_button=keep_button, kept_url=kept_url, mix_button=mix_button
    )
    for button in actions:
        view.add_item(button)
    return view if view.children else None


def _action_buttons(
    job: Job, *, in_server: bool, keep_button: bool, kept_url: str | None, mix_button: bool = False
) -> list[discord.ui.Button[discord.ui.View]]:
    """On a 2-stem result in a server, the button that splits the same track into up to 12 stems;
    Keep in Discord (or, once kept, a link to the files); Mix stems (`mix_button`, in a server)."""
    buttons: list[discord.ui.Button[discord.ui.View]] = []
    if in_server and job.mode is Mode.SEPARATE_VOCAL:
        buttons.append(
            discord.ui.Button(
                label=label(UPGRADE_BUTTON_LABEL),
                style=discord.ButtonStyle.primary,
                custom_id=UPGRADE_BUTTON_ID.format(job=job.id),
            )
        )
    if kept_url is not None:
        buttons.append(discord.ui.Button(label=label(KEPT_BUTTON_LABEL), emoji="📌", url=kept_url))
    elif keep_button:
        buttons.append(
            discord.ui.Button(
                label=label(KEEP_BUTTON_LABEL),
                emoji="📌",
                style=discord.ButtonStyle.secondary,
                custom_id=KEEP_BUTTON_ID.format(job=job.id),
            )
        )
    if in_server and mix_button:
        buttons.append(
            discord.ui.Button(
                label=label(MIX_BUTTON_LABEL),
                emoji="🎚️",
                style=discord.ButtonStyle.secondary,
                custom_id=MIX_BUTTON_ID.format(job=job.id),
            )
        )
    return buttons


def queued_view(job: Job) -> discord.ui.View | None:
    """The Cancel button under a queued split, while cancelling is possible."""
    if job.state not in CANCELLABLE_STATES:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label=label(CANCEL_BUTTON_LABEL),
            style=discord.ButtonStyle.secondary,
            custom_id=CANCEL_BUTTON_ID.format(job=job.id),
        )
    )
    return view
