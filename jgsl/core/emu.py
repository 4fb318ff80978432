"""Emulated users: many L{ClientCore}s behind one XMPP component, each with its own JID.

Each may move (wander, patrol, follow; the original's bots stood still) and answers chat
messages from outside its component with a random sentence of its auto-reply list after a
short random delay (the original answered at once).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from jgsl.core.client import Avatar, ClientCore, ClientSettings, Event, State
from jgsl.core.component import Quiet
from jgsl.core.droplog import DropLog
from jgsl.core.jids import bare
from jgsl.core.safetext import Logger
from jgsl.core.stringmaps import StringMap
from jgsl.wire.codec import Chat, Envelope

log = Logger(namespace="jgsl.emu")

#: Seconds between a user's own turns (its group's tick; the owner ticks every
#: 0.1 / stagger s). An update due sooner than the next turn, after an early answer, is sent
#: at the first tick after it is due instead: else a user whose answers come in under its
#: update interval would wait for its turn and send at most every 0.1 s.
USER_TICK = 0.1


def walk_towards(avatar: Avatar, target: tuple[float, float], distance: float) -> float:
    """Move the avatar up to ``distance`` towards ``target``; the distance left afterwards."""
    dx, dz = target[0] - avatar.x, target[1] - avatar.z
    left = math.hypot(dx, dz)
    if left < 1e-9:
        return 0.0
    move = min(left, distance)
    avatar.x += dx / left * move
    avatar.z += dz / left * move
    avatar.facing = math.atan2(dz, dx)
    return left - move


@dataclass(frozen=True)
class EmuUser:
    """One emulated user as EmuUsersDB.xml describes it (jgsl.emudb reads the file)."""

    username: str
    password: str
    worldpath: str
    server: str = ""
    chatdomain: str = ""
    nickname: str = ""
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    facing: float = 0.0
    asset_file: str = ""
    dummy: bool = False
    behaviour: str = "stand"
    radius: float = 10.0
    speed: float = 2.0
    autoreply: tuple[str, ...] = field(default_factory=tuple)
    waypoints: tuple[tuple[float, float], ...] = ()
    follow: str = ""
    distance: float = 3.0


class Patrol:
    """Walk the waypoints in a loop at ``speed`` units per second."""

    def __init__(self, avatar: Avatar, waypoints, speed: float) -> None:
        self.avatar, self.waypoints, self.speed = avatar, list(waypoints), speed
        self.next = 0
        self.last: float | None = None

    def step(self, now: float) -> None:
        dt = 0.0 if self.last is None else now - self.last
        self.last = now
        budget = self.speed * dt
        for _ in range(len(self.waypoints)):  # may pass several close waypoints in one step
            target = self.waypoints[self.next]
            before = math.hypot(target[0] - self.avatar.x, target[1] - self.avatar.z)
            if walk_towards(self.avatar, target, budget) > 1e-9:
                return
            budget -= before
            self.next = (self.next + 1) % len(self.waypoints)


class Follow:
    """Keep ``distance`` from another agent, as this user's client sees it."""

    def __init__(self, avatar: Avatar, client: ClientCore, target: str, distance: float,
                 speed: float) -> None:
        self.avatar, self.client, self.target = avatar, client, target
        self.distance, self.speed = distance, speed
        self.last: float | None = None

    def step(self, now: float) -> None:
        dt = 0.0 if self.last is None else now - self.last
        self.last = now
        agent = self.client.agents.get(self.target)
        if agent is None or not agent.intact():
            return
        x, _, z = agent.position()
        gap = math.hypot(x - self.avatar.x, z - self.avatar.z) - self.distance
        if gap > 0:
            walk_towards(self.avatar, (x, z), min(gap, self.speed * dt))


class Wander:
    """Walk to random points within ``radius`` of home at ``speed`` units per second."""

    def __init__(self, avatar: Avatar, radius: float, speed: float, rng: random.Random) -> None:
        self.avatar = avatar
        self.home = (avatar.x, avatar.z)
        self.radius, self.speed, self.rng = radius, speed, rng
        self.target = self.home
        self.last: float | None = None

    def step(self, now: float) -> None:
        dt = 0.0 if self.last is None else now - self.last
        self.last = now
        if walk_towards(self.avatar, self.target, self.speed * dt) < 1e-6:
            angle = self.rng.uniform(0, math.tau)
            r = self.radius * math.sqrt(self.rng.random())
            self.target = (self.home[0] + r * math.cos(angle), self.home[1] + r * math.sin(angle))


def user_jid(user: EmuUser, component: str) -> str:
    return f"{user.username}@{component}"


