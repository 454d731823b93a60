"""Why a split failed, as the member reads it.

The job stores its `Failure` (and, for a failed separation, the service's own words, shown quoted by
`results.failed`); the words are English msgids here, translated when the failure is shown, in the
reader's language, so a stored failure reads in whatever language it is shown in later.
"""

from __future__ import annotations

from bot.i18n import N_, _
from bot.models import Failure

# Why a split failed: the job stores the `Failure` (and, for a failed separation, the service's own
# words), and these English msgids are translated when the failure is shown, in the reader's
# language.
_TEXTS: dict[Failure, str] = {
    Failure.INVALID_IDS: N_(
        "The separation service doesn't recognise this track. Check that `task_id` and `audio_id` were "
        "copied from the same generation, then try again: with the right ids it should work."
    ),
    Failure.INPUT_TOO_LONG: N_(
        "This track is too long for the separation service. Trying again won't help; a shorter track "
        "will work."
    ),
    Failure.SEPARATION_FAILED: N_(
        "The separation service tried but couldn't split this track. You can try once more; if it "
        "fails again, this track probably can't be split."
    ),
    Failure.TIMED_OUT: N_(
        "The separation service took far longer than usual, so the bot stopped waiting. Try again "
        "later: the service is probably busy."
    ),
    Failure.SERVICE_ACCOUNT: N_(
        "Splitting isn't available right now, and the bot's operator has been alerted. Please try "
        "again later."
    ),
    Failure.SERVICE_ERROR: N_(
        "Something kept going wrong between the bot and the separation service, so the bot gave up on "
        "this split. Please try again in a few minutes."
    ),
    Failure.UNCONFIRMED: N_(
        "The bot couldn't confirm that the separation service started your job: the connection broke, "
        "or an error page came back instead of the service's answer. To be safe it won't send it "
        "twice. Please run /split again."
    ),
}


def failure_text(failure: Failure) -> str:
    """Why a split failed and what to do, in the language being spoken."""
    return _(_TEXTS[failure])
