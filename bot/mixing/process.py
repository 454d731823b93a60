"""The mixing processes: a mix's decoding, summing and encoding (`bot.mixing.audio`) run in worker
processes of their own, so the bot's event loop never competes with them for its interpreter's
lock (threads of the bot did: acknowledgements waited while a mix ran), and the mix's own threads
use both cores.

- Started with the 'spawn' method (a fresh interpreter; never a fork of a process with a running
  event loop and open sockets), when a mix first needs one, and kept for the next mixes: at most
  `size` of them, one mix each at a time. The child imports this module and `bot.mixing.audio`
  (NumPy, PyAV), nothing of the bot's Discord side, store or HTTP client; the bot itself never
  loads NumPy or PyAV. ('spawn' also imports the bot's main module in the child unless it is a
  package's `__main__`, as with `python -m bot`, the image's command: a bot started from a
  script file would have its child import what that script imports at its top.)
- Its CPU priority is `MIXING_NICENESS` below the bot's: on a busy machine the bot answers first.
- Its life hangs on a lifeline, a pipe whose only writing end the bot holds: when the bot closes
  it (stopping, or giving up on a mix) or dies (even SIGKILL), the child stops at the mix's next
  block and ends; it never outlives the bot. SIGTERM and SIGINT (sent to a whole service or
  terminal group at once) stop it the same way: the mix is made again at the bot's next start.
- A child that ends without answering (killed, or crashed inside FFmpeg) fails that mix with
  MixProcessLost (the caller refunds); the next mix starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import FrameType
from typing import Final

from bot import reasons
from bot.mixing.outcomes import MixError, MixProcessLost, MixResult, MixStopped
from bot.reasons import because

log = logging.getLogger(__name__)

START_METHOD: Final = "spawn"
MIXING_NICENESS = 10
"""How much lower than the bot's the mixing processes' CPU priority is: on a busy machine the
event loop (acknowledging interactions within Discord's 3 s) runs first, the mix takes the rest."""
STOP_GRACE = 5.0
"""Seconds a child told to stop may take to reach its next block; then it ends regardless (it
exits by itself; the bot kills one still there)."""


@dataclass(frozen=True, slots=True)
class _Order:
    """One mix, as the child is asked for it (`bot.mixing.audio.mix_files`'s arguments)."""

    inputs: tuple[str, ...]
    dest: str
    max_bytes: int


class MixingProcesses:
    """At most `size` mixing processes, started when first needed and kept for the next mixes;
    `mix` runs one mix in one of them. `close` ends them all."""

    def __init__(self, size: int) -> None:
        self._context = multiprocessing.get_context(START_METHOD)
        self._size = max(1, size)
        self._slots = asyncio.Semaphore(self._size)
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._ending: set[asyncio.Task[None]] = set()
        self._closed = False

    async def mix(self, inputs: Sequence[Path], dest: Path, *, max_bytes: int) -> MixResult:
        """Mix `inputs` into `dest` in a mixing process (as `bot.mixing.audio.mix_files`). Raises
        what that raises (MixError and its kinds, MixStopped), MixProcessLost where the process
        ended without answering, RuntimeError for an unexpected error in the process. Cancelled,
        the process is told to stop and ends."""
        order = _Order(tuple(str(path) for path in inputs), str(dest), max_bytes)
        async with self._slots:
            if self._closed:
                raise MixStopped()
            child = await self._take()
            kept = False
            self._busy.add(child)
            try:
                answer = await child.ask(order)
                # A child stopped (by `close`, or by a signal) ends after answering: not kept.
                kept = not self._closed and not isinstance(answer, MixStopped)
            except (EOFError, OSError):
                code = await child.ended()
                if self._closed:
                    raise MixStopped() from None
                log.warning("The mixing process %s ended without answering (exit code %s)", child.pid, code)
                _remove_leftovers(dest)
                raise MixProcessLost(because(reasons.MIX_PROCESS_LOST)) from None
            finally:
                self._busy.discard(child)
                if kept:
                    self._idle.append(child)
                else:
                    self._end(child)
        if isinstance(answer, MixResult):
            return answer
        raise answer

    async def _take(self) -> _Child:
        """An idle process still alive (one killed while idle is let go of), else a new one."""
        while self._idle:
            child = self._idle.pop()
            if child.alive:
                return child
            self._end(child)
        return await _Child.start(self._context)

    async def close(self) -> None:
        """Stop every process (a mix in one stops at its next block: MixStopped), and wait for the
        mixes to end and the processes with them (killing one that outstays `STOP_GRACE`)."""
        self._closed = True
        for child in self._busy:
            child.stop()
        while self._idle:
            self._end(self._idle.pop())
        for _ in range(self._size):  # every mix under way has ended
            await self._slots.acquire()
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)

    def _end(self, child: _Child) -> None:
        child.let_go()
        task = asyncio.get_running_loop().create_task(child.reap(), name=f"mixing-process-{child.pid}")
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)


