"""Expected failures a member can cause. Each `str()` is plain words, safe to show."""

from __future__ import annotations


class StemBotError(Exception):
    """Base of errors whose message may be shown to the member as is."""


class InvalidTrackId(StemBotError):
    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"`{option}` {problem}")
        self.option = option
        self.problem = problem


class InsufficientCredits(StemBotError):
    def __init__(self, needed: int, balance: int) -> None:
        super().__init__(f"This costs {needed} credits and you have {balance}.")
        self.needed = needed
        self.balance = balance


class TooManyJobsInFlight(StemBotError):
    def __init__(self, limit: int, balance: int) -> None:
        super().__init__(
            f"You already have {limit} split{'s' if limit != 1 else ''} running; "
            "wait for one to finish, then try again."
        )
        self.limit = limit
        self.balance = balance
