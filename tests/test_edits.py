"""Creations and environment edits: CompressEnvs, cursors, roles, no echo, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jgsl.config import load_rules
from jgsl.core.client import Avatar, ClientCore, ClientSettings, EventKind
from jgsl.core.edits import EditLog, compress_envs
from jgsl.core.gateway import GatewayCore
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.node import GridSettings
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope
from tests.network import Network

GW = "gateway.localhost"
DOODLE = "worlds/MyWorlds/DoodleWorld/"  # a "friend" world: edits allowed
ALPHA = "worlds/MyWorlds/AlphaWorld/"  # a "guest" world: read only


def env(kind, seq=0, **params):
    return pb.WorldEdit(kind=kind, params=params, seq=seq)


def test_compress_envs_keeps_latest_state_with_older_fields():
    entries = [(1, env("OCEAN_SET_WATER", height="1", colour="blue")),
               (2, env("RAIN", amount="3")),
               (3, env("OCEAN_SET_WATER", height="2")),
               (4, env("SKY_SET_Sky", skybox="a")),
               (5, env("SKY_SET_Sky", skybox="b"))]
    out = compress_envs(entries)
    assert [(seq, e.kind, dict(e.params)) for seq, e in out] == [
        (2, "RAIN", {"amount": "3"}),
        (3, "OCEAN_SET_WATER", {"height": "2", "colour": "blue"}),
        (5, "SKY_SET_Sky", {"skybox": "b"}),
    ]


def test_cursor_skips_own_entries_and_limits_batch():
    log = EditLog.new(compress=False, limit=100)
    for i in range(8):
        log.append(env("BOX", n=str(i)), "alice@x" if i % 2 else "bob@x")
    items, cursor, more = log.after(0, "alice@x", 3)
    assert [e.params["n"] for e in items] == ["0", "2", "4"] and more
    items, cursor, more = log.after(cursor, "alice@x", 3)
    assert [e.params["n"] for e in items] == ["6"] and cursor == 8 and not more


@settings(max_examples=200, deadline=None)
@given(authors=st.lists(st.sampled_from(["alice@x", "bob@x"]), max_size=30),
       cursor=st.integers(min_value=0, max_value=35), most=st.integers(min_value=1, max_value=6),
       compact=st.booleans())
def test_cursor_reads_what_a_scan_of_the_whole_log_reads(authors, cursor, most, compact):
    """Entries after the cursor, not the reader's own, at most ``most``; the new cursor past
    what was skipped: the same as a scan of every entry, also after compaction."""
    log = EditLog.new(compress=compact, limit=8 if compact else 100)
    for i, author in enumerate(authors):
        log.append(env("OCEAN_SET_WATER" if i % 3 else "RAIN", n=str(i)), author)
    out, new_cursor, more = [], cursor, False
    for seq, edit in log.entries:
        if seq <= cursor:
            continue
        if len(out) == most:
            more = True
            break
        new_cursor = seq
        if edit.author != "alice@x":
            out.append(edit)
    assert log.after(cursor, "alice@x", most) == (out, new_cursor, more)


def test_full_log_refuses_and_env_log_compacts():
    creations = EditLog.new(compress=False, limit=2)
    assert creations.append(env("A"), "a") is None and creations.append(env("B"), "a") is None
    assert "full" in creations.append(env("C"), "a")
    envs = EditLog.new(compress=True, limit=3)
    for height in "1234":
        assert envs.append(env("OCEAN_SET_WATER", height=height), "a") is None
    assert [e.params["height"] for _, e in envs.entries] == ["3", "4"]


class EditWorld:
    def __init__(self, world: str, loss: set[type] | None = None) -> None:
        self.net = Network()
        rules = load_rules(Path(__file__).parent / "data" / "jgsl.config.xml")
        self.grid = GridProcessCore("grid1.localhost", [GW],
                                    GridSettings(max_edits_per_reply=2, max_env=4))
        self.net.add(GW, GatewayCore(GW, rules))
        self.net.add("grid1.localhost", self.grid)
        self.net.add("emu.localhost", self)
        self.net.deliver(0, self.grid.connected(0))
        self.events: dict[str, list] = {}
        self.clients = {}
        for name, x in (("alice", 20001), ("bob", 20002)):
            jid = f"{name}@emu.localhost"
            self.events[name] = []
            self.clients[jid] = ClientCore(
                jid, GW, world, Avatar(x=x, y=1, z=20001, asset_file="a.x"),
                ClientSettings(update_interval=1, request_timeout=3),
                on_event=self.events[name].append)
        for client in self.clients.values():
            self.net.deliver(0, client.start(0))
        self.net.lost = loss or set()

    def receive(self, now, envelope):
        return self.clients[envelope.recipient.split("/")[0]].receive(now, envelope)

    def tick(self, now):
        return [e for c in self.clients.values() for e in c.tick(now)]

    def run(self, start, end):
        t = start
        while t <= end:
            self.net.tick(t)
            t += 0.5

    def seen(self, name, kind):
        return [(e.jid, e.edit.kind, dict(e.edit.params)) for e in self.events[name]
                if e.kind is kind]


def test_creations_reach_others_once_but_not_the_author():
    world = EditWorld(DOODLE)
    alice = world.clients["alice@emu.localhost"]
    alice.create("BOX", x="1")
    alice.create("BALL", x="2")
    alice.create("TREE", x="3")
    alice.set_env("SKY_SET_Sky", skybox="night")
    world.run(0.5, 6)
    assert world.seen("bob", EventKind.CREATION) == [
        ("alice@emu.localhost", "BOX", {"x": "1"}), ("alice@emu.localhost", "BALL", {"x": "2"}),
        ("alice@emu.localhost", "TREE", {"x": "3"})]
    assert world.seen("bob", EventKind.ENV) == [
        ("alice@emu.localhost", "SKY_SET_Sky", {"skybox": "night"})]
    assert world.seen("alice", EventKind.CREATION) == []
    assert len(world.grid.nodes[1].creations.entries) == 3


def test_edits_survive_lost_replies_exactly_once():
    """Replies lost both ways: the author resends, the node dedups, readers get each once."""
    world = EditWorld(DOODLE)
    world.run(0.5, 2)
    world.net.lost = {pb.NormalUpdateReply}
    alice = world.clients["alice@emu.localhost"]
    for i in range(5):
        alice.create("BOX", n=str(i))
    world.run(2.5, 8)  # every reply is lost for a while
    world.net.lost = set()
    world.run(8.5, 30)
    assert [p["n"] for _, _, p in world.seen("bob", EventKind.CREATION)] == list("01234")
    assert len(world.grid.nodes[1].creations.entries) == 5


def test_guest_world_refuses_edits():
    world = EditWorld(ALPHA)
    world.clients["alice@emu.localhost"].create("BOX")
    world.run(0.5, 4)
    node = world.grid.nodes[1]
    assert node.creations.entries == [] and world.seen("bob", EventKind.CREATION) == []


def test_client_behind_a_compaction_ends_in_the_same_state():
    world = EditWorld(DOODLE)
    alice = world.clients["alice@emu.localhost"]
    bob_jid = "bob@emu.localhost"
    bob = world.clients.pop(bob_jid)  # bob is away while alice changes the ocean a lot
    world.run(0.5, 2)
    for height in range(10):
        alice.set_env("OCEAN_SET_WATER", height=str(height), **({"colour": "green"}
                                                                if height == 0 else {}))
        world.run(2.5 + height, 3 + height)
    world.clients[bob_jid] = bob
    world.run(13, 30)
    state: dict[str, str] = {}
    for _, kind, params in world.seen("bob", EventKind.ENV):
        assert kind == "OCEAN_SET_WATER"
        state.update(params)
    assert state == {"height": "9", "colour": "green"}


@pytest.mark.parametrize("edit, problem", [
    (pb.WorldEdit(kind=""), "kind must have"),
    (pb.WorldEdit(kind="X", params={str(i): "v" for i in range(40)}), "more than 32 params"),
    (pb.WorldEdit(kind="X", params={"k": "v" * 300}), "longer than 256"),
])
def test_bad_edits_rejected(edit, problem):
    grid = GridProcessCore("grid1.localhost", [GW], key_factory=lambda: "k")
    grid.receive(0, Envelope(GW, "grid1.localhost", pb.SpawnNode(
        request=1, worldpath=DOODLE, role="friend")))
    msg = pb.NormalUpdate(sk="k", id=1, ct=1)
    msg.agent.creations.append(edit)
    node = grid.nodes[1]
    node.normal_update(0, "alice@emu.localhost", msg)
    assert node.creations.entries == [] and problem in node.rejected[0]


def test_one_message_mixing_logs_applies_every_edit():
    """Author seqs span both logs; env seq 2 must not hide creation seq 3 in the same message."""
    grid = GridProcessCore("grid1.localhost", [GW], key_factory=lambda: "k")
    grid.receive(0, Envelope(GW, "grid1.localhost", pb.SpawnNode(
        request=1, worldpath=DOODLE, role="friend")))
    msg = pb.NormalUpdate(sk="k", id=1, ct=1)
    msg.agent.creations.extend([env("A", seq=1), env("C", seq=3)])
    msg.agent.env.append(env("SKY_SET_Sky", seq=2))
    node = grid.nodes[1]
    node.normal_update(0, "alice@emu.localhost", msg)
    assert [e.kind for _, e in node.creations.entries] == ["A", "C"]
    assert [e.kind for _, e in node.env.entries] == ["SKY_SET_Sky"]
    node.normal_update(1, "alice@emu.localhost", msg)  # the same message again: a resend
    assert len(node.creations.entries) == 2 and len(node.env.entries) == 1
