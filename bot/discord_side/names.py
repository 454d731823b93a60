"""The names an interaction shows the bot: the server's, the member's who used it, and those of the
members its options name. The bot has no members intent, so these are the only names it ever sees;
`/quota report` and `/quota export` show them (the report service cleans and stores them).

Untrusted: read from the payload with every type checked and at most `MAX_RESOLVED` members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord

MAX_RESOLVED = 25  # a command has at most 25 options


@dataclass(frozen=True, slots=True)
class SeenNames:
    guild_id: int
    server_name: str | None
    members: tuple[tuple[int, str | None], ...]


def seen_names(interaction: discord.Interaction[Any]) -> SeenNames | None:
    """The names in a command interaction in a server; None elsewhere."""
    if interaction.guild_id is None or interaction.type is not discord.InteractionType.application_command:
        return None
    user = interaction.user
    members: dict[int, str | None] = {user.id: user.display_name}
    resolved = _mapping(_mapping(interaction.data).get("resolved"))
    users, details = _mapping(resolved.get("users")), _mapping(resolved.get("members"))
    for key, payload in list(users.items())[:MAX_RESOLVED]:
        if isinstance(key, str) and key.isdigit() and len(key) <= 20 and isinstance(payload, dict):
            member = _mapping(details.get(key))
            members[int(key)] = _first_text(
                member.get("nick"), payload.get("global_name"), payload.get("username")
            )
    guild = interaction.guild
    server_name = guild.name if guild is not None and isinstance(guild.name, str) else None
    return SeenNames(interaction.guild_id, server_name, tuple(members.items()))


def _mapping(value: object) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _first_text(*values: object) -> str | None:
    """The name Discord shows: the server nickname, else the display name, else the user name."""
    return next((v for v in values if isinstance(v, str) and v.strip()), None)
