"""Client state machine: ping, login, updates, timeouts, re-login, and events."""

from __future__ import annotations

from pathlib import Path

import pytest

from jgsl.config import load_rules
from jgsl.core.client import (
    TRANSITIONS,
    Avatar,
    ClientCore,
    ClientSettings,
    EventKind,
    State,
)
from jgsl.core.emu import EmuCore, EmuUser
from jgsl.core.gateway import GatewayCore, GatewaySettings
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.node import GridSettings
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Bounce, Envelope
from jgsl.wire.messages import readable
from tests.network import Clients, Network

ALPHA = "worlds/MyWorlds/AlphaWorld/"
GW = "gateway.localhost"
SETTINGS = ClientSettings(update_interval=1.0, request_timeout=5.0, grid_retries=1,
                          agent_timeout=4.0, retry_delay=2.0)


class World:
    """Gateway, one grid process and clients wired through an in-memory network."""

    def __init__(self, radius: float | None = None) -> None:
        self.net = Network()
        rules = load_rules(Path(__file__).parent / "data" / "jgsl.config.xml")
        self.gateway = GatewayCore(GW, rules, GatewaySettings(interest_radius=radius))
        self.grid = GridProcessCore("grid1.localhost", [GW], GridSettings(sense_radius=radius))
        self.net.add(GW, self.gateway)
        self.net.add("grid1.localhost", self.grid)
        self.events: list[tuple[str, EventKind, str]] = []
        self.clients: dict[str, ClientCore] = {}
        self.net.deliver(0, self.grid.connected(0))

    def client(self, name: str, x: float, z: float, dummy=False) -> ClientCore:
        jid = f"{name}@emu.localhost"
        avatar = Avatar(x=x, y=36.7, z=z, asset_file="a.x", dummy=dummy)
        client = ClientCore(jid, GW, ALPHA, avatar, SETTINGS,
                            on_event=lambda e: self.events.append((name, e.kind, e.jid)))
        self.clients[jid] = client
        return client

    def start_all(self, now=0.0) -> None:
        emu = Clients(self.clients)
        self.net.add("emu.localhost", emu)
        for client in self.clients.values():
            self.net.deliver(now, client.start(now))

    def run(self, start: float, end: float, step: float = 0.25) -> None:
        t = start
        while t <= end:
            self.net.tick(t)
            t += step


def signed_in_pair() -> tuple[World, ClientCore, ClientCore]:
    """Alice and Bob logged in and exchanging updates for two seconds."""
    world = World()
    alice = world.client("alice", 20091, 20086)
    bob = world.client("bob", 20096, 20090)
    world.start_all()
    world.run(0, 2)
    return world, alice, bob


def test_transition_table_is_enforced():
    client = ClientCore("a@b", GW, ALPHA, Avatar())
    with pytest.raises(RuntimeError, match="no transition"):
        client._enter(State.UPDATING)
    assert State.UPDATING in TRANSITIONS[State.LOGGING_IN]


def test_two_clients_see_each_other():
    world = World()
    alice = world.client("alice", 20091, 20086)
    bob = world.client("bob", 20096, 20090)
    world.start_all()
    assert alice.state is State.UPDATING and bob.state is State.UPDATING
    world.run(0, 2)
    assert ("alice", EventKind.SIGNED_IN, "grid1.localhost") in world.events
    assert ("alice", EventKind.USER_COME, "bob@emu.localhost") in world.events
    assert ("bob", EventKind.USER_COME, "alice@emu.localhost") in world.events
    seen = alice.agents["bob@emu.localhost"].position(alice.proxy.region)
    assert seen == pytest.approx((20096, 36.7, 20090))


def test_movement_reaches_the_other_client_as_a_delta():
    world, alice, bob = signed_in_pair()
    alice.avatar.x = 20100.5
    world.net.delivered.clear()
    world.run(2.25, 4.5)
    moved = [e.message for e in world.net.delivered if isinstance(e.message, pb.NormalUpdate)
             and e.sender.startswith("alice") and e.message.agent.HasField("data")]
    assert [list(m.agent.data.ListFields()) for m in moved][0][0][0].name == "rx"
    assert bob.agents["alice@emu.localhost"].position(bob.proxy.region)[0] == pytest.approx(
        20100.5)


