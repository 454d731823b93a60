"""The API simulator for tests and benchmarks: the bot's sandbox (`bot.sandbox`, the documented
contract of `/work/shared/provider-api.md`) with fault injection and call logs on top.

It adds, for tests only:

* scripted faults per endpoint (`script`), consumed one per request;
* logs of every call, submit and callback attempt; poll counts; `finish_now`, `wait_callbacks`;
* per-audio outcomes and processing times, unknown ids, CDN-like stem URLs of a chosen length;
* its own server on 127.0.0.1, and callbacks only to 127.0.0.1 / localhost / ::1 (any other host,
  and anything under the reserved `.invalid` TLD, is skipped and the reason recorded).

Ids and stem URLs come from a seeded RNG, so a run is reproducible for a given order of submissions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web
from yarl import URL

from bot.sandbox import (
    ALL_STEMS,
    CALLBACK_EXCEPTION,
    CREATE_TASK_FAILED,
    CREDIT_PATH,
    ENDPOINTS,
    FAILURE_MESSAGES,
    FAILURE_OUTCOMES,
    GENERATE_AUDIO_FAILED,
    MODES,
    PENDING,
    PRICES,
    RECORD_PATH,
    STEM_LABELS,
    STEM_OUTCOMES,
    STEMS_2,
    STEMS_12,
    SUBMIT_PATH,
    SUCCESS,
    Call,
    CallbackAttempt,
    Processor,
    SandboxApi,
    SimTask,
    SubmitCall,
    camel_key,
    envelope,
    json_response,
    parse_stem_name,
    snake_key,
)

__all__ = [
    "ALL_STEMS",
    "CALLBACK_EXCEPTION",
    "CREATE_TASK_FAILED",
    "CREDIT_PATH",
    "ENDPOINTS",
    "FAILURE_MESSAGES",
    "FAILURE_OUTCOMES",
    "GENERATE_AUDIO_FAILED",
    "MODES",
    "PENDING",
    "PRICES",
    "RECORD_PATH",
    "STEMS_2",
    "STEMS_12",
    "STEM_LABELS",
    "STEM_OUTCOMES",
    "SUBMIT_PATH",
    "SUCCESS",
    "Call",
    "CallbackAttempt",
    "Fault",
    "SandboxApi",
    "SeparationApiSimulator",
    "SimTask",
    "SubmitCall",
    "camel_key",
    "parse_stem_name",
    "snake_key",
]

FAULT_KINDS = (
    "code", "http", "html", "garbage", "body", "hang", "accept_and_hang", "accept_and_html", "disconnect"
)  # fmt: skip
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
URL_PREFIX = "https://file.aiquickdraw.com/s/"

_HTML_PAGE = (
    "<html>\r\n<head><title>{status} Error</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {msg}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_GARBAGE = "<<upstream said: \x00\x01 {{not json at all"


def _file_label(name: str) -> str:
    """The stem label of a served file name: `<uuid>_Backing_Vocals.mp3` -> `Backing_Vocals`."""
    return name.rsplit(".", 1)[0].split("_", 1)[-1]


def stem_content(name: str, size: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """The bytes of a served stem file, in chunks: an ID3 tag, then bytes made from the file's
    name, so a test can hash what any file must contain without keeping it."""
    block = hashlib.sha256(name.encode()).digest() * (chunk // 32)
    head = b"ID3\x04\x00\x00\x00\x00\x00\x00"
    sent = 0
    while sent < size:
        piece = (head + block[len(head) :] if sent == 0 else block)[: min(chunk, size - sent)]
        sent += len(piece)
        yield piece


def stem_sha256(name: str, size: int) -> str:
    """The sha256 of what `stem_content` serves for this file name and size."""
    digest = hashlib.sha256()
    for piece in stem_content(name, size):
        digest.update(piece)
    return digest.hexdigest()


@dataclass
class Fault:
    """One scripted answer for an endpoint; faults are consumed in order, one per request.

    kinds:
      * ``code``: HTTP 200 with envelope ``{"code": status, "msg": msg, "data": null}``;
        on submit no task is created.
      * ``http``: HTTP ``status`` with the same JSON envelope body.
      * ``html``: HTTP ``status`` with an HTML error page (text/html, not JSON).
      * ``garbage``: HTTP ``status`` (default 200) whose body is not JSON; it is labelled
        ``content_type`` (default ``application/json``, the nastier case).
      * ``body``: HTTP ``status`` with ``body`` as the answer: bytes or str sent as they are,
        anything else as JSON (``{"code": 200, "data": {...}}`` scripts a record-info answer of
        any shape). ``content_type`` labels it. On submit no task is created.
      * ``hang``: wait ``seconds``, then answer normally. If the client has gone away by then
        the request is dropped unprocessed (on submit: no task is created).
      * ``accept_and_hang``: submit only. The task IS created and charged, then the simulator
        waits ``seconds`` and closes the connection without an answer.
      * ``accept_and_html``: submit only. The task IS created and charged, then a proxy in front
        answers HTTP ``status`` (default 502 if left at 200) with its HTML error page instead of
        the API's answer: the paid task id never reaches the client.
      * ``disconnect``: close the connection without any answer (on submit: nothing created).
    """

    kind: str
    status: int = 200
    msg: str = "scripted"
    seconds: float = 0.0
    content_type: str = "application/json"
    body: Any = None


class SeparationApiSimulator(SandboxApi):
    """The simulated API. Use ``async with SeparationApiSimulator(...) as sim:``."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        processing_seconds: float = 1.0,
        outcome: str = SUCCESS,
        url_length: int = 80,
        account_credits: int = 10_000,
        callbacks: bool = True,
        callback_duplicates: int = 1,
        callback_key: str = "vocal_removal_info",
        outcome_for_audio: dict[str, str] | None = None,
        processing_for_audio: dict[str, float] | None = None,
        callback_timeout: float = 15.0,
        callback_retries: int = 0,
        callback_retry_delay: float = 0.5,
        callback_failure_code: int = 500,
        seed: int = 0,
        max_calls: int = 200_000,
        failure_ids: bool = False,
        stem_files: bool = False,
        stem_bytes: int = 64 * 1024,
    ) -> None:
        super().__init__(
            api_key=api_key,
            processing_seconds=processing_seconds,
            outcome=outcome,
            account_credits=account_credits,
            charge=True,
            callbacks=callbacks,
            callback_duplicates=callback_duplicates,
            callback_key=callback_key,
            callback_timeout=callback_timeout,
            callback_retries=callback_retries,
            callback_retry_delay=callback_retry_delay,
            callback_failure_code=callback_failure_code,
            failure_ids=failure_ids,
            # The tests' API keeps every task for the whole test (they look back at them), bounded
            # by the call log's own cap.
            task_lifetime=math.inf,
            max_tasks=max_calls,
            seed=seed,
        )
        self.url_length = url_length
        #: Serve the stems: their URLs point here (`/files/<task>/<uuid>_<Label>.mp3`) and each is
        #: `stem_bytes` bytes of MP3-looking data made from its name (see `stem_content`), streamed.
        self.stem_files = stem_files
        self.stem_bytes = stem_bytes
        #: Per stem label ("Backing_Vocals"): its size instead of `stem_bytes`.
        self.stem_sizes: dict[str, int] = {}
        #: Stem labels served as an HTML page (status 200, text/html) instead of audio.
        self.html_stems: set[str] = set()
        #: Stem label -> how many more requests for it answer 503 before it is served.
        self.failing_stems: dict[str, int] = {}
        #: Every stem file request: (file name, status).
        self.file_requests: list[tuple[str, int]] = []
        self.outcome_for_audio: dict[str, str] = dict(outcome_for_audio or {})
        self.processing_for_audio: dict[str, float] = dict(processing_for_audio or {})
        self.unknown_ids: set[str] = set()
        self.submits: list[SubmitCall] = []
        self.calls: deque[Call] = deque(maxlen=max_calls)
        self.callback_log: deque[CallbackAttempt] = deque(maxlen=max_calls)
        self.base_url: str = ""
        self._faults: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        self._polls: dict[str, int] = {}
        self._polls_total = 0
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and serve; returns ``base_url`` (``http://127.0.0.1:PORT``)."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self.started()
        app = web.Application()
        self.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._handle_other)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=4096)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0]
        bound_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.base_url = f"http://{bound_host}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving, cancel pending callbacks and wake every hanging request."""
        await super().stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SeparationApiSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def script(self, endpoint: str, *faults: Fault) -> None:
        """Queue faults for ``endpoint`` ("submit", "record" or "credit")."""
        if endpoint not in self._faults:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
        for fault in faults:
            if fault.kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {fault.kind!r}")
            if fault.kind in ("accept_and_hang", "accept_and_html") and endpoint != "submit":
                raise ValueError(f"{fault.kind} only applies to the submit endpoint")
        self._faults[endpoint].extend(faults)

    def pending_faults(self, endpoint: str) -> int:
        """How many scripted faults are still queued for ``endpoint``."""
        return len(self._faults[endpoint])

    def polls(self, task_id: str | None = None) -> int:
        """Number of record-info requests received (for one taskId, or in total)."""
        if task_id is None:
            return self._polls_total
        return self._polls.get(task_id, 0)

    def charged(self) -> int:
        """Credits charged to the simulated account in total."""
        return self._charged

    def finish_now(self, task_id: str, outcome: str | None = None) -> None:
        """Complete a pending task immediately (optionally with another outcome).

        On an already finished task only the outcome is changed; no new callback is sent.
        """
        task = self.tasks[task_id]
        if task.is_complete():
            if outcome is not None and outcome != task.outcome:
                self.set_outcome(task, outcome)
            return
        if outcome is not None:
            self.set_outcome(task, outcome)
        task.complete_at = time.time()
        task.completed_at_monotonic = time.monotonic()
        task.done_body = None
        handle = self._timers.pop(task_id, None)
        if handle is not None:
            handle.cancel()
            self._on_complete(task)
        else:
            task.finished = True

    async def wait_callbacks(self, wait_seconds: float = 5.0) -> None:
        """Test helper: wait until no callback timer or delivery is outstanding."""
        deadline = time.monotonic() + wait_seconds
        while self._timers or self._deliveries:
            if time.monotonic() >= deadline:
                raise TimeoutError("callbacks still outstanding")
            if self._deliveries:
                await asyncio.wait(set(self._deliveries), timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ the sandbox's hooks

    def _log_call(self, request: web.Request, endpoint: str) -> Call:
        call = super()._log_call(request, endpoint)
        self.calls.append(call)
        return call

    def _log_submit(self, submit: SubmitCall) -> None:
        self.submits.append(submit)

    def _log_poll(self, task_id: str | None) -> None:
        self._polls_total += 1
        if task_id is not None:
            self._polls[task_id] = self._polls.get(task_id, 0) + 1

    def _log_callback(self, attempt: CallbackAttempt) -> None:
        self.callback_log.append(attempt)

    def _refused_ids(self, source_task_id: str, audio_id: str) -> bool:
        if source_task_id in self.unknown_ids or audio_id in self.unknown_ids:
            return True
        return super()._refused_ids(source_task_id, audio_id)

    def _outcome_for(self, source_task_id: str, audio_id: str) -> str:
        if audio_id in self.outcome_for_audio:
            return self.outcome_for_audio[audio_id]
        return super()._outcome_for(source_task_id, audio_id)

    def _processing_for(self, source_task_id: str, audio_id: str) -> float:
        if audio_id in self.processing_for_audio:
            return self.processing_for_audio[audio_id]
        return super()._processing_for(source_task_id, audio_id)

    def stem_url(self, task_id: str, stem: str) -> str:
        """A CDN-like URL of ``url_length`` characters (the real API's links run long); with
        `stem_files`, one this simulator serves."""
        file_label = STEM_LABELS[stem].replace(" ", "_")
        ident = uuid.UUID(int=self._rng.getrandbits(128), version=4)
        prefix = f"{self.base_url}/files/{task_id[:64]}/" if self.stem_files else URL_PREFIX
        url = f"{prefix}{ident}_{file_label}.mp3"
        need = self.url_length - len(url)
        if need <= 0:
            return url
        if need < 3:
            return url + "?p"[:need]
        filler = ident.hex * (need // 32 + 1)
        return url + "?p=" + filler[: need - 3]

    def callback_refusal(self, url: URL) -> str | None:
        """Like the real API, any `callBackUrl` is accepted; `callback_block_reason` keeps the
        callbacks on this machine."""
        return None

    def callback_block_reason(self, url: URL) -> str | None:
        reason = super().callback_block_reason(url)
        if reason is None and (url.host or "").lower().rstrip(".") not in LOCAL_HOSTS:
            return "non_local_host"
        return reason

    async def _run(self, request: web.Request, call: Call, endpoint: str, process: Processor) -> web.Response:
        faults = self._faults[endpoint]
        if faults:
            fault = faults.popleft()
            call.fault = fault.kind
            if fault.kind == "hang":
                if not await self._hang(request, fault.seconds):
                    return self._drop(request, call)
            elif fault.kind == "accept_and_hang":
                process(call)
                await self._hang(request, fault.seconds)
                return self._drop(request, call)
            elif fault.kind == "accept_and_html":
                process(call)
                proxy = Fault("html", status=502 if fault.status == 200 else fault.status, msg="Bad Gateway")
                return self._fault_response(proxy, call)
            elif fault.kind == "disconnect":
                return self._drop(request, call)
            else:
                return self._fault_response(fault, call)
        return await super()._run(request, call, endpoint, process)

    # ------------------------------------------------------------------ stem files

    def stem_size(self, name: str) -> int:
        return self.stem_sizes.get(_file_label(name), self.stem_bytes)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if not self.stem_files:
            return await super()._handle_file(request)
        name = request.match_info["name"]
        label = _file_label(name)
        if self.failing_stems.get(label, 0) > 0:
            self.failing_stems[label] -= 1
            self.file_requests.append((name, 503))
            return web.Response(status=503, text=_HTML_PAGE.format(status=503, msg="Service Unavailable"))
        if label in self.html_stems:
            self.file_requests.append((name, 200))
            return web.Response(
                text=_HTML_PAGE.format(status=200, msg="Not the file"), content_type="text/html"
            )
        self.file_requests.append((name, 200))
        size = self.stem_size(name)
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg", "Content-Length": str(size)})
        await response.prepare(request)
        try:
            for chunk in stem_content(name, size):
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError:
            pass  # the client stopped reading (a download refused by its size, say)
        return response

    # ------------------------------------------------------------------ plumbing

    async def _handle_other(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "other")
        return self._answer(call, 404, 404, envelope(404, "Not Found"))

    def _drop(self, request: web.Request, call: Call) -> web.Response:
        """Close the connection without answering."""
        call.status = None
        call.code = None
        request.protocol.force_close()
        # Writing this response fails with ConnectionResetError, which aiohttp treats as a
        # premature client disconnection (no error log).
        return web.Response()

    async def _hang(self, request: web.Request, seconds: float) -> bool:
        """Sleep (waking early on stop). True if the client is still there to be answered."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        if self._stopping.is_set():
            return False
        transport = request.transport
        return transport is not None and not transport.is_closing()

    def _fault_response(self, fault: Fault, call: Call) -> web.Response:
        if fault.kind == "code":
            call.status, call.code = 200, fault.status
            return json_response(200, envelope(fault.status, fault.msg))
        call.status = call.code = fault.status
        if fault.kind == "http":
            return json_response(fault.status, envelope(fault.status, fault.msg))
        if fault.kind == "html":
            page = _HTML_PAGE.format(status=fault.status, msg=fault.msg)
            return web.Response(status=fault.status, text=page, content_type="text/html")
        if fault.kind == "body":
            raw = fault.body
            if isinstance(raw, str):
                raw = raw.encode()
            elif not isinstance(raw, bytes):
                raw = json.dumps(raw).encode()
            envelope_code = fault.body.get("code") if isinstance(fault.body, dict) else None
            if isinstance(envelope_code, int):
                call.code = envelope_code
            return web.Response(status=fault.status, body=raw, headers={"Content-Type": fault.content_type})
        # garbage
        return web.Response(
            status=fault.status,
            body=_GARBAGE.encode(),
            headers={"Content-Type": fault.content_type},
        )


async def _serve(args: argparse.Namespace) -> None:
    sim = SeparationApiSimulator(
        api_key=args.api_key,
        processing_seconds=args.processing_seconds,
        outcome=args.outcome,
        url_length=args.url_length,
        account_credits=args.credits,
        callbacks=not args.no_callbacks,
        callback_duplicates=args.callback_duplicates,
        callback_key=args.callback_key,
    )
    base_url = await sim.start(args.host, args.port)
    print(f"provider API simulator listening on {base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main() -> None:
    """Run the simulator standalone: ``python -m testing.provider_api --port 8765``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--processing-seconds", type=float, default=1.0)
    parser.add_argument("--outcome", default=SUCCESS)
    parser.add_argument("--url-length", type=int, default=80)
    parser.add_argument("--credits", type=int, default=10_000)
    parser.add_argument("--no-callbacks", action="store_true")
    parser.add_argument("--callback-duplicates", type=int, default=1)
    parser.add_argument("--callback-key", default="vocal_removal_info")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
