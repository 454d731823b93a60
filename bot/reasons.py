"""Why a keep, a stem or a mix stopped: sentences stored in the database and shown later, in the
language of whoever reads them then.

A reason is stored as the English sentence it is (what the logs and the operator read, and what
rows from before the catalogs hold), built only from the fixed messages below with `because`.
`shown` reads a stored sentence back: it finds which message it is (each message's fixed words
around its `{placeholders}`) and says that message again in the language being spoken, its
values carried over: a `{why}` is itself a reason (said again the same way), a `{stem}` a stem's
name (named the reader's way), anything else (an error code, a size, an HTTP status) as it was.
A sentence that is none of these (the API's or Discord's own words, a text from an older
version) is shown as it is: not ours to translate.

Every message is here, in one place, so the catalogs see each once and `shown` knows them all;
the modules that stop a keep or a mix raise with these constants. Pure: no Discord, no I/O.
"""

from __future__ import annotations

import re
from functools import cache

from bot import i18n
from bot.i18n import N_, _
from bot.product import STEMS, stem_name

# -- downloading a stem (bot.downloads) -------------------------------------------------------
NOT_A_WEB_ADDRESS = N_("not a web address")
SERVER_NOT_FOUND = N_("the file's server could not be found")
ADDRESS_NOT_ALLOWED = N_("address not allowed")
DOWNLOAD_FAILED = N_("the download failed")
# TRANSLATORS: {status} is an HTTP status code such as 302.
REDIRECT_WITHOUT_ADDRESS = N_("the server answered {status} without an address")
REDIRECT_LOOP = N_("a redirect loop")
TOO_MANY_REDIRECTS = N_("too many redirects")
SERVER_TIMED_OUT = N_("the file's server did not answer in time")
CONNECTION_DROPPED = N_("the connection dropped during the download")
SERVER_UNREACHABLE = N_("the file's server could not be reached")
# TRANSLATORS: {status} is an HTTP status code such as 503.
SERVER_KEPT_FAILING = N_("the file's server kept failing (HTTP {status})")
# TRANSLATORS: {status} is an HTTP status code such as 404.
LINK_GONE = N_("the link no longer works (HTTP {status})")
# TRANSLATORS: {status} is an HTTP status code such as 403.
SERVER_REFUSED = N_("the file's server refused it (HTTP {status})")
HTML_PAGE = N_("an HTML page")
NOT_AUDIO = N_("not an audio file")
# TRANSLATORS: {size} is a file size such as "25 MB".
OVER_UPLOAD_LIMIT = N_("larger than the upload limit ({size})")
EMPTY_FILE = N_("empty")

# -- posting in Discord (bot.discord_side.keeper, bot.keeping) ---------------------------------
# TRANSLATORS: {code} is Discord's error code or HTTP status, such as "50013" or "HTTP 503".
OPEN_THREAD_FAILED = N_("Discord failed while opening the thread ({code})")
# TRANSLATORS: {code} is Discord's error code or HTTP status.
POST_FAILED = N_("Discord failed while posting the stems ({code})")
# TRANSLATORS: {code} is Discord's error code or HTTP status.
READ_FILE_FAILED = N_("Discord failed while reading a kept file ({code})")
# TRANSLATORS: {code} is Discord's error code or HTTP status.
READ_POSTED_FAILED = N_("Discord failed while reading what was posted ({code})")
# TRANSLATORS: {code} is Discord's error code or HTTP status.
MARK_KEPT_FAILED = N_("Discord failed while marking the result kept ({code})")
# TRANSLATORS: {error} is the name of a network error, such as "ClientConnectorError".
DISCORD_UNREACHABLE = N_("Discord could not be reached ({error})")
DISCORD_NO_ANSWER = N_("Discord did not answer")
UNEXPECTED = N_("an unexpected error")
TWIN_AT_WORK = N_("the same stems are being kept")
RESULT_MESSAGE_GONE = N_("the result message could not be found")
OVER_DISCORD_LIMIT = N_("larger than Discord accepts here")
NOT_DOWNLOADED = N_("it could not be downloaded")

