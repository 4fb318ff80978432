"""Helpers the unit and integration tests share: a grid process with one node, tickets and
updates for it, captured log events, and a one-process world."""

from __future__ import annotations

from pathlib import Path

from twisted.logger import formatEvent, globalLogPublisher

from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.node import GridSettings
from jgsl.core.reply.agenttable import read_table
from jgsl.core.stringmaps import default_maps
from jgsl.core.tickets import DEV_TICKET_SECRET, sign
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope
from jgsl.wire.messages import readable
from tests.processes import Processes, wait_for

GRID = "grid1.localhost"
GW = "gateway.localhost"
ALPHA = "worlds/MyWorlds/AlphaWorld/"
MAPS = default_maps()
NO_REFRESH = {}


def make_grid(**overrides) -> GridProcessCore:
    settings = GridSettings(**{"agent_timeout": 20, "hello_interval": 2,
                               "refresh": NO_REFRESH, **overrides})
    core = GridProcessCore(GRID, [GW], settings, key_factory=lambda: "nodekey")
    (ready,) = core.receive(0, Envelope(GW + "/r", GRID, pb.SpawnNode(
        request=5, worldpath=ALPHA, gx=100, gy=100, gsize=200, role="guest")))
    assert ready.message == pb.NodeReady(request=5, id=1, key="nodekey")
    return core


FULL = pb.AgentState(asset_file="character/v3/dummy/dummy.x", rx=9100, y=3672, rz=8600,
                     facing=127)


def ticket(jid: str, **changes) -> pb.Ticket:
    """A ticket the gateway would have signed for ``jid`` and node 1."""
    fields = {"user": jid.split("/")[0], "node_id": 1, "node_key": "nodekey",
              "expires": 1e9, "gateway": GW, **changes}
    return sign(DEV_TICKET_SECRET, **fields)


def update(grid, now, sender, st=0, ct=1, data=None, **kw) -> pb.NormalUpdateReply | None:
    kw.setdefault("ticket", ticket(sender))
    msg = pb.NormalUpdate(sk="nodekey", id=1, st=st, ct=ct, **kw)
    if data is not None:
        msg.agent.data.CopyFrom(data)
    out = grid.receive(now, Envelope(sender, GRID, msg))
    return readable(out[0].message) if out else None  # as the client reads it


def rows(reply):
    return [(r.slot, r.delta, r.values) for r in read_table(readable(reply).agents, MAPS)]


class Captured:
    """``with Captured() as events``: the log events emitted inside the block."""

    def __init__(self):
        self.events = []

    def __enter__(self):
        globalLogPublisher.addObserver(self.events.append)
        return self.events

    def __exit__(self, *exc):
        globalLogPublisher.removeObserver(self.events.append)


class Log:
    """Log lines as formatted text (the ``logged`` fixture of conftest.py)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event) -> None:
        self.lines.append(formatEvent(event))

    def text(self) -> str:
        return "\n".join(self.lines)


def start_world(procs: Processes, tmp_path: Path, name: str, users: Path, *args: str) -> str:
    """``twistd jgsl --role world`` with ``users``; the port its router listens on."""
    port_file = tmp_path / f"{name}.port"
    port_file.unlink(missing_ok=True)
    procs.start(name, "--role", "world", "--listen", "tcp:0:interface=127.0.0.1",
                "--port-file", str(port_file), "--emu-users", str(users),
                "--update-interval", "0.5", "--request-timeout", "5", "--seed", "3", *args)
    return wait_for(lambda: port_file.exists() and port_file.read_text().strip(),
                    what="the router's port")


def signed_in(procs: Processes, name: str, count: int) -> bool:
    """Have ``count`` users of process ``name`` signed in?"""
    return procs.log(name).count(" signed-in: ") >= count
