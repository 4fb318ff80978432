"""Gateway core: ping, login allocation through grid processes, refusals, liveness, query."""

from __future__ import annotations

from itertools import count
from pathlib import Path

import pytest

from jgsl.config import load_rules
from jgsl.core.gateway import GatewayCore, GatewaySettings
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope

ALPHA = "worlds/MyWorlds/AlphaWorld/"
GW = "gateway.localhost"


@pytest.fixture
def gateway():
    keys = (f"key{i}" for i in count())
    rules = load_rules(Path(__file__).parent / "data" / "jgsl.config.xml")
    return GatewayCore(GW, rules, GatewaySettings(grid_dead_after=10, spawn_timeout=5),
                       start=100.0, wall_clock=lambda: 1234.5, key_factory=lambda: next(keys))


def send(core, now, sender, message):
    return core.receive(now, Envelope(sender, GW, message))


def hello(core, now, grid="grid1.localhost", nodes=()):
    return send(core, now, grid, pb.GridHello(nodes=list(nodes)))


def login(core, now, client="alice@emu.localhost/r", x=20091.0, z=20086.0, world=ALPHA):
    return send(core, now, client, pb.Login(worldpath=world, x=x, y=36.7, z=z, csk="c"))


def test_ping_reply_carries_gateway_key(gateway):
    (out,) = send(gateway, 0, "alice@emu.localhost/r", pb.Ping(csk="abc"))
    assert out.recipient == "alice@emu.localhost/r"
    assert out.message == pb.PingReply(csk="abc", sk="key0", is_grid=True)


def test_login_spawns_node_then_replies(gateway):
    hello(gateway, 100)
    (spawn,) = login(gateway, 101)
    assert spawn.recipient == "grid1.localhost"
    assert spawn.message == pb.SpawnNode(request=1, worldpath=ALPHA, gx=100, gy=100, gsize=200,
                                         role="guest", max_users=500)
    # A second login for the same tile waits for the same spawn; no second request.
    assert login(gateway, 101.5, client="bob@emu.localhost") == []
    replies = send(gateway, 102, "grid1.localhost/x", pb.NodeReady(request=1, id=7, key="gk"))
    assert [r.recipient for r in replies] == ["alice@emu.localhost", "bob@emu.localhost"]
    reply = replies[0].message
    assert (reply.gjid, reply.gid, reply.gk, reply.gx, reply.gy, reply.gsize) == (
        "grid1.localhost", 7, "gk", 100, 100, 200.0)
    assert not reply.refused and reply.role == "guest" and reply.sk == "key0"
    assert (reply.x, reply.z, reply.worldpath, reply.csk) == (20091.0, 20086.0, ALPHA, "c")
    assert (reply.server_version, reply.client_version) == (1, 1)
    # Later logins in the tile are answered at once.
    (again,) = login(gateway, 103, client="carol@emu.localhost", x=20150, z=20199.9)
    assert again.message.gid == 7


def test_tile_105_at_inclusive_bound(gateway):
    hello(gateway, 100)
    (spawn,) = login(gateway, 100, x=21000, z=21000)
    assert (spawn.message.gx, spawn.message.gy) == (105, 105)


def test_whole_world_node_has_no_size(gateway):
    hello(gateway, 100)
    (spawn,) = login(gateway, 100, world="worlds/Elsewhere/")
    assert not spawn.message.HasField("gsize")
    (reply,) = send(gateway, 100, "grid1.localhost", pb.NodeReady(request=1, id=1, key="k"))
    assert not reply.message.HasField("gsize")


def test_smallest_node_wins_over_world_node(gateway):
    """A sized tile is used where the rules give one, even if a world node contains the point."""
    hello(gateway, 100)
    login(gateway, 100, x=0, z=0)  # outside the sized rule: the whole-world node
    send(gateway, 100, "grid1.localhost", pb.NodeReady(request=1, id=1, key="k1"))
    (spawn,) = login(gateway, 100, x=20000, z=20000)
    assert spawn.message.gsize == 200
    send(gateway, 100, "grid1.localhost", pb.NodeReady(request=2, id=2, key="k2"))
    (reply,) = login(gateway, 100, x=20001, z=20001)
    assert reply.message.gid == 2
    (reply,) = login(gateway, 100, x=5, z=5)
    assert reply.message.gid == 1


