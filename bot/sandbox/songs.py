"""The sandbox's "Get Music Generation Details": any task id is a generation of two takes with a
made-up title and duration, so `/split` by title (the menu of takes, songs named in messages) can
be tried for free. Made from the task id alone: the same id always names the same song, across
restarts and processes."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from bot.sandbox.contract import envelope

_FIRST = ("Midnight", "Neon", "Paper", "Golden", "Silver", "Velvet", "Electric", "Quiet", "Broken", "Summer")
_SECOND = ("Drive", "Skyline", "Hearts", "Rain", "Echoes", "Horizon", "Lanterns", "Tides", "Static", "Parade")
TAKES = 2


def generation_data(task_id: str) -> dict[str, Any]:
    """The documented `data` of a finished generation of two takes of one made-up song."""
    digest = hashlib.sha256(task_id.encode()).digest()
    title = f"{_FIRST[digest[0] % len(_FIRST)]} {_SECOND[digest[1] % len(_SECOND)]}"
    base = 120 + digest[2] % 120  # two to four minutes
    tracks = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"stembot-sandbox:{task_id}:{take}")),
            "title": title,
            "duration": float(base + take * 7) + digest[3 + take] % 100 / 100,
            "imageUrl": None,
            "audioUrl": None,
            "streamAudioUrl": None,
            "tags": "sandbox",
            "createTime": "2026-01-01 00:00:00",
        }
        for take in range(TAKES)
    ]
    return {
        "taskId": task_id,
        "status": "SUCCESS",
        "type": "GENERATE",
        "response": {"taskId": task_id, "sunoData": tracks},
        "errorCode": None,
        "errorMessage": None,
    }


def generation_answer(task_id: str | None) -> tuple[int, bytes]:
    """The envelope code and body for `task_id` (the caller checked the key)."""
    if not task_id:
        return 400, envelope(400, "taskId is required")
    if len(task_id) > 100:
        return 400, envelope(400, "task not found")
    return 200, envelope(200, "success", generation_data(task_id))
