"""What StemBot sells: the separation modes, their prices, the stems and how long links last.

Every number a member sees about a product (cost, stem names, link lifetime) comes from here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from bot.i18n import N_, _

LINK_LIFETIME = timedelta(days=14)
"""How long the API keeps stem files downloadable. Some provider pages say 15; we promise 14."""


DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
"""The upload limit assumed where Discord has not reported one (jobs from before it was stored):
10 MiB, what an unboosted server allows. Discord's own figure always wins."""


class Mode(enum.StrEnum):
    """A separation product; the value is the API's `type`."""

    SEPARATE_VOCAL = "separate_vocal"
    SPLIT_STEM = "split_stem"

    @property
    def cost(self) -> int:
        return _COSTS[self]

    @property
    def api_price(self) -> int:
        """What the separation API charges the operator's account for one job of this mode."""
        return _API_PRICES[self]

    @property
    def label(self) -> str:
        """The mode with what it gives, as in the `/split mode` picker and price lists, in the
        language being spoken."""
        return _(_TITLES[self])

    @property
    def short_label(self) -> str:
        """The mode in two or three words, for titles that add the stem count themselves, in the
        language being spoken."""
        return _(_SHORT_TITLES[self])


_COSTS: dict[Mode, int] = {Mode.SEPARATE_VOCAL: 10, Mode.SPLIT_STEM: 50}
_API_PRICES: dict[Mode, int] = {Mode.SEPARATE_VOCAL: 10, Mode.SPLIT_STEM: 50}
_SHORT_TITLES: dict[Mode, str] = {
    # TRANSLATORS: a separation mode, in titles ("Midnight Drive: 2 stems" when the song is unknown).
    Mode.SEPARATE_VOCAL: N_("Vocals + instrumental"),
    # TRANSLATORS: a separation mode: every instrument on its own stem (up to 12).
    Mode.SPLIT_STEM: N_("Full split"),
}
_TITLES: dict[Mode, str] = {
    # TRANSLATORS: a separation mode as the /split picker lists it (with its price: 100 characters in all).
    Mode.SEPARATE_VOCAL: N_("Vocals + instrumental (2 stems)"),
    # TRANSLATORS: a separation mode as the /split picker lists it (with its price: 100 characters in all).
    Mode.SPLIT_STEM: N_("Full split (up to 12 stems)"),
}


@dataclass(frozen=True, slots=True)
class Stem:
    """One separated track: its key (snake_case, as in callbacks) and its name for members (in
    English, marked for the catalogs: `stem_name` says it in the language being spoken)."""

    key: str
    name: str


STEMS: tuple[Stem, ...] = (
    # TRANSLATORS: the lead vocals, as a stem (a separated track).
    Stem("vocal", N_("Vocals")),
    # TRANSLATORS: everything but the vocals, as a stem.
    Stem("instrumental", N_("Instrumental")),
    Stem("backing_vocals", N_("Backing vocals")),
    Stem("drums", N_("Drums")),
    # TRANSLATORS: the bass (guitar or synth bass), as a stem.
    Stem("bass", N_("Bass")),
    Stem("guitar", N_("Guitar")),
    # TRANSLATORS: keyboards (the instrument), as a stem.
    Stem("keyboard", N_("Keyboard")),
    Stem("piano", N_("Piano")),
    Stem("percussion", N_("Percussion")),
    # TRANSLATORS: the string section (violins, cellos…), as a stem.
    Stem("strings", N_("Strings")),
    # TRANSLATORS: synthesizers, as a stem.
    Stem("synth", N_("Synth")),
    # TRANSLATORS: sound effects, as a stem.
    Stem("fx", N_("FX")),
    # TRANSLATORS: the brass section (trumpets, trombones…), as a stem.
    Stem("brass", N_("Brass")),
    # TRANSLATORS: the woodwind section (flutes, clarinets…), as a stem.
    Stem("woodwinds", N_("Woodwinds")),
)
STEMS_BY_KEY: dict[str, Stem] = {stem.key: stem for stem in STEMS}
STEM_ORDER: dict[str, int] = {stem.key: index for index, stem in enumerate(STEMS)}


def stem_name(key: str) -> str:
    """The member-facing name of a stem key in the language being spoken; unknown keys (the API's
    own words) are made readable rather than dropped."""
    stem = STEMS_BY_KEY.get(key)
    return _(stem.name) if stem else key.replace("_", " ").capitalize()
