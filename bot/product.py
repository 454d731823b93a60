"""What StemBot sells: the separation modes, their prices, the stems and how long links last.

Every number a member sees about a product (cost, stem names, link lifetime) comes from here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

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
        """The mode with what it gives, as in the `/split mode` picker and price lists."""
        return _TITLES[self]

    @property
    def short_label(self) -> str:
        """The mode in two or three words, for titles that add the stem count themselves."""
        return _SHORT_TITLES[self]


_COSTS: dict[Mode, int] = {Mode.SEPARATE_VOCAL: 10, Mode.SPLIT_STEM: 50}
_API_PRICES: dict[Mode, int] = {Mode.SEPARATE_VOCAL: 10, Mode.SPLIT_STEM: 50}
_SHORT_TITLES: dict[Mode, str] = {Mode.SEPARATE_VOCAL: "Vocals + instrumental", Mode.SPLIT_STEM: "Full split"}
_TITLES: dict[Mode, str] = {
    Mode.SEPARATE_VOCAL: "Vocals + instrumental (2 stems)",
    Mode.SPLIT_STEM: "Full split (up to 12 stems)",
}


@dataclass(frozen=True, slots=True)
class Stem:
    """One separated track: its key (snake_case, as in callbacks) and its name for members."""

    key: str
    name: str


STEMS: tuple[Stem, ...] = (
    Stem("vocal", "Vocals"),
    Stem("instrumental", "Instrumental"),
    Stem("backing_vocals", "Backing vocals"),
    Stem("drums", "Drums"),
    Stem("bass", "Bass"),
    Stem("guitar", "Guitar"),
    Stem("keyboard", "Keyboard"),
    Stem("piano", "Piano"),
    Stem("percussion", "Percussion"),
    Stem("strings", "Strings"),
    Stem("synth", "Synth"),
    Stem("fx", "FX"),
    Stem("brass", "Brass"),
    Stem("woodwinds", "Woodwinds"),
)
STEMS_BY_KEY: dict[str, Stem] = {stem.key: stem for stem in STEMS}
STEM_ORDER: dict[str, int] = {stem.key: index for index, stem in enumerate(STEMS)}


def stem_name(key: str) -> str:
    """The member-facing name of a stem key; unknown keys are made readable rather than dropped."""
    stem = STEMS_BY_KEY.get(key)
    return stem.name if stem else key.replace("_", " ").capitalize()
