"""Grid process and node: acked deltas, ping, gone, ct, dummy, observers, interest, limits."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jgsl.core.agent import Ack
from jgsl.core.client import Avatar, ClientCore, GridProxy, State
from jgsl.core.fields import POSITION_QUANTUM
from jgsl.core.node import GridNode, GridSettings
from jgsl.core.region import Region
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope
from tests.fakes import (
    ALPHA,
    FULL,
    GRID,
    GW,
    NO_REFRESH,
    Captured,
    make_grid,
    rows,
    ticket,
    update,
)


@pytest.fixture
def grid():
    return make_grid()


def undelta(steps):
    out, slot = [], 0
    for step in steps:
        slot += step
        out.append(slot)
    return out


FULL_ROW = {"asset_file": "character/v3/dummy/dummy.x", "rx": 9100, "y": 3672, "rz": 8600,
            "facing": 127}


def test_first_contact_gets_everything_then_deltas(grid):
    update(grid, 0, "alice@emu.localhost/r", data=FULL)
    reply = update(grid, 0, "bob@emu.localhost/r", data=FULL)
    assert rows(reply) == [(0, False, {"name": "alice", **FULL_ROW})]
    assert reply.ct == 1 and reply.sk == "nodekey" and reply.base == 0
    # Alice moves: bob, echoing st, gets only the change, as a delta.
    update(grid, 1, "alice@emu.localhost/r", st=1, ct=2, data=pb.AgentState(rx=9200, facing=2))
    reply2 = update(grid, 1, "bob@emu.localhost/r", st=reply.st, ct=2)
    assert reply2.base == reply.st
    assert rows(reply2) == [(0, True, {"rx": 100, "facing": -125})]
    # Nothing new since: alice is only in the ping list.
    reply3 = update(grid, 2, "bob@emu.localhost/r", st=reply2.st, ct=3)
    assert rows(reply3) == [] and undelta(reply3.ping) == [0]


def test_lost_reply_means_changes_are_resent(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    first = update(grid, 0, "bob@emu.localhost", data=FULL)
    update(grid, 1, "alice@emu.localhost", data=pb.AgentState(rz=8700))
    lost = update(grid, 1, "bob@emu.localhost", st=first.st)
    again = update(grid, 2, "bob@emu.localhost", st=first.st)
    assert rows(lost) == rows(again) == [(0, True, {"rz": 100})]
    assert lost.st != again.st  # every reply has its own frame


def test_unknown_baseline_resets(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    update(grid, 0, "bob@emu.localhost", data=FULL)
    reply = update(grid, 1, "bob@emu.localhost", st=9999)
    assert reply.reset and rows(reply)[0][2]["name"] == "alice"


def test_incomplete_agent_asked_for_everything(grid):
    reply = update(grid, 0, "alice@emu.localhost", ct=4, data=pb.AgentState(rx=5))
    assert not reply.HasField("ct") and reply.want_full
    reply = update(grid, 0, "alice@emu.localhost", ct=5, data=FULL)
    assert reply.ct == 5 and not reply.want_full


def test_dummy_gets_no_others_but_is_seen(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "guest@emu.localhost", data=FULL, dummy=True)
    assert rows(reply) == [] and list(reply.ping) == []
    names = [r[2]["name"] for r in rows(update(grid, 0, "bob@emu.localhost", data=FULL))]
    assert names == ["alice", "guest"]


def test_names_carry_domain_only_when_it_differs(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "player@localhost/pc", data=FULL)
    assert rows(reply)[0][2]["name"] == "alice@emu.localhost"


def test_observers_receive_but_are_not_broadcast(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    out = grid.receive(0, Envelope("eve@emu.localhost", GRID, pb.ObserverUpdate(
        sk="nodekey", id=1, ticket=ticket("eve@emu.localhost"))))
    assert rows(out[0].message)[0][2]["name"] == "alice"
    assert [r[2]["name"] for r in rows(update(grid, 0, "bob@emu.localhost", data=FULL))] == [
        "alice"]


def test_recover_list_returns_full_state(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "bob@emu.localhost", data=FULL)
    again = update(grid, 1, "bob@emu.localhost", st=reply.st, recover=[0, 7])
    assert rows(again) == [(0, False, {"name": "alice", **FULL_ROW})]


def test_logout_is_announced_as_gone(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "bob@emu.localhost", data=FULL)
    grid.receive(1, Envelope("alice@emu.localhost", GRID, pb.Logout(sk="nodekey", id=1)))
    after = update(grid, 1, "bob@emu.localhost", st=reply.st)
    assert undelta(after.gone) == [0] and rows(after) == []
    assert "alice@emu.localhost" not in grid.nodes[1].agents


def test_expired_slot_reused_by_a_new_agent(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 15, "bob@emu.localhost", data=FULL)
    grid.tick(21)  # alice silent for 21 s
    assert set(grid.nodes[1].agents) == {"bob@emu.localhost"}
    update(grid, 22, "carol@emu.localhost", data=FULL)  # takes slot 0
    after = update(grid, 22, "bob@emu.localhost", st=reply.st)
    assert undelta(after.gone) == [0]
    assert rows(after) == [(0, False, {"name": "carol", **FULL_ROW})]


def test_sweep_runs_on_the_slow_timer():
    grid = make_grid(sweep_interval=3.0)
    grid.tick(0)
    update(grid, 0, "alice@emu.localhost", data=FULL)
    grid.tick(19.0)  # a sweep; alice silent for 19 s: kept; next sweep at 22
    grid.tick(21.0)  # silent for 21 s, but no sweep until 22
    assert "alice@emu.localhost" in grid.nodes[1].agents
    grid.tick(22.0)
    assert grid.nodes[1].agents == {}


@pytest.mark.parametrize(
    "sender, bad, reason",
    [
        ("alice@emu.localhost", None, "no ticket"),
        ("alice@emu.localhost", {"mac": b"0" * 16}, "forged ticket"),
        ("alice@emu.localhost", {"expires": 89.0}, "ticket expired"),  # 11 s: over the skew
        ("mallory@evil.example", {"user": "alice@emu.localhost"}, "issued to alice"),
        ("alice@emu.localhost", {"gateway": "rogue.localhost"}, "untrusted gateway"),
        ("alice@emu.localhost", {"node_id": 2}, "another node"),
    ],
)
def test_joining_needs_a_valid_ticket(grid, sender, bad, reason):
    msg = pb.NormalUpdate(sk="nodekey", id=1, ct=1, agent=pb.AgentData(data=FULL))
    if bad is not None:
        good = ticket("alice@emu.localhost", **{k: v for k, v in bad.items() if k != "mac"})
        if "mac" in bad:
            good.mac = bad["mac"]
        msg.ticket.CopyFrom(good)
    with Captured() as events:
        out = grid.receive(100, Envelope(sender, GRID, msg))
    assert out == [] and grid.nodes[1].agents == {}
    assert any(reason in str(e.get("reason", "")) for e in events)


def test_ticket_needed_only_to_join(grid):
    update(grid, 0, "alice@emu.localhost", data=FULL)
    out = grid.receive(1, Envelope("alice@emu.localhost", GRID,
                                   pb.NormalUpdate(sk="nodekey", id=1, st=1, ct=2)))
    assert len(out) == 1


@pytest.mark.parametrize("sk, node_id", [("wrong", 1), ("nodekey", 2)])
def test_unknown_node_or_key_dropped(grid, sk, node_id):
    out = grid.receive(0, Envelope("x@y", GRID, pb.NormalUpdate(sk=sk, id=node_id)))
    assert out == [] and grid.nodes[1].agents == {}


@pytest.mark.parametrize(
    "state, field",
    [
        (pb.AgentState(asset_file="x" * 5000), "asset_file"),
        (pb.AgentState(nickname="a\x00b"), "nickname"),
        (pb.AgentState(nickname="\u202eevil"), "nickname"),  # a format character
        (pb.AgentState(facing=300), "facing"),
        (pb.AgentState(rx=2_000_000_000), "rx"),
        (pb.AgentState(rz=-30_000), "rz"),
        (pb.AgentState(scaling=0), "scaling"),
    ],
)
def test_absurd_fields_are_rejected_one_by_one(grid, state, field):
    state.y = 3672  # a good field in the same message is kept
    update(grid, 0, "alice@emu.localhost", data=state)
    agent = grid.nodes[1].agents["alice@emu.localhost"]
    assert agent.value(field) is None and agent.value("y") == 3672


@pytest.mark.parametrize("field, good, bad", [
    ("facing", (0, 255), (256, 1000)),
    ("scaling", (1, 100_000), (0, 100_001)),
    ("rx", (-20_000, 40_000), (-20_001, 40_001)),  # a 200 m node: -1 to 2 sizes
    ("rz", (-20_000, 40_000), (-20_001, 40_001)),
])
def test_numbers_at_the_edge_of_their_range(grid, field, good, bad):
    for i, value in enumerate(good + bad):
        update(grid, 0, f"u{i}@emu.localhost", data=pb.AgentState(**{field: value}, y=1))
    agents = grid.nodes[1].agents
    assert [agents[f"u{i}@emu.localhost"].value(field) for i in range(4)] == [*good, None, None]


def test_strings_with_commas_are_safe(grid):
    """The original stream broke on ',' in a value; protobuf does not."""
    update(grid, 0, "alice@emu.localhost", data=pb.AgentState(nickname="a,b:c", anim="x,y"))
    reply = update(grid, 0, "bob@emu.localhost", data=FULL)
    assert rows(reply)[0][2]["nickname"] == "a,b:c" and rows(reply)[0][2]["anim"] == "x,y"


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


# -- refresh, size limit, interest --------------------------------------------------------


def test_fields_refreshed_at_their_rate():
    """A field of rate 3 is re-sent, absolute, to everyone every 3 s while its agent sends
    updates: alice's asset (slot 0) first 3 s after she came, then every 3 s."""
    grid = make_grid(refresh={"asset_file": 3})
    update(grid, 0, "alice@emu.localhost", data=FULL)
    reply = update(grid, 0, "bob@emu.localhost", data=FULL)
    sent = []
    for now in range(1, 8):  # nothing changing
        update(grid, now, "alice@emu.localhost", data=pb.AgentState(y=3672))
        reply = update(grid, now, "bob@emu.localhost", st=reply.st)
        sent.append(rows(reply))
    refresh = [(0, False, {"asset_file": "character/v3/dummy/dummy.x"})]
    assert sent == [[], [], refresh, [], [], refresh, []]


