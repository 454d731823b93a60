"""The API simulator in its own process for the load benchmark, so the bench's own event loop
(Discord stand-in + driver) does not slow the API down. On SIGTERM it writes what it saw as JSON.
Started by file (`python bench/sim_server.py`) with the checkout on PYTHONPATH."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from testing.provider_api import SeparationApiSimulator


async def serve(args: argparse.Namespace) -> None:
    sim = SeparationApiSimulator(
        api_key=args.api_key,
        processing_seconds=args.processing_seconds,
        url_length=args.url_length,
        account_credits=10**9,
        callbacks=args.callbacks,
    )
    base_url = await sim.start("127.0.0.1", 0)
    print(base_url, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    stats = {
        "submits": len(sim.submits),
        "polls": sim.polls(),
        "tasks": [
            {"audio_id": t.audio_id, "complete_at": t.complete_at, "callbacks_sent": t.callbacks_sent}
            for t in sim.tasks.values()
        ],
    }
    await asyncio.to_thread(Path(args.stats).write_text, json.dumps(stats))
    await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--processing-seconds", type=float, required=True)
    parser.add_argument("--url-length", type=int, default=200)
    parser.add_argument("--callbacks", action="store_true")
    parser.add_argument("--stats", required=True)
    asyncio.run(serve(parser.parse_args()))
    sys.exit(0)


if __name__ == "__main__":
    main()
