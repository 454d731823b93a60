"""A local, configurable simulator of the hosted stem-separation API.

It implements the contract described in ``/work/shared/provider-api.md`` as an aiohttp
application bound to 127.0.0.1:

* ``POST /api/v1/vocal-removal/generate``      (endpoint name ``"submit"``)
* ``GET  /api/v1/vocal-removal/record-info``   (endpoint name ``"record"``)
* ``GET  /api/v1/generate/credit``             (endpoint name ``"credit"``)

Design notes:

* Completion is lazy: a task is finished when ``time.monotonic()`` passes its completion time,
  so polling costs a comparison and nothing runs in the background per task. Only when a
  callback must be delivered is a single ``loop.call_later`` timer armed for the task.
* Ids and stem URLs come from a seeded RNG, so a run is reproducible for a given order of
  submissions.
* Callbacks are only ever sent to 127.0.0.1 / localhost / ::1; any other host (and anything
  under the reserved ``.invalid`` TLD) is skipped and the reason recorded on the task.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

log = logging.getLogger(__name__)

STEMS_2 = ("vocal", "instrumental")
STEMS_12 = (
    "vocal",
    "backing_vocals",
    "drums",
    "bass",
    "guitar",
    "keyboard",
    "percussion",
    "strings",
    "synth",
    "fx",
    "brass",
    "woodwinds",
)
PRICES = {"separate_vocal": 10, "split_stem": 50, "split_stem_advanced": 20}
MODES = tuple(PRICES)

SUBMIT_PATH = "/api/v1/vocal-removal/generate"
RECORD_PATH = "/api/v1/vocal-removal/record-info"
CREDIT_PATH = "/api/v1/generate/credit"
ENDPOINTS = ("submit", "record", "credit")
_ENDPOINT_PATHS = {"submit": SUBMIT_PATH, "record": RECORD_PATH, "credit": CREDIT_PATH}

FAULT_KINDS = ("code", "http", "html", "garbage", "body", "hang", "accept_and_hang", "disconnect")

# successFlag values.
PENDING = "PENDING"
SUCCESS = "SUCCESS"
CREATE_TASK_FAILED = "CREATE_TASK_FAILED"
GENERATE_AUDIO_FAILED = "GENERATE_AUDIO_FAILED"
CALLBACK_EXCEPTION = "CALLBACK_EXCEPTION"
FAILURE_OUTCOMES = (CREATE_TASK_FAILED, GENERATE_AUDIO_FAILED)
# Outcomes whose record-info ``response`` carries stem URLs.
STEM_OUTCOMES = (SUCCESS, CALLBACK_EXCEPTION)

FAILURE_MESSAGES = {
    CREATE_TASK_FAILED: "create task failed",
    GENERATE_AUDIO_FAILED: "generate audio failed",
}

# Human labels used in file names and in originData.stem_type_group_name.
STEM_LABELS = {
    "vocal": "Vocals",
    "instrumental": "Instrumental",
    "backing_vocals": "Backing Vocals",
    "drums": "Drums",
    "bass": "Bass",
    "guitar": "Guitar",
    "keyboard": "Keyboard",
    "percussion": "Percussion",
    "strings": "Strings",
    "synth": "Synth",
    "fx": "FX",
    "brass": "Brass",
    "woodwinds": "Woodwinds",
}
# Every stem key that record-info's ``response`` carries (null when not produced).
ALL_STEMS = ("vocal", "instrumental", *STEMS_12[1:])

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
URL_PREFIX = "https://file.aiquickdraw.com/s/"
TRACK_DURATION = 182.5

_HTML_PAGE = (
    "<html>\r\n<head><title>{status} Error</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {msg}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_GARBAGE = "<<upstream said: \x00\x01 {{not json at all"


def camel_key(stem: str) -> str:
    """``backing_vocals`` -> ``backingVocalsUrl`` (record-info response key)."""
    head, *rest = stem.split("_")
    return head + "".join(part.capitalize() for part in rest) + "Url"


def snake_key(stem: str) -> str:
    """``backing_vocals`` -> ``backing_vocals_url`` (callback payload key)."""
    return f"{stem}_url"


_CAMEL_KEYS = {stem: camel_key(stem) for stem in ALL_STEMS}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


_STEM_ALIASES: dict[str, str] = {}
for _stem in STEMS_12:
    _STEM_ALIASES[_norm(_stem)] = _stem
    _STEM_ALIASES[_norm(STEM_LABELS[_stem])] = _stem


def parse_stem_name(name: object) -> str | None:
    """Map a ``stemName`` (``"drums"``, ``"Backing Vocals"``, ``"backingVocals"``...) to a stem."""
    if not isinstance(name, str) or not name:
        return None
    return _STEM_ALIASES.get(_norm(name))


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
      * ``disconnect``: close the connection without any answer (on submit: nothing created).
    """

    kind: str
    status: int = 200
    msg: str = "scripted"
    seconds: float = 0.0
    content_type: str = "application/json"
    body: Any = None


