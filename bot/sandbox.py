"""The sandbox: a free, built-in stand-in for the separation API, following its documented
contract (`/work/shared/provider-api.md`): submit, record-info, callbacks to `callBackUrl`, the
credit endpoint, the `{code, msg, data}` envelope.

With `SEPARATION_API_URL=sandbox` the bot serves it from its own web server (under `/sandbox/`)
and talks to it over HTTP like to the real API, so every part of the bot runs as it would for
real. It is no open relay: its API answers only the bot's own key (`derive_api_key`, known to the
deployment's processes alone), sends callbacks only to the bot's own callback address, and keeps
a bounded number of tasks for a bounded time. Only its stem files (`/sandbox/files/`) are public.

Its stems are real, short WAV files made here with the standard library, each stem its own sound.
A source `taskId` starting with `fail-` shows a failure: `fail-400-…` is refused as an unknown id,
`fail-timeout-…` never finishes, any other `fail-…` ends in GENERATE_AUDIO_FAILED.

`testing/provider_api.py` is this same class with fault injection and call logs on top: the tests
and the benchmark run against this code.

Completion is lazy: a task is finished once `time.monotonic()` passes its completion time, so a
poll costs a comparison; a single `loop.call_later` timer per task only sends its callback.
"""

from __future__ import annotations

import array
import asyncio
import functools
import hashlib
import hmac
import io
import json
import logging
import math
import random
import re
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from bot import http_limits
from bot.product import Mode

log = logging.getLogger(__name__)

