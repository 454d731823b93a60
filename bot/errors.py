"""Expected failures a member can cause. Each `str()` is plain words, safe to show."""

from __future__ import annotations

from bot.models import JobState
from bot.product import Mode
from bot.render.text import plain


def _relative_time(epoch: float) -> str:
    """A Discord timestamp that each reader sees as "in 5 minutes" in their own locale."""
    return f"<t:{int(epoch + 0.999)}:R>"


class AckTaken(Exception):
    """A split's acknowledgement was claimed by another process (this one stalled past its lease),
    which is telling the member the split did not start: its job must not be stored, and nothing
    more said (see `bot.acks`). Not a `StemBotError`: nobody is answered for it."""


class StemBotError(Exception):
    """Base of errors whose message may be shown to the member as is."""


ID_SHAPE = (
    "An id is made of letters, digits, `-` and `_` only (no spaces, no accents), like "
    "`5c79a1b2e6f04d7a9c3b8e2f1a0d4c6b` or `e231f4a8-6b0d-4c3e-9a7f-1d2b3c4e5f60`."
)


class InvalidTrackId(StemBotError):
    """A `/split` id that cannot be one; the words say what an id looks like, never the id."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"`{option}` {problem} {ID_SHAPE}")
        self.option = option
        self.problem = problem


class SplitRefused(StemBotError):
    """A `/split` that cannot start now; nothing was charged. `balance` is the member's balance."""

    def __init__(self, message: str, balance: int) -> None:
        super().__init__(message)
        self.balance = balance


class InsufficientCredits(SplitRefused):
    """`refills_at`: when the member's allowance next refills; None for a one-off allowance."""

    def __init__(self, needed: int, balance: int, refills_at: float | None = None) -> None:
        then = (
            f"Your allowance refills {_relative_time(refills_at)}."
            if refills_at is not None
            else "Your allowance is one-off: a moderator can grant you bonus credits."
        )
        super().__init__(f"This costs {needed:,} credits and you have {balance:,}. {then}", balance)
        self.needed = needed
        self.refills_at = refills_at


class TooManyJobsInFlight(SplitRefused):
    def __init__(self, limit: int, balance: int) -> None:
        super().__init__(
            f"You already have {limit} split{'s' if limit != 1 else ''} running, the most this server "
            "allows at once. Try again as soon as one has finished (usually within a few minutes).",
            balance,
        )
        self.limit = limit


class MemberBlocked(SplitRefused):
    def __init__(self, reason: str | None, balance: int) -> None:
        text = "A moderator has blocked you from starting splits in this server."
        if reason:
            text += f" Reason given: {plain(reason)}"
        text += "\nAsk a moderator if you think this is a mistake."
        super().__init__(text, balance)
        self.reason = reason


class CooldownActive(SplitRefused):
    def __init__(self, retry_at: float, balance: int) -> None:
        super().__init__(
            "This server asks members to wait between splits. "
            f"You can split again {_relative_time(retry_at)}.",
            balance,
        )
        self.retry_at = retry_at


class BudgetUsedUp(SplitRefused):
    """The server's monthly budget (set by the bot's owner) cannot pay for this split."""

    def __init__(self, renews_at: float, balance: int, still_fits: Mode | None = None) -> None:
        renews = f"It renews {_relative_time(renews_at)}."
        if still_fits is None:
            text = (
                "This server's monthly StemBot budget is used up, so no new splits can start here "
                f"until it renews. {renews} Stems someone already split here can still be shared."
            )
        else:
            text = (
                "This server's monthly StemBot budget is almost used up: what is left is not enough "
                f"for this split, but a {still_fits.label} split still fits. {renews}"
            )
        super().__init__(text, balance)
        self.renews_at = renews_at
        self.still_fits = still_fits


class BotBudgetUsedUp(SplitRefused):
    """The bot's monthly budget (`MONTHLY_BUDGET`, every server together) cannot pay for this split.
    The member is told no figures: they are the bot's owner's business."""

    def __init__(self, renews_at: float, balance: int, still_fits: Mode | None = None) -> None:
        renews = f"It renews {_relative_time(renews_at)}."
        if still_fits is None:
            text = (
                "StemBot's monthly budget is spent, for every server it is in, so no new splits can "
                f"start until it renews. {renews} Stems someone already split here can still be shared."
            )
        else:
            text = (
                "StemBot's monthly budget is almost spent, for every server it is in: what is left is "
                f"not enough for this split, but a {still_fits.label} split still fits. {renews}"
            )
        super().__init__(text, balance)
        self.renews_at = renews_at
        self.still_fits = still_fits


class NotAModerator(StemBotError):
    def __init__(self, action: str, moderator_role_id: int | None = None) -> None:
        who = "the Manage Server permission"
        if moderator_role_id is not None:
            who += f" or the <@&{moderator_role_id}> role"
        super().__init__(
            f"Only moderators can {action}: that needs {who}. Nothing was changed; ask a moderator "
            "if it needs doing."
        )
        self.action = action


class NotAServerManager(StemBotError):
    def __init__(self) -> None:
        super().__init__(
            "Only server managers (Manage Server) and the bot's owner can see the bot's status. "
            "Ask a server manager if you need to know."
        )


class NeedsManageServer(StemBotError):
    """A moderator action reserved for members with Manage Server, whatever the moderator role."""

    def __init__(self, action: str) -> None:
        super().__init__(
            f"Only members with the Manage Server permission (administrators included) can {action}: "
            "those settings decide who moderates and where moderators' actions are recorded. "
            "Ask one of them. Nothing was changed."
        )
        self.action = action