@dataclass(slots=True)
class Call:
    """One request received by the simulator."""

    method: str
    path: str
    time: float
    endpoint: str  # "submit" | "record" | "credit" | "other"
    task_id: str | None = None  # record-info's query taskId
    fault: str | None = None  # kind of the scripted fault applied, if any
    status: int | None = None  # HTTP status answered; None when no answer was sent
    code: int | None = None  # envelope code answered (HTTP status for non-JSON bodies)


@dataclass
class SubmitCall:
    """One submit request (kept even when it failed)."""

    time: float
    body: Any  # the parsed JSON body, or the raw text when it did not parse
    code: int | None = None  # answered envelope code / HTTP status; None when no answer
    task_id: str | None = None  # separation task created by this call, if any
    fault: str | None = None


@dataclass
class CallbackAttempt:
    """One callback POST the simulator attempted."""

    time: float
    task_id: str
    url: str
    copy: int  # 0-based duplicate number
    attempt: int  # 0-based retry number
    status: int | None  # HTTP status from the receiver, None on a network error
    error: str | None = None


@dataclass(eq=False)
class SimTask:
    """A separation task known to the simulator."""

    task_id: str
    source_task_id: str
    audio_id: str
    mode: str
    callback_url: str
    created_at: float  # time.time()
    created_at_monotonic: float  # time.monotonic()
    complete_at: float  # time.time() at which it finishes / finished
    completed_at_monotonic: float  # time.monotonic() at which it finishes / finished
    outcome: str
    stems: dict[str, str]  # snake stem name -> URL (what it produces on success)
    price: int
    stem_name: str | None = None  # split_stem_advanced only
    origin_ids: dict[str, str] = field(default_factory=dict)
    error_code: int | None = None
    error_message: str | None = None
    callback_key: str = "vocal_removal_info"
    callback_duplicates: int = 1
    callbacks_sent: int = 0  # callback POSTs that got an HTTP answer (any status)
    callback_attempts: int = 0  # callback POSTs tried, including network failures
    callback_statuses: list[int | str] = field(default_factory=list)
    callback_skipped: str | None = None  # why no callback is sent, if so
    finished: bool = False  # completion was forced (timer fired or finish_now)
    _done_body: bytes | None = field(default=None, repr=False)

    def is_complete(self, now_monotonic: float | None = None) -> bool:
        if self.finished:
            return True
        now = time.monotonic() if now_monotonic is None else now_monotonic
        return now >= self.completed_at_monotonic

    @property
    def success_flag(self) -> str:
        return self.outcome if self.is_complete() else PENDING

    @property
    def produced_stems(self) -> tuple[str, ...]:
        return tuple(self.stems)


def _envelope(code: int, msg: str, data: Any = None) -> bytes:
    return json.dumps({"code": code, "msg": msg, "data": data}, separators=(",", ":")).encode()


