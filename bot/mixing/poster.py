"""What the mix worker needs from Discord (implemented by `bot.discord_side.keeper.DiscordPoster`,
the same poster that keeps results, so mixes and kept stems share one thread)."""

from __future__ import annotations

from typing import Protocol

from bot.keeping.poster import PostedMessage, Upload
from bot.models import DeliveredMessage, Job, Keep, Mix


class MixPoster(Protocol):
    async def open_thread(self, job: Job, anchor: DeliveredMessage) -> int:
        """As `bot.keeping.Poster.open_thread`."""
        ...

    async def post_mix(self, job: Job, mix: Mix, upload: Upload, *, content: str, key: str) -> int:
        """Post the mix's file, led by `content`, in the mix's place; its message id. `key` is the
        message's nonce key (sent again within minutes, Discord posts it once). Raises
        UploadTooLarge, PlaceRefused, PostRetry."""
        ...

    async def recent(self, keep: Mix) -> list[PostedMessage]:
        """The bot's own recent messages in the mix's place. Raises PlaceRefused, PostRetry."""
        ...

    async def attachment_url(self, keep: Keep, message_id: int, filename: str) -> str | None:
        """A fresh (signed) URL of the file `filename` on the kept message, read from the message
        now; None if it is gone. Raises PostRetry."""
        ...

    async def tell(self, mix: Mix, text: str) -> bool:
        """Tell the member who asked, in their private answer (while its token lives): whether it
        was shown."""
        ...
