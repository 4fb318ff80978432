"""The protocol's worked example, golden transcript and string-map tables, generated.

``python -m jgsl.protodoc`` plays a scripted session against today's gateway and grid
process cores (fixed clock and keys, so it comes out the same each time): two clients ping,
log in and exchange updates, one reply is lost, one client starts over (``st`` 0) and one
logs out. It writes

- ``tests/data/golden/session.json``: every stanza of the session between the clients and
  the servers, both ways, as bytes on the wire, for any client implementation to replay
  (tests/test_golden.py replays it against the grid on every run);
- the generated parts of ``docs/protocol.md`` (between ``<!-- generated: NAME -->`` and
  ``<!-- end of generated: NAME -->``): the worked example, decoded column by column, and the
  string maps, from the code's own maps.

``--check`` writes nothing and fails if any of them is stale (``./dev test`` runs it).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from functools import cache
from pathlib import Path

from jgsl.config import load_config
from jgsl.core.gateway import GatewayCore
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.reply.agenttable import read_table
from jgsl.core.stringmaps import default_maps
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope, decode, encode_bytes, parse
from jgsl.wire.messages import describe, readable

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden" / "session.json"
PROTOCOL = ROOT / "docs" / "protocol.md"
RULES = ROOT / "config" / "jgsl.config.xml"
GW, GRID = "gateway.localhost", "grid1.localhost"
ALPHA = "worlds/MyWorlds/AlphaWorld/"
ALICE, BOB = "alice@emu.localhost/jgsl", "bob@emu.localhost/jgsl"
#: When the session starts (seconds since the epoch: tickets carry times).
T0 = 1_800_000_000.0


@cache
def _world():
    """The shipped config, read once."""
    return load_config(RULES)


class Session:
    """The servers' cores wired together in memory; what clients get is recorded."""

    def __init__(self) -> None:
        keys = iter(f"key{i:02d}" for i in range(1, 100))
        self.now = T0
        world = _world()  # the shipped config: radius 60, its rules and refresh
        self.gateway = GatewayCore(GW, world.rules, world.gateway_settings(), start=T0,
                                   wall_clock=lambda: self.now,
                                   key_factory=lambda: next(keys))
        self.grid = GridProcessCore(GRID, [GW], world.grid_settings(), start=T0,
                                    key_factory=lambda: next(keys), maps=world.string_maps())
        self.records: list[dict] = []
        self._deliver(self.grid.connected(self.now))  # GRID_HELLO: the grid registers

    def send(self, sender: str, recipient: str, message, note: str = "",
             lost_reply: bool = False) -> list[Envelope]:
        """A client's message, as bytes, to a server; what the servers answer clients."""
        data = encode_bytes(message, recipient, sender)
        self.records.append({"t": round(self.now - T0, 3), "dir": "in", "from": sender,
                             "to": recipient, "note": note, "stanza": data.decode()})
        envelope = decode(parse(data))
        core = self.gateway if recipient == GW else self.grid
        return self._deliver(core.receive(self.now, envelope), lost_reply)

    def _deliver(self, out: list[Envelope], lost: bool = False) -> list[Envelope]:
        """Route server-to-server messages at once; record what goes to clients."""
        to_clients: list[Envelope] = []
        while out:
            envelope, out = out[0], out[1:]
            if envelope.recipient in (GW, GRID):
                core = self.gateway if envelope.recipient == GW else self.grid
                out = out + core.receive(self.now, envelope)
                continue
            data = encode_bytes(envelope.message, envelope.recipient, envelope.sender)
            self.records.append({"t": round(self.now - T0, 3), "dir": "out",
                                 "from": envelope.sender, "to": envelope.recipient,
                                 "lost": lost, "stanza": data.decode()})
            to_clients.append(decode(parse(data)))
        return to_clients

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._deliver(self.gateway.tick(self.now) + self.grid.tick(self.now))

    def replay(self, records: list[dict]) -> list[dict]:
        """Feed a transcript's client stanzas, as recorded, to these servers (ticking them
        when its clock moves, as the recording did); the records that come out."""
        self.records = []
        for record in records:
            if record["dir"] != "in":
                continue
            now = T0 + record["t"]
            if now > self.now:
                self.advance(now - self.now)
            data = record["stanza"].encode()
            self.records.append(dict(record))
            envelope = decode(parse(data))
            core = self.gateway if envelope.recipient == GW else self.grid
            self._deliver(core.receive(self.now, envelope))
        return self.records


