"""The API's result callbacks: what a valid one looks like. Anyone can POST, so a callback is only
ever a hint that wakes a job; the job then asks record-info before settling or delivering."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

MAX_CALLBACK_BYTES = 64 * 1024
INFO_KEYS = ("vocal_removal_info", "vocal_separation_info")  # the second is one reseller's spelling


class CallbackVerdict(enum.StrEnum):
    ACCEPTED = "accepted"  # woke the job; it will confirm with record-info
    DUPLICATE = "duplicate"  # the job is already finished: nothing to do
    UNKNOWN = "unknown"  # no job has this token
    MISMATCH = "mismatch"  # the token's job is a different API task: forged or confused


class InvalidCallback(Exception):
    """The body is not a callback of the documented shape."""


@dataclass(frozen=True, slots=True)
class Callback:
    code: int
    task_id: str
    stem_urls: dict[str, str]  # snake stem key -> URL, as claimed by the caller

    @property
    def claims_success(self) -> bool:
        return self.code == 200 and bool(self.stem_urls)


def parse_callback(raw: bytes) -> Callback:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidCallback("not JSON") from None
    except RecursionError:
        # json.loads recurses per nesting level; a few thousand '[' (well under the size limit)
        # exhaust the interpreter's stack. Not a ValueError, so it needs its own answer.
        raise InvalidCallback("nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidCallback("not a JSON object")
    code, data = body.get("code"), body.get("data")
    if not isinstance(code, int) or isinstance(code, bool):
        raise InvalidCallback("code missing")
    if not isinstance(data, dict):
        raise InvalidCallback("data missing")
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not task_id or len(task_id) > 128:
        raise InvalidCallback("task_id missing")
    present = [key for key in INFO_KEYS if key in data]
    if not present:
        raise InvalidCallback("no vocal_removal_info")
    info: Any = data[present[0]]
    if info is None:
        return Callback(code, task_id, {})
    if not isinstance(info, dict):
        raise InvalidCallback("vocal_removal_info is not an object")
    stems: dict[str, str] = {}
    for key, value in info.items():
        if not key.endswith("_url") or key == "origin_url" or value in (None, ""):
            continue
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise InvalidCallback(f"{key[:40]!r} is not a URL")
        stems[key.removesuffix("_url")] = value
    return Callback(code, task_id, stems)
