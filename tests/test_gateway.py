"""Gateway core: ping, login allocation through grid processes, refusals, liveness, query."""

from __future__ import annotations

from itertools import count
from pathlib import Path

import pytest

from jgsl.config import load_rules
from jgsl.core.gateway import GatewayCore, GatewaySettings
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Bounce, Envelope, XmppPing, XmppPong

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


def two_grids_spawning(gateway):
    """grid1 and grid2 registered at 100; a login at 101 spawning on one of them: the
    spawn request, that grid and the other."""
    hello(gateway, 100)
    hello(gateway, 100, grid="grid2.localhost")
    (spawn,) = login(gateway, 101)
    first = spawn.recipient
    other = "grid2.localhost" if first == "grid1.localhost" else "grid1.localhost"
    return spawn, first, other


def test_dead_grid_hands_its_waiting_logins_to_another_and_reallocates(gateway):
    _, first, other = two_grids_spawning(gateway)
    hello(gateway, 109, grid=other)  # only the other grid keeps reporting
    (respawn,) = gateway.tick(111.5)  # the waiting login is not refused: spawned elsewhere
    assert respawn.recipient == other and isinstance(respawn.message, pb.SpawnNode)
    (reply,) = send(gateway, 112, other, pb.NodeReady(request=respawn.message.request, id=3,
                                                      key="k3"))
    assert reply.message.gjid == other and not reply.message.refused


def test_a_closing_grid_gets_no_more_logins_and_its_regions_move_at_once(gateway):
    spawn, first, other = two_grids_spawning(gateway)
    send(gateway, 101, first, pb.NodeReady(request=spawn.message.request, id=1, key="k1"))
    (spawn2,) = login(gateway, 101, x=20291.0)  # a second region, spawning on `other`...
    assert spawn2.recipient == other
    (spawn3,) = login(gateway, 101, client="bob@x", x=20491.0)  # ...and a third on `first`
    assert spawn3.recipient == first
    # `first` stops: the login waiting for its spawn goes to `other` at once.
    (moved,) = send(gateway, 102, first, pb.GridClosing(reason="shutting down"))
    assert moved.recipient == other and moved.message.worldpath == ALPHA
    # Logins for the region it served are spawned on `other` too; none names `first`.
    (respawn,) = login(gateway, 102, client="carol@x")
    assert respawn.recipient == other and isinstance(respawn.message, pb.SpawnNode)
    assert all(n.grid != first for n in gateway._nodes.values())
    # A repeated GRID_CLOSING changes nothing.
    assert send(gateway, 102, first, pb.GridClosing()) == []


def test_unanswered_spawn_times_out(gateway):
    hello(gateway, 100)
    login(gateway, 100)
    hello(gateway, 102)
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


def gateway_with(rules_xml: bytes = b"", **settings) -> GatewayCore:
    from jgsl.config import parse_rules

    rules = parse_rules(rules_xml or (
        b'<JGSL><GridServer><GridNodeRules><rule worldfilter="^w/$" gridsize="100" '
        b'UserRole="friend" overflow="1"/><rule worldfilter="^solo/$" gridsize="100"/>'
        b"</GridNodeRules></GridServer></JGSL>"), "t.xml")
    core = GatewayCore(GW, rules, GatewaySettings(**settings), key_factory=lambda: "k")
    hello(core, 0)
    return core


def ready(core, now, request, node_id):
    return send(core, now, "grid1.localhost", pb.NodeReady(request=request, id=node_id,
                                                           key=f"k{node_id}"))


def test_full_node_refuses_where_the_rule_allows_no_overflow():
    core = gateway_with(max_users=2)
    login(core, 1, client="a@x", world="solo/", x=10, z=10)
    ready(core, 1, 1, 1)
    (b,) = login(core, 2, client="b@x", world="solo/", x=20, z=20)
    assert b.message.gid == 1
    (c,) = login(core, 3, client="c@x", world="solo/", x=30, z=30)
    assert c.message.refused and c.message.reason == "full (2 users)"
    # The grid reports one agent left: there is room again.
    node = pb.HostedNode(key="k1")
    node.info.id, node.info.worldpath, node.info.gsize, node.info.agents = 1, "solo/", 100, 1
    node.admitted.extend(["a@x", "b@x"])  # both came; one has left since
    hello(core, 4, nodes=[node])
    (d,) = login(core, 5, client="d@x", world="solo/", x=30, z=30)
    assert d.message.gid == 1 and not d.message.refused


def test_full_node_overflows_to_another_instance_where_allowed():
    core = gateway_with(max_users=1)
    login(core, 1, client="a@x", world="w/", x=10, z=10)
    ready(core, 1, 1, 1)
    (spawn,) = login(core, 2, client="b@x", world="w/", x=20, z=20)
    assert isinstance(spawn.message, pb.SpawnNode) and spawn.message.instance == 1
    (reply,) = ready(core, 2, 2, 2)
    assert reply.message.gid == 2 and reply.message.role == "friend"
    (c,) = login(core, 3, client="c@x", world="w/", x=30, z=30)
    assert c.message.reason == "full (1 users)"  # overflow="1": two nodes at most