def test_an_update_carries_what_changed_since_the_frame_the_node_echoed():
    """Answered: only the newest change goes. An answer lost: the next update also carries
    what the lost one did, as the node never echoed its frame."""
    world, alice, bob = signed_in_pair()

    def alice_fields(since: int) -> list[set[str]]:
        return [{d.name for d, _ in e.message.agent.data.ListFields()}
                for e in world.net.delivered[since:] if isinstance(e.message, pb.NormalUpdate)
                and e.sender.startswith("alice") and e.message.agent.HasField("data")]

    alice.avatar.x += 0.5
    world.net.lost = {pb.NormalUpdateReply}
    before = len(world.net.delivered)
    world.run(2.25, 3.0)
    assert alice_fields(before) == [{"rx"}]
    world.net.lost = set()
    alice.avatar.z += 0.5
    before = len(world.net.delivered)
    world.run(3.25, 8.5)  # the lost answer's request times out (5 s) and goes again
    assert alice_fields(before)[0] == {"rx", "rz"}
    world.run(8.75, 10.0)
    alice.avatar.x += 0.5
    before = len(world.net.delivered)
    world.run(10.25, 11.5)
    assert alice_fields(before)[0] == {"rx"}  # answered again: the newest change only


def test_one_request_in_flight_retried_after_the_measured_timeout():
    """Round trips here take no time: the timeout is the floor, 1 s, not request_timeout."""
    world = World()
    alice = world.client("alice", 20091, 20086)
    world.net.lost = {pb.NormalUpdateReply}  # the grid's answers get lost
    world.start_all()
    assert alice.rtt.timeout() == SETTINGS.min_timeout == 1.0
    world.run(0.25, 1.0)
    sent = [e for e in world.net.delivered if isinstance(e.message, pb.NormalUpdate)]
    assert len(sent) == 1  # sent at 0; still waiting for its answer (update interval 1 s)
    assert alice.state is State.UPDATING
    world.run(1.25, 3.0)
    sent = [e for e in world.net.delivered if isinstance(e.message, pb.NormalUpdate)]
    assert len(sent) == 2  # timed out at 1 s: one retry, then twice as long to wait


def test_dead_grid_node_leads_to_relogin_naming_it():
    """Grid silent: one retry after 1 s, dead 2 s later, then login again at once, telling
    the gateway which node did not answer."""
    world = World()
    alice = world.client("alice", 20091, 20086)
    world.net.lost = {pb.NormalUpdateReply}
    world.start_all()
    key = alice.proxy.key
    world.run(0.25, 3.5)
    kinds = [k for name, k, _ in world.events if name == "alice"]
    assert kinds == [EventKind.SIGNED_IN, EventKind.CONNECTION_TIMEOUT, EventKind.SIGNED_OUT,
                     EventKind.SIGNED_IN]
    logins = [e.message for e in world.net.delivered if isinstance(e.message, pb.Login)]
    assert [m.unreachable for m in logins] == ["", key]
    world.net.lost = set()  # the re-login's first update was lost too: retried 1 s later
    world.run(3.75, 5)
    assert alice.state is State.UPDATING and alice.proxy.st > 0


def test_a_bounce_from_the_grid_means_log_in_again_at_once():
    world, alice, bob = signed_in_pair()
    key = alice.proxy.key
    update = next(e for e in reversed(world.net.delivered)
                  if isinstance(e.message, pb.NormalUpdate) and e.sender == alice.jid)
    alice.receive(2.1, Envelope("grid1.localhost", alice.jid,
                                Bounce("service-unavailable", update.message)))
    assert alice.proxy is None
    (login,) = [e.message for e in alice.tick(2.2) if isinstance(e.message, pb.Login)]
    assert login.unreachable == key