# Discord refusing a place, one sentence per thing the bot was doing and per kind of refusal.
NO_PERMISSION_THREAD = N_("Discord didn't let the bot open a thread here (a permission is missing)")
NO_PERMISSION_POST = N_("Discord didn't let the bot post the files here (a permission is missing)")
NO_PERMISSION_READ = N_(
    "Discord didn't let the bot read the thread's messages here (a permission is missing)"
)
WRONG_CHANNEL_THREAD = N_("this kind of channel doesn't let the bot open a thread")
WRONG_CHANNEL_POST = N_("this kind of channel doesn't let the bot post the files")
WRONG_CHANNEL_READ = N_("this kind of channel doesn't let the bot read the thread's messages")
GONE_THREAD = N_("the channel or message is gone, so the bot couldn't open a thread")
GONE_POST = N_("the channel or message is gone, so the bot couldn't post the files")
GONE_READ = N_("the channel or message is gone, so the bot couldn't read the thread's messages")
# TRANSLATORS: {code} is Discord's error code or HTTP status.
REFUSED_THREAD = N_("Discord refused to let the bot open a thread ({code})")
# TRANSLATORS: {code} is Discord's error code or HTTP status.
REFUSED_POST = N_("Discord refused to let the bot post the files ({code})")
# TRANSLATORS: {code} is Discord's error code or HTTP status.
REFUSED_READ = N_("Discord refused to let the bot read the thread's messages ({code})")

# -- mixing (bot.mixing) ----------------------------------------------------------------------
# TRANSLATORS: {stem} is a stem's name ("Bass"); {why} is the reason, such as "an HTML page".
STEM_NOT_FETCHED = N_("{stem} could not be fetched: {why}")
# TRANSLATORS: {stem} is a stem's name ("Bass"); {why} is the reason.
STEM_NOT_AUDIO = N_("{stem} could not be read as audio ({why})")
# TRANSLATORS: {stem} is a stem's name ("Bass").
STEM_EXPIRED = N_("the links expired and {stem} is not kept in Discord any more")
MIX_OVER_DISCORD_LIMIT = N_("the mix is larger than Discord accepts here")
NOTHING_TO_MIX = N_("there is nothing to mix")
# TRANSLATORS: {floor} is a bitrate number, as in "even at 64 kbps".
MIX_TOO_LARGE = N_("the mix would be too large to post here, even at {floor} kbps")
NO_AUDIO_IN_FILE = N_("the file holds no audio")
# TRANSLATORS: {error} is the name of the decoder's error, such as "InvalidDataError".
FILE_NOT_AUDIO = N_("the file could not be read as audio ({error})")
# TRANSLATORS: {error} is the name of the decoder's error.
NOT_DECODED = N_("the audio could not be decoded ({error})")
# TRANSLATORS: {error} is the name of the decoder's error.
NOT_MIXED = N_("the stems could not be mixed ({error})")
MIX_PROCESS_LOST = N_("the mixing process stopped unexpectedly")

MESSAGES: tuple[str, ...] = tuple(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)
"""Every message a stored reason can be."""

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def because(message: str, /, **values: object) -> str:
    """The reason `message` (one of this module's constants) with its values, in English: the
    sentence that is stored, logged, and said again by `shown` in the reader's language."""
    return message.format_map({name: str(value) for name, value in values.items()})


def shown(stored: str) -> str:
    """A stored reason in the language being spoken (as it is if it is none of ours)."""
    for message, pattern in _patterns():
        found = pattern.fullmatch(stored)
        if found is not None:
            return _(message, **{name: _value(name, text) for name, text in found.groupdict().items()})
    return stored


def _value(name: str, text: str) -> str:
    if name == "why":
        return shown(text)
    if name == "stem":
        return _stem(text)
    return text


def _stem(english: str) -> str:
    """A stem named in English (as stored), named the reader's way."""
    for stem in STEMS:
        with i18n.speaking(i18n.ENGLISH):
            known = stem_name(stem.key)
        if known == english:
            return stem_name(stem.key)
    return english


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each message with the pattern its English sentences match; the messages with the most
    fixed words first, so a sentence is read as the most particular message it can be."""

    def pattern(message: str) -> re.Pattern[str]:
        parts = _PLACEHOLDER.split(message)  # fixed words, then a name, then fixed words…
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
        return re.compile(regex, re.DOTALL)

    def fixed(message: str) -> int:
        return len(_PLACEHOLDER.sub("", message))

    return tuple((m, pattern(m)) for m in sorted(MESSAGES, key=fixed, reverse=True))


def english_stem_name(key: str) -> str:
    """A stem's name in English, for a reason that will be stored."""
    with i18n.speaking(i18n.ENGLISH):
        return stem_name(key)
