"""The language of what an interaction makes public (see `bot.languages`)."""

from __future__ import annotations

from typing import Any

import discord

from bot.i18n import Language


async def public_language(interaction: discord.Interaction[Any]) -> Language:
    """The language of the public messages an interaction leads to (the queued and result
    messages, threads, the audit channel): the one the server's moderators chose, else the
    server's own Discord language, else English."""
    languages = interaction.client.services.languages
    language: Language = await languages.public(interaction.guild_id, interaction.guild_locale)
    return language