def test_measured_round_trips_set_the_timeout():
    client = ClientCore("a@emu.localhost", GW, ALPHA, Avatar(),
                        ClientSettings(request_timeout=20.0))
    assert client.rtt.timeout() == 3.0  # nothing measured yet
    for rtt in (0.6, 0.7, 0.5, 0.6):
        client.rtt.sample(rtt)
    assert 1.0 < client.rtt.timeout() < 1.5
    assert client.rtt.timeout(retries=1) == 2 * client.rtt.timeout()
    assert client.rtt.timeout(retries=10) == 20.0
    fixed = ClientCore("a@emu.localhost", GW, ALPHA, Avatar(),
                       ClientSettings(request_timeout=7.0, adaptive_timeout=False))
    fixed.rtt.sample(0.01)
    assert fixed.rtt.timeout() == 7.0


def test_after_the_link_comes_back_what_was_in_flight_is_sent_at_once():
    world, alice, bob = signed_in_pair()
    (lost,) = [e.message for e in alice.tick(3.0) if isinstance(e.message, pb.NormalUpdate)]
    assert alice.tick(3.25) == []  # waiting for its answer
    (again,) = [e.message for e in alice.resend(3.3) if isinstance(e.message, pb.NormalUpdate)]
    assert again.sk == lost.sk == alice.proxy.key and again.st == lost.st
    pinging = ClientCore("a@emu.localhost", GW, ALPHA, Avatar(), SETTINGS)
    (ping,) = pinging.start(0)
    (resent,) = pinging.resend(0.5)
    assert resent.message == ping.message


def test_silent_gateway_times_out_and_pings_again():
    client = ClientCore("a@emu.localhost", GW, ALPHA, Avatar(), SETTINGS)
    (ping,) = client.start(0)
    assert client.tick(3) == []  # nothing measured yet: 3 s (RFC 6298's old initial value)
    (again,) = client.tick(3.1)
    assert isinstance(again.message, pb.Ping) and again.message.csk != ping.message.csk
    assert client.state is State.PINGING
    assert client.tick(8.1) == []  # backing off: twice as long (capped at request_timeout)
    (third,) = client.tick(8.2)
    assert isinstance(third.message, pb.Ping)


def test_ping_reply_with_wrong_key_ignored():
    events = []
    client = ClientCore("a@emu.localhost", GW, ALPHA, Avatar(), SETTINGS,
                        on_event=events.append)
    client.start(0)
    out = client.receive(0, Envelope(GW, "a@emu.localhost", pb.PingReply(csk="forged", sk="x")))
    assert out == [] and client.state is State.PINGING
    assert events[-1].kind is EventKind.LOG and "invalid session key" in events[-1].text


def test_refused_login_retries_later():
    world = World()
    alice = world.client("alice", 20091, 20086)
    world.grid.nodes.clear()
    world.net.cores.pop("grid1.localhost")
    world.gateway._grids.clear()  # no grid process: the login is refused
    world.start_all()
    assert alice.state is State.IDLE
    assert ("alice", EventKind.SIGNED_OUT, GW) in world.events
    assert alice.tick(1.0) == []
    (ping,) = alice.tick(2.0)
    assert isinstance(ping.message, pb.Ping)


def test_agents_that_stop_leave():
    world, alice, bob = signed_in_pair()
    world.net.deliver(2, bob.stop(2))
    world.run(2.25, 7)
    assert ("alice", EventKind.USER_LEAVE, "bob@emu.localhost") in world.events
    assert "bob@emu.localhost" not in alice.agents