def test_refresh_goes_by_time_not_by_updates():
    """Updating twenty times a second does not re-send more often; and agents that came
    together (slots 0 and 1) are re-sent in different frames."""
    grid = make_grid(refresh={"asset_file": 3})
    for jid in ("alice@emu.localhost", "carol@emu.localhost"):
        update(grid, 0, jid, data=FULL)
    reply = update(grid, 0, "bob@emu.localhost", data=FULL)
    refreshed: list[tuple[float, int]] = []
    for step in range(1, 141):  # 7 s at 20 updates a second
        now = step / 20
        for jid in ("alice@emu.localhost", "carol@emu.localhost"):
            update(grid, now, jid, data=pb.AgentState(y=3672))
        reply = update(grid, now, "bob@emu.localhost", st=reply.st)
        refreshed += [(now, slot) for slot, _, values in rows(reply) if "asset_file" in values]
    assert refreshed == [(3.0, 0), (4.0, 1), (6.0, 0), (7.0, 1)]


def test_big_join_snapshot_is_split_never_dropped():
    grid = make_grid(max_reply_bytes=1500)
    for i in range(200):
        update(grid, 0, f"guest{i}@emu.localhost", data=FULL)
    names, st, replies = set(), 0, 0
    while True:
        reply = update(grid, 1, "bob@emu.localhost", st=st, data=FULL)
        assert reply.ByteSize() <= 1500
        names |= {r[2]["name"] for r in rows(reply) if "name" in r[2]}
        st, replies = reply.st, replies + 1
        if not reply.more:
            break
    assert names == {f"guest{i}" for i in range(200)} and replies > 3