def _remove_leftovers(dest: Path) -> None:
    """What a process that died mid-mix left: `dest` and its scratch files (made beside it, their
    names starting with its own)."""
    with contextlib.suppress(OSError):
        for path in dest.parent.glob(f"{glob.escape(dest.name)}*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class _Child:
    """One mixing process, from the bot's side: its orders pipe and its lifeline."""

    def __init__(self, process: SpawnProcess, orders: Connection, lifeline: Connection) -> None:
        self._process = process
        self._orders = orders
        self._lifeline = lifeline
        self.pid = process.pid

    @classmethod
    async def start(cls, context: multiprocessing.context.SpawnContext) -> _Child:
        orders, their_orders = context.Pipe()
        their_lifeline, lifeline = context.Pipe(duplex=False)
        process = context.Process(
            target=serve, args=(their_orders, their_lifeline), name="stembot-mixer", daemon=True
        )
        try:
            # Starting execs a new interpreter and hands it its arguments: off the event loop.
            await asyncio.to_thread(process.start)
        finally:
            # The child holds its own ends now: with these closed, the orders pipe reads as ended
            # when the child dies, and the lifeline when the bot does.
            their_orders.close()
            their_lifeline.close()
        log.info("Started mixing process %s", process.pid)
        return cls(process, orders, lifeline)

    async def ask(self, order: _Order) -> MixResult | BaseException:
        """Send the order and wait, without blocking the event loop, for the child's answer.
        Raises EOFError (or OSError) where the child ended first."""
        self._orders.send(order)
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        fd = self._orders.fileno()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(fd, ready)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        answer: MixResult | BaseException = self._orders.recv()
        return answer

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self) -> None:
        """Close the lifeline: the child stops its mix at the next block, answers, and ends."""
        self._lifeline.close()

    def let_go(self) -> None:
        """Close both pipes: the child stops (at its next block, if it is mixing) and ends."""
        self._orders.close()
        self._lifeline.close()

    async def ended(self) -> int | None:
        """Wait for the child, which has ended or is ending; its exit code."""
        await asyncio.to_thread(self._process.join, STOP_GRACE)
        return self._process.exitcode

    async def reap(self) -> None:
        """Wait for a child let go of; kill it if it outstays `STOP_GRACE`."""
        if await self.ended() is None:
            log.warning("The mixing process %s did not stop in time; killing it", self.pid)
            self._process.kill()
            await asyncio.to_thread(self._process.join)
        self._process.close()


# The child's side. Everything below runs in the mixing process.


def serve(orders: Connection, lifeline: Connection) -> None:
    """The mixing process's main: lower its priority, then make the mixes it is sent, one at a
    time, answering each with its MixResult or the exception it ended in, until the bot closes
    the pipes or dies."""
    with contextlib.suppress(OSError):
        os.nice(MIXING_NICENESS)  # before any thread starts: they all inherit it
    _own_scheduling_group()
    stopping = threading.Event()
    threading.Thread(target=_hold, args=(lifeline, stopping), name="lifeline", daemon=True).start()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Imported here, not with the module: the bot imports this module and never loads PyAV.
    from bot.mixing.audio import mix_files

    while not stopping.is_set():
        # Waiting for the next order, a signal is noticed within a second.
        try:
            if not orders.poll(1.0):
                continue
            order: _Order = orders.recv()
        except (EOFError, OSError):
            return
        answer: MixResult | BaseException
        try:
            answer = mix_files(
                [Path(path) for path in order.inputs],
                Path(order.dest),
                max_bytes=order.max_bytes,
                stopping=stopping,
            )
        except (MixError, MixStopped) as error:
            answer = error
        except Exception as error:  # told to the bot, which logs it and tries again later
            answer = RuntimeError(f"mixing failed unexpectedly: {type(error).__name__}: {error}")
        try:
            orders.send(answer)
        except OSError:
            return


def _own_scheduling_group() -> None:
    """Where Linux groups processes by session for scheduling (autogroup), niceness ranks a
    process only against its own session, and every session gets an equal share: a mix in the
    bot's session would spend the bot's share, so the bot waits behind the machine's other work
    when it wakes. In a session of its own, niced as a group too, the mix's CPU is its own group's
    and ranks below the bot's and everyone else's. Elsewhere (no autogroup, or a container's
    CPU group) this changes nothing; the process is still niced."""
    with contextlib.suppress(OSError):
        os.setsid()
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(MIXING_NICENESS))


def _hold(lifeline: Connection, stopping: threading.Event) -> None:
    """Wait on the lifeline: nothing is ever sent on it, so `recv` returns only when the bot has
    closed it or died. Then stop the mix at its next block, and end the process if that takes
    longer than `STOP_GRACE`."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv()
    stopping.set()
    threading.Event().wait(STOP_GRACE)
    os._exit(0)
