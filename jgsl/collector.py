"""Full garbage collections on a schedule, not whenever the heap has grown by a quarter.

A grid process holds every client's acknowledged states; a full collection walks all of
them, which took 40-90 ms in the end-to-end benchmark (grid and load runner) and showed up
as the slowest round trips. Reference counting frees almost everything at once; the cyclic
collector is only needed for cycles. So: start-up objects are frozen out of every later
collection, the young generations collect as usual (a few ms at most), and the full
collection runs every ``interval`` seconds, logged with how long it took.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from jgsl.core.safetext import Logger

log = Logger(namespace="jgsl.collector")

#: Default seconds between full collections.
FULL_INTERVAL = 300.0
#: A gen-2 threshold the automatic collector never reaches.
_NEVER = 1 << 30


class ScheduledCollector(Service):
    """While running: automatic full collections off, one every ``interval`` seconds."""

    def __init__(self, clock, interval: float = FULL_INTERVAL,
                 collect: Callable[[int], int] = gc.collect) -> None:
        self.clock, self.interval, self._collect = clock, interval, collect
        self._loop: LoopingCall | None = None
        self._saved: tuple[int, int, int] | None = None

    def startService(self) -> None:
        super().startService()
        gc.collect()
        gc.freeze()  # what start-up built stays: never walked again
        self._saved = gc.get_threshold()
        young, middle, _ = self._saved
        gc.set_threshold(young, middle, _NEVER)
        self._loop = LoopingCall(self.full)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            gc.unfreeze()
            self._saved = None
        return super().stopService()

    def full(self) -> int:
        """One full collection now; the number of unreachable objects found."""
        start = time.perf_counter()
        found = self._collect(2)
        log.info("full garbage collection: {found} unreachable objects in {ms:.1f} ms",
                 found=found, ms=(time.perf_counter() - start) * 1000)
        return found
