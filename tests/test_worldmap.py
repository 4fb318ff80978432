"""The live map's feed in the cores: the gateway asks only while someone looks, at most once
a second; grid processes answer in parts under the payload limit; strangers are ignored."""

from __future__ import annotations

from jgsl.core.worldmap import WorldMap
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import MAX_PAYLOAD_BYTES, Envelope
from tests.fakes import FULL, GRID, GW, make_grid, update
from tests.test_gateway import gateway, hello, send  # noqa: F401 - the fixture

__all__ = ["gateway"]


def map_requests(out) -> list[Envelope]:
    return [e for e in out if isinstance(e.message, pb.MapRequest)]


def test_the_gateway_asks_every_grid_only_while_a_page_looks(gateway):  # noqa: F811
    hello(gateway, 100.0, "grid1.localhost")
    hello(gateway, 100.0, "grid2.localhost")
    assert map_requests(gateway.tick(100.5)) == []  # nobody looks: nothing asked
    gateway.map.want(101.0)
    asked = map_requests(gateway.tick(101.0))
    assert sorted(e.recipient for e in asked) == ["grid1.localhost", "grid2.localhost"]
    assert map_requests(gateway.tick(101.5)) == []  # at most once a second
    again = map_requests(gateway.tick(102.0))
    assert len(again) == 2 and again[0].message.request != asked[0].message.request
    assert map_requests(gateway.tick(104.5)) == []  # the page went away 3 s ago


def test_reports_count_when_complete_and_only_from_known_grids(gateway):  # noqa: F811
    hello(gateway, 100.0, "grid1.localhost")
    gateway.map.want(100.0)
    (asked,) = map_requests(gateway.tick(100.0))
    request = asked.message.request
    node = pb.MapNode(id=1, worldpath="w/", gx=1, gy=2, agents=[pb.MapAgent(jid="a@x")])
    send(gateway, 100.1, "mallory.localhost", pb.MapReport(request=request, part=0, parts=1,
                                                           nodes=[node]))
    assert gateway.map.current(100.1) == {}
    send(gateway, 100.1, "grid1.localhost", pb.MapReport(request=request, part=1, parts=2,
                                                         nodes=[node]))
    assert gateway.map.current(100.1) == {}  # half an answer is no answer
    send(gateway, 100.2, "grid1.localhost", pb.MapReport(request=request, part=0, parts=2,
                                                         nodes=[node]))
    assert [len(n.agents) for n in gateway.map.current(100.2)["grid1.localhost"]] == [1, 1]
    assert gateway.map.current(106.0) == {}  # stale after 5 s
    send(gateway, 100.3, "grid1.localhost", pb.MapReport(request=request - 1, part=0,
                                                         parts=1, nodes=[node]))
    assert len(gateway.map.current(100.3)["grid1.localhost"]) == 2  # an old answer: ignored


def test_a_dead_grids_report_is_forgotten(gateway):  # noqa: F811
    hello(gateway, 100.0)
    gateway.map.want(100.0)
    (asked,) = map_requests(gateway.tick(100.0))
    send(gateway, 100.1, "grid1.localhost", pb.MapReport(request=asked.message.request,
                                                         part=0, parts=1))
    assert "grid1.localhost" in gateway.map.current(100.1)
    send(gateway, 100.2, "grid1.localhost", pb.GridClosing(reason="bye"))
    assert gateway.map.current(100.2) == {}


def test_nonsense_parts_are_ignored():
    world = WorldMap()
    world.want(0.0)
    request = world.due(0.0)
    for part, parts in ((0, 0), (3, 2), (0, 10_000)):
        world.report(0.0, "g", pb.MapReport(request=request, part=part, parts=parts))
    assert world.current(0.0) == {}


def test_a_grid_reports_its_agents_in_parts_under_the_limit():
    grid = make_grid()
    for i in range(1500):
        update(grid, 1.0, f"walker{i:04d}@emu.localhost/r", data=FULL)
    out = grid.receive(2.0, Envelope(GW + "/r", GRID, pb.MapRequest(request=9)))
    assert len(out) > 1 and all(e.recipient == GW for e in out)
    parts = [e.message for e in out]
    assert [(p.request, p.part, p.parts) for p in parts] == [(9, i, len(parts))
                                                               for i in range(len(parts))]
    assert all(p.ByteSize() < MAX_PAYLOAD_BYTES for p in parts)
    agents = [a for p in parts for n in p.nodes for a in n.agents]
    assert sorted(a.jid for a in agents) == sorted(f"walker{i:04d}@emu.localhost"
                                                   for i in range(1500))
    first = agents[0]
    assert (round(first.x, 2), round(first.z, 2)) == (20091.0, 20086.0)
    assert first.name.startswith("walker") and not first.npc
    assert {(n.id, n.worldpath, n.gx, n.gy) for p in parts for n in p.nodes} == {
        (1, "worlds/MyWorlds/AlphaWorld/", 100, 100)}


def test_a_grid_tells_its_map_only_to_its_gateways():
    grid = make_grid()
    update(grid, 1.0, "alice@emu.localhost/r", data=FULL)
    assert grid.receive(2.0, Envelope("mallory@evil/r", GRID, pb.MapRequest(request=1))) == []
