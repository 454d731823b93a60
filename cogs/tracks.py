"""The menus of tracks `/split` shows when given the task id alone (see `cogs.split`): which are
showing, so that a choice can change its menu, and that each starts one split only."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

import discord

log = logging.getLogger(__name__)

TOKEN_SECONDS = 15 * 60
"""Discord's interaction tokens work this long: the /split that showed a menu can edit it till then."""
MENUS_REMEMBERED = 1000


class Menus:
    """The `/split`s whose menus are showing, by menu id (the /split's interaction id). An ephemeral
    message is changed through the interaction that made it, for 15 minutes, so that interaction is
    kept here. In memory only: after a restart a menu still works, it is just not changed after the
    choice."""

    def __init__(self) -> None:
        self._showing: OrderedDict[int, discord.Interaction[Any]] = OrderedDict()
        self._taken: OrderedDict[int, float] = OrderedDict()

    def showing(self, menu_id: int, interaction: discord.Interaction[Any]) -> None:
        self._showing[menu_id] = interaction
        while len(self._showing) > MENUS_REMEMBERED:
            self._showing.popitem(last=False)

    def take(self, menu_id: int) -> bool:
        """Whether this menu may start a split now: once per menu (a second choice before the menu
        changed would start, and charge, a second split)."""
        if menu_id in self._taken:
            return False
        self._taken[menu_id] = time.monotonic()
        while len(self._taken) > MENUS_REMEMBERED:
            self._taken.popitem(last=False)
        return True

    def give_back(self, menu_id: int) -> None:
        """The choice started nothing (refused, or it failed): the menu may be used again."""
        self._taken.pop(menu_id, None)

    async def chosen(self, menu_id: int, text: str) -> None:
        """The menu now says what was chosen, and loses its select."""
        interaction = self._showing.pop(menu_id, None)
        if interaction is None or time.time() - interaction.created_at.timestamp() > TOKEN_SECONDS - 30:
            return
        try:
            await interaction.edit_original_response(content=text, embed=None, view=None)
        except discord.HTTPException as exc:
            log.info("Could not change a menu of tracks after the choice (%s)", exc.status)