@pytest.mark.parametrize(
    "message, reason",
    [
        (pb.Login(worldpath="", x=1), "no world path"),
        (pb.Login(worldpath=ALPHA, x=float("nan")), "invalid position"),
        (pb.Login(worldpath=ALPHA, x=1e300), "invalid position"),
        (pb.Login(worldpath=ALPHA, x=1, client_version=9), "client version 9"),
        (pb.Login(worldpath=ALPHA, x=1), "no grid process is available"),
    ],
)
def test_refusals_have_reasons(gateway, message, reason):
    (out,) = send(gateway, 0, "eve@x", message)
    assert out.message.refused and reason in out.message.reason and not out.message.gk


def test_dead_grid_refuses_pending_and_reallocates(gateway):
    hello(gateway, 100)
    hello(gateway, 100, grid="grid2.localhost")
    (spawn,) = login(gateway, 101)
    first = spawn.recipient
    other = "grid2.localhost" if first == "grid1.localhost" else "grid1.localhost"
    hello(gateway, 109, grid=other)  # only the other grid keeps reporting
    refused = gateway.tick(111.5)
    assert [r.message.reason for r in refused] == ["grid process died"]
    (respawn,) = login(gateway, 112)
    assert respawn.recipient == other


def test_unanswered_spawn_times_out(gateway):
    hello(gateway, 100)
    login(gateway, 100)
    assert gateway.tick(104) == []
    hello(gateway, 104)
    (refusal,) = gateway.tick(106)
    assert refusal.message.refused and "did not start" in refusal.message.reason


def test_restarted_gateway_adopts_reported_nodes(gateway):
    node = pb.HostedNode(key="k9")
    node.info.id, node.info.worldpath, node.info.gx, node.info.gy = 9, ALPHA, 100, 100
    node.info.gsize, node.info.agents = 200, 3
    hello(gateway, 100, nodes=[node])
    (reply,) = login(gateway, 100)
    assert (reply.message.gid, reply.message.gk, reply.message.online_user_num) == (9, "k9", 3)


def test_grid_restart_forgets_its_nodes(gateway):
    hello(gateway, 100)
    login(gateway, 100)
    send(gateway, 100, "grid1.localhost", pb.NodeReady(request=1, id=1, key="k"))
    hello(gateway, 101)  # reports no nodes: it restarted
    (spawn,) = login(gateway, 102)
    assert isinstance(spawn.message, pb.SpawnNode)


def test_query_reports_time_uptime_and_nodes(gateway):
    hello(gateway, 100)
    login(gateway, 100)
    send(gateway, 100, "grid1.localhost", pb.NodeReady(request=1, id=1, key="k"))
    (out,) = send(gateway, 160, "alice@x/r", pb.Query(csk="c", fields=["systime"], forward="f"))
    result = out.message.result
    assert (out.message.forward, result.systime, result.uptime) == ("f", 1234500, 60.0)
    assert [(n.id, n.gx, n.gy, n.jid) for n in result.nodes] == [(1, 100, 100, "grid1.localhost")]


def test_unexpected_messages_dropped(gateway):
    assert send(gateway, 0, "x@y", pb.NormalUpdate()) == []
    assert send(gateway, 0, "grid1.localhost", pb.NodeReady(request=42)) == []


def test_login_reply_carries_a_signed_ticket(gateway):
    from jgsl.core.tickets import DEV_TICKET_SECRET, ticket_problem

    hello(gateway, 100)
    login(gateway, 101)
    (reply,) = send(gateway, 102, "grid1.localhost", pb.NodeReady(request=1, id=7, key="gk"))
    ticket = reply.message.ticket
    assert (ticket.user, ticket.node_id, ticket.node_key, ticket.gateway, ticket.expires) == (
        "alice@emu.localhost", 7, "gk", GW, 162.0)
    assert ticket_problem(DEV_TICKET_SECRET, ticket, "alice@emu.localhost", 7, "gk", 150,
                          {GW}) is None
    assert "forged" in ticket_problem(b"another secret", ticket, "alice@emu.localhost", 7,
                                      "gk", 150, {GW})