def test_emu_core_routes_by_user_and_wanders():
    users = [EmuUser("alice", "p", ALPHA, x=20091, z=20086, asset_file="a.x",
                     behaviour="wander", radius=5, speed=2),
             EmuUser("bob", "p", ALPHA, x=20096, z=20090, asset_file="a.x")]
    events = []
    emu = EmuCore("emu.localhost", users, GW, SETTINGS, seed=1,
                  on_event=lambda user, e: events.append((user, e.kind)))
    world = World()
    world.net.add("emu.localhost", emu)
    world.net.deliver(0, emu.connected(0))
    world.run(0, 6)
    alice = emu.clients["alice@emu.localhost"]
    assert (alice.avatar.x, alice.avatar.z) != (20091, 20086)
    assert ((alice.avatar.x - 20091) ** 2 + (alice.avatar.z - 20086) ** 2) ** 0.5 <= 5.0001
    bob = emu.clients["bob@emu.localhost"]
    seen = bob.agents["alice@emu.localhost"].position(bob.proxy.region)
    assert seen[0] == pytest.approx(alice.avatar.x, abs=2 * 1.0 * 2 + 0.01)
    assert ("bob@emu.localhost", EventKind.USER_COME) in events
    assert emu.receive(0, Envelope(GW, "nobody@emu.localhost", pb.PingReply())) == []


# -- the neighbour rule: corners, observers, border crossing --------------------------------


def sent_to_nodes(world, since: int, sender: str) -> set[tuple[str, int]]:
    """(message type, node id) of what ``sender`` sent to grid nodes after index ``since``."""
    return {(type(e.message).__name__, e.message.id) for e in world.net.delivered[since:]
            if e.sender.startswith(sender) and isinstance(
                e.message, pb.NormalUpdate | pb.ObserverUpdate | pb.Logout)}


def node_of(world, gx: int, gy: int) -> int:
    return next(n.id for n in world.grid.nodes.values()
                if (n.region.gx, n.region.gy) == (gx, gy))


def test_corners_reach_the_four_nodes_around_a_tile_corner():
    world = World()
    alice = world.client("alice", 20010, 20010)
    world.start_all()
    world.run(0, 4)
    assert len(alice.proxies) == 4
    assert (alice.proxy.region.gx, alice.proxy.region.gy) == (100, 100)
    mark = len(world.net.delivered)
    world.run(4.25, 5.5)
    centre = node_of(world, 100, 100)
    sent = sent_to_nodes(world, mark, "alice")
    assert ("NormalUpdate", centre) in sent
    assert {("ObserverUpdate", node_of(world, gx, gy))
            for gx, gy in ((100, 99), (99, 99), (99, 100))} <= sent
    assert not any(kind == "NormalUpdate" and node != centre for kind, node in sent)


def test_agents_across_a_border_see_each_other():
    world = World()
    world.client("alice", 20010, 20100)  # tile (100, 100)
    world.client("bob", 19990, 20100)  # tile (99, 100), 20 units away
    world.start_all()
    world.run(0, 5)
    assert ("alice", EventKind.USER_COME, "bob@emu.localhost") in world.events
    assert ("bob", EventKind.USER_COME, "alice@emu.localhost") in world.events


def test_walking_across_a_border_shows_no_gap_and_logs_out_behind():
    world = World()
    alice = world.client("alice", 20060, 20100)
    world.client("bob", 19985, 20100)
    world.start_all()
    world.run(0, 4)
    assert ("bob", EventKind.USER_COME, "alice@emu.localhost") in world.events
    old = node_of(world, 100, 100)
    mark = len(world.net.delivered)
    t = 4.0
    while alice.avatar.x > 19900:  # alice walks west over the border at x = 20000
        alice.avatar.x -= 2.5
        t += 0.25
        world.run(t, t)
    world.run(t + 0.25, t + 4)
    assert (alice.proxy.region.gx, alice.proxy.region.gy) == (99, 100)
    bob_saw = [(k, j) for n, k, j in world.events if n == "bob" and j == "alice@emu.localhost"]
    assert bob_saw == [(EventKind.USER_COME, "alice@emu.localhost")]  # never left
    seen = world.clients["bob@emu.localhost"].agents["alice@emu.localhost"].position()
    assert seen[0] == pytest.approx(alice.avatar.x, abs=2.6)
    # 30 units past the border none of her points is in the old node: she logged out of it.
    assert ("Logout", old) in sent_to_nodes(world, mark, "alice")
    assert all(p.region.gx != 100 for p in alice.proxies.values())
    assert "alice@emu.localhost" not in world.grid.nodes[old].agents