def test_idle_nodes_are_recycled():
    core = gateway_with(recycle_delay=30)
    login(core, 1, client="a@x", world="solo/", x=10, z=10)
    ready(core, 1, 1, 1)
    node = pb.HostedNode(key="k1")
    node.info.id, node.info.worldpath, node.info.gsize = 1, "solo/", 100
    closed = []
    for now in range(2, 43, 2):  # heartbeats every 2 s; a@x leaves after 10 s
        node.info.agents = 1 if now <= 10 else 0
        node.admitted[:] = ["a@x"] if now == 2 else []  # a@x came with its ticket
        hello(core, now, nodes=[node])
        closed += [(now, e.message) for e in core.tick(now)]
    # Last used at 10 (the last report with an agent): closed once idle for over 30 s.
    assert closed == [(42, pb.CloseNode(id=1, key="k1"))]
    (spawn,) = login(core, 46, client="b@x", world="solo/", x=10, z=10)
    assert isinstance(spawn.message, pb.SpawnNode)


def test_busy_nodes_are_not_recycled():
    core = gateway_with(recycle_delay=30)
    login(core, 1, client="a@x", world="solo/", x=10, z=10)
    ready(core, 1, 1, 1)
    node = pb.HostedNode(key="k1")
    node.info.id, node.info.worldpath, node.info.gsize, node.info.agents = 1, "solo/", 100, 3
    for now in range(5, 100, 5):
        hello(core, now, nodes=[node])
        assert core.tick(now) == []


def test_role_hook_allows_denies_or_changes_roles():
    def hook(user, world, role):
        return {"boss@x": "administrator", "ghost@x": None}.get(user, role)

    core = gateway_with(role_hook=hook)
    login(core, 1, client="boss@x", world="solo/", x=1, z=1)
    (boss,) = ready(core, 1, 1, 1)
    assert boss.message.role == boss.message.ticket.role == "administrator"
    (ghost,) = login(core, 2, client="ghost@x", world="solo/", x=1, z=1)
    assert ghost.message.refused and ghost.message.reason == "not authorized"
    (guest,) = login(core, 3, client="someone@x", world="solo/", x=1, z=1)
    assert guest.message.role == "guest"


def test_failing_role_hook_refuses_without_crashing():
    core = gateway_with(role_hook=lambda user, world, role: 1 / 0)
    (out,) = login(core, 1, client="a@x", world="solo/", x=1, z=1)
    assert out.message.reason == "not authorized"


def test_user_filter_versions_shutdown_and_unknown_world():
    import re

    core = gateway_with(user_filter=re.compile("^player"), min_client_version=2,
                        server_version=3, client_version=4)
    reasons = [login(core, 1, client=c, world=w, x=1, z=1)[0].message
               for c, w in (("intruder@x", "solo/"), ("player1@x", "nowhere/"))]
    assert [r.reason for r in reasons] == ["not authorized", "unknown world"]
    assert (reasons[0].server_version, reasons[0].client_version) == (3, 4)
    (old,) = send(core, 1, "player2@x", pb.Login(worldpath="solo/", x=1, client_version=1))
    assert "too old (at least 2)" in old.message.reason
    core.begin_shutdown()
    (late,) = login(core, 2, client="player3@x", world="solo/", x=1, z=1)
    assert late.message.reason == "shutting down"


def test_no_rule_for_this_position():
    core = gateway_with(b'<JGSL><GridServer><GridNodeRules><rule worldfilter="^w/$" '
                        b'gridsize="10" fromx="0" fromy="0" tox="5" toy="5"/>'
                        b"</GridNodeRules></GridServer></JGSL>")
    (out,) = login(core, 1, client="a@x", world="w/", x=50, z=50)
    assert out.message.reason == "no rule serves this position"


def two_grids_one_node(gateway):
    """grid1 and grid2 registered at 100; node 1 (key k1) ready on whichever got it."""
    spawn, first, other = two_grids_spawning(gateway)
    send(gateway, 101, first, pb.NodeReady(request=spawn.message.request, id=1, key="k1"))
    return first, other


def test_a_silent_grid_is_pinged_and_lives_on_if_it_answers(gateway):
    first, other = two_grids_one_node(gateway)
    hello(gateway, 102.5, grid=other)
    (ping,) = gateway.tick(103.5)  # silent for 3.5 s: more than a heartbeat and a half
    assert ping.recipient == first and isinstance(ping.message, XmppPing)
    assert gateway.tick(104) == []  # one ping at a time
    assert send(gateway, 104, first, XmppPong(ping.message.id)) == []
    hello(gateway, 105, grid=other)
    assert gateway.tick(106) == []  # alive: nothing forgotten, no new ping yet
    (reply,) = login(gateway, 106, client="bob@x")
    assert reply.message.gjid == first


