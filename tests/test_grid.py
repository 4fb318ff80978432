"""Grid process and node: spawning, frame-id deltas, ping list, ct, dummy, observers, expiry."""

from __future__ import annotations

import pytest

from jgsl.core.grid import GridProcessCore, GridSettings
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope

GRID = "grid1.localhost"
GW = "gateway.localhost"
ALPHA = "worlds/MyWorlds/AlphaWorld/"


@pytest.fixture
def grid():
    core = GridProcessCore(GRID, [GW], GridSettings(agent_timeout=20, hello_interval=2),
                           key_factory=lambda: "nodekey")
    (ready,) = core.receive(0, Envelope(GW + "/r", GRID, pb.SpawnNode(
        request=5, worldpath=ALPHA, gx=100, gy=100, gsize=200, role="guest")))
    assert ready.message == pb.NodeReady(request=5, id=1, key="nodekey")
    return core


FULL = pb.AgentState(asset_file="a.x", rx=9100, y=3672, rz=8600, facing=127)


def update(grid, now, sender, st=0, ct=1, data=None, **kw):
    msg = pb.NormalUpdate(sk="nodekey", id=1, st=st, ct=ct, **kw)
    if data is not None:
        msg.agent.data.CopyFrom(data)
    out = grid.receive(now, Envelope(sender, GRID, msg))
    return out[0].message if out else None


def names(reply):
    return {entry.name: entry.state for entry in reply.agents}


def test_first_contact_gets_everything_then_only_changes(grid):
    update(grid, 0, "alice@emu.localhost/r", data=FULL)
    reply = update(grid, 0, "bob@emu.localhost/r", data=FULL)
    assert names(reply) == {"alice": FULL}
    assert reply.st == 3 and reply.ct == 1 and reply.sk == "nodekey"
    # Alice moves: bob, echoing st=3, gets only rx.
    update(grid, 1, "alice@emu.localhost/r", st=2, ct=2, data=pb.AgentState(rx=9200))
    reply2 = update(grid, 1, "bob@emu.localhost/r", st=reply.st, ct=2)
    assert names(reply2) == {"alice": pb.AgentState(rx=9200)}
    # Nothing new since: alice is only in the ping list.
    reply3 = update(grid, 2, "bob@emu.localhost/r", st=reply2.st, ct=3)
    assert names(reply3) == {} and list(reply3.ping) == ["alice"]


def test_lost_reply_means_changes_are_resent(grid):
    """The client echoes the old st when a reply was lost; the same deltas come again."""
    update(grid, 0, "alice@emu.localhost", data=FULL)
    first = update(grid, 0, "bob@emu.localhost", data=FULL)
    update(grid, 1, "alice@emu.localhost", data=pb.AgentState(rz=8700))
    lost = update(grid, 1, "bob@emu.localhost", st=first.st)
    again = update(grid, 2, "bob@emu.localhost", st=first.st)
    assert names(lost) == names(again) == {"alice": pb.AgentState(rz=8700)}


def test_unchanged_values_do_not_advance(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "bob@emu.localhost", data=FULL)
    update(grid, 1, "alice@emu.localhost", data=FULL)  # same values again
    assert names(update(grid, 1, "bob@emu.localhost", st=reply.st)) == {}


def test_incomplete_agent_gets_no_ct(grid):
    """Without asset and position the sender is asked for everything (ct absent)."""
    reply = update(grid, 0, "alice@emu.localhost", ct=4, data=pb.AgentState(rx=5))
    assert not reply.HasField("ct")
    reply = update(grid, 0, "alice@emu.localhost", ct=5, data=FULL)
    assert reply.ct == 5


def test_dummy_gets_no_others_but_is_seen(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "guest@emu.localhost", data=FULL, dummy=True)
    assert names(reply) == {} and list(reply.ping) == []
    assert "guest" in names(update(grid, 0, "bob@emu.localhost", data=FULL))


def test_names_carry_domain_only_when_it_differs(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "player@localhost/pc", data=FULL)
    assert list(names(reply)) == ["alice@emu.localhost"]


def test_observers_receive_but_are_not_broadcast(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    out = grid.receive(0, Envelope("eve@emu.localhost", GRID,
                                   pb.ObserverUpdate(sk="nodekey", id=1)))
    assert names(out[0].message) == {"alice": FULL}
    assert names(update(grid, 0, "bob@emu.localhost", data=FULL)) == {"alice": FULL}


def test_recover_list_returns_full_state(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "bob@emu.localhost", data=FULL)
    again = update(grid, 1, "bob@emu.localhost", st=reply.st, recover=["alice", "nobody"])
    assert names(again) == {"alice": FULL}


def test_logout_removes_agent_at_once(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    grid.receive(1, Envelope("alice@emu.localhost", GRID, pb.Logout(sk="nodekey", id=1)))
    assert names(update(grid, 1, "bob@emu.localhost", data=FULL)) == {}


def test_inactive_agents_expire(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    update(grid, 15, "bob@emu.localhost", data=FULL)
    grid.tick(21)
    assert set(grid.nodes[1].agents) == {"bob@emu.localhost"}


@pytest.mark.parametrize("sk, node_id", [("wrong", 1), ("nodekey", 2)])
def test_unknown_node_or_key_dropped(grid, sk, node_id):
    out = grid.receive(0, Envelope("x@y", GRID, pb.NormalUpdate(sk=sk, id=node_id)))
    assert out == [] and grid.nodes[1].agents == {}


def test_oversized_strings_are_not_stored(grid):
    update(grid, 0, "alice@emu.localhost", data=pb.AgentState(asset_file="x" * 5000, rx=1))
    assert grid.nodes[1].agents["alice@emu.localhost"].fields.value("asset_file") is None


def test_spawn_only_from_trusted_gateway(grid):
    assert grid.receive(0, Envelope("evil.localhost", GRID, pb.SpawnNode(request=1))) == []
    assert list(grid.nodes) == [1]


def test_same_region_spawn_is_idempotent(grid):
    (ready,) = grid.receive(0, Envelope(GW, GRID, pb.SpawnNode(
        request=6, worldpath=ALPHA, gx=100, gy=100, gsize=200)))
    assert (ready.message.request, ready.message.id) == (6, 1)


def test_hello_on_connect_and_every_interval(grid):
    (hello,) = grid.connected(10)
    assert hello.recipient == GW
    (node,) = hello.message.nodes
    assert (node.key, node.info.id, node.info.gx, node.info.gsize) == ("nodekey", 1, 100, 200)
    assert grid.tick(11) == []
    assert len(grid.tick(12)) == 1
