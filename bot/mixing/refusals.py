"""Why a mix of a result's stems cannot be made as asked (`bot.errors` has the refusals every
feature shares). Each `str()` is plain words in the language being spoken where it is raised."""

from __future__ import annotations

from bot.errors import StemBotError, relative_time
from bot.i18n import _, ngettext, number
from bot.render.text import plain


class MixRefused(StemBotError):
    """A mix of a result's stems cannot start; nothing was charged."""


class MixingOff(MixRefused):
    def __init__(self) -> None:
        super().__init__(
            _(
                "Mixing stems is turned off in this server. A moderator can turn it on with "
                "`/quota settings mix_stems`."
            )
        )


class NothingToMix(MixRefused):
    def __init__(self, job_id: int) -> None:
        super().__init__(
            _(
                "Job #{job} has nothing to mix: only a finished full split with at least two stems can "
                "be mixed.",
                job=job_id,
            )
        )
        self.job_id = job_id


class BadMixChoice(MixRefused):
    def __init__(self, stems: int) -> None:
        super().__init__(
            # TRANSLATORS: {most} is {count} minus one; {count} the stems the split has (2 to 12).
            ngettext(
                "Choose the stems to keep in the mix: at least one, and at most {most} of the {count} "
                "(a mix of them all is the song itself).",
                "Choose the stems to keep in the mix: at least one, and at most {most} of the {count} "
                "(a mix of them all is the song itself).",
                stems,
                most=number(stems - 1),
            )
        )


class MixSourcesGone(MixRefused):
    def __init__(self, job_id: int, expired_at: float) -> None:
        super().__init__(
            # TRANSLATORS: {when} is a Discord timestamp each reader sees as "2 days ago".
            _(
                "The links of Job #{job} expired {when} and its stems were not kept in Discord, so "
                "there is nothing left to mix. Nothing was charged.",
                job=job_id,
                when=relative_time(expired_at),
            )
        )
        self.job_id = job_id


class MixBlocked(MixRefused):
    def __init__(self, reason: str | None) -> None:
        if reason:
            # TRANSLATORS: {reason} is the moderator's own words, as they typed them.
            text = _(
                "A moderator has blocked you in this server, so you can't ask for mixes here. Reason "
                "given: {reason}",
                reason=plain(reason),
            )
        else:
            text = _("A moderator has blocked you in this server, so you can't ask for mixes here.")
        super().__init__(text)
        self.reason = reason


class MixOfADmResult(MixRefused):
    def __init__(self, job_id: int) -> None:
        super().__init__(
            _(
                "Job #{job}'s result was sent to its member by DM, where its mixes go too: only they "
                "can mix it.",
                job=job_id,
            )
        )
        self.job_id = job_id
