"""Emulated users move (wander, patrol, follow) and answer chat after a short delay."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from twisted.words.xish import domish

from jgsl.config import ConfigError, load_rules
from jgsl.core.client import Avatar, ClientSettings
from jgsl.core.emu import EmuCore, EmuUser, Patrol
from jgsl.core.gateway import GatewayCore
from jgsl.core.gridprocess import GridProcessCore
from jgsl.emudb import parse_users
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Chat, CodecError, Envelope, decode, encode, parse
from tests.network import Network

GW = "gateway.localhost"
ALPHA = "worlds/MyWorlds/AlphaWorld/"


def test_patrol_walks_the_waypoints_in_a_loop():
    avatar = Avatar(x=0, z=0)
    patrol = Patrol(avatar, [(0, 0), (10, 0), (10, 10)], speed=2)
    visited = []
    for t in range(0, 40):
        patrol.step(float(t))
        visited.append((round(avatar.x, 6), round(avatar.z, 6)))
    assert (10.0, 0.0) in visited and (10.0, 10.0) in visited
    assert visited[5] == (10.0, 0.0) and visited[10] == (10.0, 10.0)  # 2 units/s
    steps = [math.dist(a, b) for a, b in zip(visited, visited[1:], strict=False)]
    assert max(steps) <= 2.000001


def test_patrol_and_follow_attributes():
    users, errors = parse_users(b"""<EmuDB><EmuUsers>
      <user username="p" password="x"><playeragent x="1" waypoints="1 1; 5 1;5 5" speed="3"
        behaviour="patrol"/></user>
      <user username="f" password="x"><playeragent x="1" behaviour="follow" follow="p"
        distance="4"/></user>
      <user username="p1" password="x"><playeragent x="1" behaviour="patrol" waypoints="1 1"/>
      </user>
      <user username="f1" password="x"><playeragent x="1" behaviour="follow"/></user>
      <user username="w" password="x"><playeragent x="1" waypoints="1 1; east 3"/></user>
    </EmuUsers></EmuDB>""", "b.xml")
    assert users[0].waypoints == ((1, 1), (5, 1), (5, 5)) and users[0].speed == 3
    assert (users[1].follow, users[1].distance) == ("p", 4)
    assert [e.split(": ", 1)[1] for e in errors] == [
        "user 'p1': behaviour patrol needs at least two waypoints",
        "user 'f1': behaviour follow needs a follow attribute",
        "user 'w': waypoint 'east 3' is not 'x z'",
    ]


def emu_world(users, seed=3):
    net = Network()
    rules = load_rules(Path(__file__).parent / "data" / "jgsl.config.xml")
    grid = GridProcessCore("grid1.localhost", [GW])
    net.add(GW, GatewayCore(GW, rules))
    net.add("grid1.localhost", grid)
    emu = EmuCore("emu.localhost", users, GW, ClientSettings(update_interval=0.5), seed=seed)
    net.add("emu.localhost", emu)
    net.deliver(0, grid.connected(0))
    net.deliver(0, emu.connected(0))
    return net, emu


def test_follower_keeps_its_distance():
    users = [EmuUser("lead", "p", ALPHA, x=20050, y=1, z=20050, asset_file="a.x",
                     behaviour="patrol", waypoints=((20050, 20050), (20090, 20050)), speed=2),
             EmuUser("dog", "p", ALPHA, x=20030, y=1, z=20080, asset_file="a.x",
                     behaviour="follow", follow="lead", distance=3, speed=4)]
    net, emu = emu_world(users)
    t = 0.0
    while t < 30:
        t += 0.25
        net.tick(t)
    lead = emu.clients["lead@emu.localhost"].avatar
    dog = emu.clients["dog@emu.localhost"].avatar
    # The dog follows what its client sees of the leader (an update interval behind).
    assert math.dist((lead.x, lead.z), (dog.x, dog.z)) < 3 + 2 * 0.5 * 2 + 0.5
    assert math.dist((dog.x, dog.z), (20030, 20080)) > 20


def test_chat_round_trip_and_bad_chat():
    envelope = decode(parse(encode(Chat("hello, <world> & you"), "bob@emu.localhost",
                                     "me@localhost/pc")))
    assert envelope == Envelope("me@localhost/pc", "bob@emu.localhost",
                                Chat("hello, <world> & you"))
    empty = domish.Element((None, "message"))
    empty["type"], empty["from"] = "chat", "x@y"
    with pytest.raises(CodecError, match="without body"):
        decode(empty)


def test_auto_reply_after_a_delay_never_to_other_bots():
    users = [EmuUser("bob", "p", ALPHA, x=1, asset_file="a.x", autoreply=("hi!", "busy")),
             EmuUser("mute", "p", ALPHA, x=1, asset_file="a.x")]
    emu = EmuCore("emu.localhost", users, GW, seed=1)
    ask = Chat("hello")
    assert emu.receive(10, Envelope("me@localhost/pc", "bob@emu.localhost", ask)) == []
    assert emu.receive(10, Envelope("mute2@emu.localhost", "bob@emu.localhost", ask)) == []
    assert emu.receive(10, Envelope("me@localhost/pc", "mute@emu.localhost", ask)) == []
    assert [e for e in emu.tick(10.4) if isinstance(e.message, Chat)] == []
    replies = [e for e in emu.tick(12.1) if isinstance(e.message, Chat)]
    assert len(replies) == 1
    (reply,) = replies
    assert (reply.sender, reply.recipient) == ("bob@emu.localhost", "me@localhost/pc")
    assert reply.message.body in ("hi!", "busy")
    assert [e for e in emu.tick(20) if isinstance(e.message, Chat)] == []


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_stagger_ticks_groups_of_users_in_turn():
    """With stagger N each tick handles every N-th user (and moves only them), so a load
    generator ticking N times as often sends its users' updates spread over time."""
    users = [EmuUser(username=f"u{i}", password="", worldpath="w/", x=0.0, y=0.0, z=0.0,
                     behaviour="wander", radius=5.0, speed=1.0) for i in range(6)]
    emu = EmuCore("emu.localhost", users, "gateway.localhost", stagger=3, seed=1)
    ticked: list[str] = []
    for jid, client in emu.clients.items():
        client.tick = lambda now, jid=jid: ticked.append(jid) or []
    groups = []
    for now in (1.0, 1.1, 1.2, 1.3):
        emu.tick(now)
        groups.append(set(ticked))
        ticked.clear()
    assert [len(g) for g in groups] == [2, 2, 2, 2]
    assert set().union(*groups[:3]) == set(emu.clients)  # three ticks: everyone once
    assert groups[3] == groups[0]
    # a group's walkers move at its turns only (the first turn just starts their clock)
    positions = [(b.avatar.x, b.avatar.z) for b in emu.behaviours]
    emu.tick(1.4)
    moved = [i for i, b in enumerate(emu.behaviours) if (b.avatar.x, b.avatar.z) != positions[i]]
    assert len(moved) == 2