def play() -> Session:
    """The scripted session (see the module docstring)."""
    s = Session()
    agents = {}
    for who, x, z, csk, asset in ((ALICE, 20091.0, 20086.0, "c-alice",
                                   "character/v3/Human/Female/HumanFemale.x"),
                                  (BOB, 20096.0, 20090.0, "c-bob",
                                   "character/v4/Can/can01/can01.x")):
        (pong,) = s.send(who, GW, pb.Ping(csk=csk, worldpath=ALPHA), f"{who} pings")
        (login,) = s.send(who, GW, pb.Login(csk=csk, sk=pong.message.sk, worldpath=ALPHA, x=x,
                                            y=36.7, z=z, client_version=1),
                          f"{who} asks where {ALPHA} ({x}, {z}) is served")
        reply = login.message
        agents[who] = {"gk": reply.gk, "gid": reply.gid, "ticket": reply.ticket, "st": 0,
                       "ct": 1, "x": x, "z": z, "asset": asset,
                       "origin": (reply.gx * reply.gsize, reply.gy * reply.gsize)}
        s.advance(0.1)

    def update(who: str, note: str, move: tuple[float, float] | None = None,
               full: bool = False, lost: bool = False, reset: bool = False) -> None:
        a = agents[who]
        if reset:
            a["st"] = 0
        msg = pb.NormalUpdate(sk=a["gk"], id=a["gid"], st=a["st"], ct=a["ct"])
        if a["st"] == 0:
            msg.ticket.CopyFrom(a["ticket"])
        if move:
            a["x"] += move[0]
            a["z"] += move[1]
        ox, oz = a["origin"]
        state = msg.agent.data
        if full or move:
            state.rx = round((a["x"] - ox) * 100)
            state.rz = round((a["z"] - oz) * 100)
        if full:
            state.y, state.facing, state.asset_file = 3670, 128, a["asset"]
        (reply,) = s.send(who, GRID, msg, note, lost_reply=lost)
        a["ct"] += 1
        if not lost:
            a["st"] = reply.message.st
        s.advance(0.5)

    update(ALICE, "alice's first update: every field, with the ticket", full=True)
    update(BOB, "bob's first update: he meets alice", full=True)
    update(ALICE, "alice walks; she meets bob", move=(1.5, -0.5))
    update(BOB, "bob walks; this reply is lost on the way", move=(0.0, 2.0), lost=True)
    update(ALICE, "alice stands still: only her counters")
    update(BOB, "bob, who never got his last reply, echoes the st before it", move=(1.0, 0.0))
    update(ALICE, "alice starts over (st 0, ticket again): a full table", reset=True,
           full=True)
    s.send(BOB, GRID, pb.Logout(sk=agents[BOB]["gk"], id=agents[BOB]["gid"]), "bob leaves")
    s.advance(0.5)
    update(ALICE, "alice sees bob gone")
    return s


# -- the docs ------------------------------------------------------------------------------


def _column(value) -> str:
    if isinstance(value, bytes | str | int | float):
        return repr(value)
    return repr(list(value))


def _decoded(stanza: str) -> list[str]:
    """A stanza's message in text, and a reply's agent table row by row."""
    message = decode(parse(stanza)).message
    lines = [describe(message)]
    if isinstance(message, pb.NormalUpdateReply) and message.HasField("agents"):
        table = readable(message).agents
        columns = [f"{field.name} = {_column(value)}" for field, value in table.ListFields()]
        lines += ["agent table, column by column:"] + [f"  {c}" for c in columns]
        lines += ["agent table, row by row (read_table):"]
        for row in read_table(table, _world().string_maps()):
            kind = "delta" if row.delta else "absolute"
            lines.append(f"  slot {row.slot} ({kind}): {row.values}")
    return lines


