"""The checks on what a moderator typed into a `/quota` command (a reason, an amount), shared by
the quota service's actions; each refusal is one whole sentence naming the option as the member's
picker shows it."""

from __future__ import annotations

import re

from bot.economy import MAX_AMOUNT
from bot.errors import InvalidOption, option_name
from bot.i18n import _, number

MAX_REASON_LENGTH = 200


def clean_reason(reason: str | None) -> str | None:
    """A reason as one line of at most `MAX_REASON_LENGTH` characters, or None if blank."""
    if reason is None:
        return None
    text = re.sub(r"\s+", " ", "".join(ch if ch.isprintable() else " " for ch in reason)).strip()
    if len(text) > MAX_REASON_LENGTH:
        raise InvalidOption(
            "reason",
            # TRANSLATORS: {option} is the option: "`reason` is too long (…)".
            _(
                "`{option}` is too long ({length} characters; at most {most}). Nothing was changed.",
                option=option_name("reason"),
                length=number(len(text)),
                most=number(MAX_REASON_LENGTH),
            ),
        )
    return text or None


def check_amount(amount: int, *, low: int) -> None:
    if not low <= amount <= MAX_AMOUNT:
        raise InvalidOption(
            "amount",
            # TRANSLATORS: {option} is the option: "`amount` must be …".
            _(
                "`{option}` must be a whole number from {low} to {high}. Nothing was changed.",
                option=option_name("amount"),
                low=number(low),
                high=number(MAX_AMOUNT),
            ),
        )
