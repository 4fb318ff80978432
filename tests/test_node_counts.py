"""A gateway's node counts are counts of distinct users: logins, relogins, moves between
nodes, logouts and timeouts in any order never push a node to "full"."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from jgsl.config import load_rules
from jgsl.core.gateway import GatewayCore, GatewaySettings
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.node import GridSettings
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope
from tests.network import Network

GW, GRID = "gateway.localhost", "grid1.localhost"
ALPHA = "worlds/MyWorlds/AlphaWorld/"
USERS = [f"u{i}@emu.localhost" for i in range(5)]
#: Two neighbouring tiles of 200 x 200.
PLACES = [(20091.0, 20086.0), (20291.0, 20086.0)]


class Users:
    """What the users' side receives."""

    def __init__(self) -> None:
        self.inbox: list[Envelope] = []

    def receive(self, now, envelope):
        self.inbox.append(envelope)
        return []

    def tick(self, now):
        return []


def world():
    rules = load_rules(Path(__file__).parent / "data" / "jgsl.config.xml")
    gateway = GatewayCore(GW, rules, GatewaySettings(max_users=len(USERS)))
    grid = GridProcessCore(GRID, [GW], GridSettings())
    users = Users()
    net = Network()
    for domain, core in ((GW, gateway), (GRID, grid), ("emu.localhost", users)):
        net.add(domain, core)
    return net, gateway, grid, users


operations = st.lists(st.one_of(
    st.tuples(st.just("login"), st.integers(0, len(USERS) - 1), st.integers(0, 1)),
    st.tuples(st.just("logout"), st.integers(0, len(USERS) - 1), st.just(0)),
    st.tuples(st.just("wait"), st.integers(1, 30), st.just(0)),
), max_size=60)


@settings(max_examples=400, deadline=None)
@given(operations)
def test_no_sequence_of_logins_relogins_logouts_and_timeouts_makes_a_node_full(ops):
    net, gateway, grid, users = world()
    now = 0.0
    net.deliver(now, grid.connected(now))
    where: dict[str, tuple[int, str]] = {}  # user -> (node id, key) of the last ticket
    for op, n, place in ops:
        if op == "wait":
            for _ in range(n):
                now += 1.0
                net.tick(now)
        elif op == "login":  # a (re)login, and the first update that shows the ticket
            user = USERS[n]
            x, z = PLACES[place]
            before = len(users.inbox)
            net.deliver(now, [Envelope(user, GW, pb.Login(worldpath=ALPHA, x=x, y=0, z=z,
                                                          csk="c"))])
            for reply in [e.message for e in users.inbox[before:]
                          if isinstance(e.message, pb.LoginReply)]:
                assert not reply.refused, reply.reason
                where[user] = (reply.gid, reply.gk)
                net.deliver(now, [Envelope(user, GRID, pb.NormalUpdate(
                    sk=reply.gk, id=reply.gid, st=0, ct=1, ticket=reply.ticket,
                    agent=pb.AgentData(data=pb.AgentState(rx=100, y=0, rz=100))))])
        elif USERS[n] in where:
            node_id, key = where.pop(USERS[n])
            logout = pb.Logout(sk=key, id=node_id)
            net.deliver(now, [Envelope(USERS[n], GRID, logout), Envelope(USERS[n], GW, logout)])
        for node in gateway._nodes.values():
            assert node.load <= len(USERS), (node.agents, node.joined, node.waiting)
