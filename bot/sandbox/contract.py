"""The provider's documented contract, as the sandbox serves it: paths, the `{code, msg, data}`
envelope, modes and prices, stem names, outcomes, what a task is, what record-info answers and
what a callback carries, and which submit bodies are well formed. Pure: no I/O here."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from yarl import URL

from bot.product import Mode

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
CALLBACK_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
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
GENERATION_PATH = "/api/v1/generate/record-info"
ENDPOINTS = ("submit", "record", "credit", "tracks")
ENDPOINT_PATHS = {
    "submit": SUBMIT_PATH,
    "record": RECORD_PATH,
    "credit": CREDIT_PATH,
    "tracks": GENERATION_PATH,
}

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
STEM_BY_FILE = {label: stem for stem, label in FILE_LABELS.items()}


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


def envelope(code: int, msg: str, data: Any = None) -> bytes:
    return json.dumps({"code": code, "msg": msg, "data": data}, separators=(",", ":")).encode()


def json_response(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


def reserved_invalid(url: URL) -> bool:
    """Whether `url` is under the reserved `.invalid` TLD, which never reaches anything."""
    host = (url.host or "").lower().rstrip(".")
    return host == "invalid" or host.endswith(".invalid")


def callback_block_reason(url: URL) -> str | None:
    """Why a callback to `url` must not be sent, or None when it may be."""
    host = (url.host or "").lower().rstrip(".")
    if not host:
        return "bad_url"
    if reserved_invalid(url):
        return "invalid_tld"
    return None


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """A well-formed submit body."""

    source_task_id: str
    audio_id: str
    callback_url: str
    parsed_callback: URL
    mode: str
    stem_name: str | None  # split_stem_advanced only

    @property
    def price(self) -> int:
        return PRICES[self.mode]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a submit is answered with an error envelope instead of a task."""

    code: int
    msg: str


def parse_submit(
    body: dict[str, Any], refuse_callback: Callable[[URL], str | None] | None = None
) -> SubmitRequest | Refusal:
    """Check a submit body's fields as the API does (required strings, a callback URL that
    `refuse_callback` does not refuse, a known type, a stem for the one-instrument mode)."""
    source_task_id = body.get("taskId")
    audio_id = body.get("audioId")
    callback_url = body.get("callBackUrl")
    for name, value in (
        ("taskId", source_task_id),
        ("audioId", audio_id),
        ("callBackUrl", callback_url),
    ):
        if not isinstance(value, str) or not value.strip():
            return Refusal(400, f"{name} is required")
    assert isinstance(source_task_id, str)
    assert isinstance(audio_id, str)
    assert isinstance(callback_url, str)
    try:
        parsed_cb = URL(callback_url)
    except ValueError:
        return Refusal(400, "callBackUrl is not a valid URL")
    if parsed_cb.scheme not in ("http", "https") or not parsed_cb.host:
        return Refusal(400, "callBackUrl is not a valid URL")
    refusal = refuse_callback(parsed_cb) if refuse_callback is not None else None
    if refusal is not None:
        return Refusal(400, refusal)
    mode = body.get("type", "separate_vocal")
    if mode is None:
        mode = "separate_vocal"
    if not isinstance(mode, str) or mode not in PRICES:
        return Refusal(400, f"type must be one of {', '.join(MODES)}")
    stem_name: str | None = None
    if mode == "split_stem_advanced":
        stem_name = parse_stem_name(body.get("stemName"))
        if stem_name is None:
            return Refusal(400, "stemName is required for split_stem_advanced")
    return SubmitRequest(source_task_id, audio_id, callback_url, parsed_cb, mode, stem_name)


@dataclass(eq=False)
class SandboxTask:
    """A separation task: what it produces, when, and how its callback is sent."""

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
    # How its callback is sent: the documented defaults; a stand-in for another provider's
    # behaviour shapes them before the task is added.
    callback_key: str = "vocal_removal_info"
    callback_duplicates: int = 1
    callback_retries: int = 0
    callback_retry_delay: float = 0.5
    callback_failure_code: int = 500
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

    def set_outcome(self, outcome: str) -> None:
        self.outcome = outcome
        self.done_body = None
        if outcome in FAILURE_OUTCOMES:
            self.error_code = 500
            self.error_message = FAILURE_MESSAGES[outcome]
        else:
            self.error_code = None
            self.error_message = None


def record_body(task: SandboxTask) -> bytes:
    """record-info's answer for `task` now (a finished task's is made once, then kept)."""
    if not task.is_complete(time.monotonic()):
        return envelope(200, "success", record_data(task, PENDING))
    if task.done_body is None:
        task.done_body = envelope(200, "success", record_data(task, task.outcome))
    return task.done_body


def record_data(task: SandboxTask, flag: str) -> dict[str, Any]:
    """record-info's `data` for `task` as `flag` shows it."""
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


def callback_payload(task: SandboxTask) -> dict[str, Any]:
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
        "code": task.callback_failure_code,
        "msg": task.error_message or "separation failed",
        "data": {"task_id": task.task_id, task.callback_key: None},
    }