def _json_response(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


Processor = Callable[[Call], tuple[int, bytes]]


class SeparationApiSimulator:
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
    ) -> None:
        self.api_key = api_key
        self.processing_seconds = processing_seconds
        self.outcome = outcome
        self.url_length = url_length
        self.account_credits = account_credits
        self.callbacks = callbacks
        self.callback_duplicates = callback_duplicates
        self.callback_key = callback_key
        self.outcome_for_audio: dict[str, str] = dict(outcome_for_audio or {})
        self.processing_for_audio: dict[str, float] = dict(processing_for_audio or {})
        self.callback_timeout = callback_timeout
        self.callback_retries = callback_retries
        self.callback_retry_delay = callback_retry_delay
        self.callback_failure_code = callback_failure_code
        self.unknown_ids: set[str] = set()

        self.tasks: dict[str, SimTask] = {}
        self.submits: list[SubmitCall] = []
        self.calls: deque[Call] = deque(maxlen=max_calls)
        self.callback_log: deque[CallbackAttempt] = deque(maxlen=max_calls)
        self.base_url: str = ""

        self._rng = random.Random(seed)
        self._faults: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        self._polls: dict[str, int] = {}
        self._polls_total = 0
        self._charged = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._deliveries: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and serve; returns ``base_url`` (``http://127.0.0.1:PORT``)."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post(SUBMIT_PATH, self._handle_submit)
        app.router.add_get(RECORD_PATH, self._handle_record)
        app.router.add_get(CREDIT_PATH, self._handle_credit)
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
        if self._stopping is not None:
            self._stopping.set()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        deliveries = list(self._deliveries)
        for task in deliveries:
            task.cancel()
        if deliveries:
            await asyncio.gather(*deliveries, return_exceptions=True)
        self._deliveries.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
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
            if fault.kind == "accept_and_hang" and endpoint != "submit":
                raise ValueError("accept_and_hang only applies to the submit endpoint")
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
                self._set_outcome(task, outcome)
            return
        if outcome is not None:
            self._set_outcome(task, outcome)
        task.complete_at = time.time()
        task.completed_at_monotonic = time.monotonic()
        task._done_body = None
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

    # ------------------------------------------------------------------ plumbing

    def _log_call(self, request: web.Request, endpoint: str) -> Call:
        # Known endpoints share one path string, which keeps a 100k-entry log small.
        path = _ENDPOINT_PATHS.get(endpoint) or request.path
        call = Call(request.method, path, time.time(), endpoint)
        self.calls.append(call)
        return call

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key

    def _answer(self, call: Call, status: int, code: int, body: bytes) -> web.Response:
        call.status = status
        call.code = code
        return _json_response(status, body)

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
            return _json_response(200, _envelope(fault.status, fault.msg))
        call.status = call.code = fault.status
        if fault.kind == "http":
            return _json_response(fault.status, _envelope(fault.status, fault.msg))
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
            elif fault.kind == "disconnect":
                return self._drop(request, call)
            else:
                return self._fault_response(fault, call)
        code, body = process(call)
        return self._answer(call, 200, code, body)

    # ------------------------------------------------------------------ handlers

    async def _handle_other(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "other")
        return self._answer(call, 404, 404, _envelope(404, "Not Found"))

    async def _handle_credit(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "credit")

        def process(_call: Call) -> tuple[int, bytes]:
            if not self._authorized(request):
                return 401, _envelope(401, "Unauthorized: invalid or missing API key")
            return 200, _envelope(200, "success", self.account_credits)

        return await self._run(request, call, "credit", process)

    async def _handle_record(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "record")
        task_id = request.query.get("taskId")
        call.task_id = task_id
        self._polls_total += 1
        if task_id is not None:
            self._polls[task_id] = self._polls.get(task_id, 0) + 1

        def process(_call: Call) -> tuple[int, bytes]:
            if not self._authorized(request):
                return 401, _envelope(401, "Unauthorized: invalid or missing API key")
            if not task_id:
                return 400, _envelope(400, "taskId is required")
            task = self.tasks.get(task_id)
            if task is None:
                return 400, _envelope(400, "task not found")
            return 200, self._record_body(task)

        return await self._run(request, call, "record", process)

    async def _handle_submit(self, request: web.Request) -> web.Response:
        call = self._log_call(request, "submit")
        raw = await request.read()
        body: Any
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
            parsed_ok = False
        else:
            parsed_ok = True
        rec = SubmitCall(time=call.time, body=body)
        self.submits.append(rec)

        def process(_call: Call) -> tuple[int, bytes]:
            if not self._authorized(request):
                return 401, _envelope(401, "Unauthorized: invalid or missing API key")
            if not parsed_ok or not isinstance(body, dict):
                return 400, _envelope(400, "request body must be a JSON object")
            code, msg, task = self._create_task(body)
            if task is None:
                return code, _envelope(code, msg)
            rec.task_id = task.task_id
            return 200, _envelope(200, "success", {"taskId": task.task_id})

        try:
            return await self._run(request, call, "submit", process)
        finally:
            rec.code = call.code
            rec.fault = call.fault

    # ------------------------------------------------------------------ behaviour

    def _create_task(self, body: dict[str, Any]) -> tuple[int, str, SimTask | None]:
        source_task_id = body.get("taskId")
        audio_id = body.get("audioId")
        callback_url = body.get("callBackUrl")
        for name, value in (
            ("taskId", source_task_id),
            ("audioId", audio_id),
            ("callBackUrl", callback_url),
        ):
            if not isinstance(value, str) or not value.strip():
                return 400, f"{name} is required", None
        assert isinstance(source_task_id, str)
        assert isinstance(audio_id, str)
        assert isinstance(callback_url, str)
        try:
            parsed_cb = URL(callback_url)
        except ValueError:
            return 400, "callBackUrl is not a valid URL", None
        if parsed_cb.scheme not in ("http", "https") or not parsed_cb.host:
            return 400, "callBackUrl is not a valid URL", None
        mode = body.get("type", "separate_vocal")
        if mode is None:
            mode = "separate_vocal"
        if not isinstance(mode, str) or mode not in PRICES:
            return 400, f"type must be one of {', '.join(MODES)}", None
        stem_name: str | None = None
        if mode == "split_stem_advanced":
            stem_name = parse_stem_name(body.get("stemName"))
            if stem_name is None:
                return 400, "stemName is required for split_stem_advanced", None
        if source_task_id in self.unknown_ids or audio_id in self.unknown_ids:
            return 400, "taskId or audioId not found", None
        price = PRICES[mode]
        if self.account_credits < price:
            return 429, "credits insufficient", None

        self.account_credits -= price
        self._charged += price
        stems = STEMS_2 if mode == "separate_vocal" else STEMS_12
        if stem_name is not None:
            stems = (stem_name,)
        processing = self.processing_for_audio.get(audio_id, self.processing_seconds)
        now, now_mono = time.time(), time.monotonic()
        task = SimTask(
            task_id=f"{self._rng.getrandbits(128):032x}",
            source_task_id=source_task_id,
            audio_id=audio_id,
            mode=mode,
            callback_url=callback_url,
            created_at=now,
            created_at_monotonic=now_mono,
            complete_at=now + processing,
            completed_at_monotonic=now_mono + processing,
            outcome=PENDING,
            stems={},
            price=price,
            stem_name=stem_name,
            callback_key=self.callback_key,
            callback_duplicates=self.callback_duplicates,
        )
        for stem in stems:
            task.stems[stem] = self._stem_url(stem)
            task.origin_ids[stem] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self._set_outcome(task, self.outcome_for_audio.get(audio_id, self.outcome))
        self.tasks[task.task_id] = task
        self._arm_callback(task, parsed_cb)
        return 200, "success", task

    def _set_outcome(self, task: SimTask, outcome: str) -> None:
        task.outcome = outcome
        task._done_body = None
        if outcome in FAILURE_OUTCOMES:
            task.error_code = 500
            task.error_message = FAILURE_MESSAGES[outcome]
        else:
            task.error_code = None
            task.error_message = None

    def _stem_url(self, stem: str) -> str:
        file_label = STEM_LABELS[stem].replace(" ", "_")
        ident = uuid.UUID(int=self._rng.getrandbits(128), version=4)
        url = f"{URL_PREFIX}{ident}_{file_label}.mp3"
        need = self.url_length - len(url)
        if need <= 0:
            return url
        if need < 3:
            return url + "?p"[:need]
        filler = ident.hex * (need // 32 + 1)
        return url + "?p=" + filler[: need - 3]

    def _record_body(self, task: SimTask) -> bytes:
        now_mono = time.monotonic()
        if not task.is_complete(now_mono):
            data = self._record_data(task, PENDING)
            return _envelope(200, "success", data)
        if task._done_body is None:
            task._done_body = _envelope(200, "success", self._record_data(task, task.outcome))
        return task._done_body

    def _record_data(self, task: SimTask, flag: str) -> dict[str, Any]:
        pending = flag == PENDING
        response: dict[str, Any] | None = None
        if flag in STEM_OUTCOMES:
            response = {"originUrl": ""}
            for stem in ALL_STEMS:
                response[_CAMEL_KEYS[stem]] = task.stems.get(stem)
            response["originData"] = [
                {
                    "duration": TRACK_DURATION,
                    "audio_url": url,
                    "stem_type_group_name": STEM_LABELS[stem],
                    "id": task.origin_ids[stem],
                }
                for stem, url in task.stems.items()
            ]
        return {
            "taskId": task.task_id,
            "musicId": task.audio_id,
            "musicIndex": 0,
            "callbackUrl": task.callback_url,
            "completeTime": None if pending else int(task.complete_at * 1000),
            "response": response,
            "successFlag": flag,
            "createTime": int(task.created_at * 1000),
            "errorCode": None if pending else task.error_code,
            "errorMessage": None if pending else task.error_message,
        }

    # ------------------------------------------------------------------ callbacks

    @staticmethod
    def callback_block_reason(url: URL) -> str | None:
        """Why a callback to ``url`` must not be sent, or None when it may be."""
        host = (url.host or "").lower().rstrip(".")
        if not host:
            return "bad_url"
        if host == "invalid" or host.endswith(".invalid"):
            return "invalid_tld"
        if host not in LOCAL_HOSTS:
            return "non_local_host"
        return None

    def _arm_callback(self, task: SimTask, url: URL) -> None:
        reason = "disabled" if not self.callbacks else self.callback_block_reason(url)
        if reason is not None:
            task.callback_skipped = reason
            return
        assert self._loop is not None
        delay = max(0.0, task.completed_at_monotonic - time.monotonic())
        self._timers[task.task_id] = self._loop.call_later(delay, self._on_complete, task)

    def _on_complete(self, task: SimTask) -> None:
        self._timers.pop(task.task_id, None)
        task.finished = True
        if task.outcome == CALLBACK_EXCEPTION:
            task.callback_skipped = "callback_exception"
            return
        if task.outcome != SUCCESS and task.outcome not in FAILURE_OUTCOMES:
            task.callback_skipped = "not_final"
            return
        if self._stopping is not None and self._stopping.is_set():
            return
        assert self._loop is not None
        delivery = self._loop.create_task(self._deliver(task))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)

    def callback_payload(self, task: SimTask) -> dict[str, Any]:
        """The JSON body POSTed to the task's callBackUrl when it ends."""
        if task.outcome == SUCCESS:
            info: dict[str, Any] = {"origin_url": ""}
            for stem, url in task.stems.items():
                info[snake_key(stem)] = url
            return {
                "code": 200,
                "msg": "All generated successfully.",
                "data": {"task_id": task.task_id, task.callback_key: info},
            }
        return {
            "code": self.callback_failure_code,
            "msg": task.error_message or "separation failed",
            "data": {"task_id": task.task_id, task.callback_key: None},
        }

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.callback_timeout),
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    async def _deliver(self, task: SimTask) -> None:
        payload = json.dumps(self.callback_payload(task)).encode()
        headers = {"Content-Type": "application/json"}
        session = self._client()
        for copy in range(max(0, task.callback_duplicates)):
            for attempt in range(max(0, self.callback_retries) + 1):
                if attempt:
                    await asyncio.sleep(self.callback_retry_delay)
                status: int | None = None
                error: str | None = None
                task.callback_attempts += 1
                try:
                    async with session.post(task.callback_url, data=payload, headers=headers) as resp:
                        await resp.read()
                        status = resp.status
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # never let a dead receiver break the simulator
                    error = f"{type(exc).__name__}: {exc}"
                    log.debug("callback to %s failed: %s", task.callback_url, error)
                self.callback_log.append(
                    CallbackAttempt(
                        time.time(), task.task_id, task.callback_url, copy, attempt, status, error
                    )
                )
                if status is not None:
                    task.callbacks_sent += 1
                    task.callback_statuses.append(status)
                    if status < 500:
                        break
                else:
                    task.callback_statuses.append(error or "error")


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
