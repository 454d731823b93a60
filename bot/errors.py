"""Expected failures a member can cause. Each `str()` is plain words, safe to show, in the language
being spoken where the error is raised: the member's, since every refusal is raised inside the
interaction's task (`bot.i18n`). Words a caller hands in (an option's problem, an action) are
translated by the caller, or marked with `N_` and translated here."""

from __future__ import annotations

from bot.i18n import N_, _, ngettext, number, pgettext
from bot.models import JobState
from bot.product import Mode
from bot.render.text import plain


def credit_amount(amount: int) -> str:
    """ "1 credit", "1,590 credits": the same words as `bot.render.common.credit_amount` (the same
    catalog entry), for refusals, which sit below the Discord side."""
    return ngettext("{count} credit", "{count} credits", abs(amount), count=number(amount))


def relative_time(epoch: float) -> str:
    """A Discord timestamp that each reader sees as "in 5 minutes" in their own locale."""
    return f"<t:{int(epoch + 0.999)}:R>"


class AckTaken(Exception):
    """A split's acknowledgement was claimed by another process (this one stalled past its lease),
    which is telling the member the split did not start: its job must not be stored, and nothing
    more said (see `bot.acks`). Not a `StemBotError`: nobody is answered for it."""


class StemBotError(Exception):
    """Base of errors whose message may be shown to the member as is."""


ID_SHAPE = N_(
    "An id is made of letters, digits, `-` and `_` only (no spaces, no accents), like "
    "`5c79a1b2e6f04d7a9c3b8e2f1a0d4c6b` or `e231f4a8-6b0d-4c3e-9a7f-1d2b3c4e5f60`."
)
"""What a track id looks like (English msgid: `_(ID_SHAPE)` where shown)."""


def option_name(option: str) -> str:
    """An option's name as the member's command picker shows it (the same catalog entry the
    synced commands carry), so a refusal names the option the member typed."""
    return pgettext("option name", option)


class InvalidTrackId(StemBotError):
    """A `/split` id that cannot be one; the words say what an id looks like, never the id."""

    def __init__(self, option: str, problem: str) -> None:
        # TRANSLATORS: {option} is the option's name (task_id, audio_id), {problem} the rest of the
        # sentence saying what is wrong with the id ("is empty."), {shape} what an id looks like.
        super().__init__(
            _("`{option}` {problem} {shape}", option=option_name(option), problem=problem, shape=_(ID_SHAPE))
        )
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
        if refills_at is not None:
            # TRANSLATORS: {when} is a Discord timestamp each reader sees as "in 5 hours".
            then = _("Your allowance refills {when}.", when=relative_time(refills_at))
        else:
            then = _("Your allowance is one-off: a moderator can grant you bonus credits.")
        # TRANSLATORS: {cost} and {balance} are amounts of credits ("50 credits"); {then} is the next
        # sentence: when the member's allowance refills.
        cost = _(
            "This costs {cost} and you have {balance}. {then}",
            cost=credit_amount(needed),
            balance=credit_amount(balance),
            then=then,
        )
        super().__init__(cost, balance)
        self.needed = needed
        self.refills_at = refills_at


class TooManyJobsInFlight(SplitRefused):
    def __init__(self, limit: int, balance: int) -> None:
        super().__init__(
            ngettext(
                "You already have {count} split running, the most this server allows at once. Try "
                "again as soon as one has finished (usually within a few minutes).",
                "You already have {count} splits running, the most this server allows at once. Try "
                "again as soon as one has finished (usually within a few minutes).",
                limit,
            ),
            balance,
        )
        self.limit = limit


class MemberBlocked(SplitRefused):
    def __init__(self, reason: str | None, balance: int) -> None:
        if reason:
            # TRANSLATORS: {reason} is the moderator's own words, as they typed them.
            text = _(
                "A moderator has blocked you from starting splits in this server. Reason given: "
                "{reason}\nAsk a moderator if you think this is a mistake.",
                reason=plain(reason),
            )
        else:
            text = _(
                "A moderator has blocked you from starting splits in this server.\nAsk a moderator if "
                "you think this is a mistake."
            )
        super().__init__(text, balance)
        self.reason = reason


class CooldownActive(SplitRefused):
    def __init__(self, retry_at: float, balance: int) -> None:
        super().__init__(
            # TRANSLATORS: {when} is a Discord timestamp each reader sees as "in 5 minutes".
            _(
                "This server asks members to wait between splits. You can split again {when}.",
                when=relative_time(retry_at),
            ),
            balance,
        )
        self.retry_at = retry_at