def interest_grid():
    grid = make_grid(sense_radius=30.0)
    update(grid, 0, "near@emu.localhost", data=pb.AgentState(
        asset_file="a", rx=1000, y=0, rz=1000))
    update(grid, 0, "far@emu.localhost", data=pb.AgentState(
        asset_file="a", rx=15000, y=0, rz=15000))
    return grid


def test_interest_radius_limits_what_a_client_gets():
    grid = interest_grid()
    reply = update(grid, 0, "me@emu.localhost", data=pb.AgentState(
        asset_file="a", rx=2000, y=0, rz=2000))
    assert [r[2]["name"] for r in rows(reply)] == ["near"]
    # far walks over: it comes in as a full row; walking away again, it is gone.
    update(grid, 1, "far@emu.localhost", data=pb.AgentState(rx=2500, rz=2500))
    reply = update(grid, 1, "me@emu.localhost", st=reply.st)
    assert [(r[0], r[2].get("name")) for r in rows(reply)] == [(1, "far")]
    update(grid, 2, "far@emu.localhost", data=pb.AgentState(rx=2000 + 3500, rz=2000))
    reply = update(grid, 2, "me@emu.localhost", st=reply.st)  # 35 units: inside hysteresis
    assert list(reply.gone) == []
    update(grid, 3, "far@emu.localhost", data=pb.AgentState(rx=2000 + 4000, rz=2000))
    reply = update(grid, 3, "me@emu.localhost", st=reply.st)  # 40 units: out
    assert undelta(reply.gone) == [1]


