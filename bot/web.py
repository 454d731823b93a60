"""The bot's own small web server: API callbacks, /healthz for orchestrators, /metrics for
Prometheus, and in sandbox mode the sandbox API and its stem files under /sandbox/. Started and
stopped with the bot; knows the rest only through narrow callables. Slow clients are cut off
within seconds (`bot.http_limits`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot import http_limits
from bot.callbacks import MAX_CALLBACK_BYTES, Callback, CallbackVerdict, InvalidCallback, parse_callback
from bot.metrics import CONTENT_TYPE_LATEST, Metrics
from bot.sandbox import SANDBOX_PREFIX, SandboxApi

log = logging.getLogger(__name__)


class CallbackSink(Protocol):
    async def knows_token(self, token: str) -> bool: ...

    async def callback_received(self, token: str, callback: Callback) -> CallbackVerdict: ...


@dataclass(frozen=True, slots=True)
class HealthCheck:
    name: str
    check: Callable[[], Awaitable[bool]]


class WebServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        metrics: Metrics,
        health: list[HealthCheck],
        callbacks: CallbackSink | None,
        refresh_metrics: Callable[[], Awaitable[None]] | None = None,
        sandbox: SandboxApi | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._metrics = metrics
        self._health = list(health)
        self._callbacks = callbacks
        self._refresh_metrics = refresh_metrics
        self._sandbox = sandbox
        self._runner: web.AppRunner | None = None
        self.running = False

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_CALLBACK_BYTES)
        app.router.add_post("/callback/{token}", self._callback)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        if self._sandbox is not None:
            self._sandbox.add_routes(app, SANDBOX_PREFIX)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            keepalive_timeout=http_limits.IDLE_SECONDS,
            lingering_time=http_limits.LINGER_SECONDS,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self._runner.addresses:  # the port actually bound, for port 0
            self.port = self._runner.addresses[0][1]
        self.running = True
        if self._sandbox is not None:
            self._sandbox.serving_at(self.local_url)
        log.info("Web server listening on %s:%s (callbacks %s)", self.host, self.port,
                 "on" if self._callbacks else "off")  # fmt: skip

    @property
    def local_url(self) -> str:
        """How this machine reaches the server (`http://127.0.0.1:8080` when it listens everywhere)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self.running = False
        if self._sandbox is not None:
            await self._sandbox.stop()
        if self._runner:
            await self._runner.cleanup()

    async def _callback(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        # The token first: a stranger's POST is turned away before its body is even read.
        if self._callbacks is None or len(token) > 128 or not await self._callbacks.knows_token(token):
            return web.json_response({"error": "unknown callback"}, status=404)
        try:
            callback = parse_callback(await http_limits.read_body(request))
        except http_limits.BodyTimeout:
            return http_limits.body_timeout_response(b'{"error": "body not received in time"}')
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "body too large"}, status=413)
        except InvalidCallback as error:
            log.info("Rejected a callback body: %.100r", str(error))
            self._metrics.callbacks.labels(verdict="invalid").inc()  # for the "callbacks failing" alert
            return web.json_response({"error": "invalid callback"}, status=400)
        verdict = await self._callbacks.callback_received(token, callback)
        if verdict is CallbackVerdict.UNKNOWN:
            return web.json_response({"error": "unknown callback"}, status=404)
        if verdict is CallbackVerdict.MISMATCH:
            return web.json_response({"error": "task_id does not match"}, status=400)
        return web.json_response({"ok": True, "verdict": verdict.value})

    async def _healthz(self, request: web.Request) -> web.Response:
        results: dict[str, bool] = {}
        for item in self._health:
            try:
                results[item.name] = bool(await item.check())
            except Exception:  # a failing probe is an unhealthy answer, not a crash
                log.debug("health check %s failed", item.name, exc_info=True)
                results[item.name] = False
        healthy = all(results.values())
        return web.json_response({"ok": healthy, "checks": results}, status=200 if healthy else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        if self._refresh_metrics:
            await self._refresh_metrics()
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