class BudgetUsedUp(SplitRefused):
    """The server's monthly budget (set by the bot's owner) cannot pay for this split."""

    def __init__(self, renews_at: float, balance: int, still_fits: Mode | None = None) -> None:
        when = relative_time(renews_at)
        if still_fits is None:
            # TRANSLATORS: {bot} is StemBot; {when} a Discord timestamp read as "in 3 days".
            text = _(
                "This server's monthly {bot} budget is used up, so no new splits can start here until "
                "it renews. It renews {when}. Stems someone already split here can still be shared.",
                bot="StemBot",
                when=when,
            )
        else:
            # TRANSLATORS: {mode} is a separation mode ("Vocals + instrumental (2 stems)"); {when} a
            # Discord timestamp read as "in 3 days".
            text = _(
                "This server's monthly {bot} budget is almost used up: what is left is not enough for "
                "this split, but a {mode} split still fits. It renews {when}.",
                bot="StemBot",
                mode=still_fits.label,
                when=when,
            )
        super().__init__(text, balance)
        self.renews_at = renews_at
        self.still_fits = still_fits


class BotBudgetUsedUp(SplitRefused):
    """The bot's monthly budget (`MONTHLY_BUDGET`, every server together) cannot pay for this split.
    The member is told no figures: they are the bot's owner's business."""

    def __init__(self, renews_at: float, balance: int, still_fits: Mode | None = None) -> None:
        when = relative_time(renews_at)
        if still_fits is None:
            # TRANSLATORS: {bot} is StemBot; {when} a Discord timestamp read as "in 3 days".
            text = _(
                "{bot}'s monthly budget is spent, for every server it is in, so no new splits can start "
                "until it renews. It renews {when}. Stems someone already split here can still be shared.",
                bot="StemBot",
                when=when,
            )
        else:
            # TRANSLATORS: {mode} is a separation mode ("Vocals + instrumental (2 stems)"); {when} a
            # Discord timestamp read as "in 3 days".
            text = _(
                "{bot}'s monthly budget is almost spent, for every server it is in: what is left is not "
                "enough for this split, but a {mode} split still fits. It renews {when}.",
                bot="StemBot",
                mode=still_fits.label,
                when=when,
            )
        super().__init__(text, balance)
        self.renews_at = renews_at
        self.still_fits = still_fits


class NotAModerator(StemBotError):
    """`action`: what was refused, an English msgid marked with `N_` (it is logged in English too),
    completing "Only moderators can …"."""

    def __init__(self, action: str, moderator_role_id: int | None = None) -> None:
        if moderator_role_id is None:
            # TRANSLATORS: {action} completes the sentence: "see other members' history".
            text = _(
                "Only moderators can {action}: that needs the Manage Server permission. Nothing was "
                "changed; ask a moderator if it needs doing.",
                action=_(action),
            )
        else:
            role = f"<@&{moderator_role_id}>"
            # TRANSLATORS: {action} completes the sentence: "see other members' history"; {role} is
            # the moderator role, shown as its name.
            text = _(
                "Only moderators can {action}: that needs the Manage Server permission or the {role} "
                "role. Nothing was changed; ask a moderator if it needs doing.",
                action=_(action),
                role=role,
            )
        super().__init__(text)
        self.action = action


class NotAServerManager(StemBotError):
    def __init__(self) -> None:
        super().__init__(
            _(
                "Only server managers (Manage Server) and the bot's owner can see the bot's status. "
                "Ask a server manager if you need to know."
            )
        )


class NeedsManageServer(StemBotError):
    """A moderator action reserved for members with Manage Server, whatever the moderator role.
    `action`: an English msgid marked with `N_`."""

    def __init__(self, action: str) -> None:
        super().__init__(
            # TRANSLATORS: {action} completes the sentence: "change or clear the moderator role or
            # the audit channel".
            _(
                "Only members with the Manage Server permission (administrators included) can "
                "{action}: those settings decide who moderates and where moderators' actions are "
                "recorded. Ask one of them. Nothing was changed.",
                action=_(action),
            )
        )
        self.action = action


class BalanceWouldGoNegative(StemBotError):
    def __init__(self, member_id: int, taken: int, balance: int) -> None:
        member = f"<@{member_id}>"
        super().__init__(
            # TRANSLATORS: {member} is a member, shown as their name; {balance} and {taken} are
            # amounts of credits ("50 credits").
            _(
                "{member} has {balance}, so {taken} can't be taken away: a balance can't go below zero. "
                "Nothing was changed; take away at most {balance}, or use `/quota set`.",
                member=member,
                balance=credit_amount(balance),
                taken=credit_amount(taken),
            )
        )
        self.taken = taken
        self.balance = balance


class InvalidOption(StemBotError):
    """`refusal`: the whole refusal, one or two sentences in the language being spoken, naming
    the option as the member's picker shows it (`option_name(option)`) and saying that nothing was
    changed: "`reason` is too long (250 characters; at most 200). Nothing was changed." Whole, so
    each language can put the option's name where its grammar wants it."""

    def __init__(self, option: str, refusal: str) -> None:
        super().__init__(refusal)
        self.option = option
        self.refusal = refusal


class SplittingUnavailable(StemBotError):
    """Nobody can start a split right now. Nothing was charged."""


class SplittingPaused(SplittingUnavailable):
    def __init__(self) -> None:
        super().__init__(
            _(
                "Splitting is paused: the separation service isn't accepting this bot's jobs right now, "
                "and the bot's operator has been alerted. Nothing was charged; please try again later."
            )
        )


