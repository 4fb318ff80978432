"""The live world map's feed: one snapshot a second, pushed to every open page (SSE).

Pages subscribe to ``/map/events`` (Server-Sent Events). While at least one is open, the
gateway asks its grid processes for map reports (jgsl.core.worldmap: at most once a second,
however many pages), and once a second this feed builds one JSON snapshot and writes the
same bytes to every page; a page gone is forgotten. At most ``max_pages`` pages at once.
"""

from __future__ import annotations

import json

from twisted.internet.task import LoopingCall
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from jgsl.core.gateway import GatewayCore


def snapshot(gateway: GatewayCore, now: float) -> dict:
    """What the map shows: every node the gateway knows (tile, grid process, users, load)
    and every agent its grid processes last reported."""
    reported = gateway.map.current(now)
    agents: dict[tuple[str, int], list] = {}
    for grid, nodes in reported.items():
        for node in nodes:
            agents[(grid, node.id)] = list(node.agents)
    nodes, dots = [], []
    for node in gateway.nodes():
        region = node.region
        here = agents.get((node.grid, node.id), [])
        users = sum(1 for a in here if not a.npc)
        nodes.append({
            "grid": node.grid, "id": node.id, "world": region.worldpath, "gx": region.gx,
            "gy": region.gy, "size": region.size, "instance": node.instance,
            "role": node.role, "state": node.state.value, "agents": node.agents,
            "users": users, "npcs": len(here) - users,
            "load": round(node.load / gateway.settings.max_users, 3)
            if gateway.settings.max_users else None,
            "max_users": gateway.settings.max_users})
        for agent in here:
            dots.append({"jid": agent.jid, "name": agent.name, "x": round(agent.x, 2),
                         "y": round(agent.y, 2), "z": round(agent.z, 2), "npc": agent.npc,
                         "grid": node.grid, "node": node.id, "world": region.worldpath})
    grids = [{"jid": grid.jid, "state": "suspected" if grid.ping else "live",
              "nodes": sum(1 for n in nodes if n["grid"] == grid.jid)}
             for grid in gateway.grids()]
    return {"time": round(now, 3), "gateway": gateway.jid, "grids": grids, "nodes": nodes,
            "agents": dots}


class MapFeed(Resource):
    """``/map/events``: the snapshot every ``interval`` seconds to each open page."""

    isLeaf = True
    max_pages = 64

    def __init__(self, reactor, gateway: GatewayCore, interval: float = 1.0) -> None:
        super().__init__()
        self.reactor = reactor
        self.gateway = gateway
        self.pages: set = set()
        self._pusher = LoopingCall(self.push)
        self._pusher.clock = reactor
        self.interval = interval

    def render_GET(self, request):
        if len(self.pages) >= self.max_pages:
            request.setResponseCode(503)
            return b"too many map pages open\n"
        request.setHeader(b"content-type", b"text/event-stream")
        request.setHeader(b"cache-control", b"no-store")
        request.write(b"retry: 2000\n\n")
        self.pages.add(request)
        request.notifyFinish().addBoth(lambda _: self.pages.discard(request))
        self.gateway.map.want(self.reactor.seconds())
        self._send([request])
        if not self._pusher.running:
            self._pusher.start(self.interval, now=False)
        return NOT_DONE_YET

    def push(self) -> None:
        if not self.pages:
            self._pusher.stop()
            return
        self.gateway.map.want(self.reactor.seconds())
        self._send(list(self.pages))

    def _send(self, pages: list) -> None:
        data = json.dumps(snapshot(self.gateway, self.reactor.seconds()),
                          separators=(",", ":")).encode()
        frame = b"event: map\ndata: " + data + b"\n\n"
        for page in pages:
            page.write(frame)

    def stop(self) -> None:
        if self._pusher.running:
            self._pusher.stop()
        for page in list(self.pages):
            page.finish()
        self.pages.clear()
