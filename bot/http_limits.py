"""How long the bot's web server waits for a client, so that slow or half-sent requests cannot
hold its connections (aiohttp's own default keeps an idle connection for an hour).

The web server reads these when it starts and when a handler reads a body, so they are one place
to change. A buffering reverse proxy in front of the server (see docs/operators/callbacks.md) is
still the real defence against many slow clients; these bounds keep the server itself from waiting
on them.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

IDLE_SECONDS = 5.0
"""An idle keep-alive connection is closed after this long. aiohttp arms the same timer when a
connection opens and after each answer, and closes the connection if no complete request head
has arrived by then: it also bounds the time to receive a request's line and headers."""
BODY_SECONDS = 10.0
"""A request's body must have arrived this long after its headers (our bodies are at most 64 KiB)."""
LINGER_SECONDS = 2.0
"""After answering a request whose body was not read to the end, how long the rest is drained
before the connection is closed (aiohttp's default is 10 s)."""


class BodyTimeout(Exception):
    """The request's body did not arrive within `BODY_SECONDS`."""


async def read_body(request: web.BaseRequest) -> bytes:
    """The request's whole body, or `BodyTimeout` when it takes longer than `BODY_SECONDS`."""
    try:
        async with asyncio.timeout(BODY_SECONDS):
            return await request.read()
    except TimeoutError:
        raise BodyTimeout from None


def body_timeout_response(body: bytes, content_type: str = "application/json") -> web.Response:
    """408, and the connection closed once sent: a client this slow does not get to keep it."""
    response = web.Response(status=408, body=body, content_type=content_type)
    response.force_close()
    return response
