"""Logging set-up: one format, and no secret ever reaches a log line."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Interaction and webhook tokens travel in URL paths (discord.py logs them at DEBUG level).
_TOKEN_IN_PATH = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_\-.]+")


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then blanks out known secrets and tokens in URL paths (tracebacks too)."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return _TOKEN_IN_PATH.sub(r"\1********", text)


def _not_voice_notice(record: logging.LogRecord) -> bool:
    # StemBot has no voice features; discord.py's "voice will NOT be supported" only confuses.
    return "voice will NOT be supported" not in record.getMessage()


def configure_logging(level: int, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    handler.addFilter(_not_voice_notice)
    root.handlers[:] = [handler]
    root.setLevel(level)
    # discord.py's per-request chatter is noise at INFO; its warnings and errors still show.
    logging.getLogger("discord.http").setLevel(max(level, logging.WARNING))
    logging.getLogger("discord.gateway").setLevel(max(level, logging.INFO))
