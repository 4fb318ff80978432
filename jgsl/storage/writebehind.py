"""The write-behind queue both backends share: writes never block the caller.

``put`` only records the newest value of a (hash, field); a timer sends what is pending in
batches. A batch that fails (the store is down) goes back into the queue and is retried with
backoff until it is written, so nothing acknowledged to the caller is lost while the process
lives; a reconnect (``wake``) retries at once. The queue is bounded by distinct keys:
overwriting a pending key always works, a new key beyond ``limit`` is dropped with a log
line (once per episode, with a summary when room is back). Reads see pending values first.

States: IDLE (nothing to do), DUE (a write is scheduled), WRITING (a batch is out),
BACKING_OFF (the last batch failed; retry scheduled).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed

from jgsl.core.safetext import Logger

log = Logger(namespace="jgsl.storage")

#: One write: (hash, field, value); value None deletes the field.
Write = tuple[str, str, str | None]


class QueueState(enum.Enum):
    IDLE = "idle"
    DUE = "due"
    WRITING = "writing"
    BACKING_OFF = "backing-off"


class WriteBehind:
    def __init__(self, write: Callable[[list[Write]], Deferred], clock, *,
                 limit: int = 100_000, batch: int = 500, delay: float = 0.05,
                 min_retry: float = 0.25, max_retry: float = 2.0, name: str = "store") -> None:
        self._write = write
        self._clock = clock
        self.limit = limit
        self.batch = batch
        self.delay = delay
        self._min_retry, self._max_retry = min_retry, max_retry
        self._retry = min_retry
        self.name = name
        self.state = QueueState.IDLE
        self._pending: dict[tuple[str, str], str | None] = {}
        self._inflight: dict[tuple[str, str], str | None] = {}
        self._timer = None
        self._waiters: list[Deferred] = []
        #: The store failed the last batch (a line was logged; another when it is back).
        self.down = False
        #: New keys refused because the queue was full, since the last summary.
        self.dropped = 0
        #: Writes acknowledged by the backend, in all.
        self.written = 0
        #: In all (for /metrics): writes dropped on a full queue, batches the store failed.
        self.dropped_total = 0
        self.failures = 0

    def __len__(self) -> int:
        """Writes not yet acknowledged by the backend."""
        return len(self._pending) + len(self._inflight)

    # -- writing -----------------------------------------------------------------------

    def put(self, hash_name: str, field: str, value: str | None) -> bool:
        """Queue a write (None: delete). False if the queue was full and it was dropped."""
        key = (hash_name, field)
        if key not in self._pending and len(self) >= self.limit:
            if not self.dropped:
                log.error("{name}: write queue full ({limit} writes pending): dropping new "
                          "writes until the store catches up (first: {hash} {field})",
                          name=self.name, limit=self.limit, hash=hash_name, field=field)
            self.dropped += 1
            self.dropped_total += 1
            return False
        self._pending[key] = value
        if self.state is QueueState.IDLE:
            self._schedule(self.delay, QueueState.DUE)
        return True

    def wake(self) -> None:
        """The store is reachable again (reconnected): retry at once."""
        if self.state is QueueState.BACKING_OFF:
            self._timer.cancel()
            self._retry = self._min_retry
            self._schedule(0, QueueState.DUE)

    def flush(self) -> Deferred:
        """Fires when everything queued so far (and since) has been written."""
        if not len(self):
            return succeed(None)
        d = Deferred()
        self._waiters.append(d)
        if self.state is QueueState.DUE:  # no need to wait for the batching delay
            self._timer.cancel()
            self._schedule(0, QueueState.DUE)
        return d

    def _schedule(self, delay: float, state: QueueState) -> None:
        self.state = state
        self._timer = self._clock.callLater(delay, self._send)

    def _send(self) -> None:
        self._timer = None
        if not self._pending:
            self.state = QueueState.IDLE
            return
        self.state = QueueState.WRITING
        for key in list(self._pending)[: self.batch]:
            self._inflight[key] = self._pending.pop(key)
        batch = [(h, f, v) for (h, f), v in self._inflight.items()]
        try:
            d = self._write(batch)
        except Exception as e:  # a backend bug must not stop the queue
            log.failure("{name}: write failed", name=self.name)
            self._failed(str(e))
            return
        d.addCallbacks(lambda _: self._written(), lambda f: self._failed(f.getErrorMessage()))

    def _written(self) -> None:
        flushed = len(self._inflight)
        self.written += flushed
        self._inflight.clear()
        self._retry = self._min_retry
        if self.down:
            self.down = False
            log.info("{name}: store reachable again; {pending} queued writes flushed or "
                     "being flushed", name=self.name, pending=flushed + len(self._pending))
        if self.dropped and len(self) < self.limit:
            log.warn("{name}: write queue has room again; {dropped} writes were dropped",
                     name=self.name, dropped=self.dropped)
            self.dropped = 0
        if self._pending:
            self._schedule(0, QueueState.DUE)
            return
        self.state = QueueState.IDLE
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def _failed(self, reason: str) -> None:
        self.failures += 1
        for key, value in self._inflight.items():
            self._pending.setdefault(key, value)  # a newer pending value wins
        self._inflight.clear()
        if not self.down:
            self.down = True
            log.warn("{name}: store unavailable ({reason}); {pending} writes queued, "
                     "retrying", name=self.name, reason=reason, pending=len(self._pending))
        self._schedule(self._retry, QueueState.BACKING_OFF)
        self._retry = min(self._max_retry, self._retry * 2)

    # -- reading -----------------------------------------------------------------------

    def peek(self, hash_name: str, field: str) -> tuple[bool, str | None]:
        """(True, value) if a write of that field is queued or in flight."""
        key = (hash_name, field)
        for queue in (self._pending, self._inflight):
            if key in queue:
                return True, queue[key]
        return False, None

    def overlay(self, hash_name: str, stored: dict[str, str]) -> dict[str, str]:
        """``stored`` with the queued writes of that hash applied on top."""
        out = dict(stored)
        for queue in (self._inflight, self._pending):  # pending is newer
            for (h, f), value in queue.items():
                if h == hash_name:
                    if value is None:
                        out.pop(f, None)
                    else:
                        out[f] = value
        return out
