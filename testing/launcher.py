"""Run a bot entry point against the Discord stand-in.

Usage::

    STANDIN_REST_BASE=http://127.0.0.1:PORT/api/v10 STANDIN_GATEWAY=ws://127.0.0.1:PORT/gateway \\
        python -m testing.launcher MODULE[:CALLABLE] [ARGS...]

Points discord.py's REST base (``discord.http.Route.BASE``, also used by webhooks and
interaction responses) and gateway (``DiscordWebSocket.DEFAULT_GATEWAY``) at the stand-in, then
imports MODULE and calls CALLABLE (default ``main``) with ``sys.argv = [MODULE, *ARGS]``.  A
coroutine result is run with ``asyncio.run``; an int result becomes the exit status.  All test
redirection lives here, so product code needs no test-only branches.

Optional: ``STANDIN_LOG_LEVEL=DEBUG`` configures root logging to stderr before the target runs.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import sys


def redirect_discord(rest_base: str, gateway: str) -> None:
    """Point discord.py at the stand-in (must run before the bot connects)."""
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = rest_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        rest_base = os.environ["STANDIN_REST_BASE"]
        gateway = os.environ["STANDIN_GATEWAY"]
    except KeyError as exc:
        print(f"launcher: environment variable {exc.args[0]} is not set", file=sys.stderr)
        return 2

    level = os.environ.get("STANDIN_LOG_LEVEL")
    if level:
        logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")

    redirect_discord(rest_base, gateway)

    target, *rest = args
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    func = getattr(module, attr or "main")
    sys.argv = [module_name, *rest]
    result = func()
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