class ShuttingDown(SplittingUnavailable):
    def __init__(self) -> None:
        super().__init__(
            _("{bot} is restarting. Nothing was charged; please try again in a minute.", bot="StemBot")
        )


# The bot's owner's refusals, each one whole sentence (English msgids: `_(…)` where shown).
OWNERS_BUDGETS = N_(
    "Only the bot's owner can see or set the servers' monthly budgets: they pay for every split. "
    "Nothing was changed."
)
OWNERS_USAGE = N_("Only the bot's owner can see every server's usage: it is the API account's spending.")


class NotTheBotOwner(StemBotError):
    """`refusal`: one of the owner's refusals above, an English msgid marked with `N_`."""

    def __init__(self, refusal: str = OWNERS_BUDGETS) -> None:
        super().__init__(_(refusal))


class ExportTooLarge(StemBotError):
    """The ledger of the period would not fit one file under the upload limit."""

    def __init__(self, days: int, entries: int, fitting_days: int, limit: int) -> None:
        super().__init__(
            # TRANSLATORS: {days} is a number of days; {count} of entries; {limit} a size in MiB.
            # `days:{fitting}` is the command's option as typed: write it with this catalog's own name
            # for the option `days` (what the member's picker shows).
            ngettext(
                "The ledger of the last {days} days has {count} entry: too many for one file within "
                "this server's upload limit ({limit} MiB). Try fewer days, such as `days:{fitting}`.",
                "The ledger of the last {days} days has {count} entries: too many for one file within "
                "this server's upload limit ({limit} MiB). Try fewer days, such as `days:{fitting}`.",
                entries,
                days=number(days),
                limit=number(round(limit / 1024 / 1024)),
                fitting=fitting_days,
            )
        )
        self.days = days
        self.entries = entries
        self.fitting_days = fitting_days


class UnknownJob(StemBotError):
    def __init__(self, job_id: int) -> None:
        super().__init__(
            _(
                "There is no Job #{job} in this server. `/stems list` shows your splits with their numbers.",
                job=job_id,
            )
        )
        self.job_id = job_id


class NotYourJob(StemBotError):
    """Another member's job, asked for by someone who is not a moderator. `action`: what they
    tried ("see", "cancel", "keep"), each refused in a whole sentence of its own."""

    def __init__(self, job_id: int, action: str) -> None:
        super().__init__(_(_NOT_YOUR_JOB.get(action, _NOT_YOUR_JOB["see"]), job=job_id))
        self.job_id = job_id


_NOT_YOUR_JOB: dict[str, str] = {
    "see": N_(
        "Job #{job} is another member's split: only they or a moderator can see it. "
        "`/stems list` shows your own."
    ),
    "cancel": N_(
        "Job #{job} is another member's split: only they or a moderator can cancel it. "
        "`/stems list` shows your own."
    ),
    "keep": N_(
        "Job #{job} is another member's split: only they or a moderator can keep it in Discord. "
        "`/stems list` shows your own."
    ),
}


class KeepRefused(StemBotError):
    """Keeping a result in Discord cannot start; nothing was changed."""


class KeepingOff(KeepRefused):
    def __init__(self) -> None:
        super().__init__(
            _(
                "Keeping stems in Discord is turned off in this server, so the files stay download "
                "links. A moderator can turn it on with `/quota settings keep_stems`."
            )
        )


class NothingToKeep(KeepRefused):
    """A job with no stems to keep yet (or ever), said by its state: `delivered` is whether its
    result is posted."""

    def __init__(self, job_id: int, state: JobState, *, delivered: bool) -> None:
        if state is JobState.FAILED:
            text = _("Job #{job} has no stems to keep: the split didn't work.", job=job_id)
        elif state is JobState.CANCELLED:
            text = _("Job #{job} has no stems to keep: it was cancelled.", job=job_id)
        elif state is not JobState.SUCCEEDED:
            text = _(
                "Job #{job} has no stems to keep: it is not finished yet. Try again once the stems are "
                "ready.",
                job=job_id,
            )
        elif delivered:
            text = _("Job #{job} has no stems to keep: the service returned none.", job=job_id)
        else:
            text = _(
                "Job #{job} has no stems to keep: its result is not posted yet. Try again in a moment.",
                job=job_id,
            )
        super().__init__(text)
        self.job_id = job_id


class LinksExpired(KeepRefused):
    def __init__(self, job_id: int, expired_at: float) -> None:
        super().__init__(
            # TRANSLATORS: {when} is a Discord timestamp each reader sees as "2 days ago".
            _(
                "The links of Job #{job} expired {when}, so there is nothing left to download and keep. "
                "Run `/split` again with the same ids to get fresh stems.",
                job=job_id,
                when=relative_time(expired_at),
            )
        )
        self.job_id = job_id


class CannotAttachFiles(KeepRefused):
    def __init__(self) -> None:
        super().__init__(
            _(
                "I can't attach files in this channel (I don't have the Attach Files permission here), "
                "so I can't keep the stems in Discord. Ask a moderator to allow it; nothing was changed."
            )
        )