def test_an_update_due_before_the_users_turn_goes_at_the_first_tick_after():
    """Answers that come in under the update interval: the next update goes when it is due
    (here every 1/16 s), not at the user's next turn (every 4 ticks of 1/32 s = 1/8 s).
    (Binary fractions, so that due times and tick times compare exactly.)"""
    users = [EmuUser("fast", "p", ALPHA, x=20050, y=1, z=20050, asset_file="a.x")]
    net = Network()
    rules = load_rules(Path(__file__).parent / "data" / "jgsl.config.xml")
    grid = GridProcessCore("grid1.localhost", [GW])
    net.add(GW, GatewayCore(GW, rules))
    net.add("grid1.localhost", grid)
    emu = EmuCore("emu.localhost", users, GW, ClientSettings(update_interval=1 / 16), seed=1,
                  stagger=4)
    net.add("emu.localhost", emu)
    net.deliver(0, grid.connected(0))
    net.deliver(0, emu.connected(0))
    sent: list[float] = []
    for i in range(1, 200):
        before = len(net.delivered)
        net.tick(i / 32)
        sent += [i / 32 for e in net.delivered[before:]
                 if isinstance(e.message, pb.NormalUpdate)]
    gaps = {b - a for a, b in zip(sent[-40:], sent[-39:], strict=False)}
    assert gaps == {1 / 16}, sent[-40:]