def test_a_bounced_ping_means_dead_at_once_and_logins_go_elsewhere(gateway):
    first, other = two_grids_one_node(gateway)
    hello(gateway, 102.5, grid=other)
    (ping,) = gateway.tick(103.5)
    out = send(gateway, 103.6, first, Bounce("service-unavailable", ping.message))
    assert out == [] and all(n.grid != first for n in gateway._nodes.values())
    (spawn,) = login(gateway, 104, client="bob@x")
    assert spawn.recipient == other


def test_an_unanswered_ping_means_dead_after_the_ping_timeout(gateway):
    first, other = two_grids_one_node(gateway)
    for now in (102.5, 104.5):
        hello(gateway, now, grid=other)
    gateway.tick(103.5)  # the ping
    assert gateway.tick(105.4) == [] and gateway._nodes
    gateway.tick(105.6)  # 2.1 s without an answer: 5.6 s after the last heartbeat, not 10
    assert all(n.grid != first for n in gateway._nodes.values())


def test_a_client_that_finds_a_node_unreachable_makes_the_gateway_check_first(gateway):
    first, other = two_grids_one_node(gateway)
    request = pb.Login(worldpath=ALPHA, x=20091.0, y=36.7, z=20086.0, csk="c2",
                       unreachable="k1")
    (ping,) = send(gateway, 101, "alice@emu.localhost/r", request)  # held, not answered
    assert ping.recipient == first and isinstance(ping.message, XmppPing)
    # The process is gone: the XMPP server bounces the ping; the login is spawned elsewhere.
    (spawn,) = send(gateway, 101.1, first, Bounce("service-unavailable", ping.message))
    assert spawn.recipient == other and isinstance(spawn.message, pb.SpawnNode)


def test_a_held_login_goes_to_the_node_when_its_grid_answers_the_ping(gateway):
    first, _ = two_grids_one_node(gateway)
    request = pb.Login(worldpath=ALPHA, x=20091.0, y=36.7, z=20086.0, csk="c2",
                       unreachable="k1")
    (ping,) = send(gateway, 101, "alice@emu.localhost/r", request)
    (reply,) = send(gateway, 101.1, first, XmppPong(ping.message.id))
    assert reply.message.gk == "k1" and reply.message.csk == "c2"


def test_no_grid_is_judged_while_the_gateways_own_link_is_down(gateway):
    first, other = two_grids_one_node(gateway)
    gateway.disconnected(101)
    assert gateway.tick(115) == [] and len(gateway._grids) == 2
    gateway.connected(115)
    assert gateway.tick(116) == []  # a fresh heartbeat's time after reconnecting
    assert len(gateway._grids) == 2


def test_an_observers_login_leaves_the_user_counted_where_it_is(gateway):
    """A client watching a neighbouring node logs in there with is_observer: it gets that
    node's key and ticket, but stays counted (once) in the node it is in."""
    hello(gateway, 100)
    (spawn,) = login(gateway, 101)
    send(gateway, 102, "grid1.localhost/x", pb.NodeReady(request=spawn.message.request, id=1,
                                                         key="gk1"))
    (spawn2,) = send(gateway, 103, "alice@emu.localhost/r", pb.Login(
        worldpath=ALPHA, x=19980.0, y=36.7, z=20086.0, csk="c", is_observer=True))
    (reply,) = send(gateway, 104, "grid1.localhost/x", pb.NodeReady(
        request=spawn2.message.request, id=2, key="gk2"))
    assert reply.message.gid == 2 and reply.message.ticket.node_id == 2
    loads = {(n.region.gx, n.region.gy): n.load for n in gateway.nodes()}
    assert loads == {(100, 100): 1, (99, 100): 0}


def test_a_grid_back_from_the_dead_is_told_to_close_the_nodes_served_elsewhere(gateway):
    """grid1 went silent and was declared dead; its region was spawned again on grid2. When
    grid1 comes back still reporting its old node, it is told to close it (superseded),
    and logins keep going to grid2's node."""
    hello(gateway, 100)
    login(gateway, 100)
    send(gateway, 100, "grid1.localhost", pb.NodeReady(request=1, id=1, key="old"))
    hello(gateway, 109, grid="grid2.localhost")
    gateway.tick(111)  # grid1 silent for 11 s: dead
    (spawn,) = login(gateway, 112)
    assert spawn.recipient == "grid2.localhost"
    send(gateway, 112, "grid2.localhost", pb.NodeReady(request=spawn.message.request, id=4,
                                                       key="new"))
    stale = pb.HostedNode(key="old")
    stale.info.id, stale.info.worldpath, stale.info.gx, stale.info.gy = 1, ALPHA, 100, 100
    stale.info.gsize, stale.info.agents = 200, 2
    (close,) = hello(gateway, 113, nodes=[stale])
    assert close.recipient == "grid1.localhost"
    assert close.message == pb.CloseNode(id=1, key="old", superseded=True)
    # Heartbeats held up while it was cut off arrive together: told once, not each time.
    assert hello(gateway, 113, nodes=[stale]) == []
    (reply,) = login(gateway, 114, client="bob@emu.localhost/r")
    assert (reply.message.gjid, reply.message.gid, reply.message.gk) == (
        "grid2.localhost", 4, "new")