def worked_example(records: list[dict]) -> str:
    """The first ping, login and three updates with their answers, bytes and meaning."""
    out: list[str] = []
    shown = 0
    for record in records:
        if shown >= 10:
            break
        if record["dir"] == "in" and record["from"] != ALICE:
            continue
        if record["dir"] == "out" and not record["to"].startswith("alice"):
            continue
        shown += 1
        arrow = "client → server" if record["dir"] == "in" else "server → client"
        note = f" — {record['note']}" if record.get("note") else ""
        out.append(f"**{shown}. {arrow}** (t = {record['t']} s){note}\n")
        out.append("```xml\n" + record["stanza"] + "\n```\n")
        payload = base64.b64decode(record["stanza"].split("'>", 2)[-1].split("<", 1)[0])
        out.append(f"payload ({len(payload)} bytes): `{payload.hex(' ')}`\n")
        out.append("```\n" + "\n".join(_decoded(record["stanza"])) + "\n```\n")
    return "\n".join(out)


def fields() -> str:
    """Every message registered on the wire, and the messages inside them, field by field,
    from the compiled descriptors (protocol/*.proto has the comments)."""
    from google.protobuf.descriptor import FieldDescriptor

    from jgsl.lua.annotations import lua_type
    from jgsl.wire.messages import REGISTRY, type_name

    out, done, todo = [], set(), []
    for type_id, cls in sorted(REGISTRY.items()):
        todo.append((f"{type_id} {type_name(type_id)}", cls.DESCRIPTOR))
    while todo:
        title, descriptor = todo.pop(0)
        if descriptor.full_name in done or descriptor.GetOptions().map_entry:
            continue
        done.add(descriptor.full_name)
        out.append(f"**{title}** (`{descriptor.full_name}`)\n")
        if not descriptor.fields:
            out.append("(no fields)\n")
            continue
        out.append("| # | field | type |\n|---|---|---|")
        for field in sorted(descriptor.fields, key=lambda f: f.number):
            out.append(f"| {field.number} | `{field.name}` | `{lua_type(field)}` |")
            if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                inner = field.message_type
                if inner.GetOptions().map_entry:
                    inner = inner.fields_by_name["value"].message_type or inner
                todo.append((inner.name, inner))
        out.append("")
    return "\n".join(out)


def string_maps() -> str:
    """Every built-in string map, id by id (the codes on the wire are 2·id − 1)."""
    out = []
    for field, string_map in default_maps().items():
        out.append(f"**`{field}`** ({len(string_map)} strings; code on the wire = 2·id − 1)\n")
        out.append("| id | string |\n|---|---|")
        for number in range(1, len(string_map) + 1):
            out.append(f"| {number} | `{string_map.text_of(number)}` |")
        out.append("")
    return "\n".join(out)


def _spliced(text: str, name: str, body: str) -> str:
    start, end = f"<!-- generated: {name} -->", f"<!-- end of generated: {name} -->"
    if start not in text or end not in text:
        raise SystemExit(f"docs/protocol.md has no {start} ... {end} section")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return (f"{head}{start}\n<!-- python -m jgsl.protodoc writes this part; do not edit -->\n\n"
            f"{body.strip()}\n\n{end}{tail}")


def outputs() -> dict[Path, str]:
    session = play()
    golden = json.dumps({"about": "JGSL golden session: stanzas between clients and servers, "
                         "both ways (docs/protocol.md; python -m jgsl.protodoc)",
                         "rules": "config/jgsl.config.xml", "t0": T0,
                         "stanzas": session.records}, indent=1) + "\n"
    doc = PROTOCOL.read_text()
    doc = _spliced(doc, "worked example", worked_example(session.records))
    doc = _spliced(doc, "string maps", string_maps())
    doc = _spliced(doc, "fields", fields())
    return {GOLDEN: golden, PROTOCOL: doc}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jgsl.protodoc",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if anything is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"stale: {', '.join(stale)} (run python -m jgsl.protodoc)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
