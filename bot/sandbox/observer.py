"""The sandbox's observer seam: what it tells whoever watches it, one call per request or task
event. The sandbox works the same whether anyone watches; whatever wraps it (the tests' simulator,
which serves its own routes around the sandbox's checks and task book) hears the task events,
completions and callbacks, through it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.sandbox.contract import SandboxTask


@dataclass(slots=True)
class Call:
    """One request received."""

    method: str
    path: str
    time: float
    endpoint: str  # "submit" | "record" | "credit" | "other"
    task_id: str | None = None  # record-info's query taskId
    status: int | None = None  # HTTP status answered; None when no answer was sent
    code: int | None = None  # envelope code answered (HTTP status for non-JSON bodies)


@dataclass
class SubmitCall:
    """One submit request (kept even when it failed)."""

    time: float
    body: Any  # the parsed JSON body, or the raw text when it did not parse
    code: int | None = None  # answered envelope code / HTTP status; None when no answer
    task_id: str | None = None  # separation task created by this call, if any


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


class SandboxObserver(Protocol):
    """Told of each request and task event; every method returns at once (no I/O)."""

    def requested(self, call: Call) -> None:
        """A request was answered (or dropped): `call` holds what was answered."""

    def submitted(self, submit: SubmitCall) -> None:
        """A submit arrived (its body read); `submit` is completed once it is answered."""

    def polled(self, task_id: str | None) -> None:
        """A record-info request arrived."""

    def completed(self, task: SandboxTask) -> None:
        """A task finished (its completion timer fired, or it was finished at once)."""

    def callback_sent(self, attempt: CallbackAttempt) -> None:
        """A callback POST was tried."""


class Unobserved:
    """The observer when nobody watches."""

    def requested(self, call: Call) -> None:
        pass

    def submitted(self, submit: SubmitCall) -> None:
        pass

    def polled(self, task_id: str | None) -> None:
        pass

    def completed(self, task: SandboxTask) -> None:
        pass

    def callback_sent(self, attempt: CallbackAttempt) -> None:
        pass
