"""The Discord side: the only modules below the cogs allowed to import discord.py.

Here live the client (the cogs' host: loading them, syncing commands, the last-resort error
handler), delivery (getting a result to its member: edit, channel, DM) and alerts (pause and
budget alerts to audit channels) and the keeper's Discord part (posting kept stems). They are kept apart from
the services so the layering is visible in the tree and checked by a tool: the import contracts in
pyproject.toml (`lint-imports`) forbid discord.py anywhere else in `bot`, so the rules stay testable
without Discord and a service cannot come to depend on a Discord type by accident.
"""
