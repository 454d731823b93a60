"""The API simulator for tests and benchmarks: the bot's sandbox (`bot.sandbox`, the provider's
documented contract) wrapped with fault injection and call logs.

It serves its own routes, which log each call, consult the fault plan, then delegate to the
sandbox's checks and its task book; it adds, for tests only:

* scripted faults per endpoint (`script`), consumed one per request;
* logs of every call, submit and callback attempt (the latter through the sandbox's observer);
  poll counts; `finish_now`, `wait_callbacks`;
* a paying account (credits charged per submit, 429 when too few), per-audio outcomes and
  processing times, unknown ids, CDN-like stem URLs of a chosen length, callbacks shaped like
  other providers' (duplicates, another key, retries, another failure code);
* music generations (`add_generation`) for "Get Music Generation Details", whose tracks have
  titles, durations and covers; any other task id is answered `code` 400 (unknown), so jobs keep
  their id-based names unless a test gives their task a generation;
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
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web
from yarl import URL

from bot import http_limits
from bot.sandbox import (
    ALL_STEMS,
    CALLBACK_EXCEPTION,
    CREATE_TASK_FAILED,
    CREDIT_PATH,
    ENDPOINT_PATHS,
    ENDPOINTS,
    FAILURE_MESSAGES,
    FAILURE_OUTCOMES,
    GENERATE_AUDIO_FAILED,
    GENERATION_PATH,
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
    Refusal,
    SandboxApi,
    SandboxTask,
    SubmitCall,
    TaskBook,
    callback_block_reason,
    camel_key,
    envelope,
    json_response,
    parse_stem_name,
    parse_submit,
    snake_key,
)
from testing.tones import tone_file_bytes

SimTask = SandboxTask
"""The simulator's name for a sandbox task."""
Processor = Callable[[Call], tuple[int, bytes]]
"""What answers a request once the fault plan lets it through: (envelope code, body)."""

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
    "LoggedCall",
    "LoggedSubmit",
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


@dataclass(slots=True)
class LoggedCall(Call):
    """One request received, and the scripted fault applied to it, if any."""

    fault: str | None = None


@dataclass
class LoggedSubmit(SubmitCall):
    """One submit request, and the scripted fault applied to it, if any."""

    fault: str | None = None


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


