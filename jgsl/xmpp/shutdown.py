"""Graceful shutdown: the process's top service stops in phases, bounded in time.

SIGTERM (twistd stops the reactor) or an admin's ADMIN_SHUTDOWN starts it:

1. every component's core says goodbye: gateways refuse new logins ("shutting down"), grid
   processes send SC_Closing to every client and save every agent, emulated users log out;
2. the store flushes every queued write (and snapshots, for the embedded store), for at most
   ``timeout`` seconds;
3. the components' links and the router close, and the store is closed.

A second SIGTERM (or SIGINT) during the shutdown skips the rest of step 2: the process stops
at once, logging how many writes were not persisted.

States: RUNNING -> FLUSHING -> CLOSING -> STOPPED.
"""

from __future__ import annotations

import enum
import signal

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred

from jgsl.core.safetext import Logger

log = Logger(namespace="jgsl.shutdown")


class Phase(enum.Enum):
    RUNNING = "running"
    FLUSHING = "flushing"
    CLOSING = "closing"
    STOPPED = "stopped"


class GracefulService(MultiService):
    def __init__(self, reactor, store=None, timeout: float = 10.0,
                 signals: bool = False) -> None:
        super().__init__()
        self.reactor = reactor
        self.store = store
        self.timeout = timeout
        self.phase = Phase.RUNNING
        self._signals = signals
        self._stopping: Deferred | None = None
        self._flushed: Deferred | None = None
        self._timer = None
        self._signalled = 0
        #: A log observer for the application this service is added to (twistd starts
        #: logging with it): ``--log-format json``.
        self.log_observer = None

    def setServiceParent(self, parent) -> None:
        super().setServiceParent(parent)
        if self.log_observer is not None and hasattr(parent, "setComponent"):
            from twisted.logger import ILogObserver

            parent.setComponent(ILogObserver, self.log_observer)

    # -- starting the shutdown ---------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if self._signals:
            self.reactor.callWhenRunning(self._install_signal_handlers)

    def _install_signal_handlers(self) -> None:
        """Wrap twistd's handlers: the first signal stops as usual, a second one forces.

        A signal the process was started ignoring (SIGINT for a shell's background job)
        stays ignored, as such a job expects; wrapping it made the first SIGINT log
        "already shutting down" while nothing was."""
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            if previous is signal.SIG_IGN:
                continue

            def handler(signum, frame, previous=previous):
                self._signalled += 1
                if self._signalled > 1:
                    self.reactor.callFromThread(self.force, signal.Signals(signum).name)
                elif self.phase is Phase.RUNNING and callable(previous):
                    previous(signum, frame)  # twistd's: note the signal, stop the reactor
                else:
                    log.warn("already shutting down; another signal forces the stop")

            signal.signal(number, handler)

    def request_shutdown(self, admin: str, reason: str) -> None:
        """An admin's ADMIN_SHUTDOWN: stop the reactor, which stops us gracefully."""
        if self.phase is not Phase.RUNNING or self._stopping is not None:
            return
        log.warn("shutdown requested by {admin}: {reason}", admin=admin,
                 reason=reason or "(no reason given)")
        self.reactor.callLater(0, self.reactor.stop)

    # -- the protocol ------------------------------------------------------------------

    def stopService(self) -> Deferred:
        if self._stopping is None:
            self._stopping = self._stop()
        return self._stopping

    def _stop(self) -> Deferred:
        started = self.reactor.seconds()
        log.info("shutting down: closing sessions and persisting state")
        for child in self:
            begin = getattr(child, "begin_stop", None)
            if begin is not None:
                try:
                    begin()
                except Exception:
                    log.failure("stopping {service} failed", service=child)
        self.phase = Phase.FLUSHING
        self._flushed = Deferred()
        if self.store is None:
            self._flushed.callback("nothing to persist")
        else:
            self._timer = self.reactor.callLater(self.timeout, self._give_up,
                                                 f"timed out after {self.timeout:g} s")
            self.store.flush().addCallbacks(
                lambda _: self._finish_flush(None),
                lambda failure: self._finish_flush(failure.getErrorMessage()))
        d = self._flushed
        d.addCallback(self._close, started)
        return d

    def _finish_flush(self, problem: str | None) -> None:
        if self._flushed is None or self._flushed.called:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if problem is not None:
            log.error("shutdown: persisting failed ({problem})", problem=problem)
        else:
            queue = self.store.queue
            log.info("shutdown: every write persisted ({written} in all)",
                     written=queue.written)
        self._flushed.callback(None)

    def _give_up(self, why: str) -> None:
        if self._flushed is None or self._flushed.called:
            return
        left = len(self.store.queue) if self.store is not None else 0
        log.error("shutdown {why}: {left} queued writes were NOT persisted", why=why,
                  left=left)
        self._flushed.callback(None)

    def force(self, what: str = "signal") -> None:
        """A second signal: stop now."""
        if self.phase is Phase.FLUSHING:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._give_up(f"forced by a second {what}")
        elif self.phase is Phase.RUNNING:  # a signal that twistd's handler did not see
            self.reactor.callLater(0, self.reactor.stop)

    def _close(self, _, started: float) -> Deferred:
        self.phase = Phase.CLOSING
        d = MultiService.stopService(self)
        if self.store is not None:
            d.addBoth(lambda _: self.store.close())
            d.addErrback(lambda f: log.error("closing the store failed: {reason}",
                                             reason=f.getErrorMessage()))

        def stopped(_):
            self.phase = Phase.STOPPED
            log.info("shut down in {seconds:.2f} s", seconds=self.reactor.seconds() - started)

        return d.addBoth(stopped)
