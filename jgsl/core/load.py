"""Load runs: N generated emulated users, started over a ramp, with everything measured.

Sans-IO like the other cores; L{Recorder} collects what the clients report (events and the
messages they send and receive) and summarizes it in L{Recorder.report}.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from jgsl.core.client import ClientSettings, Event, EventKind, State
from jgsl.core.component import Quiet
from jgsl.core.emu import EmuCore, EmuUser
from jgsl.wire.codec import Envelope


@dataclass
class LoadSettings:
    users: int = 100
    #: Seconds over which the users log in, evenly spread.
    ramp: float = 10.0
    worldpath: str = "worlds/MyWorlds/AlphaWorld/"
    center: tuple[float, float] = (20100.0, 20100.0)
    #: Users start at random points this far from the center at most.
    radius: float = 80.0
    behaviour: str = "wander"
    speed: float = 1.5
    seed: int = 1
    #: Groups of users ticked in turn (EmuCore), the tick being that many times finer.
    stagger: int = 1


#: Every how many messages the load runner sizes one (for the bytes-per-update figures).
SIZE_EVERY = 8


@dataclass
class Recorder:
    """Counts and samples from every client of a load run."""

    logins_ok: int = 0
    logins_refused: int = 0
    relogins: int = 0
    timeouts: int = 0
    dead_proxies: int = 0
    sent: int = 0
    received: int = 0
    #: Payload bytes of the messages sized (every SIZE_EVERY-th in each direction, from the
    #: first: sizing every one cost the load runner ~3 µs an update), and how many.
    bytes_out: int = 0
    bytes_in: int = 0
    sized_out: int = 0
    sized_in: int = 0
    #: (time, round-trip seconds) of every answered update.
    rtts: list[tuple[float, float]] = field(default_factory=list)
    _signed_in: set[str] = field(default_factory=set)
    window: tuple[float, float] | None = None
    #: Per user, [its last answer, its longest time without one] since L{watch_gaps}.
    gaps: dict[str, list[float]] = field(default_factory=dict)
    #: One point per L{sample}: the live figures, and report.json's time series.
    series: list[dict[str, object]] = field(default_factory=list)
    _sampled: tuple[float, int, int] | None = None  # (time, rtts, timeouts) at the last sample

    def metric_of(self, user: str):
        """A client's metrics hook that also notes the user's gaps (see L{watch_gaps})."""
        metric, gap = self.metric, self.gaps.setdefault(user, [0.0, 0.0])

        def hook(direction: str, now: float, message, rtt: float | None) -> None:
            metric(direction, now, message, rtt)
            if direction != "sent":
                if now - gap[0] > gap[1]:
                    gap[1] = now - gap[0]
                gap[0] = now
        return hook

    def watch_gaps(self, now: float, clients) -> None:
        """From now on, note each user's longest time without an answered update
        (``clients``: user -> ClientCore, whose metrics hook this replaces)."""
        for user, client in clients.items():
            self.gaps[user] = [now, 0.0]
            client.metrics = self.metric_of(user)

    def longest_gaps(self, now: float) -> dict[str, float]:
        """Each watched user's longest time without an answer, up to ``now``."""
        return {user: max(longest, now - last) for user, (last, longest) in self.gaps.items()}

    def event(self, user: str, event: Event) -> None:
        if event.kind is EventKind.SIGNED_IN:
            if user in self._signed_in:
                self.relogins += 1
            else:
                self._signed_in.add(user)
                self.logins_ok += 1
        elif event.kind is EventKind.LOG and "refused your login" in event.text:
            self.logins_refused += 1
        elif event.kind is EventKind.CONNECTION_TIMEOUT:
            self.timeouts += 1
            if "is dead" in event.text:
                self.dead_proxies += 1

    def metric(self, direction: str, now: float, message, rtt: float | None) -> None:
        if direction == "sent":
            if self.sent % SIZE_EVERY == 0:
                self.bytes_out += message.ByteSize()
                self.sized_out += 1
            self.sent += 1
        else:
            if self.received % SIZE_EVERY == 0:
                self.bytes_in += message.ByteSize()
                self.sized_in += 1
            self.received += 1
            if rtt is not None:
                self.rtts.append((now, rtt))

    def sample(self, now: float, start: float) -> dict[str, object]:
        """The figures since the previous sample (answers a second, RTT p50/p99, timeouts,
        users signed in), appended to L{series}; the first sample only sets the mark."""
        if self._sampled is None:
            self._sampled = (now, len(self.rtts), self.timeouts)
            return {}
        then, seen, timeouts = self._sampled
        self._sampled = (now, len(self.rtts), self.timeouts)
        fresh = sorted(r for _, r in self.rtts[seen:])

        def pct(p: float) -> float | None:
            if not fresh:
                return None
            return round(fresh[min(len(fresh) - 1, math.ceil(p / 100 * len(fresh)) - 1)]
                         * 1000, 2)

        point = {"t": round(now - start, 2),
                 "answers_per_s": round(len(fresh) / max(now - then, 1e-9), 1),
                 "p50_ms": pct(50), "p99_ms": pct(99),
                 "timeouts": self.timeouts - timeouts, "signed_in": len(self._signed_in)}
        self.series.append(point)
        return point

    def report(self, users: int, started: float, ended: float) -> dict[str, object]:
        duration = max(ended - started, 1e-9)
        rtts = sorted(r for _, r in self.rtts)

        def pct(p: float) -> float | None:
            if not rtts:
                return None
            return round(rtts[min(len(rtts) - 1, math.ceil(p / 100 * len(rtts)) - 1)] * 1000, 2)

        return {
            "users": users,
            "duration_s": round(duration, 2),
            "logins_ok": self.logins_ok,
            "logins_refused": self.logins_refused,
            "relogins": self.relogins,
            "timeouts": self.timeouts,
            "dead_proxies": self.dead_proxies,
            "updates_sent": self.sent,
            "updates_received": self.received,
            "updates_sent_per_s": round(self.sent / duration, 1),
            "updates_received_per_s": round(self.received / duration, 1),
            "rtt_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99),
                       "max": round(rtts[-1] * 1000, 2) if rtts else None},
            "bytes_per_update_out": (round(self.bytes_out / self.sized_out, 1)
                                     if self.sized_out else None),
            "bytes_per_update_in": (round(self.bytes_in / self.sized_in, 1)
                                    if self.sized_in else None),
        }


