"""◀ / ▶ buttons under a paged private answer. Only whoever ran the command can turn its pages;
each press asks for the page again, so rights are checked as of the press."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.discord_side.client import refuse_if_not_installed
from bot.errors import StemBotError
from bot.i18n import N_, _
from bot.render import common

PAGE_BUTTONS_TIMEOUT = 300.0
LABEL_LIMIT = 80  # Discord's limit on a button's label
# TRANSLATORS: the buttons under a list that has pages (at most 80 characters).
PREVIOUS = N_("◀ Prev")
NEXT = N_("Next ▶")


def button_label(text: str) -> str:
    """A button's label cut to Discord's limit: pass the translated text."""
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


Turn = Callable[[discord.Interaction[Any], int], Awaitable[tuple[discord.Embed, int, int]]]
"""Shows page N: returns its embed, and the page actually shown and how many pages there are."""


class Pager(discord.ui.View):
    def __init__(
        self,
        turn: Turn,
        *,
        owner_id: int,
        page: int,
        pages: int,
        refused: discord.Embed,
        timeout: float = PAGE_BUTTONS_TIMEOUT,
    ) -> None:
        """`turn` shows a page; `refused` is what anyone else pressing a button is told."""
        super().__init__(timeout=timeout)
        self._turn = turn
        self._owner_id = owner_id
        self._refused = refused
        self.page, self.pages = page, pages
        self.message: discord.WebhookMessage | None = None
        # In the language of whoever asked: the view is made as their command is answered.
        self.prev_page.label = button_label(_(PREVIOUS))
        self.next_page.label = button_label(_(NEXT))
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        self.prev_page.disabled = self.page <= 0
        self.next_page.disabled = self.page >= self.pages - 1

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if await refuse_if_not_installed(interaction):
            return False
        if interaction.user.id == self._owner_id:
            return True
        await interaction.response.send_message(embed=self._refused, ephemeral=True)
        return False

    @discord.ui.button(label=PREVIOUS, style=discord.ButtonStyle.secondary)
    async def prev_page(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.page - 1)

    @discord.ui.button(label=NEXT, style=discord.ButtonStyle.secondary)
    async def next_page(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.page + 1)

    async def _show(self, interaction: discord.Interaction[Any], page: int) -> None:
        try:
            embed, self.page, self.pages = await self._turn(interaction, page)
        except StemBotError as error:  # e.g. the moderator lost their rights meanwhile
            await interaction.response.send_message(embed=common.refusal(str(error)), ephemeral=True)
            return
        self._sync_buttons()
        await interaction.response.edit_message(embed=embed, view=self)

    async def on_timeout(self) -> None:
        self.prev_page.disabled = self.next_page.disabled = True
        if self.message is None:
            return
        try:
            await self.message.edit(view=self)
        except discord.HTTPException:
            pass  # the page stays readable; only the buttons would have been greyed out