class BalanceWouldGoNegative(StemBotError):
    def __init__(self, member_id: int, taken: int, balance: int) -> None:
        super().__init__(
            f"<@{member_id}> has {balance:,} credits, so {taken:,} can't be taken away: a balance can't go "
            f"below zero. Nothing was changed; take away at most {balance:,}, or use `/quota set`."
        )
        self.taken = taken
        self.balance = balance


class InvalidOption(StemBotError):
    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"`{option}` {problem} Nothing was changed.")
        self.option = option
        self.problem = problem


class SplittingUnavailable(StemBotError):
    """Nobody can start a split right now. Nothing was charged."""


class SplittingPaused(SplittingUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "Splitting is paused: the separation service isn't accepting this bot's jobs right now, "
            "and the bot's operator has been alerted. Nothing was charged; please try again later."
        )


class ShuttingDown(SplittingUnavailable):
    def __init__(self) -> None:
        super().__init__("StemBot is restarting. Nothing was charged; please try again in a minute.")


class NotTheBotOwner(StemBotError):
    def __init__(
        self, what: str = "see or set the servers' monthly budgets: they pay for every split"
    ) -> None:
        super().__init__(f"Only the bot's owner can {what}. Nothing was changed.")


class ExportTooLarge(StemBotError):
    """The ledger of the period would not fit one file under the upload limit."""

    def __init__(self, days: int, entries: int, fitting_days: int, limit: int) -> None:
        super().__init__(
            f"The ledger of the last {days} days has {entries:,} entries: too many for one file "
            f"within this server's upload limit ({limit / 1024 / 1024:.0f} MiB). Try fewer days, "
            f"such as `days:{fitting_days}`."
        )
        self.days = days
        self.entries = entries
        self.fitting_days = fitting_days


class UnknownJob(StemBotError):
    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"There is no Job #{job_id} in this server. `/stems list` shows your splits with their numbers."
        )
        self.job_id = job_id


class NotYourJob(StemBotError):
    def __init__(self, job_id: int, action: str) -> None:
        super().__init__(
            f"Job #{job_id} is another member's split: only they or a moderator can {action} it. "
            "`/stems list` shows your own."
        )
        self.job_id = job_id


class KeepRefused(StemBotError):
    """Keeping a result in Discord cannot start; nothing was changed."""


class KeepingOff(KeepRefused):
    def __init__(self) -> None:
        super().__init__(
            "Keeping stems in Discord is turned off in this server, so the files stay download links. "
            "A moderator can turn it on with `/quota settings keep_stems`."
        )


class NothingToKeep(KeepRefused):
    """A job with no stems to keep yet (or ever), said by its state: `delivered` is whether its
    result is posted."""

    def __init__(self, job_id: int, state: JobState, *, delivered: bool) -> None:
        if state is JobState.FAILED:
            why = "the split didn't work."
        elif state is JobState.CANCELLED:
            why = "it was cancelled."
        elif state is not JobState.SUCCEEDED:
            why = "it is not finished yet. Try again once the stems are ready."
        elif delivered:
            why = "the service returned none."
        else:
            why = "its result is not posted yet. Try again in a moment."
        super().__init__(f"Job #{job_id} has no stems to keep: {why}")
        self.job_id = job_id


class LinksExpired(KeepRefused):
    def __init__(self, job_id: int, expired_at: float) -> None:
        super().__init__(
            f"The links of Job #{job_id} expired {_relative_time(expired_at)}, so there is nothing left "
            "to download and keep. Run `/split` again with the same ids to get fresh stems."
        )
        self.job_id = job_id


class CannotAttachFiles(KeepRefused):
    def __init__(self) -> None:
        super().__init__(
            "I can't attach files in this channel (I don't have the Attach Files permission here), so I "
            "can't keep the stems in Discord. Ask a moderator to allow it; nothing was changed."
        )


class MixRefused(StemBotError):
    """A mix of a result's stems cannot start; nothing was charged."""


class MixingOff(MixRefused):
    def __init__(self) -> None:
        super().__init__(
            "Mixing stems is turned off in this server. A moderator can turn it on with "
            "`/quota settings mix_stems`."
        )


class NothingToMix(MixRefused):
    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"Job #{job_id} has nothing to mix: only a finished full split with at least two stems "
            "can be mixed."
        )
        self.job_id = job_id


class BadMixChoice(MixRefused):
    def __init__(self, stems: int) -> None:
        super().__init__(
            f"Choose the stems to keep in the mix: at least one, and at most {stems - 1} of the {stems} "
            "(a mix of them all is the song itself)."
        )


class MixSourcesGone(MixRefused):
    def __init__(self, job_id: int, expired_at: float) -> None:
        super().__init__(
            f"The links of Job #{job_id} expired {_relative_time(expired_at)} and its stems were not kept "
            "in Discord, so there is nothing left to mix. Nothing was charged."
        )
        self.job_id = job_id


class MixBlocked(MixRefused):
    def __init__(self, reason: str | None) -> None:
        text = "A moderator has blocked you in this server, so you can't ask for mixes here."
        if reason:
            text += f" Reason given: {plain(reason)}"
        super().__init__(text)
        self.reason = reason


class MixOfADmResult(MixRefused):
    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"Job #{job_id}'s result was sent to its member by DM, where its mixes go too: only they can "
            "mix it."
        )
        self.job_id = job_id
