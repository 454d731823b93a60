"""Minimal discord.py bot: the load benchmark's baseline.

One slash command, /split task_id audio_id, that defers and then edits the original response.
Run against the stand-in with ``python -m testing.launcher bench.baseline_bot:main``.
"""

from __future__ import annotations

import logging
import os

import discord
from discord import app_commands


class BaselineBot(discord.Client):
    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(split)

    async def setup_hook(self) -> None:
        await self.tree.sync()


@app_commands.command(name="split", description="Split a song into stems")
async def split(interaction: discord.Interaction, task_id: str, audio_id: str) -> None:
    await interaction.response.defer(thinking=True)
    await interaction.edit_original_response(content=f"Split {task_id} of {audio_id}: queued")


def main() -> None:
    BaselineBot().run(os.environ["DISCORD_TOKEN"], log_level=logging.INFO)


if __name__ == "__main__":
    main()