def test_centre_only_client_ignores_neighbours():
    world = World()
    alice = world.client("alice", 20010, 20010)
    alice.settings = ClientSettings(update_interval=1.0, corners=False)
    world.start_all()
    world.run(0, 3)
    assert len(alice.proxies) == 1


def test_moves_are_reported_when_asked():
    world = World()
    alice = world.client("alice", 20050, 20100)
    bob = world.client("bob", 20060, 20100)
    bob.settings = ClientSettings(update_interval=1.0, report_moves=1.0)
    bob_events = []
    bob.on_event = bob_events.append
    world.start_all()
    world.run(0, 3)
    for step in range(1, 9):
        alice.avatar.x += 0.4
        world.run(3 + step, 3 + step)
    world.run(12, 15)  # the last steps reach bob
    moves = [e.position[0] for e in bob_events if e.kind is EventKind.USER_MOVE]
    # 3.2 units walked in 0.4 steps: a report whenever she is a unit from the last one.
    assert len(moves) == 2 and all(b - a >= 1.0 for a, b in zip([20050.0, *moves], moves,
                                                                  strict=False))
    assert alice.avatar.x - moves[-1] < 1.0
    assert not any(k is EventKind.USER_MOVE for n, k, _ in world.events if n == "alice")


def test_thin_client_echoes_frames_without_tracking_others():
    """A load generator's thin client: the node serves it as any client (deltas against
    the frames it echoes), but it decodes nobody."""
    world = World()
    world.client("alice", 20091, 20086)
    thin = world.client("thin", 20096, 20090)
    thin.settings = ClientSettings(update_interval=1.0, request_timeout=5.0,
                                   track_others=False)
    world.start_all()
    world.run(0, 4)
    replies = [e.message for e in world.net.delivered
               if isinstance(e.message, pb.NormalUpdateReply) and e.recipient.startswith("thin")]
    assert len(replies) >= 3 and replies[0].agents.slots  # alice was sent to it
    assert [r.base for r in replies[1:]] == [r.st for r in replies[:-1]]  # frames echoed
    assert not thin.agents and ("thin", EventKind.USER_COME, "alice@emu.localhost") \
        not in world.events
    assert ("alice", EventKind.USER_COME, "thin@emu.localhost") in world.events


def answer(grid, now: float, update: Envelope) -> Envelope:
    """The grid's answer to an update, as the client receives it."""
    reply = grid.receive(now, update)[0]
    return Envelope(reply.sender, reply.recipient, readable(reply.message))


def test_late_answer_brings_the_next_update_at_once():
    """An answer that comes after the update interval has passed brings the next update
    at once (flat-out load runs); an earlier one waits for the interval and a tick."""
    world, alice, _ = signed_in_pair()
    grid = world.grid

    def answered(now: float, answer_at: float) -> list[Envelope]:
        """The client's pending update to its node, answered by the grid at ``answer_at``."""
        update = next(e for e in alice.tick(now) if isinstance(e.message, pb.NormalUpdate))
        return alice.receive(answer_at, answer(grid, now, update))

    assert answered(3.0, 3.5) == []  # within the 1 s interval: the next waits for a tick
    alice.avatar.x += 2
    out = answered(4.0, 5.25)
    assert [type(e.message) for e in out] == [pb.NormalUpdate]
    assert out[0].recipient == alice.proxy.jid and out[0].message.st == alice.proxy.st
    alice.settings = ClientSettings(update_interval=0.05, request_timeout=5.0)
    out = alice.receive(5.31, answer(grid, 5.25, out[0]))
    assert [type(e.message) for e in out] == [pb.NormalUpdate]
    # that update is in flight and the player has not moved: the next tick has nothing to do
    # (no round of the neighbour rule)
    assert not alice._step_due(5.35)
    reply = answer(grid, 5.31, out[0])
    reply.message.more = True  # the rest of a split reply: asked for at the next tick, not at once
    assert alice.receive(5.4, reply) == []
    assert [type(e.message) for e in alice.tick(5.5)] == [pb.NormalUpdate]


