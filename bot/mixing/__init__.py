"""Mixes of a result's stems (issue 20): "the song without drums" in two clicks, summed by the bot
and posted as one playable file in the result's thread, the thread keeping uses.

Who may mix what: any member of the server, any full split there, where `mix_stems` is 'on';
a price (`mix_price`) is charged through the ledger under the mix's own key and refunded once if
the mix fails. Asking stores the mix (`store.mixes`) before any work; a durable worker does the
rest, like the keeper: a restart or another process carries on, and the file is posted once.

The parts: `requests` (the rules of asking), `worker` (fetching, mixing off the event loop,
posting once), `audio` (PyAV and NumPy: decode, sum in blocks, encode), `names` (the file's name),
`poster` (what Discord must provide), `process` (the mixing processes the audio work runs in),
`outcomes` (what a mix ends in). `Mixer` (`mixer`) is what the rest of the bot holds. Nothing
here knows Discord.

The names below are imported when first used, not with the package: a mixing process imports
`bot.mixing.process` and `bot.mixing.audio`, and so this package, without the bot's store,
HTTP client and database drivers (lighter and quicker to start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # also what the layer contracts see
    from bot.mixing.mixer import Mixer
    from bot.mixing.poster import MixPoster
    from bot.mixing.requests import MixRequest, Reply, offers_mix_button, stem_names

__all__ = ["MixPoster", "MixRequest", "Mixer", "Reply", "offers_mix_button", "stem_names"]

_MODULES = {
    "Mixer": "bot.mixing.mixer",
    "MixPoster": "bot.mixing.poster",
    "MixRequest": "bot.mixing.requests",
    "Reply": "bot.mixing.requests",
    "offers_mix_button": "bot.mixing.requests",
    "stem_names": "bot.mixing.requests",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
