"""Background tasks the bot owns: their failures are logged once, never lost silently."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


def log_failure(task: asyncio.Task[Any]) -> None:
    """A done-callback: log the task's exception (by task name) if it ended with one."""
    if not task.cancelled() and task.exception() is not None:
        log.error("Background task %r failed unexpectedly", task.get_name(), exc_info=task.exception())
