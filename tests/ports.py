"""Ports for the servers a test must name before they start (a bot process's web server, a callback
address), safe with several test workers at once."""

from __future__ import annotations

import os
import random
import socket

# Below the kernel's range for ephemeral ports (32768-60999 on Linux): no connect() and no bind to
# port 0, in any process, is handed one of these, so a port found free here stays free until the
# process it is meant for binds it, instead of being taken by some other test's connection in the
# meantime. Each xdist worker draws from a block of its own.
FIRST = 20_000
BLOCK = 1_000
BLOCKS = 12


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on or uses now."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = FIRST + (int(worker) % BLOCKS if worker.isdigit() else 0) * BLOCK
    for port in random.sample(range(low, low + BLOCK), BLOCK):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port between {low} and {low + BLOCK}")
