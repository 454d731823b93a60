"""The slash commands in the member's language: Discord shows each member the names and
descriptions of commands, options and choices in their own language, from the localisations
synced with the commands. They come from the same catalogs as every message (`bot.i18n`)."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot import i18n

NAME_CONTEXTS: dict[Where, str] = {
    Where.command_name: "command name",
    Where.group_name: "command name",
    Where.parameter_name: "option name",
}
"""A name is one lowercase word in Discord's pattern, never a sentence: its own catalog entry,
told apart from the same English word in a sentence."""


class CommandTranslator(app_commands.Translator):
    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        language = i18n.known_language(locale.value)
        if language is None or language is i18n.ENGLISH:
            return None  # Discord shows everyone else the English
        return i18n.translate(language, NAME_CONTEXTS.get(context.location), string.message)


async def translated_commands(
    tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
) -> list[dict[str, Any]]:
    """The commands exactly as a sync sends them, localisations included."""
    translator = tree.translator
    if translator is None:
        return [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    return [
        await command.get_translated_payload(tree, translator) for command in tree.get_commands(guild=guild)
    ]
