"""Turning Discord's members into the plain values the services take (ids, role ids, a flag)."""

from __future__ import annotations

from typing import Any

import discord

from bot.quota import Actor, Member


def role_ids(user: discord.abc.User) -> tuple[int, ...]:
    """The member's role ids (none for a user who is not a member of the server any more)."""
    if isinstance(user, discord.Member):
        return tuple(role.id for role in user.roles)
    return ()


def member_of(user: discord.abc.User) -> Member:
    return Member(user.id, role_ids(user))


def actor_of(interaction: discord.Interaction[Any]) -> Actor:
    """Who runs the command, with Discord's word on whether they may manage the server here."""
    permissions = interaction.permissions
    return Actor(
        user_id=interaction.user.id,
        role_ids=role_ids(interaction.user),
        manage_guild=permissions.manage_guild or permissions.administrator,
    )