def test_observer_interest_uses_its_position():
    grid = interest_grid()
    out = grid.receive(0, Envelope("eve@emu.localhost", GRID, pb.ObserverUpdate(
        sk="nodekey", id=1, x=20000 + 150, z=20000 + 150, ticket=ticket("eve@emu.localhost"))))
    assert [r[2]["name"] for r in rows(out[0].message)] == ["far"]


#: Node-relative hundredths, within what the node accepts (-size .. 2 size).
coordinate = st.integers(min_value=-20000, max_value=40000)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(coordinate, coordinate, st.booleans()), min_size=1, max_size=40),
       st.tuples(coordinate, coordinate), st.sampled_from([5.0, 30.0, 77.5]))
def test_interest_radius_matches_brute_force(others, me, radius):
    """The cell index finds exactly the agents within r, and known ones up to 1.25 r."""
    node = GridNode(1, "k", Region(ALPHA, 100, 100, 200.0), "guest", 1000,
                    GridSettings(sense_radius=radius, refresh=NO_REFRESH))
    viewer = node.npc_update(0, "me@emu.localhost", pb.AgentState(rx=me[0], rz=me[1]))
    known, expected = {}, set()
    for i, (x, z, was_known) in enumerate(others):
        agent = node.npc_update(0, f"a{i}@emu.localhost", pb.AgentState(rx=x, rz=z))
        if was_known:
            known[agent.slot] = node.frame  # shown in a reply after it joined
        d2 = (x - me[0]) ** 2 + (z - me[1]) ** 2
        near = (radius / POSITION_QUANTUM) ** 2
        if d2 <= near or (was_known and d2 <= near * 1.25 ** 2):
            expected.add(agent.jid)
    # what the viewer was shown in its reply of frame 1: (slot, frame) pairs by slot
    viewer.records[1] = Ack(array("q", [n for pair in sorted(known.items()) for n in pair]))
    reply = node._reply(viewer, 1, [], others=True, edits=False)
    shown = [slot for slot, _, _ in rows(reply)] + undelta(reply.ping)
    by_slot = {agent.slot: agent.jid for agent in node.agents.values()}
    assert {by_slot[slot] for slot in shown} == expected


