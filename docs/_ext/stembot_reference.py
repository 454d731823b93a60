"""The docs' references, generated from the code at build time: never written twice.

A page holds a marker line; when Sphinx reads it, the marker is replaced with Markdown made from
the code:

- ``<!-- stembot:commands -->``: every slash command, from the app-command tree the cogs build
  (loaded without connecting to Discord, as the command-schema tests do): name, description, who
  may use it, options with their types, limits and choices.
- ``<!-- stembot:settings -->``: every setting, from ``bot.settings.SETTINGS``, the table
  ``load_settings`` parses with: name, default, allowed values, description.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import discord
from sphinx.application import Sphinx

from bot.discord_side.client import EXTENSIONS, StemBot
from bot.settings import SETTINGS

COMMANDS_MARKER = "<!-- stembot:commands -->"
SETTINGS_MARKER = "<!-- stembot:settings -->"

SUBCOMMAND, GROUP = 1, 2
OPTION_TYPES = {
    3: "text",
    4: "whole number",
    5: "true/false",
    6: "member",
    7: "channel",
    8: "role",
    9: "member or role",
    10: "number",
    11: "file",
}
# A subcommand's audience is the prefix of its description ("Moderators: …"); the rest are for
# every member of the server.
AUDIENCES = ("Moderators", "Server managers", "The bot's owner")


def command_payloads() -> list[dict[str, Any]]:
    """The commands exactly as a sync would send them to Discord."""

    async def build() -> list[dict[str, Any]]:
        bot = StemBot(lambda client: SimpleNamespace())  # type: ignore[arg-type,return-value]
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        return [command.to_dict(bot.tree) for command in bot.tree.get_commands()]

    return asyncio.run(build())


def leaves(command: dict[str, Any], prefix: str = "/") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every command a member can run, as `/group sub` and its payload."""
    name = f"{prefix}{command['name']}"
    children = [o for o in command.get("options", []) if o["type"] in (SUBCOMMAND, GROUP)]
    if not children:
        yield name, command
    for child in children:
        yield from leaves(child, name + " ")


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def who(description: str, permissions: str | None) -> str:
    for audience in AUDIENCES:
        if description.startswith(f"{audience}:"):
            return audience
    if permissions:
        needed = [name for name, on in discord.Permissions(int(permissions)) if on]
        shown = ", ".join(name.replace("_", " ").title() for name in needed)
        return f"Members with {shown} (a server can allow others under Integrations)"
    return "Every member of the server"


def option_limits(option: dict[str, Any]) -> str:
    parts = []
    if "min_value" in option or "max_value" in option:
        parts.append(f"{option.get('min_value', '…')} to {option.get('max_value', '…')}")
    if "min_length" in option or "max_length" in option:
        parts.append(f"{option.get('min_length', 0)} to {option.get('max_length', '…')} characters")
    if option.get("autocomplete"):
        parts.append("suggested as you type")
    choices = option.get("choices")
    if choices:
        parts.append("one of: " + "; ".join(f"{c['name']} (`{c['value']}`)" for c in choices))
    return "; ".join(parts)


def commands_markdown() -> str:
    lines: list[str] = []
    for top in command_payloads():
        permissions = top.get("default_member_permissions")
        grouped = any(o["type"] in (SUBCOMMAND, GROUP) for o in top.get("options", []))
        if grouped:
            lines += [f"## `/{top['name']}`", "", top["description"], ""]
        for name, command in leaves(top):
            description = command["description"]
            heading = "###" if grouped else "##"
            audience = who(description, permissions)
            lines += [f"{heading} `{name}`", "", description, "", f"**Who:** {audience}", ""]
            options = command.get("options", [])
            if options:
                lines += ["| option | type | required | values | description |", "|---|---|---|---|---|"]
                for option in options:
                    lines.append(
                        f"| `{option['name']}` | {OPTION_TYPES.get(option['type'], option['type'])} | "
                        f"{'yes' if option.get('required') else 'no'} | {cell(option_limits(option))} | "
                        f"{cell(option['description'])} |"
                    )
                lines.append("")
    return "\n".join(lines)


def settings_markdown() -> str:
    lines = ["| setting | default | allowed values | what it does |", "|---|---|---|---|"]
    for spec in SETTINGS:
        if spec.required:
            default = "required"
        elif spec.default is None:
            default = "unset"
        else:
            default = f"`{spec.default}`"
        lines.append(f"| `{spec.name}` | {default} | {cell(spec.expected)} | {cell(spec.description)} |")
    return "\n".join(lines) + "\n"


def fill(app: Sphinx, docname: str, source: list[str]) -> None:
    text = source[0]
    if COMMANDS_MARKER in text:
        text = text.replace(COMMANDS_MARKER, commands_markdown())
    if SETTINGS_MARKER in text:
        text = text.replace(SETTINGS_MARKER, settings_markdown())
    source[0] = text


def setup(app: Sphinx) -> dict[str, Any]:
    # discord.py warns at import time about voice support, which the docs do not need.
    logging.getLogger("discord").setLevel(logging.ERROR)
    app.connect("source-read", fill)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
