"""Crossing a border (issue 23): a walker goes back and forth over the border of two tiles
(and through a corner where four meet), on nodes spread over two grid processes, while a
watcher stands on each side. Measured in the cores with a zero-latency network: the longest
time between two positions of the walker that a watcher sees, and of the watchers that the
walker sees; no gap may exceed two update intervals, nobody leaves, nobody signs out."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from jgsl.config import load_rules
from jgsl.core.client import Avatar, ClientCore, ClientSettings, EventKind
from jgsl.core.gateway import GatewayCore, GatewaySettings
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.node import GridSettings
from tests.network import Clients, Network

DATA = Path(__file__).parent / "data"
ALPHA = "worlds/MyWorlds/AlphaWorld/"
GW = "gateway.localhost"
INTERVAL = 0.5
RADIUS = 60.0
SETTINGS = ClientSettings(update_interval=INTERVAL, request_timeout=5.0)


def crossing(path, watchers: dict[str, tuple[float, float]], seconds: float = 40.0):
    """Run the walker along ``path(t) -> (x, z)`` with ``watchers`` standing (swaying a
    little) at their points; the longest gaps seen, and the events."""
    net = Network()
    rules = load_rules(DATA / "jgsl.config.xml")
    gateway = GatewayCore(GW, rules, GatewaySettings(interest_radius=RADIUS))
    net.add(GW, gateway)
    for i in (1, 2):
        grid = GridProcessCore(f"grid{i}.localhost", [GW], GridSettings(sense_radius=RADIUS))
        net.add(f"grid{i}.localhost", grid)
        net.deliver(0, grid.connected(0))
    events: list[tuple[str, EventKind, str]] = []
    clients: dict[str, ClientCore] = {}
    for name, (x, z) in {"walker": path(0.0), **watchers}.items():
        jid = f"{name}@emu.localhost"
        clients[jid] = ClientCore(jid, GW, ALPHA, Avatar(x=x, y=36.7, z=z, asset_file="a.x"),
                                  SETTINGS, on_event=lambda e, n=name: events.append(
                                      (n, e.kind, e.jid)))
    net.add("emu.localhost", Clients(clients))
    for client in clients.values():
        net.deliver(0.0, client.start(0.0))
    walker = clients["walker@emu.localhost"]
    seen: dict[tuple[str, str], list[float]] = {}
    last: dict[tuple[str, str], tuple] = {}
    t, step = 0.0, 0.05
    while t <= seconds:
        walker.avatar.x, walker.avatar.z = path(t)
        for jid, client in clients.items():
            if client is not walker:  # the watchers sway, so their positions change too
                x, z = watchers[jid.split("@")[0]]
                client.avatar.x = x + 0.5 * math.sin(t)
        net.tick(t)
        if t >= 5.0:  # (after everyone logged in and met)
            for viewer, client in clients.items():
                for other in clients:
                    if other == viewer or walker.jid not in (viewer, other):
                        continue  # (the watchers may stand too far apart to see each other)
                    agent = client.agents.get(other)
                    key = (viewer, other)
                    if agent is None:
                        seen.setdefault(key, []).append(math.inf)  # not seen at all now
                        continue
                    position = agent.position()
                    if last.get(key) != position:
                        last[key] = position
                        seen.setdefault(key, []).append(t)
        t = round(t + step, 2)
    gaps = {}
    for key, times in seen.items():
        if any(math.isinf(s) for s in times):
            gaps[key] = math.inf
            continue
        times = [5.0, *times, seconds]
        gaps[key] = max(b - a for a, b in zip(times, times[1:], strict=False))
    return gaps, events, net


def back_and_forth(x0: float, x1: float, z0: float, z1: float, speed: float = 4.0):
    """A walk between two points and back, at ``speed`` units a second."""
    length = math.hypot(x1 - x0, z1 - z0)

    def at(t: float) -> tuple[float, float]:
        s = (speed * t) % (2 * length)
        f = (s if s <= length else 2 * length - s) / length
        return x0 + (x1 - x0) * f, z0 + (z1 - z0) * f
    return at


@pytest.mark.parametrize("name, path, watchers", [
    ("a border", back_and_forth(19975.0, 20025.0, 20100.0, 20100.0),
     {"west": (19960.0, 20105.0), "east": (20040.0, 20095.0)}),
    ("a corner of four tiles", back_and_forth(19980.0, 20020.0, 19980.0, 20020.0),
     {"sw": (19975.0, 19975.0), "ne": (20025.0, 20025.0), "nw": (19975.0, 20025.0),
      "se": (20025.0, 19975.0)}),
])
def test_no_gap_longer_than_two_update_intervals_while_crossing(name, path, watchers):
    gaps, events, net = crossing(path, watchers)
    spawned = {(e.message.gx, e.message.gy): e.recipient for e in net.delivered
               if type(e.message).__name__ == "SpawnNode"}
    assert len(spawned) >= 2 and set(spawned.values()) == {"grid1.localhost",
                                                           "grid2.localhost"}, spawned
    assert len(gaps) == 2 * len(watchers)  # the walker and each watcher, both ways
    worst = max(gaps.values())
    assert worst <= 2 * INTERVAL + 0.1, {k: round(v, 2) for k, v in gaps.items()}
    assert not [e for e in events if e[1] in (EventKind.SIGNED_OUT, EventKind.USER_LEAVE,
                                              EventKind.CONNECTION_TIMEOUT)], events