# -- convergence under loss (property) ----------------------------------------------------

REGION = Region(ALPHA, 100, 100, 200.0)
AGENTS = [f"a{i}@emu.localhost" for i in range(6)]
change = st.tuples(
    st.sampled_from(AGENTS),
    st.sampled_from(["move", "turn", "asset", "leave", "nick"]),
    st.integers(min_value=0, max_value=19999),
)
step = st.tuples(st.lists(change, max_size=4), st.booleans(), st.booleans())


def truth(node: GridNode, viewer: str) -> dict[str, dict]:
    return {a.jid: {n: t.value for n, t in a.trackers.items()}
            for a in node.agents.values() if a.jid != viewer}


def client_view(client: ClientCore) -> dict[str, dict]:
    return {a.jid: dict(a.values) for a in client.proxy.agents.values()}


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step, max_size=25), max_bytes=st.sampled_from([400, 16 * 1024]),
       radius=st.sampled_from([None, 1000.0]))
def test_client_view_converges_whatever_is_lost(steps, max_bytes, radius):
    """Without an interest radius, and with one that takes in everyone placed."""
    grid = make_grid(max_reply_bytes=max_bytes, refresh={"rx": 4, "asset_file": 3},
                     sense_radius=radius)
    node = grid.nodes[1]
    viewer = "viewer@emu.localhost"
    client = ClientCore(viewer, GW, ALPHA, Avatar())
    client.state = State.UPDATING
    client.proxy = GridProxy(GRID, 1, "nodekey", REGION, "guest")
    update(grid, 0, viewer, data=FULL)
    now = 0.0
    for changes, request_lost, reply_lost in steps:
        now += 1
        for jid, kind, value in changes:
            if kind == "leave":
                grid.receive(now, Envelope(jid, GRID, pb.Logout(sk="nodekey", id=1)))
                continue
            data = {"move": pb.AgentState(rx=value, rz=value // 2, y=value % 300),
                    "turn": pb.AgentState(facing=value % 256),
                    "asset": pb.AgentState(asset_file=["a.x", "character/v3/dummy/dummy.x"][
                        value % 2]),
                    "nick": pb.AgentState(nickname=f"n{value}")}[kind]
            update(grid, now, jid, data=data)
        if request_lost:
            continue
        reply = update(grid, now, viewer, st=client.proxy.st)
        if not reply_lost:
            client.receive(now, Envelope(GRID, viewer, reply))
    for _ in range(40):  # then a lossless stretch
        now += 1
        reply = update(grid, now, viewer, st=client.proxy.st, recover=client.proxy.recover)
        client.proxy.recover.clear()
        client.receive(now, Envelope(GRID, viewer, reply))
        if not reply.more:
            break
    expected = {jid: fields for jid, fields in truth(node, viewer).items()
                if radius is None or node.agents[jid].pos is not None}  # placed, or nowhere
    assert client_view(client) == expected


def test_close_node_closes_only_an_empty_node(grid):
    assert grid.receive(0, Envelope("evil.localhost", GRID, pb.CloseNode(id=1, key="nodekey"))) \
        == [] and 1 in grid.nodes
    update(grid, 0, "alice@emu.localhost", data=FULL)
    grid.receive(1, Envelope(GW, GRID, pb.CloseNode(id=1, key="nodekey")))
    assert 1 in grid.nodes  # it has an agent again: kept
    grid.receive(2, Envelope("alice@emu.localhost", GRID, pb.Logout(sk="nodekey", id=1)))
    grid.receive(3, Envelope(GW, GRID, pb.CloseNode(id=1, key="wrong")))
    assert 1 in grid.nodes
    grid.receive(4, Envelope(GW, GRID, pb.CloseNode(id=1, key="nodekey")))
    assert grid.nodes == {}


def test_overflow_instances_are_separate_nodes(grid):
    (ready,) = grid.receive(0, Envelope(GW, GRID, pb.SpawnNode(
        request=6, worldpath=ALPHA, gx=100, gy=100, gsize=200, instance=1)))
    assert ready.message.id == 2
    (hello,) = grid.connected(1)
    assert sorted(n.info.instance for n in hello.message.nodes) == [0, 1]


def test_the_ticket_role_decides_edit_rights(grid):
    """Node 1 is a guest node, but the gateway's role hook made alice a friend."""
    msg = pb.NormalUpdate(sk="nodekey", id=1, ct=1, ticket=ticket("alice@emu.localhost",
                                                                  role="friend"))
    msg.agent.creations.append(pb.WorldEdit(kind="BOX", seq=1))
    grid.receive(0, Envelope("alice@emu.localhost", GRID, msg))
    msg.ticket.CopyFrom(ticket("bob@emu.localhost"))
    grid.receive(0, Envelope("bob@emu.localhost", GRID, msg))
    node = grid.nodes[1]
    assert [e.author for _, e in node.creations.entries] == ["alice@emu.localhost"]



def test_a_stopping_grid_tells_the_gateways_first_and_sends_no_more_heartbeats(grid):
    update(grid, 1, "alice@emu.localhost/r", data=FULL)
    out = grid.stop(2)
    assert [(e.recipient, type(e.message).__name__) for e in out] == [
        (GW, "GridClosing"), ("alice@emu.localhost", "Closing")]
    assert not any(isinstance(e.message, pb.GridHello) for e in grid.tick(100))


def test_tickets_are_judged_with_the_clock_skew_allowed_and_a_gateway_ahead_is_named():
    grid = make_grid(max_clock_skew=5.0)
    late = ticket("alice@emu.localhost", expires=100.0, issued=40.0)
    assert update(grid, 104.0, "alice@emu.localhost", ticket=late) is not None  # within 5 s
    later = ticket("bob@emu.localhost", expires=100.0, issued=40.0)
    with Captured() as events:
        assert update(grid, 106.0, "bob@emu.localhost", ticket=later) is None
    assert any("clock" in e.get("reason", "") for e in events)
    ahead = ticket("carol@emu.localhost", expires=200.0, issued=140.0)  # 34 s ahead of us
    with Captured() as events:
        assert update(grid, 106.0, "carol@emu.localhost", ticket=ahead) is not None
        update(grid, 107.0, "dave@emu.localhost",
               ticket=ticket("dave@emu.localhost", expires=200.0, issued=141.0))
    warnings = [e for e in events if "clock is" in e.get("log_format", "")]
    assert len(warnings) == 1 and warnings[0]["gateway"] == GW  # once a minute
    assert round(warnings[0]["ahead"]) == 34


def test_a_client_the_xmpp_server_says_is_gone_leaves_at_once():
    from jgsl.wire.codec import Bounce

    grid = make_grid()
    update(grid, 1, "alice@emu.localhost", data=FULL)
    reply = update(grid, 1, "bob@emu.localhost", data=FULL)
    grid.receive(2, Envelope("alice@emu.localhost/r", GRID,
                             Bounce("service-unavailable", reply)))
    assert list(grid.nodes[1].agents) == ["bob@emu.localhost"]
    grid.receive(2, Envelope("bob@emu.localhost", GRID, Bounce("not-acceptable")))
    assert list(grid.nodes[1].agents) == ["bob@emu.localhost"]  # not a sign it is gone
