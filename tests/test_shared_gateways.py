"""Two gateways sharing allocation: one node per region however they race."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.task import Clock

from jgsl.config import load_rules
from jgsl.core.effects import Claim, NodeRecord, Outcome, Publish, Release
from jgsl.core.gateway import GatewayCore, GatewaySettings
from jgsl.core.gridprocess import GridProcessCore
from jgsl.storage.allocation import MemoryAllocation
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope
from tests.network import Network

ALPHA = "worlds/MyWorlds/AlphaWorld/"
GATEWAYS = ("gw1.localhost", "gw2.localhost")


class Users:
    def __init__(self):
        self.replies: list[Envelope] = []

    def receive(self, now, envelope):
        self.replies.append(envelope)
        return []

    def tick(self, now):
        return []


class SharedWorld:
    """Two gateway cores with one store, grids heartbeating to both, effects run in order."""

    def __init__(self, grids=("grid1.localhost",), hold_effects=False):
        self.clock = Clock()
        self.store = MemoryAllocation(self.clock)
        self.net = Network()
        rules = load_rules(Path(__file__).parent / "data" / "jgsl.config.xml")
        self.gateways = {jid: GatewayCore(jid, rules, GatewaySettings(), shared=True)
                         for jid in GATEWAYS}
        self.grids = {jid: GridProcessCore(jid, list(GATEWAYS)) for jid in grids}
        for jid, core in {**self.gateways, **self.grids}.items():
            self.net.add(jid, core)
        self.users = Users()
        self.net.add("emu.localhost", self.users)
        self.held: list[tuple[GatewayCore, object]] = []
        self.hold_effects = hold_effects
        for grid in self.grids.values():
            self.send(grid.connected(0))

    def send(self, envelopes, now=0.0):
        self.net.deliver(now, envelopes)
        self.run_effects(now)

    def run_effects(self, now=0.0):
        for core in self.gateways.values():
            pending, core.effects[:] = list(core.effects), []
            self.held += [(core, e) for e in pending]
        if self.hold_effects:
            return
        while self.held:
            core, effect = self.held.pop(0)
            outcome = self.store.execute(effect).result
            self.net.deliver(now, core.effect_done(now, effect, outcome))
            for c in self.gateways.values():
                pending, c.effects[:] = list(c.effects), []
                self.held += [(c, e) for e in pending]

    def login(self, gateway, user, x, z, now=0.0):
        core = self.gateways[gateway]
        msg = pb.Login(worldpath=ALPHA, x=x, y=1, z=z, csk="c")
        self.net.deliver(now, core.receive(now, Envelope(f"{user}@emu.localhost", gateway, msg)))
        self.run_effects(now)

    def accepted(self):
        return {e.recipient.split("@")[0]: (e.message.gjid, e.message.gid)
                for e in self.users.replies if not e.message.refused}


def test_racing_gateways_spawn_one_node_per_tile():
    world = SharedWorld(hold_effects=True)
    # Both gateways get logins for the same tiles before either hears from the store.
    for i, gateway in enumerate(GATEWAYS * 4):
        world.login(gateway, f"u{i}", 20010 + i, 20010)  # tile (100, 100)
        world.login(gateway, f"v{i}", 20210 + i, 20010)  # tile (101, 100)
    world.run_effects()
    claims = [e for _, e in world.held if isinstance(e, Claim)]
    assert len(claims) == 4  # each gateway claims each tile once
    world.hold_effects = False
    world.run_effects()
    world.net.tick(1.0)  # lookups and heartbeats
    world.run_effects(1.0)
    grid = world.grids["grid1.localhost"]
    assert sorted((n.region.gx, n.region.gy) for n in grid.nodes.values()) == [(100, 100),
                                                                               (101, 100)]
    accepted = world.accepted()
    assert len(accepted) == 16
    tile_a = {accepted[f"u{i}"] for i in range(8)}
    tile_b = {accepted[f"v{i}"] for i in range(8)}
    assert len(tile_a) == len(tile_b) == 1 and tile_a != tile_b


def test_loser_adopts_from_the_grid_heartbeat_too():
    """If the record is slow to come, the grid's heartbeat to every gateway resolves it."""
    world = SharedWorld()
    world.login("gw1.localhost", "a", 20010, 20010)
    record = next(iter(world.store._records.values()))
    world.store._records.clear()  # as if gw1's publish had not landed yet
    world.login("gw2.localhost", "b", 20011, 20010)
    assert "b" not in world.accepted()
    world.send(world.grids["grid1.localhost"].tick(5.0), now=5.0)  # heartbeat
    assert world.accepted()["b"] == ("grid1.localhost", record.id)


def test_store_claim_publish_release_semantics():
    clock = Clock()
    store = MemoryAllocation(clock)
    record = NodeRecord("grid1", 3, "k", "guest")
    assert store.execute(Claim("t", "gw1", 10)).result.owner == "gw1"
    assert store.execute(Claim("t", "gw2", 10)).result.owner == "gw1"
    assert store.execute(Publish("t", "gw2", record)).result.record is None  # not the owner
    assert store.execute(Publish("t", "gw1", record)).result.record == record
    clock.advance(60)  # a published claim does not expire
    assert store.execute(Claim("t", "gw2", 10)).result.owner == "gw1"
    assert store.execute(Release("t", "gw2", NodeRecord("grid9", 1, "x", "guest"))) \
        .result.record == record  # only the matching record is released
    assert store.execute(Release("t", "gw2", record)).result == Outcome(None, None)
    assert store.execute(Claim("t", "gw2", 10)).result.owner == "gw2"
    clock.advance(11)  # an unpublished claim lapses (its winner died)
    assert store.execute(Claim("t", "gw1", 10)).result.owner == "gw1"