class SeparationApiSimulator:
    """The simulated API: a `SandboxApi` it wraps, behind its own routes and fault plan.
    Use ``async with SeparationApiSimulator(...) as sim:``."""

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
        callback_retries: int = 0,
        callback_retry_delay: float = 0.5,
        callback_failure_code: int = 500,
        seed: int = 0,
        max_calls: int = 200_000,
        stem_files: bool = False,
        stem_bytes: int = 64 * 1024,
    ) -> None:
        # The tests' API keeps every task for the whole test (they look back at them), at most the
        # sandbox's MAX_TASKS at once, as the bot's own sandbox does.
        book = TaskBook(lifetime=math.inf, rng=random.Random(seed))
        self.sandbox = SandboxApi(
            api_key=api_key, processing_seconds=processing_seconds, tasks=book, observer=self
        )
        self.processing_seconds = processing_seconds
        self.outcome = outcome
        self.account_credits = account_credits
        self.callbacks = callbacks
        self.callback_duplicates = callback_duplicates
        self.callback_key = callback_key
        self.callback_retries = callback_retries
        self.callback_retry_delay = callback_retry_delay
        self.callback_failure_code = callback_failure_code
        self.url_length = url_length
        #: Serve the stems: their URLs point here (`/files/<task>/<uuid>_<Label>.mp3`) and each is
        #: `stem_bytes` bytes of MP3-looking data made from its name (see `stem_content`), streamed.
        self.stem_files = stem_files
        self.stem_bytes = stem_bytes
        #: Per stem label ("Backing_Vocals"): its size instead of `stem_bytes`.
        self.stem_sizes: dict[str, int] = {}
        #: Seconds of real, decodable audio per stem instead of `stem_content`'s bytes: an MP3 of
        #: the stem's own sine tone (`testing.tones`), for mixes. None: the made-up bytes.
        self.stem_audio_seconds: float | None = None
        #: Stem labels served as an HTML page (status 200, text/html) instead of audio.
        self.html_stems: set[str] = set()
        #: Stem label -> how many more requests for it answer 503 before it is served.
        self.failing_stems: dict[str, int] = {}
        #: Every stem file request: (file name, status).
        self.file_requests: list[tuple[str, int]] = []
        self.outcome_for_audio: dict[str, str] = dict(outcome_for_audio or {})
        self.processing_for_audio: dict[str, float] = dict(processing_for_audio or {})
        self.unknown_ids: set[str] = set()
        #: Music-generation task id -> record-info `data` (see `add_generation`).
        self.generations: dict[str, dict[str, Any]] = {}
        self.submits: list[LoggedSubmit] = []
        self.calls: deque[LoggedCall] = deque(maxlen=max_calls)
        self.callback_log: deque[CallbackAttempt] = deque(maxlen=max_calls)
        self.base_url: str = ""
        self._charged = 0
        self._faults: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        self._polls: dict[str, int] = {}
        self._polls_total = 0
        self._runner: web.AppRunner | None = None

    @property
    def tasks(self) -> dict[str, SandboxTask]:
        return self.sandbox.tasks

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and serve; returns ``base_url`` (``http://127.0.0.1:PORT``)."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self.sandbox.started()
        app = web.Application()
        app.router.add_post(SUBMIT_PATH, self._handle_submit)
        app.router.add_get(RECORD_PATH, self._handle_record)
        app.router.add_get(CREDIT_PATH, self._handle_credit)
        app.router.add_get(GENERATION_PATH, self._handle_generation)
        app.router.add_get("/files/{task_id}/{name}", self._handle_file)
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
        await self.sandbox.stop()
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
        """Queue faults for ``endpoint`` ("submit", "record", "credit" or "tracks")."""
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

    def add_generation(
        self,
        task_id: str,
        tracks: list[dict[str, Any]] | None = None,
        *,
        status: str = SUCCESS,
        titles: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """Make `task_id` a music generation the details endpoint knows: `tracks` as `sunoData`
        items as they are (any shape, for malformed answers), or one documented track per title in
        `titles` (ids, durations and covers made up). Returns the tracks."""
        if tracks is None:
            tracks = [
                {
                    "id": f"{task_id}-audio-{take}",
                    "audioUrl": f"{URL_PREFIX}{task_id}-{take}.mp3",
                    "streamAudioUrl": f"{URL_PREFIX}{task_id}-{take}",
                    "imageUrl": f"https://cdn.example.test/covers/{task_id}-{take}.jpeg",
                    "prompt": "[Verse] ...",
                    "modelName": "chirp-v3-5",
                    "title": title,
                    "tags": "electrifying, rock",
                    "createTime": "2025-01-01 00:00:00",
                    "duration": 180.5 + 13 * take,
                }
                for take, title in enumerate(titles, start=1)
            ]
        self.generations[task_id] = {
            "taskId": task_id,
            "parentMusicId": "",
            "param": "{}",
            "response": {"taskId": task_id, "sunoData": tracks},
            "status": status,
            "type": "GENERATE",
            "errorCode": None,
            "errorMessage": None,
        }
        return tracks

    def polls(self, task_id: str | None = None) -> int:
        """Number of record-info requests received (for one taskId, or in total)."""
        if task_id is None:
            return self._polls_total
        return self._polls.get(task_id, 0)

    def charged(self) -> int:
        """Credits charged to the simulated account in total."""
        return self._charged

    def set_outcome(self, task: SandboxTask, outcome: str) -> None:
        task.set_outcome(outcome)

    def finish_now(self, task_id: str, outcome: str | None = None) -> None:
        """Complete a pending task immediately (optionally with another outcome).

        On an already finished task only the outcome is changed; no new callback is sent.
        """
        self.sandbox.book.finish_now(task_id, outcome)

    async def wait_callbacks(self, wait_seconds: float = 5.0) -> None:
        """Test helper: wait until no callback timer or delivery is outstanding."""
        book = self.sandbox.book
        deadline = time.monotonic() + wait_seconds
        while book.timers or book.deliveries:
            if time.monotonic() >= deadline:
                raise TimeoutError("callbacks still outstanding")
            if book.deliveries:
                await asyncio.wait(set(book.deliveries), timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ the sandbox's observer

    def requested(self, call: Call) -> None:
        """Not called: every call here arrives through this simulator's routes, logged on arrival."""

    def submitted(self, submit: SubmitCall) -> None:
        """Not called: every submit arrives through this simulator's routes, logged there."""

    def polled(self, task_id: str | None) -> None:
        self._polls_total += 1
        if task_id is not None:
            self._polls[task_id] = self._polls.get(task_id, 0) + 1

    def completed(self, task: SandboxTask) -> None:
        pass

    def callback_sent(self, attempt: CallbackAttempt) -> None:
        self.callback_log.append(attempt)

    # ------------------------------------------------------------------ the simulated account

    def _create_task(self, body: dict[str, Any]) -> SandboxTask | Refusal:
        """The sandbox's submit rules, with this account's: any callback address is accepted
        (callbacks only go to this machine), unknown ids, credits charged, per-audio outcomes and
        processing times, callbacks shaped as configured."""
        request = parse_submit(body)
        if isinstance(request, Refusal):
            return request
        source, audio = request.source_task_id, request.audio_id
        if source in self.unknown_ids or audio in self.unknown_ids:
            return Refusal(400, "taskId or audioId not found")
        if self.account_credits < request.price:
            return Refusal(429, "credits insufficient")
        book = self.sandbox.book
        if book.full:
            return Refusal(430, f"too many tasks at once (at most {book.capacity}): try again later")
        self.account_credits -= request.price
        self._charged += request.price
        task = book.new_task(
            request,
            processing=self.processing_for_audio.get(audio, self.processing_seconds),
            outcome=self.outcome_for_audio.get(audio, self.outcome),
            stem_url=self.stem_url,
        )
        task.callback_key = self.callback_key
        task.callback_duplicates = self.callback_duplicates
        task.callback_retries = self.callback_retries
        task.callback_retry_delay = self.callback_retry_delay
        task.callback_failure_code = self.callback_failure_code
        task.callback_skipped = (
            "disabled" if not self.callbacks else self.callback_block_reason(request.parsed_callback)
        )
        book.add(task)
        return task

    def callback_block_reason(self, url: URL) -> str | None:
        reason = callback_block_reason(url)
        if reason is None and (url.host or "").lower().rstrip(".") not in LOCAL_HOSTS:
            return "non_local_host"
        return reason

    def stem_url(self, task_id: str, stem: str) -> str:
        """A CDN-like URL of ``url_length`` characters (the real API's links run long); with
        `stem_files`, one this simulator serves."""
        file_label = STEM_LABELS[stem].replace(" ", "_")
        ident = uuid.UUID(int=self.sandbox.book.rng.getrandbits(128), version=4)
        prefix = f"{self.base_url}/files/{task_id[:64]}/" if self.stem_files else URL_PREFIX
        url = f"{prefix}{ident}_{file_label}.mp3"
        need = self.url_length - len(url)
        if need <= 0:
            return url
        if need < 3:
            return url + "?p"[:need]
        filler = ident.hex * (need // 32 + 1)
        return url + "?p=" + filler[: need - 3]

    # ------------------------------------------------------------------ routes

    def _log_call(self, request: web.Request, endpoint: str) -> LoggedCall:
        path = ENDPOINT_PATHS.get(endpoint) or request.path
        call = LoggedCall(request.method, path, time.time(), endpoint)
        self.calls.append(call)
        return call

    def _answer(self, call: Call, status: int, code: int, body: bytes) -> web.Response:
        call.status = status
        call.code = code
        return json_response(status, body)

    async def _handle_credit(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "credit")

        def process(_call: Call) -> tuple[int, bytes]:
            if not self.sandbox.authorized(request):
                return 401, envelope(401, "Unauthorized: invalid or missing API key")
            return 200, envelope(200, "success", self.account_credits)

        return await self._run(request, call, "credit", process)

    async def _handle_record(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "record")
        task_id = request.query.get("taskId")
        call.task_id = task_id
        self.polled(task_id)

        def process(_call: Call) -> tuple[int, bytes]:
            if not self.sandbox.authorized(request):
                return 401, envelope(401, "Unauthorized: invalid or missing API key")
            return self.sandbox.record_answer(task_id)

        return await self._run(request, call, "record", process)

    async def _handle_generation(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "tracks")
        task_id = request.query.get("taskId")
        call.task_id = task_id

        def process(_call: Call) -> tuple[int, bytes]:
            if not self.sandbox.authorized(request):
                return 401, envelope(401, "Unauthorized: invalid or missing API key")
            data = self.generations.get(task_id or "")
            if data is None:
                return 400, envelope(400, "task not found")
            return 200, envelope(200, "success", data)

        return await self._run(request, call, "tracks", process)

    async def _handle_submit(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "submit")
        authorized = self.sandbox.authorized(request)
        body: Any = None
        parsed_ok = False
        if authorized:  # a stranger's body is never even read
            read = await self.sandbox.read_submit(request)
            if read is None:
                call.status = call.code = 408
                return http_limits.body_timeout_response(envelope(408, "request body not received in time"))
            parsed_ok, body = read
        rec = LoggedSubmit(time=call.time, body=body)
        self.submits.append(rec)

        def process(_call: Call) -> tuple[int, bytes]:
            if not authorized:
                return 401, envelope(401, "Unauthorized: invalid or missing API key")
            if not parsed_ok or not isinstance(body, dict):
                return 400, envelope(400, "request body must be a JSON object")
            task = self._create_task(body)
            if isinstance(task, Refusal):
                return task.code, envelope(task.code, task.msg)
            rec.task_id = task.task_id
            return 200, envelope(200, "success", {"taskId": task.task_id})

        try:
            return await self._run(request, call, "submit", process)
        finally:
            rec.code = call.code
            rec.fault = call.fault

    async def _run(
        self, request: web.Request, call: LoggedCall, endpoint: str, process: Processor
    ) -> web.Response:
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
        code, body = process(call)
        return self._answer(call, 200, code, body)

    # ------------------------------------------------------------------ stem files

    def stem_size(self, name: str) -> int:
        return self.stem_sizes.get(_file_label(name), self.stem_bytes)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if not self.stem_files:
            return await self.sandbox.handle_file(request)
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
        if self.stem_audio_seconds is not None:
            body = tone_file_bytes(label, self.stem_audio_seconds)
            return web.Response(body=body, headers={"Content-Type": "audio/mpeg"})
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
        stopping = self.sandbox.book.stopping
        assert stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=seconds)
        if stopping.is_set():
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
