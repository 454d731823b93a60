"""What the bot asks for when a server adds it: the one place its scopes and permissions are
written down (`python -m bot --check`, the start-up log and the install docs all show this URL)."""

from __future__ import annotations

from urllib.parse import urlencode

SCOPES = ("bot", "applications.commands")
"""`bot` joins the server; `applications.commands` lets it register the slash commands."""

# Discord's permission bits (developer docs, "Permissions"), named as the server settings name them.
PERMISSIONS: dict[str, int] = {
    "View Channels": 1 << 10,  # see the channel a /split came from
    "Send Messages": 1 << 11,  # results that outlive the interaction token come as messages
    "Embed Links": 1 << 14,  # every result and status is an embed
    "Attach Files": 1 << 15,  # keeping stems in Discord: the files
    "Read Message History": 1 << 16,  # a late result replies to the /split message
    "Create Public Threads": 1 << 35,  # keeping stems in Discord: a thread per result
    "Send Messages in Threads": 1 << 38,  # ... and posting in it
}
"""Every permission any feature needs, and nothing more: the union of every feature's needs."""

PERMISSIONS_VALUE = sum(PERMISSIONS.values())


def invite_url(application_id: int) -> str:
    """The URL a server owner opens to add the bot with exactly what it needs."""
    query = urlencode(
        {"client_id": application_id, "scope": " ".join(SCOPES), "permissions": PERMISSIONS_VALUE}
    )
    return f"https://discord.com/oauth2/authorize?{query}"