def gateway_for(user: EmuUser, default: str | Sequence[str]) -> str | Sequence[str]:
    """The user's gateway: its ``server`` when that is a JID, else ``default`` (the
    configured gateways, which the client spreads its users over and fails over between).

    The original files name the gateway by a bare account id (``server="1100"``) that only
    meant something on ParaWorld's servers; like the original ForceGateway option, the
    configured gateways are used for those.
    """
    return user.server if "@" in user.server or "." in user.server else default


class EmuCore(Quiet):
    def __init__(self, component: str, users: list[EmuUser], gateway: str | Sequence[str],
                 settings: ClientSettings | None = None, *, seed: int | None = None,
                 on_event: Callable[[str, Event], None] = lambda user, event: None,
                 maps: dict[str, StringMap] | None = None, stagger: int = 1) -> None:
        """``stagger``: each tick handles one of that many groups of users in turn, so the
        owner ticking ``stagger`` times as often spreads the users' sends over time instead
        of sending everyone's at once (a load generator's bursts are not what real players
        make)."""
        self.component = component
        self.clients: dict[str, ClientCore] = {}
        self.behaviours: list[Wander | Patrol | Follow] = []
        self._groups: list[tuple[list, list[ClientCore]]] = [
            ([], []) for _ in range(max(1, stagger))]
        self._phase = 0
        self._drops = DropLog(log)
        self._replies: dict[str, tuple[str, ...]] = {}
        self._outbox: list[tuple[float, Envelope]] = []  # delayed auto-replies
        #: (time, order, client): updates due before the client's next turn (USER_TICK).
        self._due: list[tuple[float, int, ClientCore]] = []
        self._order = 0
        rng = self._rng = random.Random(seed)
        for user in users:
            jid = user_jid(user, component)
            avatar = Avatar(x=user.x, y=user.y, z=user.z, facing=user.facing,
                            asset_file=user.asset_file, nickname=user.nickname,
                            dummy=user.dummy)
            client = ClientCore(jid, gateway_for(user, gateway), user.worldpath, avatar,
                                settings, on_event=lambda e, j=jid: on_event(j, e), maps=maps)
            self.clients[jid] = client
            self._replies[jid] = user.autoreply
            group = self._groups[len(self.clients) % len(self._groups)]
            group[1].append(client)
            behaviours = len(self.behaviours)
            if user.behaviour == "wander":
                self.behaviours.append(
                    Wander(avatar, user.radius, user.speed, random.Random(rng.random())))
            elif user.behaviour == "patrol":
                self.behaviours.append(Patrol(avatar, user.waypoints, user.speed))
            elif user.behaviour == "follow":
                target = user.follow if "@" in user.follow else f"{user.follow}@{component}"
                self.behaviours.append(Follow(avatar, client, target, user.distance,
                                              user.speed))
            group[0].extend(self.behaviours[behaviours:])

    def connected(self, now: float) -> list[Envelope]:
        """Start every user; after an outage of the link, send again what was in flight."""
        out: list[Envelope] = []
        for client in self.clients.values():
            out += client.start(now) if client.state is State.IDLE else client.resend(now)
        return out

    def signed_in(self) -> int:
        """How many of the users are in a node, exchanging updates."""
        return sum(1 for client in self.clients.values() if client.state is State.UPDATING)

    def tick(self, now: float) -> list[Envelope]:
        behaviours, clients = self._groups[self._phase]
        self._phase = (self._phase + 1) % len(self._groups)
        for behaviour in behaviours:
            behaviour.step(now)
        out: list[Envelope] = [e for due, e in self._outbox if due <= now]
        self._outbox = [(due, e) for due, e in self._outbox if due > now]
        for client in clients:
            out += client.tick(now)
        due = self._due
        while due and due[0][0] <= now:
            out += heapq.heappop(due)[2].tick(now)
        return out

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        client = self.clients.get(envelope.recipient)  # (components send to bare JIDs)
        if client is None:
            client = self.clients.get(bare(envelope.recipient))
        if client is None:
            self._drops.drop(now, "message for unknown emulated user {recipient}",
                             recipient=envelope.recipient)
            return []
        if isinstance(envelope.message, Chat):
            return self._auto_reply(now, client.jid, envelope)
        out = client.receive(now, envelope)
        if now < client.due < now + USER_TICK:
            self._order += 1
            heapq.heappush(self._due, (client.due, self._order, client))
        return out

    def _auto_reply(self, now: float, user: str, envelope: Envelope) -> list[Envelope]:
        """Answer with a random sentence after 0.5-2 s; never to our own bots (no loops)."""
        sentences = self._replies.get(user, ())
        sender_domain = bare(envelope.sender).rpartition("@")[2]
        if not sentences or sender_domain == self.component or len(self._outbox) > 1000:
            return []
        reply = Envelope(user, envelope.sender, Chat(self._rng.choice(sentences)))
        self._outbox.append((now + self._rng.uniform(0.5, 2.0), reply))
        return []

    def stop(self, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        for client in self.clients.values():
            out += client.stop(now)
        return out
