"""`python -m bot --check`: the whole set-up checked before go-live, without starting the bot.

One line per check, ✓ or ✗ with what to do. Nothing is changed: the database is opened read-only
(a missing one is fine, it is made at first start, if its folder can be made and written) and
pending migrations are only reported. The
Discord token is tried over REST only (no gateway session). Secrets are never printed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.api import ApiError, SeparationClient
from bot.invite import PERMISSIONS, SCOPES, invite_url
from bot.product import Mode
from bot.settings import PostgresURL, Settings, SettingsError, load_settings
from bot.store import StoreUnavailable, applied_version
from bot.store.migrations import load_migrations

OK, FAIL = "✓", "✗"
CHECK_PATH_PREFIX = "stembot-check-"


@dataclass(frozen=True, slots=True)
class Line:
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{OK if self.ok else FAIL} {self.text}"


async def run_checks(env: Mapping[str, str], *, discord_api: str, http_timeout: float = 10.0) -> list[Line]:
    """Every check, in order. `discord_api` is Discord's REST base (`discord.http.Route.BASE`)."""
    try:
        settings = load_settings(env)
    except SettingsError as error:
        return [Line(False, f"Settings: {error}")]
    mode = "sandbox (free, simulated)" if settings.sandbox else f"API at {settings.api_url}"
    lines = [Line(True, f"Settings valid: {mode}"), budget_line(settings)]
    lines.append(await database_line(settings))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=http_timeout)) as session:
        lines.extend(await discord_lines(settings, session, discord_api.rstrip("/")))
        lines.append(await api_line(settings, session))
        port_free, port = port_line(settings)
        lines.append(port)
        if settings.callback_public_url is not None:
            lines.append(await public_url_line(settings, session, port_free))
    return lines


def budget_line(settings: Settings) -> Line:
    """What caps the API account's spend. No budget at all is allowed (✓), but said plainly: a
    public bot can be added to any number of servers."""
    if settings.monthly_budget is not None:
        return Line(
            True,
            f"MONTHLY_BUDGET: all servers together spend at most {settings.monthly_budget} API credits "
            "a month",
        )
    if settings.server_monthly_budget is not None:
        return Line(
            True,
            f"MONTHLY_BUDGET unset: each server spends at most {settings.server_monthly_budget} API "
            "credits a month, but nothing caps all servers together (a public bot can join any "
            "number of servers)",
        )
    return Line(
        True,
        "No budget: neither MONTHLY_BUDGET nor SERVER_MONTHLY_BUDGET is set, so nothing caps what a public "
        "bot spends of the API account; set MONTHLY_BUDGET",
    )


async def database_line(settings: Settings) -> Line:
    target = settings.database
    latest = max(version for version, _ in load_migrations())
    if isinstance(target, PostgresURL):
        try:
            current = await applied_version(target)
        except StoreUnavailable as error:
            return Line(
                False, f"Database {target} cannot be reached ({error}): check DATABASE_URL and the server"
            )
    elif (unwritable := folder_problem(target)) is not None:
        return Line(False, f"Database {target} cannot be used: {unwritable}")
    elif not target.exists():
        return Line(True, f"Database {target} does not exist yet: it is created at the first start")
    else:
        try:
            current = await applied_version(target)
        except sqlite3.Error as error:
            return Line(
                False, f"Database {target} cannot be read ({error}): check the file and its permissions"
            )
    if current > latest:
        return Line(
            False,
            f"Database {target} is at schema {current}, newer than this StemBot ({latest}): update StemBot",
        )
    if current < latest:
        return Line(
            True,
            f"Database {target} opens; {latest - current} migration(s) pending ({current} → {latest}), "
            "applied at the next start",
        )
    return Line(True, f"Database {target} opens; schema current ({latest})")


def folder_problem(database: Path) -> str | None:
    """Why the SQLite file's folder cannot hold it, or None. The bot writes there, besides the
    file itself: its lock, `<database>.lock`, and SQLite's `-wal` and `-shm` files. A missing
    folder is fine if it can be made: the nearest folder that exists must be writable."""
    folder = database.parent
    while not folder.exists() and folder != folder.parent:
        if folder.is_symlink():  # a dangling link: nothing can be made through it
            return f"{folder} is a link to nothing"
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder, so the database's folder cannot be created there"
    # os.access answers for this process's user (root passes it; the path test above still holds).
    if not os.access(folder, os.W_OK | os.X_OK):
        made = "" if folder == database.parent else ", so its folder cannot be created"
        return f"this user cannot write in {folder}{made}: fix the folder's owner or permissions"
    return None


async def _discord_get(session: aiohttp.ClientSession, base: str, path: str, token: str) -> tuple[int, Any]:
    async with session.get(base + path, headers={"Authorization": f"Bot {token}"}) as response:
        body = await response.json(content_type=None) if response.status == 200 else None
        return response.status, body