def test_a_watcher_sees_across_the_border_as_far_as_the_nodes_interest_radius():
    """The gateway tells the radius (60): the client watches the neighbouring node 60 units
    around it, not 30, and sees a walker 51 units away across the tile border (x = 20000)."""
    world = World(radius=60.0)
    watcher = world.client("watcher", 20030.0, 20100.0)
    world.client("walker", 19979.0, 20100.0)
    world.start_all()
    world.run(0.0, 6.0)
    assert ("watcher", EventKind.USER_COME, "walker@emu.localhost") in world.events
    assert watcher.settings.corner_offset == 30.0  # (the default, before the gateway told)
    assert {round(x - 20030.0) for x, _, corner in watcher._points() if not corner} == {
        -60, 60}


def test_without_a_radius_the_client_keeps_its_corner_offset():
    world = World(radius=None)  # (nodes that see their whole tile: nothing to tell)
    watcher = world.client("watcher", 20030.0, 20100.0)
    world.start_all()
    world.run(0.0, 3.0)
    assert watcher.state.value == "updating"
    assert {round(x - 20030.0) for x, _, corner in watcher._points() if not corner} == {
        -30, 30}


def test_users_spread_over_the_gateways_and_fail_over_when_theirs_is_silent():
    gateways = ["gw1.localhost", "gw2.localhost"]
    chosen = {ClientCore(f"user{i}@emu.localhost", gateways, ALPHA, Avatar(x=1, y=1, z=1),
                         SETTINGS).gateway for i in range(50)}
    assert chosen == set(gateways)  # spread by a hash of the JID
    again = ClientCore("user7@emu.localhost", gateways, ALPHA, Avatar(x=1, y=1, z=1), SETTINGS)
    first = again.gateway
    assert first == ClientCore("user7@emu.localhost", gateways, ALPHA,
                               Avatar(x=1, y=1, z=1), SETTINGS).gateway  # and stably
    (ping,) = again.start(0.0)
    assert ping.recipient == first and isinstance(ping.message, pb.Ping)
    (retry,) = again.tick(3.5)  # no answer within the first timeout (3 s)
    other = next(g for g in gateways if g != first)
    assert retry.recipient == other and isinstance(retry.message, pb.Ping)


def test_a_bounced_gateway_is_left_at_once():
    gateways = ["gw1.localhost", "gw2.localhost"]
    client = ClientCore("user7@emu.localhost", gateways, ALPHA, Avatar(x=1, y=1, z=1),
                        SETTINGS)
    (ping,) = client.start(0.0)
    out = client.receive(0.1, Envelope(ping.recipient, client.jid,
                                       Bounce("service-unavailable", ping.message)))
    assert [e.recipient for e in out] == [g for g in gateways if g != ping.recipient]


def test_a_refused_point_is_not_asked_again_within_the_nodes_radius():
    """After a refusal the client does not ask again for points near the refused one until
    the retry delay: "near" is the interest radius the gateway told (here 60), not the
    fixed corner offset (30)."""
    client = ClientCore("a@emu.localhost", GW, ALPHA, Avatar(), SETTINGS)
    client.start(0)
    client.state = State.UPDATING
    client._refused.append((10.0, 20100.0, 20100.0))
    assert client._maybe_login(1, 20145.0, 20100.0)  # 45 away: outside the fixed 30
    client._login = None
    client._corner_offset = 60.0  # as an SC_Login_Reply radius sets it
    assert client._maybe_login(1, 20145.0, 20100.0) == []  # within the node's radius
    assert client._maybe_login(1, 20165.0, 20100.0)  # 65 away: asked
