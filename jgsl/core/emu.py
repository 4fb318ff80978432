"""Emulated users: many L{ClientCore}s behind one XMPP component, each with its own JID."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from twisted.logger import Logger

from jgsl.core.client import Avatar, ClientCore, ClientSettings, Event, State
from jgsl.core.droplog import DropLog
from jgsl.core.jids import bare
from jgsl.core.stringmaps import StringMap
from jgsl.emudb import EmuUser
from jgsl.wire.codec import Envelope

log = Logger(namespace="jgsl.emu")


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
        a = self.avatar
        dx, dz = self.target[0] - a.x, self.target[1] - a.z
        dist = math.hypot(dx, dz)
        if dist < 1e-6:
            angle = self.rng.uniform(0, math.tau)
            r = self.radius * math.sqrt(self.rng.random())
            self.target = (self.home[0] + r * math.cos(angle), self.home[1] + r * math.sin(angle))
            return
        move = min(dist, self.speed * dt)
        a.x += dx / dist * move
        a.z += dz / dist * move
        a.facing = math.atan2(dz, dx)


def user_jid(user: EmuUser, component: str) -> str:
    return f"{user.username}@{component}"


def gateway_for(user: EmuUser, default: str) -> str:
    """The user's gateway: its ``server`` when that is a JID, else ``default``.

    The original files name the gateway by a bare account id (``server="1100"``) that only
    meant something on ParaWorld's servers; like the original ForceGateway option, the
    configured gateway is used for those.
    """
    return user.server if "@" in user.server or "." in user.server else default


class EmuCore:
    def __init__(self, component: str, users: list[EmuUser], gateway: str,
                 settings: ClientSettings | None = None, *, seed: int | None = None,
                 on_event: Callable[[str, Event], None] = lambda user, event: None,
                 maps: dict[str, StringMap] | None = None) -> None:
        self.component = component
        self.clients: dict[str, ClientCore] = {}
        self.behaviours: list[Wander] = []
        self._drops = DropLog(log)
        rng = random.Random(seed)
        for user in users:
            jid = user_jid(user, component)
            avatar = Avatar(x=user.x, y=user.y, z=user.z, facing=user.facing,
                            asset_file=user.asset_file, nickname=user.nickname,
                            dummy=user.dummy)
            client = ClientCore(jid, gateway_for(user, gateway), user.worldpath, avatar,
                                settings, on_event=lambda e, j=jid: on_event(j, e), maps=maps)
            self.clients[jid] = client
            if user.behaviour == "wander":
                self.behaviours.append(
                    Wander(avatar, user.radius, user.speed, random.Random(rng.random())))

    def connected(self, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        for client in self.clients.values():
            if client.state is State.IDLE:
                out += client.start(now)
        return out

    def tick(self, now: float) -> list[Envelope]:
        for behaviour in self.behaviours:
            behaviour.step(now)
        out: list[Envelope] = []
        for client in self.clients.values():
            out += client.tick(now)
        return out

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        client = self.clients.get(bare(envelope.recipient))
        if client is None:
            self._drops.drop(now, "message for unknown emulated user {recipient}",
                             recipient=envelope.recipient)
            return []
        return client.receive(now, envelope)

    def stop(self, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        for client in self.clients.values():
            out += client.stop(now)
        return out