SANDBOX_API_URL = "sandbox"
"""The value of `SEPARATION_API_URL` that turns the sandbox on."""
SANDBOX_PREFIX = "/sandbox"
"""Where the bot's web server serves the sandbox: `/sandbox/api/...` and `/sandbox/files/...`."""
SANDBOX_CREDITS = 1_000_000
"""What the sandbox's free account always has."""
MAX_TASKS = 5_000
"""Tasks the sandbox keeps at once; a submit beyond answers 430 (calls too frequent: retry later)."""
DEFAULT_TASK_LIFETIME = 2 * 30 * 60.0
"""How long a task is kept (the bot passes twice JOB_TIMEOUT_MINUTES; this is twice its default)."""
_KEY_LABEL = b"stembot sandbox api key v1"
_CALLBACK_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""The token of a `/callback/<token>` address (the bot's are URL-safe base64)."""

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
# What the API charges per type: the product's modes from the one place prices live, and the
# newest docs' one-instrument mode, which StemBot does not sell.
PRICES = {mode.value: mode.api_price for mode in Mode} | {"split_stem_advanced": 20}
MODES = tuple(PRICES)

SUBMIT_PATH = "/api/v1/vocal-removal/generate"
RECORD_PATH = "/api/v1/vocal-removal/record-info"
CREDIT_PATH = "/api/v1/generate/credit"
ENDPOINTS = ("submit", "record", "credit")
ENDPOINT_PATHS = {"submit": SUBMIT_PATH, "record": RECORD_PATH, "credit": CREDIT_PATH}

# successFlag values.
PENDING = "PENDING"
SUCCESS = "SUCCESS"
CREATE_TASK_FAILED = "CREATE_TASK_FAILED"
GENERATE_AUDIO_FAILED = "GENERATE_AUDIO_FAILED"
CALLBACK_EXCEPTION = "CALLBACK_EXCEPTION"
FAILURE_OUTCOMES = (CREATE_TASK_FAILED, GENERATE_AUDIO_FAILED)
STEM_OUTCOMES = (SUCCESS, CALLBACK_EXCEPTION)
"""Outcomes whose record-info `response` carries stem URLs."""

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
ALL_STEMS = ("vocal", "instrumental", *STEMS_12[1:])
"""Every stem key that record-info's `response` carries (null when not produced)."""

TRACK_DURATION = 182.5
FAIL_PREFIX = "fail-"
NEVER = math.inf

WAV_RATE = 22_050
WAV_SECONDS = 3.0


def derive_api_key(discord_token: str) -> str:
    """The sandbox's API key: an HMAC of the bot's token under a fixed label. Every process of one
    deployment shares the token, so they accept each other's requests; nobody else knows it, and
    the token cannot be recovered from it."""
    return hmac.new(discord_token.encode(), _KEY_LABEL, hashlib.sha256).hexdigest()


def camel_key(stem: str) -> str:
    """`backing_vocals` -> `backingVocalsUrl` (record-info response key)."""
    head, *rest = stem.split("_")
    return head + "".join(part.capitalize() for part in rest) + "Url"


def snake_key(stem: str) -> str:
    """`backing_vocals` -> `backing_vocals_url` (callback payload key)."""
    return f"{stem}_url"


CAMEL_KEYS = {stem: camel_key(stem) for stem in ALL_STEMS}
FILE_LABELS = {stem: label.replace(" ", "_") for stem, label in STEM_LABELS.items()}
_STEM_BY_FILE = {label: stem for stem, label in FILE_LABELS.items()}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


_STEM_ALIASES: dict[str, str] = {}
for _stem in STEMS_12:
    _STEM_ALIASES[_norm(_stem)] = _stem
    _STEM_ALIASES[_norm(STEM_LABELS[_stem])] = _stem


def parse_stem_name(name: object) -> str | None:
    """Map a `stemName` (`"drums"`, `"Backing Vocals"`, `"backingVocals"`...) to a stem."""
    if not isinstance(name, str) or not name:
        return None
    return _STEM_ALIASES.get(_norm(name))


# ---------------------------------------------------------------------------------------- audio

# (fundamental Hz, kind): every stem sounds different, so a listener hears which is which.
_VOICES: dict[str, tuple[float, str]] = {
    "vocal": (440.0, "vibrato"),
    "instrumental": (220.0, "chord"),
    "backing_vocals": (554.37, "vibrato"),
    "drums": (0.0, "kick"),
    "bass": (55.0, "tone"),
    "guitar": (329.63, "pluck"),
    "keyboard": (261.63, "chord"),
    "percussion": (0.0, "noise"),
    "strings": (392.0, "swell"),
    "synth": (110.0, "square"),
    "fx": (200.0, "sweep"),
    "brass": (233.08, "saw"),
    "woodwinds": (698.46, "tone"),
}


def _sample(kind: str, freq: float, t: float, noise: random.Random) -> float:
    tau = 2 * math.pi
    if kind == "vibrato":
        return math.sin(tau * freq * t + 3 * math.sin(tau * 5 * t))
    if kind == "chord":
        return sum(math.sin(tau * freq * r * t) for r in (1.0, 1.25, 1.5)) / 3
    if kind == "kick":
        beat = t % 0.5
        return math.sin(tau * (60 + 90 * math.exp(-beat * 30)) * beat) * math.exp(-beat * 8)
    if kind == "noise":
        beat = t % 0.25
        return noise.uniform(-1, 1) * math.exp(-beat * 25)
    if kind == "pluck":
        beat = t % 0.75
        return math.sin(tau * freq * t) * math.exp(-beat * 6)
    if kind == "swell":
        return math.sin(tau * freq * t) * (0.5 - 0.5 * math.cos(tau * t / 1.5))
    if kind == "square":
        return 0.6 if math.sin(tau * freq * t) >= 0 else -0.6
    if kind == "sweep":
        return math.sin(tau * (freq + 400 * t) * t)
    if kind == "saw":
        return 0.8 * (2 * ((freq * t) % 1.0) - 1)
    return math.sin(tau * freq * t)


@functools.cache
def stem_wav(stem: str, seconds: float = WAV_SECONDS, rate: int = WAV_RATE) -> bytes:
    """A short mono 16-bit WAV for `stem`, its own sound (made once, then kept)."""
    freq, kind = _VOICES[stem]
    noise = random.Random(stem)
    frames = int(seconds * rate)
    fade = rate // 50  # no click at either end
    samples = array.array("h")
    for i in range(frames):
        gain = min(1.0, i / fade, (frames - 1 - i) / fade)
        value = _sample(kind, freq, i / rate, noise) * gain * 0.5
        samples.append(int(max(-1.0, min(1.0, value)) * 32767))
    if samples.itemsize != 2 or array.array("h", [1]).tobytes()[0] != 1:
        samples.byteswap()  # WAV is little-endian
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return out.getvalue()


# ---------------------------------------------------------------------------------------- tasks


@dataclass(slots=True)
class Call:
    """One request received."""

    method: str
    path: str
    time: float
    endpoint: str  # "submit" | "record" | "credit" | "other"
    task_id: str | None = None  # record-info's query taskId
    fault: str | None = None  # kind of the scripted fault applied, if any (tests)
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
    """One callback POST attempted."""

    time: float
    task_id: str
    url: str
    copy: int  # 0-based duplicate number
    attempt: int  # 0-based retry number
    status: int | None  # HTTP status from the receiver, None on a network error
    error: str | None = None


@dataclass(eq=False)
class SimTask:
    """A separation task."""

    task_id: str
    source_task_id: str
    audio_id: str
    mode: str
    callback_url: str
    created_at: float  # time.time()
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
    expires_at_monotonic: float = math.inf  # time.monotonic() at which it is forgotten
    done_body: bytes | None = field(default=None, repr=False)

    def is_complete(self, now_monotonic: float | None = None) -> bool:
        if self.finished:
            return True
        now = time.monotonic() if now_monotonic is None else now_monotonic
        return now >= self.completed_at_monotonic


def _reserved_invalid(url: URL) -> bool:
    """Whether `url` is under the reserved `.invalid` TLD, which never reaches anything."""
    host = (url.host or "").lower().rstrip(".")
    return host == "invalid" or host.endswith(".invalid")


def _origin(url: URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default one when none is written)."""
    return url.scheme, (url.host or "").lower(), url.port


def envelope(code: int, msg: str, data: Any = None) -> bytes:
    return json.dumps({"code": code, "msg": msg, "data": data}, separators=(",", ":")).encode()


def json_response(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


Processor = Callable[[Call], tuple[int, bytes]]


class SandboxApi:
    """The API's documented behaviour, served on any aiohttp application by `add_routes`.

    Stem links start with `public_url` when given (the operator's CALLBACK_PUBLIC_URL), else with
    `local_url`, which the web server sets once it listens (`serving_at`). Every API request must
    carry `api_key` as its Bearer key; a `callBackUrl` must be the bot's own (`callback_refusal`).
    A task is forgotten `task_lifetime` seconds after its submit, and at most `max_tasks` are
    kept. `charge` False keeps the account's credits as they are (free).
    """

    def __init__(
        self,
        *,
        api_key: str,
        processing_seconds: float = 5.0,
        outcome: str = SUCCESS,
        account_credits: int = SANDBOX_CREDITS,
        charge: bool = True,
        callbacks: bool = True,
        callback_duplicates: int = 1,
        callback_key: str = "vocal_removal_info",
        callback_timeout: float = 15.0,
        callback_retries: int = 0,
        callback_retry_delay: float = 0.5,
        callback_failure_code: int = 500,
        failure_ids: bool = True,
        public_url: str | None = None,
        task_lifetime: float = DEFAULT_TASK_LIFETIME,
        max_tasks: int = MAX_TASKS,
        seed: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.task_lifetime = task_lifetime
        self.max_tasks = max_tasks
        self.processing_seconds = processing_seconds
        self.outcome = outcome
        self.account_credits = account_credits
        self.charge = charge
        self.callbacks = callbacks
        self.callback_duplicates = callback_duplicates
        self.callback_key = callback_key
        self.callback_timeout = callback_timeout
        self.callback_retries = callback_retries
        self.callback_retry_delay = callback_retry_delay
        self.callback_failure_code = callback_failure_code
        self.failure_ids = failure_ids
        self.public_url = public_url
        self.local_url: str | None = None
        self.tasks: dict[str, SimTask] = {}
        self._rng = random.Random(seed)
        self._charged = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._expiry: asyncio.TimerHandle | None = None  # forgets the oldest task when it expires
        self._deliveries: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------------ serving

    def add_routes(self, app: web.Application, prefix: str = "") -> None:
        """Serve the API under `prefix + "/api/v1/..."` and the stem files under `prefix + "/files/"`."""
        app.router.add_post(prefix + SUBMIT_PATH, self._handle_submit)
        app.router.add_get(prefix + RECORD_PATH, self._handle_record)
        app.router.add_get(prefix + CREDIT_PATH, self._handle_credit)
        app.router.add_get(prefix + "/files/{task_id}/{name}", self._handle_file)

    def started(self) -> None:
        """Call from the serving event loop before the first request."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()

    def serving_at(self, local_url: str) -> None:
        """The web server listens at `local_url` (`http://127.0.0.1:8080`): the API is under it."""
        self.local_url = local_url.rstrip("/")
        self.started()

    @property
    def api_url(self) -> str:
        """The base URL the bot's API client uses: this process, under `/sandbox`."""
        if self.local_url is None:
            raise RuntimeError("the sandbox is not served yet (the web server has not started)")
        return self.local_url + SANDBOX_PREFIX

    async def stop(self) -> None:
        """Cancel pending callbacks and wake every waiting request."""
        if self._stopping is not None:
            self._stopping.set()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deliveries = list(self._deliveries)
        for task in deliveries:
            task.cancel()
        if deliveries:
            await asyncio.gather(*deliveries, return_exceptions=True)
        self._deliveries.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def charged(self) -> int:
        """Credits charged to the account in total."""
        return self._charged

    # ------------------------------------------------------------------ hooks for the test simulator

    def _log_call(self, request: web.Request, endpoint: str) -> Call:
        path = ENDPOINT_PATHS.get(endpoint) or request.path
        return Call(request.method, path, time.time(), endpoint)

    def _log_submit(self, submit: SubmitCall) -> None:
        """A submit arrived (the test simulator keeps them)."""

    def _log_poll(self, task_id: str | None) -> None:
        """A record-info request arrived (the test simulator counts them)."""

    async def _run(self, request: web.Request, call: Call, endpoint: str, process: Processor) -> web.Response:
        code, body = process(call)
        return self._answer(call, 200, code, body)

    def _refused_ids(self, source_task_id: str, audio_id: str) -> bool:
        """Whether submit answers 400 (unknown ids)."""
        return self.failure_ids and source_task_id.startswith(FAIL_PREFIX + "400-")

    def _outcome_for(self, source_task_id: str, audio_id: str) -> str:
        if self.failure_ids and source_task_id.startswith(FAIL_PREFIX):
            return GENERATE_AUDIO_FAILED
        return self.outcome

    def _processing_for(self, source_task_id: str, audio_id: str) -> float:
        if self.failure_ids and source_task_id.startswith(FAIL_PREFIX + "timeout-"):
            return NEVER
        return self.processing_seconds

    def stem_url(self, task_id: str, stem: str) -> str:
        """Where a task's stem can be downloaded."""
        base = self.public_url or self.local_url
        if base is None:
            raise RuntimeError("the sandbox is not served yet (the web server has not started)")
        return f"{base.rstrip('/')}{SANDBOX_PREFIX}/files/{task_id}/{FILE_LABELS[stem]}.wav"

    def callback_refusal(self, url: URL) -> str | None:
        """Why a submit with this `callBackUrl` is refused, or None when it is accepted.

        Only the bot's own callback address: `/callback/<token>` on its public callback URL or its
        local address, nothing more. An address under the reserved `.invalid` TLD, where nothing
        can be reached, is accepted too and never called: the bot uses one when callbacks are off.
        """
        if _reserved_invalid(url):
            return None
        if url.user is not None or url.password is not None or url.raw_query_string or url.raw_fragment:
            return "callBackUrl must be this bot's own callback address"
        for base in (self.public_url, self.local_url):
            if base is None:
                continue
            own = URL(base.rstrip("/"))
            if _origin(url) != _origin(own):
                continue
            prefix = own.raw_path.rstrip("/") + "/callback/"
            path = url.raw_path
            if path.startswith(prefix) and _CALLBACK_TOKEN.fullmatch(path[len(prefix) :]):
                return None
        return "callBackUrl must be this bot's own callback address"

    def callback_block_reason(self, url: URL) -> str | None:
        """Why a callback to `url` must not be sent, or None when it may be."""
        host = (url.host or "").lower().rstrip(".")
        if not host:
            return "bad_url"
        if _reserved_invalid(url):
            return "invalid_tld"
        return None

    # ------------------------------------------------------------------ handlers

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Constant time: how much of a guessed key matched must not show in the answer's timing.
        return hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    def _answer(self, call: Call, status: int, code: int, body: bytes) -> web.Response:
        call.status = status
        call.code = code
        return json_response(status, body)

    async def _handle_credit(self, request: web.Request) -> web.Response:
        self._forget_expired()
        call = self._log_call(request, "credit")

        def process(_call: Call) -> tuple[int, bytes]:
            if not self._authorized(request):
                return 401, envelope(401, "Unauthorized: invalid or missing API key")
            return 200, envelope(200, "success", self.account_credits)

        return await self._run(request, call, "credit", process)

    async def _handle_record(self, request: web.Request) -> web.Response:
        self._forget_expired()
        call = self._log_call(request, "record")
        task_id = request.query.get("taskId")
        call.task_id = task_id
        self._log_poll(task_id)

        def process(_call: Call) -> tuple[int, bytes]:
            if not self._authorized(request):
                return 401, envelope(401, "Unauthorized: invalid or missing API key")
            if not task_id:
                return 400, envelope(400, "taskId is required")
            task = self.tasks.get(task_id)
            if task is None:
                return 400, envelope(400, "task not found")
            return 200, self._record_body(task)

        return await self._run(request, call, "record", process)

    async def _handle_submit(self, request: web.Request) -> web.Response:
        self._forget_expired()
        call = self._log_call(request, "submit")
        authorized = self._authorized(request)
        body: Any = None
        parsed_ok = False
        if authorized:  # a stranger's body is never even read
            try:
                raw = await http_limits.read_body(request)
            except http_limits.BodyTimeout:
                call.status = call.code = 408
                return http_limits.body_timeout_response(envelope(408, "request body not received in time"))
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            else:
                parsed_ok = True
        rec = SubmitCall(time=call.time, body=body)
        self._log_submit(rec)

        def process(_call: Call) -> tuple[int, bytes]:
            if not authorized:
                return 401, envelope(401, "Unauthorized: invalid or missing API key")
            if not parsed_ok or not isinstance(body, dict):
                return 400, envelope(400, "request body must be a JSON object")
            code, msg, task = self._create_task(body)
            if task is None:
                return code, envelope(code, msg)
            rec.task_id = task.task_id
            return 200, envelope(200, "success", {"taskId": task.task_id})

        try:
            return await self._run(request, call, "submit", process)
        finally:
            rec.code = call.code
            rec.fault = call.fault

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        # Made from the stem's name alone, so links keep working across restarts of the bot.
        name = request.match_info["name"]
        label, dot, ext = name.rpartition(".")
        stem = _STEM_BY_FILE.get(label)
        if stem is None or not dot or ext != "wav" or len(request.match_info["task_id"]) > 64:
            return web.Response(status=404, text="no such sandbox file")
        return web.Response(
            body=stem_wav(stem),
            content_type="audio/wav",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )

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
        refusal = self.callback_refusal(parsed_cb)
        if refusal is not None:
            return 400, refusal, None
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
        if self._refused_ids(source_task_id, audio_id):
            return 400, "taskId or audioId not found", None
        price = PRICES[mode]
        if self.account_credits < price:
            return 429, "credits insufficient", None
        if len(self.tasks) >= self.max_tasks:
            return 430, f"too many tasks at once (at most {self.max_tasks}): try again later", None

        if self.charge:
            self.account_credits -= price
            self._charged += price
        stems: tuple[str, ...] = STEMS_2 if mode == "separate_vocal" else STEMS_12
        if stem_name is not None:
            stems = (stem_name,)
        processing = self._processing_for(source_task_id, audio_id)
        now, now_mono = time.time(), time.monotonic()
        task = SimTask(
            task_id=f"{self._rng.getrandbits(128):032x}",
            source_task_id=source_task_id,
            audio_id=audio_id,
            mode=mode,
            callback_url=callback_url,
            created_at=now,
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
            task.stems[stem] = self.stem_url(task.task_id, stem)
            task.origin_ids[stem] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self.set_outcome(task, self._outcome_for(source_task_id, audio_id))
        task.expires_at_monotonic = now_mono + self.task_lifetime
        self.tasks[task.task_id] = task
        self._arm_expiry()
        self._arm_callback(task, parsed_cb)
        return 200, "success", task

    # ------------------------------------------------------------------ expiry

    def _forget_expired(self) -> None:
        """Drop every expired task (the oldest come first: all live equally long) and its timer."""
        now = time.monotonic()
        while self.tasks:
            oldest = next(iter(self.tasks.values()))
            if oldest.expires_at_monotonic > now:
                break
            del self.tasks[oldest.task_id]
            handle = self._timers.pop(oldest.task_id, None)
            if handle is not None:
                handle.cancel()

    def _arm_expiry(self) -> None:
        """One timer for the whole sandbox: it fires when the oldest task expires, so memory is
        given back even when no request comes."""
        if self._expiry is not None or not self.tasks:
            return
        oldest = next(iter(self.tasks.values()))
        if math.isinf(oldest.expires_at_monotonic):
            return
        loop = self._loop or asyncio.get_running_loop()
        self._expiry = loop.call_at(
            loop.time() + max(0.0, oldest.expires_at_monotonic - time.monotonic()), self._on_expiry
        )

    def _on_expiry(self) -> None:
        self._expiry = None
        self._forget_expired()
        self._arm_expiry()

    def set_outcome(self, task: SimTask, outcome: str) -> None:
        task.outcome = outcome
        task.done_body = None
        if outcome in FAILURE_OUTCOMES:
            task.error_code = 500
            task.error_message = FAILURE_MESSAGES[outcome]
        else:
            task.error_code = None
            task.error_message = None

    def _record_body(self, task: SimTask) -> bytes:
        if not task.is_complete(time.monotonic()):
            return envelope(200, "success", self._record_data(task, PENDING))
        if task.done_body is None:
            task.done_body = envelope(200, "success", self._record_data(task, task.outcome))
        return task.done_body

    def _record_data(self, task: SimTask, flag: str) -> dict[str, Any]:
        pending = flag == PENDING
        response: dict[str, Any] | None = None
        if flag in STEM_OUTCOMES:
            response = {"originUrl": ""}
            for stem in ALL_STEMS:
                response[CAMEL_KEYS[stem]] = task.stems.get(stem)
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

    def _arm_callback(self, task: SimTask, url: URL) -> None:
        reason = "disabled" if not self.callbacks else self.callback_block_reason(url)
        if reason is None and math.isinf(task.completed_at_monotonic):
            reason = "never_finishes"
        if reason is not None:
            task.callback_skipped = reason
            return
        loop = self._loop or asyncio.get_running_loop()
        delay = max(0.0, task.completed_at_monotonic - time.monotonic())
        self._timers[task.task_id] = loop.call_later(delay, self._on_complete, task)

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
        loop = self._loop or asyncio.get_running_loop()
        delivery = loop.create_task(self._deliver(task))
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

    def _log_callback(self, attempt: CallbackAttempt) -> None:
        """A callback POST was tried (the test simulator keeps them)."""

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
                except Exception as exc:  # a dead receiver never breaks the API
                    error = f"{type(exc).__name__}: {exc}"
                    log.debug("callback for task %s failed: %s", task.task_id, error)
                url = task.callback_url
                self._log_callback(
                    CallbackAttempt(time.time(), task.task_id, url, copy, attempt, status, error)
                )
                if status is not None:
                    task.callbacks_sent += 1
                    task.callback_statuses.append(status)
                    if status < 500:
                        break
                else:
                    task.callback_statuses.append(error or "error")