async def discord_lines(settings: Settings, session: aiohttp.ClientSession, base: str) -> list[Line]:
    token = settings.discord_token.reveal()
    what = ", ".join(PERMISSIONS)
    try:
        status, me = await _discord_get(session, base, "/users/@me", token)
        if status == 401:
            return [
                Line(
                    False, "Discord refused DISCORD_TOKEN: copy the bot token again (developer portal → Bot)"
                ),
                Line(False, "Invite URL: needs a valid DISCORD_TOKEN"),
            ]
        if status != 200 or not isinstance(me, dict):
            return [Line(False, f"Discord answered HTTP {status} for the bot's user: try again later")]
        status, app = await _discord_get(session, base, "/oauth2/applications/@me", token)
        app_name = app.get("name") if status == 200 and isinstance(app, dict) else None
        app_id = int(app["id"]) if status == 200 and isinstance(app, dict) else int(me["id"])
        lines = [Line(True, f"Discord token valid: bot {me.get('username')}, application {app_name or '?'}")]
        status, guilds = await _discord_get(session, base, "/users/@me/guilds", token)
    except (aiohttp.ClientError, TimeoutError) as error:
        return [Line(False, f"Cannot reach Discord ({type(error).__name__}): check this machine's network")]
    invite = invite_url(app_id)
    if status != 200 or not isinstance(guilds, list):
        lines.append(Line(False, f"Discord answered HTTP {status} for the bot's servers: try again later"))
    elif not guilds:
        lines.append(Line(False, "The bot is in no server yet: open the invite URL below to add it"))
    else:
        names = ", ".join(str(g.get("name")) for g in guilds[:5]) + (" …" if len(guilds) > 5 else "")
        lines.append(Line(True, f"In {len(guilds)} server(s): {names}"))
    lines.append(Line(True, f"Invite URL (scopes {' + '.join(SCOPES)}; permissions {what}): {invite}"))
    return lines


async def api_line(settings: Settings, session: aiohttp.ClientSession) -> Line:
    if settings.sandbox:
        return Line(True, "API: sandbox, free and simulated in the bot (no key needed)")
    client = SeparationClient(session, settings.api_url, settings.api_key, timeout=settings.api_timeout)
    try:
        credits = await client.account_credits()
    except ApiError as error:
        if error.code == 401 or error.http_status == 401:
            return Line(
                False, "The API refused SEPARATION_API_KEY: copy the key again from the API's dashboard"
            )
        return Line(
            False, f"The API at {settings.api_url} did not answer as expected ({error}): check the URL"
        )
    cheapest = min(mode.api_price for mode in Mode)
    if credits < cheapest:
        return Line(
            False, f"API key accepted, but the account has {credits} credits: top it up before go-live"
        )
    return Line(True, f"API key accepted; the account has {credits} credits")


def port_line(settings: Settings) -> tuple[bool, Line]:
    where = f"{settings.callback_host}:{settings.callback_port}"
    try:
        with socket.create_server((settings.callback_host, settings.callback_port)):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        if settings.web_server_required:
            needs = "the sandbox" if settings.sandbox else "callbacks"
            return False, Line(
                False,
                f"Web server port {where} unavailable ({reason}): {needs} need it; set a free CALLBACK_PORT",
            )
        return False, Line(
            True, f"Web server port {where} unavailable ({reason}): only /healthz and /metrics off"
        )
    return True, Line(True, f"Web server port {where} free")


async def public_url_line(settings: Settings, session: aiohttp.ClientSession, port_free: bool) -> Line:
    public = settings.callback_public_url
    assert public is not None
    if not port_free:
        return Line(False, f"CALLBACK_PUBLIC_URL {public} not tested: the web server's port is taken")
    token = CHECK_PATH_PREFIX + secrets.token_hex(16)

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=token if request.match_info["token"] == token else "")

    app = web.Application()
    app.router.add_route("*", "/callback/{token}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.callback_host, settings.callback_port).start()
        try:
            async with session.get(f"{public}/callback/{token}") as response:
                reached = response.status == 200 and (await response.text()) == token
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            return Line(
                False,
                f"CALLBACK_PUBLIC_URL {public} does not reach this machine ({type(error).__name__}): "
                f"check the proxy forwards /callback/ to {settings.callback_host}:{settings.callback_port}",
            )
    finally:
        await runner.cleanup()
    if not reached:
        return Line(
            False,
            f"CALLBACK_PUBLIC_URL {public} answered HTTP {status}, not this machine: check the proxy "
            f"forwards /callback/ to {settings.callback_host}:{settings.callback_port}",
        )
    return Line(True, f"CALLBACK_PUBLIC_URL {public} reaches this machine")


def check(env: Mapping[str, str], *, discord_api: str) -> int:
    """Print every check; 0 when none failed."""
    lines = asyncio.run(run_checks(env, discord_api=discord_api))
    for line in lines:
        print(line, flush=True)
    failed = sum(not line.ok for line in lines)
    print(
        f"{len(lines) - failed} of {len(lines)} checks passed" + ("" if not failed else ": fix the ✗ lines")
    )
    return 1 if failed else 0