def generated_users(settings: LoadSettings) -> list[EmuUser]:
    rng = random.Random(settings.seed)
    users = []
    cx, cz = settings.center
    for i in range(settings.users):
        angle, r = rng.uniform(0, math.tau), settings.radius * math.sqrt(rng.random())
        users.append(EmuUser(
            username=f"load{i}", password="", worldpath=settings.worldpath,
            x=cx + r * math.cos(angle), y=36.6, z=cz + r * math.sin(angle),
            facing=rng.uniform(0, math.tau), asset_file="character/v3/dummy/dummy.x",
            behaviour=settings.behaviour, radius=10.0, speed=settings.speed))
    return users


class LoadCore(Quiet):
    """Generated users behind one component, started one by one over the ramp."""

    def __init__(self, component: str, gateway: str | Sequence[str], settings: LoadSettings,
                 client_settings: ClientSettings, recorder: Recorder) -> None:
        self.settings = settings
        self.recorder = recorder
        self.emu = EmuCore(component, generated_users(settings), gateway, client_settings,
                           seed=settings.seed, on_event=recorder.event,
                           stagger=settings.stagger)
        for client in self.emu.clients.values():
            client.metrics = recorder.metric
        self._queue = list(self.emu.clients.values())
        self._ramp_start: float | None = None

    @property
    def started(self) -> int:
        return len(self.emu.clients) - len(self._queue)

    def connected(self, now: float) -> list[Envelope]:
        if self._ramp_start is None:
            self._ramp_start = now
        out: list[Envelope] = []
        for client in self.emu.clients.values():  # after an outage: what was in flight
            if client.state is not State.IDLE:
                out += client.resend(now)
        return out + self.tick(now)

    def tick(self, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        if self._ramp_start is not None and self._queue:
            n = len(self.emu.clients)
            due = n if self.settings.ramp <= 0 else math.floor(
                (now - self._ramp_start) / self.settings.ramp * n) + 1
            while self._queue and self.started < due:
                client = self._queue.pop(0)
                if client.state is State.IDLE:
                    out += client.start(now)
        return out + self.emu.tick(now)

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        return self.emu.receive(now, envelope)

    def stop(self, now: float) -> list[Envelope]:
        return self.emu.stop(now)

